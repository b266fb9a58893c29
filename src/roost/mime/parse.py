"""Parse a message once into a tree of MIME parts (RFC 2045, RFC 2046, RFC 5322).

The parser never fails and never re-reads bytes: it walks the message line by line,
once, keeping the stack of active multipart boundaries. It follows Dovecot's parser
wherever the RFCs leave room, because that is what clients have been tested against:

- A header ends at the first empty line (CRLF or bare LF); without one, everything up to
  the end (or up to a boundary line) is header and the body is empty.
- A boundary line is ``--`` + boundary at the start of a line, matched as a prefix
  (RFC 2046 §5.1.1 allows trailing white space; Dovecot accepts any trailing bytes);
  ``--`` right after it closes the multipart. Boundaries are searched innermost first,
  so an outer boundary also closes every inner part. Boundaries are truncated to 70
  bytes (RFC 2046 §5.1.1: "1*70"). The line end before a boundary line belongs to the
  boundary (RFC 2046 §5.1.1), not to the part.
- Only the first Content-Type counts; a multipart without a boundary has no parts; the
  parts of multipart/digest default to message/rfc822 (RFC 2046 §5.1.5); a
  message/rfc822 body is parsed as a message whatever its transfer encoding.
- Nesting is bounded (``MAX_DEPTH`` levels of multipart and message/rfc822, and
  ``MAX_PARTS`` parts in all); a part beyond either bound is a leaf.

Header values are read with the RFC 5322 lexer in lexer.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from roost.mime.lexer import Lexer, content_params
from roost.mime.limits import (
    MAX_FIELD_NAME,
    MAX_FIELD_VALUE,
    MAX_HEADER_BYTES,
    MAX_HEADER_LINES,
    MessageBytes,
)

MAX_DEPTH = 100
MAX_PARTS = 10_000


@dataclass(frozen=True, slots=True)
class MimeLimits:
    """How far the parser descends: ``[limits] max_mime_depth`` and ``max_mime_parts``."""

    max_depth: int = MAX_DEPTH
    max_parts: int = MAX_PARTS


DEFAULT_LIMITS = MimeLimits()
MAX_BOUNDARY = 70

KIND_LEAF = 0
KIND_MULTIPART = 1
KIND_RFC822 = 2

# ---- header block ---------------------------------------------------------------------


@dataclass(slots=True)
class Field:
    name: bytes  # as written, trailing white space removed
    value: bytes  # unfolded: line ends of continuation lines removed, CR before LF too


@dataclass(slots=True)
class HeaderBudget:
    """What is left of the message-wide header limits (roost.mime.limits)."""

    lines: int = MAX_HEADER_LINES
    size: int = MAX_HEADER_BYTES


# Bytes of one line copied out of the message at most: a longer line is cut, never
# copied whole (its value could not be kept anyway).
_LINE_WINDOW = MAX_FIELD_NAME + MAX_FIELD_VALUE + 2


def parse_fields(
    data: MessageBytes, start: int, end: int, budget: HeaderBudget | None = None
) -> list[Field]:
    """The fields of the header block ``data[start:end]`` (which includes the blank
    line, if any). A line without a colon is a field with no value (Dovecot keeps it
    too; it never matches a name we look for).

    Bounded (roost.mime.limits): a name keeps ``MAX_FIELD_NAME`` bytes, a value
    ``MAX_FIELD_VALUE``; lines and bytes are charged to ``budget`` (shared by every
    header of one message), and the fields past it are not read."""
    if budget is None:
        budget = HeaderBudget()
    fields: list[Field] = []
    position = start
    current: Field | None = None
    pieces: list[bytes] = []
    room = 0  # value bytes the current field may still keep
    while position < end and budget.lines > 0 and budget.size > 0:
        newline = data.find(b"\n", position, end)
        line_end = end if newline < 0 else newline
        window_end = min(line_end, position + _LINE_WINDOW)
        line = data[position:window_end]
        if window_end == line_end and line.endswith(b"\r") and newline >= 0:
            line = line[:-1]
        position = end if newline < 0 else newline + 1
        if not line and newline >= 0:
            break  # the blank line
        budget.lines -= 1
        if line[:1] in (b" ", b"\t") and current is not None:
            line = line[:room]
            room -= len(line)
            pieces.append(line)
            continue
        if current is not None:
            current.value = _charge(budget, pieces)
        colon = line.find(b":")
        if colon < 0:
            current = Field(line[:MAX_FIELD_NAME].rstrip(b" \t"), b"")
            pieces = []
            room = MAX_FIELD_VALUE
        else:
            value = line[colon + 1 :].lstrip(b" \t")[:MAX_FIELD_VALUE]
            current = Field(line[:colon][:MAX_FIELD_NAME].rstrip(b" \t"), b"")
            pieces = [value]
            room = MAX_FIELD_VALUE - len(value)
        budget.size -= len(current.name)
        fields.append(current)
    if current is not None:
        current.value = _charge(budget, pieces)
    return fields


def _charge(budget: HeaderBudget, pieces: list[bytes]) -> bytes:
    """The value of a field, cut to what the budget has left, and charged to it."""
    value = b"".join(pieces)
    if len(value) > budget.size:
        value = value[: max(budget.size, 0)]
    budget.size -= len(value)
    return value


# ---- the MIME tree --------------------------------------------------------------------


@dataclass(slots=True)
class ContentInfo:
    """What the parser needs of a part's Content-* fields (RFC 2045 §5-§6)."""

    kind: int = KIND_LEAF
    boundary: bytes | None = None
    digest: bool = False
    text: bool = False


