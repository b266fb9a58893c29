"""Header-block helpers for BODY[HEADER.FIELDS (...)] (RFC 9051 §6.4.5).

Works on the raw header bytes as stored: line ends are kept as they are, so the bytes a
client receives are exactly the bytes of the message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def iter_fields(header: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(lower-cased field name, raw bytes of the field with its continuation lines).

    Stops at the blank line that ends the header. A line that is neither a field nor a
    continuation (no colon) is passed over rather than failing the whole message."""
    name: bytes | None = None
    start = 0
    position = 0
    length = len(header)
    while position < length:
        end = header.find(b"\n", position)
        end = length if end < 0 else end + 1
        line = header[position:end]
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t"):
            position = end
            continue  # continuation of the current field
        if name is not None:
            yield name, header[start:position]
        colon = line.find(b":")
        name = line[:colon].strip().lower() if colon > 0 else None
        start = position
        position = end
    if name is not None:
        yield name, header[start:position]


def select_fields(header: bytes, names: Iterable[str], *, exclude: bool) -> bytes:
    """The fields named (or, with ``exclude``, all others), then the blank line."""
    wanted = {n.lower().encode("ascii", "replace") for n in names}
    kept = [raw for name, raw in iter_fields(header) if (name in wanted) != exclude]
    # Each kept field must end in a line end before the closing blank line.
    body = b"".join(raw if raw.endswith(b"\n") else raw + b"\r\n" for raw in kept)
    return body + b"\r\n"
