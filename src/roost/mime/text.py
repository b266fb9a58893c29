"""Text for SEARCH: decoded header fields and the readable text of a message's body
(RFC 9051 §6.4.4: matching is on decoded text; RFC 2047, RFC 2045 §6, charsets).

``body_text`` walks the MIME tree and takes every text/* leaf (and the text parts of
attached messages), undoes the transfer encoding and the charset, strips HTML to its
text (tags, comments, script and style removed; entities resolved), and stops at
``MAX_BODY_TEXT`` characters so that one huge message cannot bloat the index. The
header of every body part is body text too (RFC 9051 §6.4.4: TEXT covers header and
body, and a multipart's body holds its parts' headers), so an attachment's file name
is found, with RFC 2231 parameters decoded. A part is decoded from at most
``PART_SCAN_FACTOR`` bytes per character still wanted, so a 50 MB part costs no more
than the text it can give (roost.mime.limits).

Every step is linear in its input: ``strip_html`` scans once (the regular expressions
it replaces went quadratic on "<head<head<head..." or on "<" without ">").
"""

from __future__ import annotations

import html
import re

from roost.mime.bodystructure import part_data
from roost.mime.decode import decode_parameter, decode_transfer, decode_words, to_text
from roost.mime.limits import MAX_BODY_TEXT, MAX_HEADER_TEXT, PART_SCAN_FACTOR, MessageBytes
from roost.mime.parse import KIND_MULTIPART, KIND_RFC822, Field, Node

__all__ = [
    "MAX_BODY_TEXT",
    "MAX_HEADER_TEXT",
    "body_text",
    "header_text",
    "leaf_text",
    "strip_html",
]

_HIDDEN_OPEN = re.compile(r"<(script|style|head)\b")
_HIDDEN_CLOSE = {name: re.compile(rf"</{name}\s*>") for name in ("script", "style", "head")}
_COMMENT_CLOSE = re.compile(r"-->")
_BREAK = re.compile(r"<(?:br|/p|/div|/li|/tr|/h[1-6])\b")
_BLANK_LINES = re.compile(r"\n\s*\n+")
# ASCII-only lower case: the same length as the text, so indices carry over.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class _Closer:
    """Where the next ``pattern`` is at or after a position, each search starting
    where the last one ended: the text is searched once in all, however many
    openers wait for a closer that never comes."""

    __slots__ = ("found", "pattern", "searched_from", "text")

    def __init__(self, text: str, pattern: re.Pattern[str]) -> None:
        self.text = text
        self.pattern = pattern
        self.searched_from = -1
        self.found: re.Match[str] | None = None

    def after(self, position: int) -> re.Match[str] | None:
        if self.searched_from >= 0 and (self.found is None or self.found.start() >= position):
            return self.found  # none left, or the one already found is still ahead
        self.searched_from = position
        self.found = self.pattern.search(self.text, position)
        return self.found


def strip_html(markup: str) -> str:
    lower = markup.translate(_ASCII_LOWER)
    closers = {name: _Closer(lower, pattern) for name, pattern in _HIDDEN_CLOSE.items()}
    comments = _Closer(lower, _COMMENT_CLOSE)
    out: list[str] = []
    position = 0
    while True:
        start = lower.find("<", position)
        if start < 0:
            out.append(markup[position:])
            break
        out.append(markup[position:start])
        closing: re.Match[str] | None = None
        if lower.startswith("<!--", start):
            closing = comments.after(start + 4)
        else:
            opening = _HIDDEN_OPEN.match(lower, start)
            if opening is not None:
                closing = closers[opening.group(1)].after(opening.end())
        if closing is not None:  # script, style, head, comment: hidden whole
            out.append(" ")
            position = closing.end()
            continue
        end = lower.find(">", start)
        if end < 0:  # no tag can end after here: the rest is text
            out.append(markup[start:])
            break
        out.append("\n" if _BREAK.match(lower, start) else " ")
        position = end + 1
    text = html.unescape("".join(out))
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


def leaf_text(data: MessageBytes, node: Node, wanted: int) -> str | None:
    """The decoded text of a text/* leaf (HTML stripped), at most ``wanted``
    characters; None for any other part."""
    info = part_data(node)
    content_type = (info.content_type or b"text").lower()
    subtype = (info.subtype or b"plain").lower()
    if content_type != b"text":
        return None
    encoding = (info.encoding or b"7bit").decode("latin-1")
    end = min(node.end, node.body_start + PART_SCAN_FACTOR * wanted)
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
    return text[:wanted]


def part_header_text(node: Node) -> str:
    """A body part's own header, and its Content-Type and Content-Disposition parameters
    decoded (``filename*=utf-8''...``, RFC 2231), which the raw field text hides."""
    text = header_text(node.fields)
    info = part_data(node)
    params = [*info.params, *(info.disposition_params or ())]
    decoded = [decode_parameter(key, value)[1] for key, value in params]
    extra = [value for value in decoded if value and value not in text]
    return "\n".join([text, *extra])


def body_text(data: MessageBytes, root: Node) -> str:
    pieces: list[str] = []
    size = 0
    stack = [(root, False)]  # (part, whether its header is body text)
    while stack and size < MAX_BODY_TEXT:
        node, with_header = stack.pop()
        if with_header and node.fields:
            header = part_header_text(node)
            pieces.append(header)
            size += len(header)
            if size >= MAX_BODY_TEXT:
                break
        if node.kind == KIND_MULTIPART or node.kind == KIND_RFC822:
            stack.extend((child, True) for child in reversed(node.children))
            continue
        text = leaf_text(data, node, MAX_BODY_TEXT - size)
        if text:
            pieces.append(text)
            size += len(text)
    return "\n".join(pieces)[:MAX_BODY_TEXT]