@dataclass(slots=True)
class Node:
    """One MIME part: header ``[start, body_start)`` and body ``[body_start, end)``.

    A message/rfc822 part has one child, the encapsulated message, whose header and body
    lie inside this part's body. ``fields`` is the part's own header, parsed.
    """

    start: int
    body_start: int = 0
    end: int = 0
    kind: int = KIND_LEAF
    text: bool = False
    mime: bool = False
    fields: list[Field] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)


def content_info(fields: list[Field]) -> ContentInfo:
    info = ContentInfo()
    for item in fields:
        if item.name.lower() != b"content-type":
            continue
        lexer = Lexer(item.value)
        lexer.skip_lwsp()
        out = bytearray()
        ret = lexer.content_type(out)
        value = bytes(out).lower()
        if value == b"message/rfc822":
            info.kind = KIND_RFC822
        elif value[:4] == b"text" and (len(value) == 4 or value[4:5] == b"/"):
            info.text = True
        elif value.startswith(b"multipart/"):
            info.kind = KIND_MULTIPART
            info.digest = value == b"multipart/digest"
        if ret >= 0 and info.kind == KIND_MULTIPART:
            for key, param in content_params(lexer):
                if key.lower() == b"boundary":
                    info.boundary = param[:MAX_BOUNDARY]
                    break
        break  # only the first Content-Type counts
    return info


@dataclass(slots=True)
class _Hit:
    """A boundary line: which boundary, whether it closes, where the line starts and
    where the next line starts."""

    level: int
    closing: bool
    line_start: int
    next_line: int


def _at(data: MessageBytes, position: int, prefix: bytes) -> bool:
    """``data.startswith(prefix, position)``, which a mapping lacks."""
    return data[position : position + len(prefix)] == prefix


def count_bytes(data: MessageBytes, needle: bytes, start: int, end: int) -> int:
    """``data.count(needle, start, end)``; through a mapping a slice at a time."""
    if isinstance(data, bytes):
        return data.count(needle, start, end)
    total = 0
    step = 1 << 20
    position = start
    while position < end:
        stop = min(end, position + step)
        # an occurrence starting before ``stop`` may end after it
        chunk = data[position : min(end, stop + len(needle) - 1)]
        total += chunk.count(needle)
        position = stop
    return total


