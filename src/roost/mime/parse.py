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

The module also holds the RFC 5322 §3.2 lexer that the envelope and content-type code
share (atoms, quoted strings, comments, MIME tokens), a port of Dovecot's rules so that
the answers for malformed headers match.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_DEPTH = 100
MAX_PARTS = 10_000
MAX_BOUNDARY = 70

KIND_LEAF = 0
KIND_MULTIPART = 1
KIND_RFC822 = 2

NUL_REPLACEMENT = "\ufffd".encode()

# ---- RFC 5322 lexer -------------------------------------------------------------------

# atext (RFC 5322 §3.2.3) plus 8-bit bytes; MIME token chars (RFC 2045 §5.1) are the
# atext chars that are not tspecials ("/", "=", "?").
_ATEXT = bytearray(256)
for _c in b"!#$%&'*+-/=?^_`{|}~":
    _ATEXT[_c] = 1
for _c in range(256):
    if bytes([_c]).isalnum() or _c >= 0x80:
        _ATEXT[_c] = 1
_TOKEN = bytearray(_ATEXT)
for _c in b"/=?":
    _TOKEN[_c] = 0
ATEXT = bytes(_ATEXT)
TOKEN = bytes(_TOKEN)


class Lexer:
    """A cursor over one header value. Methods return 1 when more input follows, 0 at
    the end and -1 on a syntax error, like the Dovecot functions they mirror, so that
    recovery from bad input takes the same path."""

    __slots__ = ("comment", "data", "end", "keep_comment", "pos")

    def __init__(self, data: bytes, *, keep_comment: bool = False) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.keep_comment = keep_comment
        self.comment = bytearray()

    def peek(self) -> int:
        """The current byte, or 0 at the end (the C code reads the terminating NUL)."""
        return self.data[self.pos] if self.pos < self.end else 0

    def skip_comment(self) -> int:
        data, end = self.data, self.end
        level = 1
        if self.keep_comment:
            self.comment.clear()
        self.pos += 1
        start = self.pos
        out = self.comment
        while self.pos < end:
            char = data[self.pos]
            if char == 0 and self.keep_comment:
                out += data[start : self.pos] + NUL_REPLACEMENT
                start = self.pos + 1
            elif char == 0x28:
                level += 1
            elif char == 0x29:
                level -= 1
                if level == 0:
                    if self.keep_comment:
                        out += data[start : self.pos]
                    self.pos += 1
                    return 1 if self.pos < end else 0
            elif char == 0x0A and self.keep_comment:
                chunk = data[start : self.pos]
                out += chunk[:-1] if chunk.endswith(b"\r") else chunk
                start = self.pos + 1
            elif char == 0x5C:
                self.pos += 1
                if self.pos >= end:
                    return -1
                if data[self.pos] in (0x0D, 0x0A, 0):
                    self.pos -= 1
                else:
                    if self.keep_comment:
                        out += data[start : self.pos - 1]
                    start = self.pos
            self.pos += 1
        return -1

    def skip_lwsp(self) -> int:
        data, end = self.data, self.end
        while self.pos < end:
            char = data[self.pos]
            if char in (0x20, 0x09, 0x0D, 0x0A):
                self.pos += 1
                continue
            if char != 0x28:
                break
            if self.skip_comment() < 0:
                return -1
        return 1 if self.pos < end else 0

    def _run(self, table: bytes, extra: int = -1) -> bytes:
        data, end, start = self.data, self.end, self.pos
        position = start
        while position < end and (table[data[position]] or data[position] == extra):
            position += 1
        self.pos = position
        return data[start:position]

    def atom(self, out: bytearray) -> int:
        if self.pos >= self.end or not ATEXT[self.data[self.pos]]:
            return -1
        out += self._run(ATEXT)
        return self.skip_lwsp() if self.pos < self.end else 0

    def dot_atom(self, out: bytearray) -> int:
        if self.pos >= self.end or not ATEXT[self.data[self.pos]]:
            return -1
        while True:
            chunk = self._run(ATEXT)
            if self.pos >= self.end:
                out += chunk
                return 0
            if not chunk:
                return -1
            out += chunk
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            if self.data[self.pos] != 0x2E:
                return 1
            self.pos += 1
            out += b"."
            if self.skip_lwsp() <= 0:
                return -1

    def mime_token(self, out: bytearray) -> int:
        out += self._run(TOKEN, 0x2E)
        return self.skip_lwsp() if self.pos < self.end else 0

    def quoted_string(self, out: bytearray) -> int:
        data, end = self.data, self.end
        self.pos += 1
        start = self.pos
        while self.pos < end:
            char = data[self.pos]
            if char == 0:
                out += data[start : self.pos] + NUL_REPLACEMENT
                start = self.pos + 1
            elif char == 0x22:
                out += data[start : self.pos]
                self.pos += 1
                return self.skip_lwsp()
            elif char == 0x0A:
                chunk = data[start : self.pos]
                out += chunk[:-1] if chunk.endswith(b"\r") else chunk
                start = self.pos + 1
            elif char == 0x5C:
                self.pos += 1
                if self.pos >= end:
                    return -1
                if data[self.pos] in (0x0D, 0x0A, 0):
                    self.pos -= 1
                else:
                    out += data[start : self.pos - 1]
                    start = self.pos
            self.pos += 1
        return -1

    def _atom_or_dot(self, out: bytearray) -> int:
        out += self._run(ATEXT, 0x2E)
        return self.skip_lwsp() if self.pos < self.end else 0

    def phrase(self, out: bytearray) -> int:
        if self.pos >= self.end:
            return 0
        if self.data[self.pos] == 0x2E:
            return -1
        while True:
            ret = self.quoted_string(out) if self.peek() == 34 else self._atom_or_dot(out)
            if ret <= 0:
                return ret
            char = self.peek()
            if not ATEXT[char] and char not in (0x22, 0x2E):
                break
            out += b" "
        return self.skip_lwsp()

    def domain_literal(self, out: bytearray) -> int:
        data, end = self.data, self.end
        start = self.pos
        self.pos += 1
        while self.pos < end:
            char = data[self.pos]
            if char == 0:
                out += data[start : self.pos] + NUL_REPLACEMENT
                start = self.pos + 1
            elif char == 0x5B:
                return -1
            elif char == 0x5D:
                out += data[start : self.pos + 1]
                self.pos += 1
                return self.skip_lwsp()
            elif char == 0x0A:
                chunk = data[start : self.pos]
                out += chunk[:-1] if chunk.endswith(b"\r") else chunk
                start = self.pos + 1
            elif char == 0x5C:
                self.pos += 1
                if self.pos >= end:
                    return -1
                if data[self.pos] in (0x0D, 0x0A, 0):
                    out += data[start : self.pos]
                    start = self.pos
                    self.pos -= 1
            self.pos += 1
        return -1

    def domain(self, out: bytearray) -> int:
        self.pos += 1  # "@"
        if self.skip_lwsp() <= 0:
            return -1
        if self.data[self.pos] == 0x5B:
            return self.domain_literal(out)
        return self.dot_atom(out)

    def content_type(self, out: bytearray) -> int:
        """``type "/" subtype`` (RFC 2045 §5.1) into ``out``; on failure ``out`` keeps
        what Dovecot keeps (the type alone when the value ends after it)."""
        if self.skip_lwsp() <= 0:
            return -1
        mark = len(out)
        if self.mime_token(out) <= 0 or len(out) == mark:
            return -1
        if self.peek() != 0x2F:
            del out[mark:]
            return -1
        self.pos += 1
        if self.skip_lwsp() <= 0:
            del out[mark:]
            return -1
        out += b"/"
        sub = len(out)
        ret = self.mime_token(out)
        if ret < 0 or len(out) == sub or (self.pos < self.end and self.data[self.pos] != 0x3B):
            del out[mark:]
            return -1
        return ret

    def content_param(self) -> tuple[int, bytes, bytes]:
        """``";" attribute "=" value`` (RFC 2045 §5.1): (status, key, value)."""
        if self.pos >= self.end:
            return 0, b"", b""
        if self.data[self.pos] != 0x3B:
            return -1, b"", b""
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1, b"", b""
        key = bytearray()
        if self.mime_token(key) <= 0:
            return -1, b"", b""
        if self.peek() != 0x3D:
            return -1, b"", b""
        self.pos += 1
        value = bytearray()
        ret = self.skip_lwsp()
        if ret <= 0:
            pass  # no value
        elif self.data[self.pos] == 0x22:
            ret = self.quoted_string(value)
        elif self.data[self.pos] == 0x3D:
            # broken input seen in the wild: name==?utf-8?b?...?=
            while self.pos < self.end and self.data[self.pos] not in b"; \t\r\n":
                value.append(self.data[self.pos])
                self.pos += 1
        else:
            ret = self.mime_token(value)
        return (-1 if ret < 0 else 1), bytes(key), bytes(value)


