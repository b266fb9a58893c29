"""Sans-IO framing of what a POP3 client sends: ``feed(bytes)``, then ``next_event()``.

Every POP3 client line — a command, or a SASL response during AUTH (RFC 5034 §4) — is
one line ended by CRLF (RFC 1939 §3); a bare LF is accepted too. The receiver only
frames lines; what a line means is for the session to decide, since after AUTH the
next line is a SASL answer, not a command.

Invariants:

- ``next_event`` returns at most one line: pipelined lines stay buffered (RFC 2449
  §6.6), so that STLS can drop whatever was sent before the handshake (RFC 2595 §4,
  ``clear_buffer``).
- Searching for the end of a line resumes where the last search stopped, and consumed
  bytes are dropped in amortised O(1), so a line fed one byte at a time is linear.
- The buffer is bounded: a line longer than ``max_line_length`` octets (CRLF excluded)
  is discarded up to its end as it arrives, and reported once, when its end comes, as
  ``LineTooLong``; the lines after it are read as usual.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NeedData:
    """Feed more bytes."""


@dataclass(frozen=True, slots=True)
class Line:
    """One client line, without its line end."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line over the limit was discarded; ``length`` is how long it was."""

    length: int


Event = Line | LineTooLong | NeedData

_NEED_DATA = NeedData()


class LineReceiver:
    def __init__(self, *, max_line_length: int = 8192) -> None:
        self._max_line_length = max_line_length
        self._buffer = bytearray()
        self._start = 0  # first unconsumed byte
        self._scan = 0  # no LF in _buffer[_start:_scan]
        self._discarded = 0  # > 0 while skipping the rest of a line that is too long
        self._discarded_cr = False  # the last byte skipped was CR

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as a line."""
        return len(self._buffer) - self._start

    @property
    def mid_line(self) -> bool:
        """Whether part of a line has arrived (or is being discarded) but not its end."""
        return self.buffered > 0 or self._discarded > 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def clear_buffer(self) -> int:
        """Drop everything buffered (RFC 2595 §4: after STLS, nothing the client sent
        before the handshake may be executed); return how many bytes were dropped."""
        dropped = self.buffered + self._discarded
        self._buffer.clear()
        self._start = self._scan = self._discarded = 0
        return dropped

    def next_event(self) -> Event:
        end = self._buffer.find(b"\n", max(self._scan, self._start))
        if end < 0:
            pending = len(self._buffer) - self._start
            if self._discarded or pending > self._max_line_length + 1:  # +1: a CR
                self._discarded += pending
                self._discarded_cr = self._buffer.endswith(b"\r")
                self._consume(len(self._buffer))
            else:
                self._scan = len(self._buffer)
            return _NEED_DATA
        line = bytes(self._buffer[self._start : end])
        self._consume(end + 1)
        if self._discarded:
            ends_with_cr = line.endswith(b"\r") or (not line and self._discarded_cr)
            length = self._discarded + len(line) - ends_with_cr
            self._discarded = 0
            return LineTooLong(length)
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self._max_line_length:
            return LineTooLong(len(line))
        return Line(line)

    def _consume(self, end: int) -> None:
        self._start = self._scan = end
        # Compact once the consumed part dominates, so each byte moves O(1) times.
        if self._start > 4096 and self._start * 2 > len(self._buffer):
            del self._buffer[: self._start]
            self._start = self._scan = 0
