"""``preview_text``: the short plain-text preview of a message (RFC 8970 PREVIEW).

RFC 8970 §3.1 leaves the algorithm to the server but bounds the result: plain text,
no markup, at most 256 characters. Roost takes the first text/plain part that is not
an attachment (depth first, as a reader would meet it), else the first text/html one
with its markup stripped, collapses every run of whitespace to one space and keeps
``PREVIEW_CHARS`` characters. No readable text gives the empty string, which §3.1
asks for in place of NIL.
"""

from __future__ import annotations

from roost.mime.bodystructure import part_data
from roost.mime.limits import MessageBytes
from roost.mime.parse import KIND_MULTIPART, KIND_RFC822, Node, parse_message
from roost.mime.text import leaf_text

__all__ = ["PREVIEW_CHARS", "collapse", "message_preview", "preview_text"]

PREVIEW_CHARS = 200  # RFC 8970 §3.1: at most 256
# Characters of a part decoded for its preview (mime/text.py bounds the bytes read by
# it): far more than are shown, since whitespace and markup collapse away.
_DECODE_CHARS = 8 * 1024


def collapse(text: str, limit: int = PREVIEW_CHARS) -> str:
    """Whitespace runs to one space, trimmed, cut to ``limit`` characters."""
    return " ".join(text[: limit * 8].split())[:limit].rstrip()


def _is_attachment(node: Node) -> bool:
    disposition = part_data(node).disposition
    return disposition is not None and disposition.lower() == b"attachment"


def _text_leaves(root: Node) -> list[tuple[Node, bytes]]:
    """The text/* leaves of the message itself (not of attached messages), in order,
    with their subtypes; attachments left out."""
    found: list[tuple[Node, bytes]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.kind == KIND_MULTIPART:
            stack.extend(reversed(node.children))
            continue
        if node.kind == KIND_RFC822 or _is_attachment(node):
            continue
        info = part_data(node)
        if (info.content_type or b"text").lower() == b"text":
            found.append((node, (info.subtype or b"plain").lower()))
    return found


def preview_text(data: MessageBytes, root: Node) -> str:
    leaves = _text_leaves(root)
    for wanted in (b"plain", b"html"):
        for node, subtype in leaves:
            if subtype != wanted:
                continue
            text = leaf_text(data, node, _DECODE_CHARS)
            if text and text.strip():
                return collapse(text)
    return ""


def message_preview(data: MessageBytes) -> str:
    """The preview of a whole stored message (perhaps a read-only mapping of its file),
    parsed here: messages analysed before previews were kept. Never fails on messy mail."""
    return preview_text(data, parse_message(data))
