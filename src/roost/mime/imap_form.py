"""IMAP values as they go on the wire inside ENVELOPE and BODYSTRUCTURE (RFC 9051 §4,
§9; RFC 3501 §4).

The forms built here are valid whether or not the client enabled UTF-8 (RFC 6855), so a
value computed once at delivery can be sent to every client as it is:

- ``nstring`` is NIL for None, a quoted string for 7-bit text without CR, LF or NUL
  (``"`` and ``\\`` escaped), otherwise a literal ``{n}\\r\\n`` followed by the bytes.
- Numbers are decimal; lists are parenthesised and space-separated, except that the
  bodies of a multipart follow each other with no space (``body-type-mpart``).
"""

from __future__ import annotations

NIL = b"NIL"

_UNQUOTABLE = frozenset(b"\r\n\x00") | frozenset(range(0x80, 0x100))


def nstring(value: bytes | None) -> bytes:
    if value is None:
        return NIL
    return string(value)


def string(value: bytes) -> bytes:
    if value.isascii() and b"\r" not in value and b"\n" not in value and b"\x00" not in value:
        if b"\\" in value or b'"' in value:
            value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + value + b'"'
    return b"{%d}\r\n" % len(value) + value


def number(value: int) -> bytes:
    return b"%d" % value


def plist(items: list[bytes]) -> bytes:
    """A parenthesised list of already-rendered items."""
    return b"(" + b" ".join(items) + b")"


def nlist(items: list[bytes]) -> bytes:
    """A parenthesised list, or NIL when there is nothing in it."""
    return plist(items) if items else NIL
