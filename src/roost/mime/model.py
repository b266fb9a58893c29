"""The message model computed once at delivery and read by every FETCH (ARCHITECTURE.md,
decision 1): ENVELOPE, BODY and BODYSTRUCTURE exactly as they go on the wire, and the
byte range of every MIME part for section and BINARY fetches.

``MessageModel.from_message(data)`` parses; ``to_blob()`` / ``from_blob()`` store and
restore it without parsing again. The blob is a fixed header, the three wire values and a
flat pre-order table of parts, so ``from_blob`` only reads the header: the wire values
are slices, and the part table is decoded the first time a section is asked for. A
FETCH of ENVELOPE and BODYSTRUCTURE for 100,000 messages costs two slices each.

Blob layout (little-endian)::

    b"RMM1" | u32 envelope | u32 bodystructure | u32 body | u32 parts
    | envelope | bodystructure | body
    | parts x (u64 start, u64 body_start, u64 end, u8 kind, u32 children, u8 n, n bytes
                encoding)
"""

from __future__ import annotations

import struct

from roost.mime import bodystructure as structure
from roost.mime.decode import decode_transfer
from roost.mime.envelope import Envelope, collect
from roost.mime.envelope import render as render_envelope
from roost.mime.limits import MessageBytes
from roost.mime.parse import DEFAULT_LIMITS, KIND_RFC822, MimeLimits, Node, parse_message
from roost.mime.sections import KIND_MULTIPART, PartRange, resolve, section_range

__all__ = ["MessageModel", "Part", "decode_transfer", "wire_values"]

Part = PartRange

_MAGIC = b"RMM1"
_HEADER = struct.Struct("<4sIIII")
_PART = struct.Struct("<QQQBIB")


def _encoding(node: Node) -> str:
    data = structure.part_data(node)
    if data.encoding is None:
        return "7bit"
    return data.encoding.decode("latin-1").lower()


def _flatten(node: Node, out: list[tuple[int, int, int, int, int, bytes]]) -> None:
    encoding = _encoding(node).encode("latin-1")[:255]
    out.append((node.start, node.body_start, node.end, node.kind, len(node.children), encoding))
    for child in node.children:
        _flatten(child, out)


def wire_values(blob: bytes) -> tuple[bytes, bytes, bytes]:
    """ENVELOPE, BODYSTRUCTURE and BODY of a model blob, read straight from its header:
    a FETCH of them for a whole mailbox takes 100,000 of these, and a MessageModel
    each would cost more than the slices."""
    magic, envelope_size, structure_size, body_size, _count = _HEADER.unpack_from(blob)
    if magic != _MAGIC:
        raise ValueError("not a message model blob")
    envelope_end = _HEADER.size + envelope_size
    structure_end = envelope_end + structure_size
    return (
        blob[_HEADER.size : envelope_end],
        blob[envelope_end:structure_end],
        blob[structure_end : structure_end + body_size],
    )


class MessageModel:
    """ENVELOPE, BODYSTRUCTURE, BODY and the part ranges of one stored message."""

    __slots__ = ("_blob", "_body_end", "_envelope_end", "_parts_start", "_root", "_structure_end")

    def __init__(self, blob: bytes) -> None:
        magic, envelope_size, structure_size, body_size, _count = _HEADER.unpack_from(blob)
        if magic != _MAGIC:
            raise ValueError("not a message model blob")
        self._blob = blob
        self._envelope_end = _HEADER.size + envelope_size
        self._structure_end = self._envelope_end + structure_size
        self._body_end = self._structure_end + body_size
        self._parts_start = self._body_end
        self._root: PartRange | None = None

    # ---- construction -----------------------------------------------------------------

    @classmethod
    def from_message(
        cls, data: MessageBytes | memoryview, limits: MimeLimits = DEFAULT_LIMITS
    ) -> MessageModel:
        """Parses ``data`` (the message exactly as stored, or a mapping of its file)."""
        message = bytes(data) if isinstance(data, memoryview) else data
        root = parse_message(message, limits)
        return cls(cls._pack(message, root))

    @staticmethod
    def _pack(message: MessageBytes, root: Node, parsed: Envelope | None = None) -> bytes:
        """``parsed``: the top header's envelope fields, when the caller has them."""
        envelope = render_envelope(collect(root.fields) if parsed is None else parsed)
        bodystructure = structure.bodystructure(message, root)
        body = structure.body(message, root)
        parts: list[tuple[int, int, int, int, int, bytes]] = []
        _flatten(root, parts)
        chunks = [_HEADER.pack(_MAGIC, len(envelope), len(bodystructure), len(body), len(parts))]
        chunks += [envelope, bodystructure, body]
        for start, body_start, end, kind, children, encoding in parts:
            chunks.append(_PART.pack(start, body_start, end, kind, children, len(encoding)))
            chunks.append(encoding)
        return b"".join(chunks)

    @classmethod
    def from_blob(cls, blob: bytes) -> MessageModel:
        return cls(blob)

    def to_blob(self) -> bytes:
        return self._blob

    # ---- wire values --------------------------------------------------------------------

    @property
    def envelope(self) -> bytes:
        return self._blob[_HEADER.size : self._envelope_end]

    @property
    def bodystructure(self) -> bytes:
        return self._blob[self._envelope_end : self._structure_end]

    @property
    def body(self) -> bytes:
        return self._blob[self._structure_end : self._body_end]

    # ---- sections -----------------------------------------------------------------------

    @property
    def root(self) -> PartRange:
        if self._root is None:
            self._root = self._unpack_parts()
        return self._root

    def _unpack_parts(self) -> PartRange:
        blob = self._blob
        position = self._parts_start
        count = _HEADER.unpack_from(blob)[4]
        nodes: list[tuple[PartRange, int]] = []
        for _ in range(count):
            start, body_start, end, kind, children, size = _PART.unpack_from(blob, position)
            position += _PART.size
            encoding = blob[position : position + size].decode("latin-1")
            position += size
            nodes.append((PartRange(start, body_start, end, kind, encoding), children))
        # Rebuild the tree from the pre-order table, iteratively (no recursion limit).
        root, expected = nodes[0]
        stack: list[tuple[PartRange, int]] = [(root, expected)]
        for node, children in nodes[1:]:
            while stack and len(stack[-1][0].children) >= stack[-1][1]:
                stack.pop()
            stack[-1][0].children.append(node)
            stack.append((node, children))
        return root

    def section(self, part: tuple[int, ...], text: str | None) -> tuple[int, int] | None:
        """The byte range of ``BODY[part.text]`` in the stored message (RFC 9051 §6.4.5;
        see roost.mime.sections), or None when that section does not exist."""
        return section_range(self.root, part, text)

    def part_encoding(self, part: tuple[int, ...]) -> str | None:
        """The Content-Transfer-Encoding of a leaf part, lower-case ("7bit" when absent),
        for BINARY (RFC 3516); None for a part that does not exist or is a multipart or
        message/rfc822 (there is nothing to decode: the caller sends it as it is)."""
        node = resolve(self.root, part) if part else self.root
        if node is None or node.kind in (KIND_MULTIPART, KIND_RFC822):
            return None
        return node.encoding