def content_params(lexer: Lexer) -> list[tuple[bytes, bytes]]:
    """Parameters after a Content-Type or Content-Disposition value, RFC 2231
    continuations merged (``name*0``, ``name*1*`` → ``name`` / ``name*``) but not
    decoded, as IMAP BODYSTRUCTURE carries them (RFC 2231 §3-§4). A broken parameter is
    skipped up to the next ";"."""
    result: list[tuple[bytes, bytes]] = []
    pieces: list[tuple[bytes, int, bool, bytes, int]] = []  # key, index, extended, value
    index = 0
    while True:
        ret, key, value = lexer.content_param()
        if ret == 0:
            break
        if ret < 0:
            if lexer.pos >= lexer.end:
                break
            lexer.pos += 1
            continue
        star = key.find(b"*")
        if star < 0:
            result.append((key, value))
            continue
        rest = key[star:]  # from the "*"
        if len(rest) > 1:
            digits = len(rest) - 1 - len(rest[1:].lstrip(b"0123456789"))
            index = int(rest[1 : 1 + digits]) if digits else 0
            rest = rest[1 + digits :]
        # "name*" is extended; its index is whatever the last one was (as in Dovecot)
        extended = rest.startswith(b"*")
        if extended:
            rest = rest[1:]
        if rest:
            result.append((key, value))
        else:
            pieces.append((key[:star], index, extended, value, len(pieces)))
    if not pieces:
        return result
    pieces.sort(key=lambda p: (p[0].lower(), p[1], p[4]))
    position = 0
    while position < len(pieces):
        name = pieces[position][0].lower()
        group_end = position
        while group_end < len(pieces) and pieces[group_end][0].lower() == name:
            group_end += 1
        group = pieces[position:group_end]
        in_order = all(piece[1] == number for number, piece in enumerate(group))
        have_extended = any(piece[2] for piece in group)
        if not in_order:
            for piece_key, piece_index, extended, value, _ in group:
                suffix = b"*%d*" if extended else b"*%d"
                result.append((piece_key + suffix % piece_index, value))
        else:
            out = bytearray()
            if not group[0][2] and have_extended:
                out += b"''"
            for _, _, extended, value, _ in group:
                out += _escape_2231(value) if (not extended and have_extended) else value
            key = group[0][0] + (b"*" if have_extended else b"")
            result.append((key, bytes(out)))
        position = group_end
    return result


