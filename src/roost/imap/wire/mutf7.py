"""Modified UTF-7 for mailbox names (RFC 3501 §5.1.3).

Printable US-ASCII (0x20-0x7e) stands for itself, except "&", which is written "&-".
Every other character is written as UTF-16BE in a base64 variant (``,`` for ``/``, no
padding) between "&" and "-".

Decoding is strict and accepts only the one canonical spelling of each name, so that two
different byte strings can never name the same mailbox: printable ASCII must not be
encoded, a shift must end with "-", unused trailing bits must be zero, and two base64
shifts must not follow each other directly ("&AOQ-&AOQ-" is "&AOQA5A-"), as Dovecot
also requires.
"""

from __future__ import annotations

import binascii
from base64 import b64decode, b64encode

__all__ = ["decode_mutf7", "encode_mutf7"]

_AMP = 0x26
_DASH = 0x2D
_B64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def _is_direct(char: str) -> bool:
    """A character written as itself (printable ASCII other than "&")."""
    return " " <= char <= "~" and char != "&"


def _encode_run(run: str) -> bytes:
    # ValueError (UnicodeEncodeError) for a lone surrogate: there is no UTF-16 for it.
    encoded = b64encode(run.encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
    return b"&" + encoded + b"-"


def encode_mutf7(name: str) -> bytes:
    """``name`` in modified UTF-7; raises ``ValueError`` for a lone surrogate."""
    if name.isascii() and name.isprintable() and "&" not in name:
        return name.encode("ascii")  # the common case: nothing to shift
    parts: list[bytes] = []
    run_start = -1
    for index, char in enumerate(name):
        if _is_direct(char):
            if run_start >= 0:
                parts.append(_encode_run(name[run_start:index]))
                run_start = -1
            parts.append(char.encode("ascii"))
        elif char == "&":
            if run_start >= 0:
                parts.append(_encode_run(name[run_start:index]))
                run_start = -1
            parts.append(b"&-")
        elif run_start < 0:
            run_start = index
    if run_start >= 0:
        parts.append(_encode_run(name[run_start:]))
    return b"".join(parts)


def _decode_run(encoded: bytes) -> str:
    """The base64 between "&" and "-" (non-empty), checked to be the canonical form."""
    if any(byte not in _B64_CHARS for byte in encoded):
        raise ValueError("invalid character in modified base64")
    padding = b"=" * (-len(encoded) % 4)
    try:
        utf16 = b64decode(encoded.replace(b",", b"/") + padding, validate=True)
    except binascii.Error:
        raise ValueError("invalid modified base64 length") from None
    if len(utf16) % 2:
        raise ValueError("modified base64 does not hold whole UTF-16 units")
    try:
        text = utf16.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ValueError("modified base64 holds an unpaired UTF-16 surrogate") from None
    if any(_is_direct(char) or char == "&" for char in text):
        # RFC 3501 §5.1.3: printable US-ASCII MUST NOT be encoded.
        raise ValueError("printable US-ASCII must not be encoded in modified base64")
    if _encode_run(text)[1:-1] != encoded:
        raise ValueError("modified base64 has non-zero trailing bits")
    return text


def decode_mutf7(data: bytes) -> str:
    """The name that ``data`` spells in modified UTF-7; ``ValueError`` if it is not
    canonical modified UTF-7."""
    if b"&" not in data:
        if not all(0x20 <= byte <= 0x7E for byte in data):
            raise ValueError("only printable US-ASCII may appear outside a shift")
        return data.decode("ascii")
    parts: list[str] = []
    position = 0
    length = len(data)
    previous_was_base64 = False
    while position < length:
        byte = data[position]
        if byte != _AMP:
            end = data.find(b"&", position)
            end = length if end < 0 else end
            chunk = data[position:end]
            if not all(0x20 <= b <= 0x7E for b in chunk):
                raise ValueError("only printable US-ASCII may appear outside a shift")
            parts.append(chunk.decode("ascii"))
            position = end
            previous_was_base64 = False
            continue
        close = data.find(b"-", position + 1)
        if close < 0:
            raise ValueError('"&" shift is not terminated by "-"')
        if close == position + 1:
            parts.append("&")
            previous_was_base64 = False
        else:
            if previous_was_base64:
                raise ValueError("adjacent modified base64 shifts must be one shift")
            parts.append(_decode_run(data[position + 1 : close]))
            previous_was_base64 = True
        position = close + 1
    return "".join(parts)
