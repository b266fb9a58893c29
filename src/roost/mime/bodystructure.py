"""BODY and BODYSTRUCTURE (RFC 9051 §7.5.2, RFC 3501 §7.4.2) from the parsed MIME tree.

A leaf is ``(type subtype (params) id description encoding size [lines | envelope body
lines] md5 (disposition (params)) (language) location)``; a multipart is ``(body)(body)...
subtype (params) (disposition) (language) location``. BODY stops before ``md5`` (leaf)
or after the subtype (multipart). Field by field, as Dovecot renders them:

- Type, subtype, parameter names and values are sent as written (not case-folded), in
  header order, RFC 2231 continuations joined but left encoded (``name*``). A text part
  without a charset gets ``"charset" "us-ascii"`` at the end of its parameters (RFC 2045
  §5.2 default); a part without Content-Type is text/plain. An unparsable Content-Type
  leaves ``"" ""`` (or ``"text" ""`` for a bare "text") and no parameters.
- Content-* fields count only in a MIME part (MIME-Version or Content-Type present, or
  any part of a multipart); the first occurrence of each wins.
- The encoding defaults to "7bit"; the size is the body in bytes; lines (text/* and
  message/rfc822) count line feeds.
- A multipart with no parts shows one empty text/plain part, so that the value stays
  valid IMAP (RFC 9051 requires ``1*body``).
- A top-level text/plain part in us-ascii, 7bit, without any other Content-* field is
  written in the canonical form ``"text" "plain" ("charset" "us-ascii") ... "7bit"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from roost.mime import imap_form
from roost.mime.envelope import envelope as render_envelope
from roost.mime.lexer import Lexer, content_params
from roost.mime.limits import MessageBytes
from roost.mime.parse import KIND_MULTIPART, KIND_RFC822, Node, count_bytes

_DEFAULT_CHARSET = (b"charset", b"us-ascii")
_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0'


@dataclass(slots=True)
class PartData:
    """The Content-* fields of one part (RFC 2045 §5-§8, RFC 2183, RFC 3282, RFC 2557)."""

    content_type: bytes | None = None
    subtype: bytes | None = None
    params: list[tuple[bytes, bytes]] = field(default_factory=list)
    encoding: bytes | None = None
    id: bytes | None = None
    description: bytes | None = None
    md5: bytes | None = None
    disposition: bytes | None = None
    disposition_params: list[tuple[bytes, bytes]] | None = None
    language: list[bytes] | None = None
    location: bytes | None = None


def part_data(node: Node) -> PartData:
    data = PartData()
    if not node.mime:
        return data  # without MIME-Version, Content-* fields mean nothing (RFC 2045 §4)
    for item in node.fields:
        name = item.name.lower()
        if not name.startswith(b"content-"):
            continue
        name = name[8:]
        value = item.value
        if name == b"type" and data.content_type is None:
            _content_type(data, value)
        elif name == b"transfer-encoding" and data.encoding is None:
            lexer = Lexer(value)
            lexer.skip_lwsp()
            out = bytearray()
            if lexer.mime_token(out) >= 0 and lexer.skip_lwsp() == 0 and out:
                data.encoding = bytes(out)
        elif name == b"id" and data.id is None:
            data.id = value
        elif name == b"md5" and data.md5 is None:
            data.md5 = value
        elif name == b"description" and data.description is None:
            data.description = value
        elif name == b"location" and data.location is None:
            data.location = value
        elif name == b"language" and data.language is None:
            data.language = _languages(value)
        elif name == b"disposition" and not data.disposition_params:
            lexer = Lexer(value)
            lexer.skip_lwsp()
            out = bytearray()
            if lexer.mime_token(out) >= 0:
                data.disposition = bytes(out)
                data.disposition_params = content_params(lexer)
    return data


def _content_type(data: PartData, value: bytes) -> None:
    lexer = Lexer(value)
    lexer.skip_lwsp()
    out = bytearray()
    ret = lexer.content_type(out)
    slash = out.find(b"/")
    if slash >= 0:
        data.content_type, data.subtype = bytes(out[:slash]), bytes(out[slash + 1 :])
    else:
        data.content_type = bytes(out)
    if ret >= 0:
        data.params = content_params(lexer)


def _languages(value: bytes) -> list[bytes] | None:
    lexer = Lexer(value)
    lexer.skip_lwsp()
    languages: list[bytes] = []
    out = bytearray()
    while lexer.atom(out) >= 0:
        languages.append(bytes(out))
        out.clear()
        if lexer.pos >= lexer.end or lexer.data[lexer.pos] != 0x2C:
            break
        lexer.pos += 1
        lexer.skip_lwsp()
    return languages or None


def _params(params: list[tuple[bytes, bytes]] | None, default_charset: bool) -> bytes:
    params = params or []
    if not params and not default_charset:
        return imap_form.NIL
    items = []
    seen_charset = False
    for key, value in params:
        seen_charset = seen_charset or key.lower() == b"charset"
        items.append(imap_form.string(key))
        items.append(imap_form.string(value))
    if default_charset and not seen_charset:
        items += [imap_form.string(_DEFAULT_CHARSET[0]), imap_form.string(_DEFAULT_CHARSET[1])]
    return imap_form.plist(items)


def _extension(data: PartData) -> list[bytes]:
    if data.disposition is None:
        disposition = imap_form.NIL
    else:
        disposition = imap_form.plist(
            [imap_form.string(data.disposition), _params(data.disposition_params, False)]
        )
    language = (
        imap_form.NIL
        if data.language is None
        else imap_form.plist([imap_form.string(tag) for tag in data.language])
    )
    return [disposition, language, imap_form.nstring(data.location)]


def is_plain_7bit(node: Node, data: PartData) -> bool:
    """Dovecot's canonical form for a simple top-level text/plain message."""
    if node.kind != 0 or not node.text:
        return False
    if data.subtype is not None and data.subtype.lower() != b"plain":
        return False
    if data.params and (
        len(data.params) != 1
        or data.params[0][0].lower() != b"charset"
        or data.params[0][1].lower() != b"us-ascii"
    ):
        return False
    if data.id is not None or data.description is not None:
        return False
    if data.encoding is not None and data.encoding.lower() != b"7bit":
        return False
    return (
        data.md5 is None
        and data.disposition is None
        and data.language is None
        and data.location is None
    )


