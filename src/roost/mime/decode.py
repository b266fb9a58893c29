"""Undoing MIME encodings: transfer encodings (RFC 2045 §6), encoded words (RFC 2047),
parameter values (RFC 2231) and charsets.

Every function here is total: bad input yields the best text it can, never an
exception, because it runs at delivery on whatever arrives.

- ``decode_transfer``: 7bit/8bit/binary as they are; base64 leniently (characters
  outside the alphabet are skipped, missing padding is supplied, data after the padding
  is decoded too — what mail readers do, RFC 2045 §6.8 "MUST ignore"); quoted-printable
  leniently (an "=" not followed by two hex digits stays as it is, RFC 2045 §6.7 note
  (2)); None for anything else, which IMAP answers with ``[UNKNOWN-CTE]`` (RFC 3516).
- ``decode_words``: RFC 2047 encoded words in unstructured text (white space between
  adjacent words dropped, §6.2), undecodable words left as written.
- ``to_text``: bytes in a named charset to ``str``, through Python's codecs, with
  aliases for common mislabels and UTF-8 then Latin-1 as fallbacks.
"""

from __future__ import annotations

import binascii
import codecs
import re
from urllib.parse import unquote_to_bytes

_BASE64_ALPHABET = re.compile(rb"[^A-Za-z0-9+/]")
_QP_SOFT_BREAK = re.compile(rb"=[ \t]*\r?\n")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
# Only from the start of a run, and possessive: "[ \t]+(?=\r?\n)" retried at every
# position of a long run without a line end, quadratic (a megabyte of spaces in a
# quoted-printable part held the worker, and the GIL, for an hour).
_TRAILING_SPACE = re.compile(rb"(?<![ \t])[ \t]++(?=\r?\n)")

IDENTITY_ENCODINGS = frozenset({"7bit", "8bit", "binary"})

_CHARSET_ALIASES = {
    "x-unknown": "latin-1",
    "unknown-8bit": "latin-1",
    "us-ascii": "latin-1",  # 8-bit bytes in "ASCII" text are almost always Latin-1
    "ascii": "latin-1",
    "iso-8859-8-i": "iso-8859-8",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "windows-874": "cp874",
    "utf8": "utf-8",
    "x-mac-roman": "mac-roman",
}


def decode_base64(data: bytes) -> bytes:
    """Lenient base64: decodes each run between padding, skipping non-alphabet bytes."""
    out = []
    for chunk in data.split(b"="):
        clean = _BASE64_ALPHABET.sub(b"", chunk)
        usable = len(clean) - len(clean) % 4
        tail = clean[usable:]
        try:
            out.append(binascii.a2b_base64(clean[:usable]) if usable else b"")
            if len(tail) >= 2:
                out.append(binascii.a2b_base64(tail + b"=" * (4 - len(tail))))
        except binascii.Error:
            continue
    return b"".join(out)


def decode_quoted_printable(data: bytes) -> bytes:
    data = _TRAILING_SPACE.sub(b"", data)  # RFC 2045 §6.7 (3): added by transport
    data = _QP_SOFT_BREAK.sub(b"", data)
    if data.endswith(b"="):
        data = data[:-1]
    return _QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data)


def decode_transfer(data: bytes, encoding: str) -> bytes | None:
    """The body bytes with the Content-Transfer-Encoding undone; None when the encoding
    is not one that can be undone (RFC 3516 UNKNOWN-CTE)."""
    encoding = encoding.strip().lower()
    if encoding in IDENTITY_ENCODINGS or encoding == "":
        return data
    if encoding == "base64":
        return decode_base64(data)
    if encoding == "quoted-printable":
        return decode_quoted_printable(data)
    return None


def codec_for(charset: str | None) -> str:
    """A Python codec name for a MIME charset; "utf-8" when unknown or absent."""
    if not charset:
        return "utf-8"
    name = charset.strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


def to_text(data: bytes, charset: str | None) -> str:
    """Bytes in ``charset`` → str. Undecodable bytes never raise: a wrong label falls back
    to UTF-8 (strict), then to Latin-1, which decodes anything."""
    if data.isascii():
        return data.decode("ascii")
    codec = codec_for(charset)
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(codec if codec != "utf-8" else "latin-1", "replace")


# RFC 2047 §2: =?charset[*language]?B|Q?text?=  (no white space inside)
_ENCODED_WORD = re.compile(rb"=\?([^?\s]+?)\?([BbQq])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(rb"(\?=)[ \t\r\n]+(?==\?[^?\s]+\?[BbQq]\?)")


def _decode_word(charset: bytes, kind: bytes, text: bytes) -> str | None:
    name = charset.split(b"*", 1)[0].decode("ascii", "replace")  # RFC 2231 §5 language
    if kind in (b"B", b"b"):
        try:
            raw = binascii.a2b_base64(text + b"=" * (-len(text) % 4))
        except binascii.Error:
            return None
    else:
        raw = _QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), text.replace(b"_", b" "))
    try:
        return raw.decode(codec_for(name))
    except (UnicodeDecodeError, LookupError):
        return to_text(raw, None)


def decode_words(value: bytes) -> str:
    """Unstructured header text with RFC 2047 words decoded (raw 8-bit taken as UTF-8,
    else Latin-1)."""
    if b"=?" not in value:
        return to_text(value, None)
    value = _BETWEEN_WORDS.sub(rb"\1", value)  # RFC 2047 §6.2: space between words goes
    out: list[str] = []
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        decoded = _decode_word(match.group(1), match.group(2), match.group(3))
        if decoded is None:
            continue
        out.append(to_text(value[position : match.start()], None))
        out.append(decoded)
        position = match.end()
    out.append(to_text(value[position:], None))
    return "".join(out)


def decode_parameter(key: bytes, value: bytes) -> tuple[str, str]:
    """A parameter as returned by ``parse.content_params`` → (lower-case name, text).
    ``name*`` values are RFC 2231 ``charset'language'%XX`` (§4); plain values may hold
    RFC 2047 words, which many mailers put in file names although §5 forbids it."""
    name = key.decode("latin-1").lower()
    if name.endswith("*"):
        name = name[:-1]
        parts = value.split(b"'", 2)
        if len(parts) == 3:
            charset, _language, encoded = parts
            return name, to_text(unquote_to_bytes(encoded), charset.decode("latin-1"))
        return name, to_text(unquote_to_bytes(value), None)
    return name, decode_words(value)
