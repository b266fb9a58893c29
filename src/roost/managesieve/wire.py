"""ManageSieve on the wire (RFC 5804 §4), sans-IO: bytes in, commands out; responses out.

``Receiver.feed(data)`` then ``next_event()`` returns a ``Command``, ``NeedData``, a
``BadCommand`` (the line is consumed; the session answers NO) or a ``LiteralRefused``
(a literal announced larger than allowed — refused *before* a byte of it is read, as
RFC 5804 §2.6's quota checks and PUTSCRIPT intend). After a refusal the receiver skips
the literal's bytes without keeping them when ``skip_limit`` allows, else the connection
must close (``LiteralRefused.close``).

Strings are quoted (``"..."`` with ``\\"`` and ``\\\\``) or literals ``{n}``/``{n+}``
followed by CRLF and n octets (RFC 5804 §4 literal-c2s; no continuation is ever sent, so
both forms are read the same). A line may be ended by CRLF or a bare LF (sieve-connect
and most clients send CRLF). The receiver never re-reads a line when a literal arrives:
a command's text before each literal is kept as parsed tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_LINE = 8192
_LITERAL = re.compile(rb"\{([0-9]{1,12})(\+?)\}\s*\Z")


@dataclass(frozen=True, slots=True)
class Atom:
    value: str  # upper case


@dataclass(frozen=True, slots=True)
class String:
    value: bytes


@dataclass(frozen=True, slots=True)
class Number:
    value: int


Token = Atom | String | Number


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # upper case
    args: tuple[Token, ...]


@dataclass(frozen=True, slots=True)
class BadCommand:
    reason: str


@dataclass(frozen=True, slots=True)
class LiteralRefused:
    command: str
    size: int
    close: bool  # too large even to skip: answer, then close the connection


@dataclass(frozen=True, slots=True)
class NeedData:
    pass


Event = Command | BadCommand | LiteralRefused | NeedData


class SyntaxProblem(Exception):
    pass


def tokenize(text: bytes) -> list[Token]:
    """The tokens of one stretch of a command line (between literals)."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i : i + 1]
        if c in b" \t":
            i += 1
        elif c == b'"':
            out = bytearray()
            i += 1
            while True:
                if i >= n:
                    raise SyntaxProblem("unterminated quoted string")
                ch = text[i]
                if ch == 0x5C and i + 1 < n:  # backslash escapes " and \
                    out.append(text[i + 1])
                    i += 2
                elif ch == 0x22:
                    i += 1
                    break
                else:
                    out.append(ch)
                    i += 1
            tokens.append(String(bytes(out)))
        else:
            j = i
            while j < n and text[j : j + 1] not in b' \t"':
                j += 1
            word = text[i:j]
            if word.isdigit():
                tokens.append(Number(int(word)))
            elif re.fullmatch(rb"[A-Za-z][A-Za-z0-9_-]*", word):
                tokens.append(Atom(word.decode().upper()))
            else:
                raise SyntaxProblem(f"unexpected {word[:20]!r}")
            i = j
    return tokens


@dataclass
class Receiver:
    """Turns bytes into commands. A literal may be ``max_script_literal`` octets in
    PUTSCRIPT and CHECKSCRIPT, ``max_literal`` elsewhere (names, SASL responses)."""

    max_literal: int = 64 * 1024
    max_script_literal: int = 64 * 1024
    skip_limit: int = 1024 * 1024  # a refused literal up to this is skipped, not closed
    _buffer: bytearray = field(default_factory=bytearray)
    _tokens: list[Token] = field(default_factory=list)
    _literal_left: int = 0
    _literal: bytearray | None = None  # None while skipping a refused literal
    _in_literal: bool = False
    _line_length: int = 0
    _discard_line: bool = False  # skip to the end of the line (after a refusal)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def _limit(self, command: str) -> int:
        if command in ("PUTSCRIPT", "CHECKSCRIPT"):
            return self.max_script_literal
        return self.max_literal

    def next_event(self) -> Event:
        while True:
            if self._in_literal:
                take = min(self._literal_left, len(self._buffer))
                if self._literal is not None:
                    self._literal += self._buffer[:take]
                del self._buffer[:take]
                self._literal_left -= take
                if self._literal_left:
                    return NeedData()
                self._in_literal = False
                if self._literal is None:  # a refused literal, now skipped
                    self._reset()
                    self._discard_line = True
                    continue
                self._tokens.append(String(bytes(self._literal)))
                self._literal = None
                continue
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) + self._line_length > MAX_LINE:
                    self._buffer.clear()
                    self._reset()
                    self._discard_line = True
                    return BadCommand("line too long")
                return NeedData()
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            if self._discard_line:
                # The rest of a command whose literal was refused, or of a too-long line.
                self._discard_line = False
                continue
            self._line_length += len(line)
            if self._line_length > MAX_LINE:
                self._reset()
                return BadCommand("line too long")
            match = _LITERAL.search(line)
            try:
                tokens = tokenize(line if match is None else line[: match.start()])
            except SyntaxProblem as problem:
                self._reset()
                return BadCommand(str(problem))
            self._tokens.extend(tokens)
            first = self._tokens[0] if self._tokens else None
            # A line that starts with a string is a SASL response (RFC 5804 §2.1): name "".
            command = first.value if isinstance(first, Atom) else ""
            if match is None:
                if not self._tokens:
                    self._reset()
                    continue  # an empty line
                args = tuple(self._tokens[1:] if command else self._tokens)
                self._reset()
                return Command(command, args)
            size = int(match.group(1))
            if size > self._limit(command):
                close = size > self.skip_limit
                self._reset()
                if not close:
                    self._in_literal = True
                    self._literal_left = size
                    self._literal = None
                return LiteralRefused(command, size, close)
            self._in_literal = True
            self._literal_left = size
            self._literal = bytearray()

    def _reset(self) -> None:
        self._tokens = []
        self._line_length = 0


def quoted(value: str | bytes) -> bytes:
    """A string as it goes to the client: quoted when it can be, else a literal."""
    data = value.encode() if isinstance(value, str) else value
    if len(data) < 1024 and not re.search(rb'[\r\n\x00"\\]', data):
        return b'"' + data + b'"'
    return b"{%d}\r\n" % len(data) + data


def response(kind: str, code: str | None = None, text: str | None = None) -> bytes:
    """``OK``/``NO``/``BYE`` [(code)] [text] CRLF (RFC 5804 §4 response-oknobye)."""
    out = kind.encode()
    if code:
        out += b" (" + code.encode() + b")"
    if text:
        out += b" " + quoted(text)
    return out + b"\r\n"