class Renderer:
    """Renders BODY or BODYSTRUCTURE of a tree over the message bytes.

    ``crlf_sizes`` counts each bare LF as two bytes, as a server that converts line ends
    to CRLF on output (Dovecot) does; Roost sends bytes as stored and leaves it off.
    """

    def __init__(self, data: MessageBytes, *, extended: bool, crlf_sizes: bool = False) -> None:
        self.data = data
        self.extended = extended
        self.crlf_sizes = crlf_sizes

    def size(self, start: int, end: int) -> int:
        size = end - start
        if self.crlf_sizes:
            size += count_bytes(self.data, b"\n", start, end) - count_bytes(
                self.data, b"\r\n", start, end
            )
        return size

    def render(self, node: Node, top: bool = True) -> bytes:
        data = part_data(node)
        if node.kind == KIND_MULTIPART:
            return self._multipart(node, data)
        return self._leaf(node, data, top)

    def _multipart(self, node: Node, data: PartData) -> bytes:
        if node.children:
            bodies = b"".join(self.render(child, False) for child in node.children)
        else:
            bodies = _EMPTY_BODY + (b" NIL NIL NIL NIL)" if self.extended else b")")
        out = [bodies, imap_form.string(data.subtype if data.subtype is not None else b"")]
        if self.extended:
            out.append(_params(data.params, False))
            out += _extension(data)
        return b"(" + b" ".join(out) + b")"

    def _leaf(self, node: Node, data: PartData, top: bool) -> bytes:
        size = self.size(node.body_start, node.end)
        lines = count_bytes(self.data, b"\n", node.body_start, node.end)
        if top and is_plain_7bit(node, data):
            canonical = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d' % (
                size,
                lines,
            )
            return canonical + (b" NIL NIL NIL NIL)" if self.extended else b")")
        text = False
        if node.kind == KIND_RFC822:
            head = [b'"message" "rfc822"']
        elif data.content_type is None:
            text = True
            head = [b'"text" "plain"']
        else:
            text = data.content_type.lower() == b"text"
            head = [
                imap_form.string(data.content_type),
                imap_form.string(data.subtype if data.subtype is not None else b""),
            ]
        out = [
            *head,
            _params(data.params, text),
            imap_form.nstring(data.id),
            imap_form.nstring(data.description),
            imap_form.string(data.encoding if data.encoding is not None else b"7bit"),
            imap_form.number(size),
        ]
        if text:
            out.append(imap_form.number(lines))
        elif node.kind == KIND_RFC822 and node.children:
            child = node.children[0]
            out.append(render_envelope(child.fields))
            out.append(self.render(child, False))
            out.append(imap_form.number(lines))
        if self.extended:
            out.append(imap_form.nstring(data.md5))
            out += _extension(data)
        return b"(" + b" ".join(out) + b")"


def bodystructure(data: MessageBytes, root: Node, *, crlf_sizes: bool = False) -> bytes:
    return Renderer(data, extended=True, crlf_sizes=crlf_sizes).render(root)


def body(data: MessageBytes, root: Node, *, crlf_sizes: bool = False) -> bytes:
    return Renderer(data, extended=False, crlf_sizes=crlf_sizes).render(root)
