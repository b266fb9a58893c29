"""What FETCH reads from a message: ENVELOPE and BODYSTRUCTURE from the MIME model
computed at delivery, and byte ranges of the stored message for every section
(RFC 9051 §6.4.5), decoded for BINARY (RFC 3516).

The model comes from ``MessageMeta.model`` (no re-parse); only a message stored
before the model existed is parsed here, once per FETCH.

Bytes are sent as stored, with one exception the protocol forces: a NUL cannot travel in
an IMAP literal, so BODY[...] answers turn NUL into 0x80 as Dovecot does (BINARY sends
literal8 instead, where NUL is allowed).
"""

from __future__ import annotations

from roost.imap.handler_types import bad, no
from roost.imap.wire import commands as c
from roost.imap.wire.responses import Code, FetchValue, NString, RawValue
from roost.mime.decode import decode_transfer
from roost.mime.headers import select_fields
from roost.mime.model import MessageModel
from roost.store.base import Account, MessageMeta

MODEL_ITEMS = {c.FetchItem.ENVELOPE, c.FetchItem.BODYSTRUCTURE, c.FetchItem.BODY}
CONTENT_ITEMS = {c.FetchItem.RFC822, c.FetchItem.RFC822_HEADER, c.FetchItem.RFC822_TEXT}


def section_label(attribute: c.BodySection) -> str:
    section = attribute.section
    text = section.text or ""
    if section.fields:
        text = f"{text} ({' '.join(section.fields)})"
    spec = ".".join(str(p) for p in section.part)
    if spec and text:
        spec += "."
    label = f"BINARY[{spec}]" if attribute.binary else f"BODY[{spec}{text}]"
    if attribute.partial is not None:
        label += f"<{attribute.partial[0]}>"
    return label


def label(attribute: c.FetchAttribute) -> str:
    if isinstance(attribute, c.BodySection):
        return section_label(attribute)
    if isinstance(attribute, c.BinarySize):
        return f"BINARY.SIZE[{'.'.join(str(p) for p in attribute.part)}]"
    if isinstance(attribute, c.Preview):
        return "PREVIEW"  # RFC 8970 §3.1: the modifier is not echoed
    return attribute.value


def _partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    return data[partial[0] : partial[0] + partial[1]]


def _wire_safe(data: bytes) -> NString:
    if b"\x00" in data:
        data = data.replace(b"\x00", b"\x80")
    return NString(data)


def whole_message(attribute: c.FetchAttribute) -> bool:
    """Whether ``attribute`` answers with the stored message as it is (BODY[],
    BODY.PEEK[], RFC822): ``message_value`` of its bytes, without a reader."""
    if isinstance(attribute, c.BodySection):
        section = attribute.section
        return (
            not attribute.binary
            and attribute.partial is None
            and not section.part
            and section.text is None
        )
    return attribute is c.FetchItem.RFC822


def message_value(content: bytes) -> NString:
    """The value of a ``whole_message`` attribute for a message of these bytes."""
    return _wire_safe(content)


class MessageReader:
    """Reads the parts of one message a FETCH needs, each at most once."""

    def __init__(self, account: Account, meta: MessageMeta) -> None:
        self.account = account
        self.meta = meta
        self._header: bytes | None = None
        self._model: MessageModel | None = None

    async def model(self) -> MessageModel:
        if self._model is None:
            if self.meta.model is not None:
                self._model = MessageModel.from_blob(self.meta.model)
            else:
                self._model = MessageModel.from_message(await self.read(0, self.meta.size))
        return self._model

    async def read(self, start: int, length: int) -> bytes:
        if length <= 0 or start >= self.meta.size:
            return b""
        if self.meta.content is not None:
            return self.meta.content[start : start + length]
        return await self.account.read_range(self.meta, start, length)

    async def header(self) -> bytes:
        if self._header is None:
            self._header = await self.read(0, self.meta.header_size)
        return self._header

    async def _range(self, span: tuple[int, int] | None, partial: tuple[int, int] | None) -> bytes:
        """Bytes ``span`` of the message, cut to ``partial`` without reading the rest."""
        if span is None:
            return b""  # no such part: an empty string, as Dovecot answers
        start, end = span
        if partial is not None:
            start, end = start + partial[0], min(end, start + partial[0] + partial[1])
        return await self.read(start, end - start)

    async def section_span(self, section: c.Section) -> tuple[int, int] | None:
        """Where ``section`` lies in the stored message as (start, end), None where the
        message has no such part. Not for HEADER.FIELDS[.NOT]: a selection, not a range.
        CATENATE (RFC 4469) copies a span in chunks instead of reading it whole."""
        if not section.part:
            match section.text:
                case None:
                    return (0, self.meta.size)
                case "TEXT":
                    return (self.meta.header_size, self.meta.size)
                case "HEADER":
                    return (0, self.meta.header_size)
        return (await self.model()).section(section.part, section.text)

    async def body_section(self, attribute: c.BodySection) -> bytes:
        section, partial = attribute.section, attribute.partial
        if not section.part and section.text == "HEADER":
            return _partial(await self.header(), partial)
        if section.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            if section.part:
                span = (await self.model()).section(section.part, "HEADER")
                if span is None:
                    return b""
                header = await self._range(span, None)
            else:
                header = await self.header()
            selected = select_fields(
                header, section.fields, exclude=section.text == "HEADER.FIELDS.NOT"
            )
            return _partial(selected, partial)
        return await self._range(await self.section_span(section), partial)

    async def decoded(self, part: tuple[int, ...]) -> bytes:
        """BINARY[part]: the part's body with its transfer encoding undone."""
        if not part:
            return await self.read(0, self.meta.size)
        model = await self.model()
        raw = await self._range(model.section(part, None), None)
        encoding = model.part_encoding(part)
        if encoding is None:  # multipart or message/rfc822: sent as stored
            return raw
        data = decode_transfer(raw, encoding)
        if data is None:
            # RFC 3516 §4.3: an encoding the server cannot undo.
            raise no(f"Unknown Content-Transfer-Encoding {encoding}", Code("UNKNOWN-CTE"))
        return data

    async def value(self, attribute: c.FetchAttribute) -> FetchValue:
        """The value of every attribute that needs the message or its model."""
        if isinstance(attribute, c.BodySection):
            if attribute.binary:
                data = _partial(await self.decoded(attribute.section.part), attribute.partial)
                return NString(data, binary=b"\x00" in data)
            return _wire_safe(await self.body_section(attribute))
        if isinstance(attribute, c.BinarySize):
            return len(await self.decoded(attribute.part))
        match attribute:
            case c.FetchItem.ENVELOPE:
                return RawValue((await self.model()).envelope)
            case c.FetchItem.BODYSTRUCTURE:
                return RawValue((await self.model()).bodystructure)
            case c.FetchItem.BODY:
                return RawValue((await self.model()).body)
            case c.FetchItem.RFC822:
                return _wire_safe(await self.read(0, self.meta.size))
            case c.FetchItem.RFC822_HEADER:
                return _wire_safe(await self.header())
            case c.FetchItem.RFC822_TEXT:
                text_size = self.meta.size - self.meta.header_size
                return _wire_safe(await self.read(self.meta.header_size, text_size))
        raise bad(f"FETCH {label(attribute)} is not supported")
