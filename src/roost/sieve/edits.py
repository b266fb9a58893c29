"""Apply a result's header edits (RFC 5293) to the message bytes before it is stored.

The interpreter decides the edits; the host calls ``apply_header_edits`` once, after the
run, on the bytes it will store or forward.  Fields keep their original bytes (folding
included); added fields are encoded per RFC 2047 when their value is not ASCII.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.header import Header

from roost.sieve.actions import AddHeader, DeleteHeader, HeaderEdit

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _split_fields(header: bytes) -> list[bytes]:
    """Raw fields, each with its continuation lines and line ends."""
    fields: list[bytes] = []
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def _name(field: bytes) -> str:
    return field.split(b":", 1)[0].strip().decode("ascii", errors="replace").lower()


def _encode(edit: AddHeader, newline: bytes) -> bytes:
    value = edit.value
    if not value.isascii():
        value = Header(value, "utf-8", header_name=edit.name).encode()
    return f"{edit.name}: {value}".encode("ascii") + newline


def apply_header_edits(data: bytes, edits: Sequence[HeaderEdit]) -> bytes:
    """``data`` with ``edits`` applied in order; the body is untouched."""
    if not edits:
        return data
    end = _HEADER_END.search(data)
    if data.startswith((b"\r\n", b"\n")):
        header, rest = b"", data
    elif end is None:
        header, rest = data, b""
    else:
        split = end.start() + (2 if data[end.start() : end.start() + 2] == b"\r\n" else 1)
        header, rest = data[:split], data[split:]
    newline = b"\r\n" if b"\r\n" in data[:2048] or not data else b"\n"
    if header and not header.endswith(b"\n"):
        header += newline
    fields = _split_fields(header)
    for edit in edits:
        if isinstance(edit, AddHeader):
            encoded = _encode(edit, newline)
            if edit.last:
                fields.append(encoded)
            else:
                fields.insert(0, encoded)
        elif isinstance(edit, DeleteHeader):
            key = edit.name.lower()
            positions = [i for i, field in enumerate(fields) if _name(field) == key]
            if edit.occurrence < len(positions):
                del fields[positions[edit.occurrence]]
    if not rest:
        rest = newline
    return b"".join(fields) + rest
