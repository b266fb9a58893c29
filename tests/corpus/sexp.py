"""A small, strict reader of IMAP values (RFC 9051 §4, §9): NIL, numbers, quoted strings,
literals ``{n}``/``~{n}`` and parenthesised lists, for comparing Roost's ENVELOPE and
BODYSTRUCTURE with Dovecot's recorded answers by meaning rather than by spelling (quoted
vs literal is the server's choice).

Strings come back as ``bytes``, numbers as ``int``, NIL as ``None``, atoms as ``str``.
``strict`` rejects what is not valid in IMAP4rev1: 8-bit, CR, LF or NUL inside a quoted
string, and anything but ``\\"`` or ``\\\\`` after a backslash.
"""

from __future__ import annotations

Value = bytes | int | str | None | list["Value"]

_ATOM_END = b' ()"{\r\n'


class SexpError(ValueError):
    pass


def parse_value(data: bytes, position: int = 0, *, strict: bool = True) -> tuple[Value, int]:
    """One value starting at ``position``; returns it and the position after it."""
    if position >= len(data):
        raise SexpError("value expected at end of input")
    char = data[position]
    if char == 0x28:  # "("
        items: list[Value] = []
        position += 1
        while True:
            if position >= len(data):
                raise SexpError("unterminated list")
            if data[position] == 0x29:  # ")"
                return items, position + 1
            if items:
                if data[position] == 0x20:
                    position += 1
                elif not (isinstance(items[-1], list) and data[position] == 0x28):
                    # body-type-mpart (RFC 9051 §9): "1*body SP media-subtype", no
                    # space between the bodies
                    raise SexpError(f"space expected at {position}")
            value, position = parse_value(data, position, strict=strict)
            items.append(value)
    if char == 0x22:  # '"'
        out = bytearray()
        position += 1
        while True:
            if position >= len(data):
                raise SexpError("unterminated quoted string")
            byte = data[position]
            if byte == 0x22:
                return bytes(out), position + 1
            if byte == 0x5C:  # backslash
                position += 1
                escaped = data[position : position + 1]
                if strict and escaped not in (b'"', b"\\"):
                    raise SexpError(f"bad escape {escaped!r}")
                out += escaped
            else:
                if strict and (byte >= 0x80 or byte in (0, 10, 13)):
                    raise SexpError(f"byte {byte:#x} in a quoted string")
                out.append(byte)
            position += 1
    if char == 0x7B or (char == 0x7E and data[position + 1 : position + 2] == b"{"):  # "{" "~{"
        close = data.index(b"}\r\n", position)
        start = position + (2 if char == 0x7E else 1)
        length = int(data[start:close].rstrip(b"+"))
        begin = close + 3
        if begin + length > len(data):
            raise SexpError("truncated literal")
        return data[begin : begin + length], begin + length
    end = position
    depth = 0
    while end < len(data) and (depth or data[end] not in _ATOM_END):
        if data[end] == 0x5B:  # "[" ... "]" inside FETCH keys
            depth += 1
        elif data[end] == 0x5D:
            depth -= 1
        end += 1
    if end == position:
        raise SexpError(f"unexpected byte {data[position : position + 1]!r} at {position}")
    atom = data[position:end].decode("ascii")
    if atom.upper() == "NIL":
        return None, end
    if atom.isdigit():
        return int(atom), end
    return atom, end


def parse(data: bytes, *, strict: bool = True) -> Value:
    """Exactly one value, nothing after it."""
    value, end = parse_value(data, 0, strict=strict)
    if end != len(data):
        raise SexpError(f"trailing bytes at {end}: {data[end : end + 20]!r}")
    return value
