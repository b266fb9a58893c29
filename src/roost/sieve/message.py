"""What a script sees of a message and its envelope.

The interpreter reads a message through ``MessageView``: header fields in order (raw,
unfolded), the size, the raw body and the decoded leaf parts.  ``ParsedMessage`` is the
standard implementation over the message bytes; it splits the header eagerly (every script
reads it) and parses MIME only when a ``body`` test asks.
"""

from __future__ import annotations

import email
import email.policy
import html as html_module
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Envelope:
    """The SMTP envelope of one delivery: ``mail_from`` is "" for the null sender."""

    mail_from: str
    rcpt_to: str
    auth: str | None = None


@dataclass(frozen=True, slots=True)
class BodyPart:
    """A leaf MIME part: its content type (lower case, no parameters) and decoded text."""

    content_type: str
    text: str


class MessageView(Protocol):
    @property
    def size(self) -> int: ...

    def header_fields(self) -> Sequence[tuple[str, str]]:
        """(name, unfolded raw value) for every field, in message order."""
        ...

    def body_raw(self) -> str:
        """The body after the header, undecoded (RFC 5173 ``:raw``)."""
        ...

    def body_parts(self) -> Sequence[BodyPart]:
        """The leaf parts, transfer- and charset-decoded (RFC 5173 ``:content``/``:text``)."""
        ...


_FOLD = re.compile(r"\r?\n(?=[ \t])")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(slots=True)
class ParsedMessage:
    """A ``MessageView`` over the bytes of a message."""

    data: bytes
    _fields: list[tuple[str, str]] = field(default_factory=list)
    _body_offset: int = 0
    _parts: list[BodyPart] | None = None

    def __post_init__(self) -> None:
        if self.data.startswith((b"\r\n", b"\n")):
            header, self._body_offset = b"", self.data.index(b"\n") + 1
        else:
            end = _HEADER_END.search(self.data)
            if end is None:
                header, self._body_offset = self.data, len(self.data)
            else:
                header, self._body_offset = self.data[: end.start()], end.end()
        text = header.decode("utf-8", errors="replace")
        for line in _FOLD.sub("", text).splitlines():
            name, colon, value = line.partition(":")
            if colon and name and " " not in name.strip():
                self._fields.append((name.strip(), value.strip()))

    @property
    def size(self) -> int:
        return len(self.data)

    def header_fields(self) -> Sequence[tuple[str, str]]:
        return self._fields

    def body_raw(self) -> str:
        return self.data[self._body_offset :].decode("utf-8", errors="replace")

    def body_parts(self) -> Sequence[BodyPart]:
        if self._parts is None:
            parsed = email.message_from_bytes(self.data, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self._parts = [_leaf(part) for part in parsed.walk() if not part.is_multipart()]
        return self._parts


def _leaf(part: email.message.Message) -> BodyPart:
    content_type = part.get_content_type()
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return BodyPart(content_type, "")
    charset = part.get_content_charset() or "us-ascii"
    try:
        text = payload.decode(charset, errors="replace")
    except LookupError:
        text = payload.decode("utf-8", errors="replace")
    return BodyPart(content_type, text)


def decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded, as header tests compare them (RFC 5228 §2.7.2)."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"[ \t]+")


def html_to_text(html: str) -> str:
    """A rough text rendering of HTML for ``body :text`` (RFC 5173 §5.2 leaves it open)."""
    return _SPACE.sub(" ", html_module.unescape(_TAG.sub(" ", html)))
