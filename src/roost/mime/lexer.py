"""The RFC 5322 §3.2 lexer that the envelope and content-type code share (atoms, quoted
strings, comments, MIME tokens), and the RFC 2231 parameter list built on it.

A port of Dovecot's rules, so that the answers for malformed headers match. It works
on one header value's bytes (parse.py splits the header block into fields).
"""

from __future__ import annotations

NUL_REPLACEMENT = "\ufffd".encode()

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
