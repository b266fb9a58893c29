"""Encoding IMAP's string forms (RFC 9051 §4.3, §9): quoted or literal strings,
astrings, mailbox names (UTF-8 or modified UTF-7), resp-text. The one place that
decides between a quoted string and a literal; the serializer builds responses from
these."""

from __future__ import annotations

from collections.abc import Iterable

from roost.imap.wire.mutf7 import encode_mutf7

CRLF = b"\r\n"
NIL = b"NIL"

# ATOM-CHAR (RFC 9051 §9): CHAR except atom-specials. "[" is excluded as well, so that
# a name like "[Gmail]" is quoted, as lenient client parsers expect.
_ATOM_CHARS = bytes(c for c in range(0x21, 0x7F) if c not in b'(){%*"\\[]')
TEXT_FORBIDDEN = str.maketrans({"\r": " ", "\n": " ", "\x00": " "})


# ---- strings --------------------------------------------------------------------------


def to_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Bytes kept through surrogateescape go back as they were; anything else is "?".
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "replace")


def quotable(data: bytes, utf8: bool) -> bool:
    if b"\r" in data or b"\n" in data or b"\x00" in data:
        return False
    if data.isascii():
        return True
    if not utf8:
        return False
    try:
        data.decode("utf-8")  # RFC 9051 QUOTED-CHAR: only well-formed UTF-8
    except UnicodeDecodeError:
        return False
    return True


def string_bytes(data: bytes, utf8: bool) -> bytes:
    """``string``: quoted if possible, else a literal."""
    if quotable(data, utf8):
        if b"\\" in data or b'"' in data:
            data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + data + b'"'
    return b"{%d}\r\n" % len(data) + data


def string(text: str, utf8: bool) -> bytes:
    return string_bytes(to_bytes(text), utf8)


def astring_bytes(data: bytes, utf8: bool) -> bytes:
    """``astring``: a bare atom when safe, else as ``_string_bytes``. "NIL" is quoted so
    that no client mistakes it for a missing value."""
    if data and not data.translate(None, _ATOM_CHARS) and data.upper() != NIL:
        return data
    return string_bytes(data, utf8)


def mailbox(name: str, utf8: bool) -> bytes:
    """A mailbox name (RFC 9051 ``mailbox``): UTF-8 with ``utf8``, else modified UTF-7."""
    return astring_bytes(to_bytes(name) if utf8 else encode_mutf7(name), utf8)


def quoted_char(char: str | None) -> bytes:
    """A hierarchy delimiter: ``QUOTED-CHAR`` or NIL."""
    if not char:
        return NIL
    return string(char, True)


def text(text: str, utf8: bool, *, after_code: bool, default: str) -> bytes:
    """Human-readable ``text`` (RFC 9051 ``resp-text``)."""
    if "\r" in text or "\n" in text or "\x00" in text:
        text = text.translate(TEXT_FORBIDDEN)
    if not after_code and text.startswith("["):
        text = text.lstrip("[")
    if not text.strip():
        text = default
    if utf8:
        return to_bytes(text)
    return text.encode("ascii", "replace")


def atoms(words: Iterable[str]) -> bytes:
    """Words that are atoms by construction (capabilities, flags, attributes)."""
    return to_bytes(" ".join(words))
