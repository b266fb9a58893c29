"""Text for SEARCH: decoded header fields and the readable text of a message's body
(RFC 9051 §6.4.4: matching is on decoded text; RFC 2047, RFC 2045 §6, charsets).

``body_text`` walks the MIME tree and takes every text/* leaf (and the text parts of
attached messages), undoes the transfer encoding and the charset, strips HTML to its
text (tags, comments, script and style removed; entities resolved), and stops at
``MAX_BODY_TEXT`` characters so that one huge message cannot bloat the index. The
header of every body part is body text too (RFC 9051 §6.4.4: TEXT covers header and
body, and a multipart's body holds its parts' headers), so an attachment's file name
is found, with RFC 2231 parameters decoded.
"""

from __future__ import annotations

import html
import re

from roost.mime.bodystructure import part_data
from roost.mime.decode import decode_parameter, decode_transfer, decode_words, to_text
from roost.mime.parse import KIND_MULTIPART, KIND_RFC822, Field, Node

MAX_BODY_TEXT = 1 << 20  # characters per message
MAX_HEADER_TEXT = 256 * 1024

_HIDDEN = re.compile(r"<(script|style|head)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_BREAK = re.compile(r"<(?:br|/p|/div|/li|/tr|/h[1-6])\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def strip_html(markup: str) -> str:
    text = _HIDDEN.sub(" ", markup)
    text = _BREAK.sub("\n", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    return _BLANK_LINES.sub("\n", text).strip()


def header_text(fields: list[Field]) -> str:
    """Every field, decoded, one "Name: value" per line."""
    lines = []
    size = 0
    for item in fields:
        line = f"{item.name.decode('latin-1')}: {decode_words(item.value)}"
        size += len(line)
        if size > MAX_HEADER_TEXT:
            break
        lines.append(line)
    return "\n".join(lines)


def leaf_text(data: bytes, node: Node, *, limit: int | None = None) -> str | None:
    """The decoded text of a text/* leaf (HTML stripped), None for any other part;
    with ``limit``, of only its first ``limit`` encoded bytes."""
    info = part_data(node)
    content_type = (info.content_type or b"text").lower()
    subtype = (info.subtype or b"plain").lower()
    if content_type != b"text":
        return None
    encoding = (info.encoding or b"7bit").decode("latin-1")
    end = node.end if limit is None else min(node.end, node.body_start + limit)
    raw = decode_transfer(data[node.body_start : end], encoding)
    if raw is None:
        return None
    charset = None
    for key, value in info.params:
        name, text = decode_parameter(key, value)
        if name == "charset":
            charset = text
    text = to_text(raw, charset)
    if subtype == b"html":
        text = strip_html(text)
    return text


def part_header_text(node: Node) -> str:
    """A body part's own header, and its Content-Type and Content-Disposition parameters
    decoded (``filename*=utf-8''...``, RFC 2231), which the raw field text hides."""
    text = header_text(node.fields)
    info = part_data(node)
    params = [*info.params, *(info.disposition_params or ())]
    decoded = [decode_parameter(key, value)[1] for key, value in params]
    extra = [value for value in decoded if value and value not in text]
    return "\n".join([text, *extra])


def body_text(data: bytes, root: Node) -> str:
    pieces: list[str] = []
    size = 0
    stack = [(root, False)]  # (part, whether its header is body text)
    while stack and size < MAX_BODY_TEXT:
        node, with_header = stack.pop()
        if with_header and node.fields:
            header = part_header_text(node)
            pieces.append(header)
            size += len(header)
        if node.kind == KIND_MULTIPART or node.kind == KIND_RFC822:
            stack.extend((child, True) for child in reversed(node.children))
            continue
        text = leaf_text(data, node)
        if text:
            pieces.append(text)
            size += len(text)
    return "\n".join(pieces)[:MAX_BODY_TEXT]
