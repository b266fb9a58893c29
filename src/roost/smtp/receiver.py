"""Sans-IO framing of what an SMTP/LMTP client sends: ``feed(bytes)``, ``next_event()``.

Three modes, switched by the connection (never by the receiver itself):

- lines: command lines (and SASL answers), ended by CRLF or a bare LF, which is
  reported so the policy can reject it. A line over ``max_line_length`` octets is
  discarded as it arrives and reported once, as ``LineTooLong``, when its end comes
  (RFC 5321 §4.5.3.1.4); the lines after it are read as usual.
- DATA (``expect_data``): the content up to CRLF "." CRLF, dot-unstuffed (RFC 5321
  §4.5.2). Only a "." line that begins after a CRLF ends the data, so a bare LF never
  forms an end-of-data sequence (the "SMTP smuggling" ambiguity). A bare LF is turned
  into CRLF, or fails the message, per ``reject_bare_lf``.
- BDAT (``expect_chunk``): exactly ``size`` octets, passed through (RFC 3030 §2).

Content is returned as ``Content`` chunks made of what has been fed, less at most two
held-back octets (a CR, or a "." at a line start) needed to decide the next step; so
memory stays bounded by what the host feeds at once. A message that breaks a limit
(size, line length, bare LF) is swallowed to its end and reported in ``ContentEnd``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Failure(Enum):
    TOO_BIG = "too big"
    LINE_TOO_LONG = "line too long"
    BARE_LF = "bare LF"


@dataclass(frozen=True, slots=True)
class NeedData:
    """Feed more bytes."""


@dataclass(frozen=True, slots=True)
class Line:
    data: bytes  # without its line end
    bare_lf: bool = False  # ended by LF alone


@dataclass(frozen=True, slots=True)
class LineTooLong:
    length: int


@dataclass(frozen=True, slots=True)
class Content:
    data: bytes


@dataclass(frozen=True, slots=True)
class ContentEnd:
    """The end of DATA or of one BDAT chunk; ``size`` counts content octets delivered
    or swallowed in this DATA/chunk."""

    size: int
    failure: Failure | None


Event = NeedData | Line | LineTooLong | Content | ContentEnd

_NEED_DATA = NeedData()


class _Mode(Enum):
    LINES = 1
    DATA = 2
    CHUNK = 3


class Receiver:
    def __init__(self, *, max_line_length: int) -> None:
        self._max_line_length = max_line_length
        self._buffer = bytearray()
        self._start = 0  # first unconsumed byte
        self._scan = 0  # no LF in _buffer[_start:_scan]
        self._discarded = 0  # > 0 while skipping the rest of a line that is too long
        self._mode = _Mode.LINES
        # DATA/chunk state
        self._budget: int | None = None  # content octets still allowed
        self._size = 0
        self._failure: Failure | None = None
        self._max_data_line: int | None = None
        self._reject_bare_lf = False
        self._at_line_start = True
        self._after_crlf = True
        self._line_length = 0
        self._remaining = 0  # of a BDAT chunk

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def clear_buffer(self) -> int:
        """Drop all buffered input (RFC 3207 §4.2: nothing sent before the TLS
        handshake may be acted on); return how many octets were dropped."""
        dropped = len(self._buffer) - self._start
        self._buffer.clear()
        self._start = self._scan = self._discarded = 0
        return dropped

    def expect_data(
        self, *, budget: int | None, max_line_length: int | None, reject_bare_lf: bool
    ) -> None:
        """Read dot-stuffed DATA content next; ``max_line_length`` counts CRLF."""
        self._start_content(_Mode.DATA, budget)
        self._max_data_line = max_line_length
        self._reject_bare_lf = reject_bare_lf
        self._at_line_start = self._after_crlf = True
        self._line_length = 0

    def expect_chunk(self, size: int, *, budget: int | None, discard: bool = False) -> None:
        """Read a BDAT chunk of ``size`` octets next; ``discard`` swallows it."""
        self._start_content(_Mode.CHUNK, budget)
        self._remaining = size
        if discard:
            self._failure = Failure.TOO_BIG  # any value: the connection knows why

    def _start_content(self, mode: _Mode, budget: int | None) -> None:
        self._mode = mode
        self._budget = budget
        self._size = 0
        self._failure = None

    def next_event(self) -> Event:
        match self._mode:
            case _Mode.LINES:
                return self._next_line()
            case _Mode.DATA:
                return self._next_data()
            case _Mode.CHUNK:
                return self._next_chunk()

    def _next_line(self) -> Event:
        end = self._buffer.find(b"\n", max(self._scan, self._start))
        if end < 0:
            pending = len(self._buffer) - self._start
            if self._discarded or pending > self._max_line_length + 1:  # +1: a CR
                self._discarded += pending
                self._consume(len(self._buffer))
            else:
                self._scan = len(self._buffer)
            return _NEED_DATA
        line = bytes(self._buffer[self._start : end])
        self._consume(end + 1)
        crlf = line.endswith(b"\r")
        if crlf:
            line = line[:-1]
        if self._discarded:
            length = self._discarded + len(line)
            self._discarded = 0
            return LineTooLong(length)
        if len(line) > self._max_line_length:
            return LineTooLong(len(line))
        return Line(line, bare_lf=not crlf)

    def _next_data(self) -> Event:
        buffer = self._buffer
        pieces: list[bytes] = []
        position, length = self._start, len(buffer)
        while position < length:
            if self._at_line_start:
                if buffer[position] == 0x2E:  # "."
                    head = bytes(buffer[position : position + 3])
                    if head == b".\r\n" and self._after_crlf:
                        if pieces:  # return the content first, the end next time
                            break
                        self._consume(position + 3)
                        return self._end_content()
                    if len(head) < 3 and b".\r\n".startswith(head):
                        break  # cannot tell yet
                    position += 1  # RFC 5321 §4.5.2: drop the stuffed dot
                    self._line_length += 1
                self._at_line_start = False
            newline = buffer.find(b"\n", position)
            if newline < 0:
                end = length - 1 if buffer[-1] == 0x0D else length  # hold back a CR
                self._line_length += end - position
                self._take(pieces, bytes(buffer[position:end]))
                position = end
                break
            crlf = newline > position and buffer[newline - 1] == 0x0D
            if crlf:
                self._line_length += newline + 1 - position
                piece = bytes(buffer[position : newline + 1])
            else:
                self._line_length += newline + 1 - position
                if self._reject_bare_lf:
                    self._fail(Failure.BARE_LF)
                piece = bytes(buffer[position:newline]) + b"\r\n"
            self._take(pieces, piece)
            position = newline + 1
            self._at_line_start, self._after_crlf = True, crlf
            self._line_length = 0
        self._consume(position)
        return Content(b"".join(pieces)) if pieces else _NEED_DATA

    def _take(self, pieces: list[bytes], piece: bytes) -> None:
        if self._max_data_line is not None and self._line_length > self._max_data_line:
            self._fail(Failure.LINE_TOO_LONG)
        self._size += len(piece)
        if self._budget is not None and self._size > self._budget:
            self._fail(Failure.TOO_BIG)
        if self._failure is None and piece:
            pieces.append(piece)

    def _fail(self, failure: Failure) -> None:
        if self._failure is None:
            self._failure = failure

    def _next_chunk(self) -> Event:
        while True:
            if self._remaining == 0:
                return self._end_content()
            available = min(len(self._buffer) - self._start, self._remaining)
            if available == 0:
                return _NEED_DATA
            piece = bytes(self._buffer[self._start : self._start + available])
            self._consume(self._start + available)
            self._remaining -= available
            pieces: list[bytes] = []
            self._take(pieces, piece)
            if pieces:
                return Content(piece)

    def _end_content(self) -> ContentEnd:
        self._mode = _Mode.LINES
        return ContentEnd(self._size, self._failure)

    def _consume(self, end: int) -> None:
        self._start = self._scan = end
        # Compact once the consumed part dominates, so each byte moves O(1) times.
        if self._start > 4096 and self._start * 2 > len(self._buffer):
            del self._buffer[: self._start]
            self._start = self._scan = 0
