"""Typed POP3 responses and the one place they become bytes.

A status line is ``+OK`` or ``-ERR``, an optional response code in brackets (RFC 2449
§8), and text (RFC 1939 §3). A multi-line response is its status line, lines, and a
line of a single "."; any line that starts with "." is sent with one more in front
("byte-stuffing"). Listing lines (CAPA, LIST, UIDL) are stuffed here; message bodies
arrive already encoded by ``roost.pop3.wire.message.MessageEncoder``, which stuffs
across chunk boundaries.

Status lines never carry a CR or LF from their text, and are cut to the 512 octets RFC
2449 §4 allows a response line.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

# Response codes: RFC 2449 §8.1 (IN-USE, LOGIN-DELAY), RFC 3206 (SYS/TEMP, SYS/PERM,
# AUTH).
IN_USE = "IN-USE"
LOGIN_DELAY = "LOGIN-DELAY"
SYS_TEMP = "SYS/TEMP"
SYS_PERM = "SYS/PERM"
AUTH = "AUTH"

MAX_STATUS_LINE = 512  # octets, CRLF included (RFC 2449 §4)


@dataclass(frozen=True, slots=True)
class Ok:
    text: str = ""
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Err:
    text: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Challenge:
    """A SASL server challenge, "+ " and base64 (RFC 5034 §4); ``data`` is decoded."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ListLine:
    """One line of a multi-line listing, without its line end."""

    data: bytes


@dataclass(frozen=True, slots=True)
class MessageData:
    """Bytes of a message body exactly as they go on the wire (already stuffed)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class End:
    """The "." that ends a multi-line listing (not a message: its encoder ends it)."""


Response = Ok | Err | Challenge | ListLine | MessageData | End


def serialize(response: Response) -> bytes:
    match response:
        case Ok(text=text, code=code):
            return _status(b"+OK", text, code)
        case Err(text=text, code=code):
            return _status(b"-ERR", text, code)
        case Challenge(data=data):
            return b"+ " + base64.b64encode(data) + b"\r\n"
        case ListLine(data=data):
            return (b"." + data if data.startswith(b".") else data) + b"\r\n"
        case MessageData(data=data):
            return data
        case End():
            return b".\r\n"


def _status(indicator: bytes, text: str, code: str | None) -> bytes:
    parts = [indicator]
    if code:
        parts.append(b"[" + _clean(code) + b"]")
    if text:
        parts.append(_clean(text))
    line = b" ".join(parts)[: MAX_STATUS_LINE - 2]
    return line + b"\r\n"


def _clean(text: str) -> bytes:
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace")