class _Parser:
    __slots__ = ("boundaries", "budget", "data", "length", "max_depth", "max_parts", "parts")

    def __init__(self, data: MessageBytes, limits: MimeLimits = DEFAULT_LIMITS) -> None:
        self.max_depth = limits.max_depth
        self.max_parts = limits.max_parts
        self.data = data
        self.length = len(data)
        self.boundaries: list[bytes] = []  # outermost first
        self.parts = 0
        self.budget = HeaderBudget()

    def boundary_at(self, position: int) -> _Hit | None:
        """The boundary line starting at ``position``, if it is one."""
        data, boundaries = self.data, self.boundaries
        if not _at(data, position, b"--"):
            return None
        for level in range(len(boundaries) - 1, -1, -1):  # innermost first
            boundary = boundaries[level]
            if _at(data, position + 2, boundary):
                after = position + 2 + len(boundary)
                newline = data.find(b"\n", after)
                return _Hit(
                    level,
                    _at(data, after, b"--"),
                    position,
                    self.length if newline < 0 else newline + 1,
                )
        return None

    def find_boundary(self, position: int) -> _Hit | None:
        """The first boundary line at or after ``position`` (a line start)."""
        if not self.boundaries:
            return None
        data = self.data
        while True:
            hit = self.boundary_at(position)
            if hit is not None:
                return hit
            newline = data.find(b"\n--", position)
            if newline < 0:
                return None
            position = newline + 1

    def part_end(self, body_start: int, hit: _Hit | None) -> int:
        """Where a part's body ends: at the end of the data, or before the line end that
        precedes the boundary line."""
        if hit is None:
            return self.length
        end = hit.line_start
        if end > body_start and self.data[end - 1] == 0x0A:
            end -= 1
            if end > body_start and self.data[end - 1] == 0x0D:
                end -= 1
        return end

    def next_line_of_interest(self, position: int) -> int:
        """The start of the first line after the one at ``position`` that is blank or,
        inside a multipart, starts with "--"; the end of the data if none. Searched in
        growing windows, so the cost is the distance to it, not the rest of the
        message, and a header of millions of lines is not walked line by line."""
        data, length = self.data, self.length
        needles = (b"\n\n", b"\n\r\n", b"\n--") if self.boundaries else (b"\n\n", b"\n\r\n")
        window = 4096
        start = position
        while start < length:
            stop = min(length, start + window)
            best = -1
            for needle in needles:
                found = data.find(needle, start, stop + len(needle) - 1)
                if found >= 0 and (best < 0 or found < best):
                    best = found
            if best >= 0:
                return best + 1
            start = stop
            window *= 2
        return length

    def header(self, node: Node) -> _Hit | None:
        """Reads the header of ``node``; returns a boundary line met inside it."""
        data, length = self.data, self.length
        position = node.start
        hit: _Hit | None = None
        fields: list[Field] | None = None
        while position < length:
            if self.boundaries:
                hit = self.boundary_at(position)
                if hit is not None:
                    # the line end before a boundary belongs to the boundary
                    position = self.part_end(node.start, hit)
                    break
            first = data[position]
            if first == 0x0A or (first == 0x0D and _at(data, position + 1, b"\n")):
                line_start = position
                position = data.find(b"\n", position) + 1
                # The blank line; but if a boundary line follows at once, the line end
                # belongs to the boundary and the header ends before it (as in Dovecot).
                if self.boundaries and _at(data, position, b"--"):
                    fields = parse_fields(data, node.start, line_start, self.budget)
                    own = content_info(fields).boundary
                    if own is None or not _at(data, position + 2, own):
                        hit = self.boundary_at(position)
                        if hit is not None:
                            position = line_start
                break
            position = self.next_line_of_interest(position)
        node.body_start = position
        if fields is None:
            fields = parse_fields(data, node.start, position, self.budget)
        node.fields = fields
        return hit

    def part(self, node: Node, depth: int, default_rfc822: bool) -> _Hit | None:
        """Parses ``node`` (its header and body); returns the boundary line that ended
        it, or None at the end of the data."""
        self.parts += 1
        hit = self.header(node)
        fields = node.fields
        names = {item.name.lower() for item in fields}
        node.mime = node.mime or b"mime-version" in names or b"content-type" in names
        info = content_info(fields)
        if b"content-type" not in names and default_rfc822:
            info.kind = KIND_RFC822
        node.text = info.text
        node.kind = info.kind
        too_deep = depth >= self.max_depth or self.parts >= self.max_parts
        if hit is not None:
            node.end = node.body_start
            if node.kind == KIND_RFC822 and not too_deep:
                # an empty encapsulated message: still a message (Dovecot, RFC 2046 §5.2.1)
                empty = Node(start=node.body_start, body_start=node.body_start)
                empty.end = node.body_start
                node.children.append(empty)
            return hit
        if node.kind == KIND_RFC822 and not too_deep:
            child = Node(start=node.body_start)
            node.children.append(child)
            hit = self.part(child, depth + 1, False)
            node.end = child.end
            return hit
        if node.kind == KIND_MULTIPART and info.boundary is not None and not too_deep:
            return self.multipart(node, info, depth)
        hit = self.find_boundary(node.body_start)
        node.end = self.part_end(node.body_start, hit)
        return hit

    def multipart(self, node: Node, info: ContentInfo, depth: int) -> _Hit | None:
        assert info.boundary is not None
        self.boundaries.append(info.boundary)
        own = len(self.boundaries) - 1
        hit = self.find_boundary(node.body_start)
        while hit is not None and hit.level == own and not hit.closing:
            if self.parts >= self.max_parts:
                break
            child = Node(start=hit.next_line, mime=True)
            node.children.append(child)
            hit = self.part(child, depth + 1, info.digest)
        del self.boundaries[own:]
        floor = node.body_start
        if hit is not None and hit.level == own:
            # the closing boundary: what follows is the epilogue, up to an outer boundary;
            # the closing line keeps its own line end
            floor = hit.next_line
            hit = self.find_boundary(hit.next_line)
        node.end = self.part_end(floor, hit)
        return hit


def parse_message(data: MessageBytes, limits: MimeLimits = DEFAULT_LIMITS) -> Node:
    """The MIME tree of a whole message, its header fields bounded by the limits of
    roost.mime.limits and its nesting by ``limits``."""
    root = Node(start=0)
    parser = _Parser(data, limits)
    parser.part(root, 0, False)
    return root