def _escape_2231(value: bytes) -> bytes:
    return value.replace(b"%", b"%25")


# ---- header block ---------------------------------------------------------------------


@dataclass(slots=True)
class Field:
    name: bytes  # as written, trailing white space removed
    value: bytes  # unfolded: line ends of continuation lines removed, CR before LF too


def parse_fields(data: bytes, start: int, end: int) -> list[Field]:
    """The fields of the header block ``data[start:end]`` (which includes the blank
    line, if any). A line without a colon is a field with no value (Dovecot keeps it
    too; it never matches a name we look for)."""
    fields: list[Field] = []
    position = start
    current: Field | None = None
    pieces: list[bytes] = []
    while position < end:
        newline = data.find(b"\n", position, end)
        line_end = end if newline < 0 else newline
        line = data[position:line_end]
        if line.endswith(b"\r") and newline >= 0:
            line = line[:-1]
        position = end if newline < 0 else newline + 1
        if not line and newline >= 0:
            break  # the blank line
        if line[:1] in (b" ", b"\t") and current is not None:
            pieces.append(line)
            continue
        if current is not None:
            current.value = b"".join(pieces)
        colon = line.find(b":")
        if colon < 0:
            current = Field(line.rstrip(b" \t"), b"")
            pieces = []
        else:
            value = line[colon + 1 :].lstrip(b" \t")
            current = Field(line[:colon].rstrip(b" \t"), b"")
            pieces = [value]
        fields.append(current)
    if current is not None:
        current.value = b"".join(pieces)
    return fields


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


class _Parser:
    __slots__ = ("boundaries", "data", "length", "parts")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)
        self.boundaries: list[bytes] = []  # outermost first
        self.parts = 0

    def boundary_at(self, position: int) -> _Hit | None:
        """The boundary line starting at ``position``, if it is one."""
        data, boundaries = self.data, self.boundaries
        if not data.startswith(b"--", position):
            return None
        for level in range(len(boundaries) - 1, -1, -1):  # innermost first
            boundary = boundaries[level]
            if data.startswith(boundary, position + 2):
                after = position + 2 + len(boundary)
                newline = data.find(b"\n", after)
                return _Hit(
                    level,
                    data.startswith(b"--", after),
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

    def header(self, node: Node) -> _Hit | None:
        """Reads the header of ``node``; returns a boundary line met inside it."""
        data, length = self.data, self.length
        position = node.start
        hit: _Hit | None = None
        while position < length:
            if self.boundaries:
                hit = self.boundary_at(position)
                if hit is not None:
                    # the line end before a boundary belongs to the boundary
                    position = self.part_end(node.start, hit)
                    break
            newline = data.find(b"\n", position)
            if newline < 0:
                position = length
                break
            line_start = position
            position = newline + 1
            if newline == line_start or (newline == line_start + 1 and data[line_start] == 13):
                # The blank line; but if a boundary line follows at once, the line end
                # belongs to the boundary and the header ends before it (as in Dovecot).
                if self.boundaries and data.startswith(b"--", position):
                    own = content_info(parse_fields(data, node.start, line_start)).boundary
                    if own is None or not data.startswith(own, position + 2):
                        hit = self.boundary_at(position)
                        if hit is not None:
                            position = line_start
                break
        node.body_start = position
        node.fields = parse_fields(data, node.start, position)
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
        too_deep = depth >= MAX_DEPTH or self.parts >= MAX_PARTS
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
            if self.parts >= MAX_PARTS:
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


def parse_message(data: bytes) -> Node:
    """The MIME tree of a whole message."""
    root = Node(start=0)
    parser = _Parser(data)
    parser.part(root, 0, False)
    return root
