"""The sans-IO IMAP command receiver: ``feed(bytes)``, then ``next_event()``.

A command is a line plus any literals (RFC 9051 §4.3): each line piece that ends with a
literal marker is followed by that many raw bytes, then by more of the line. The
receiver keeps the pieces and literal values apart, so nothing is re-parsed when a
literal arrives; the grammar runs once, when the command is complete.

Invariants:

- ``next_event`` finishes at most one command: pipelined commands stay buffered, since
  after IDLE or AUTHENTICATE the next line must be read raw (``expect_raw_line``).
- Searching for the end of a line resumes where the last search stopped, and consumed
  bytes are dropped in amortised O(1), so a long line fed in small chunks is linear.
- Every buffer is bounded. The text of one command (all its line pieces) is at most
  ``max_line_length``; a longer line is discarded up to its end and answered with a
  BadCommand ("Line too long"). In-memory literals of one command total at most
  ``4 * spool_threshold``: any literal over ``spool_threshold``, or one that would pass
  that total, is written to a temporary file and becomes ``commands.Literal``. So one
  command holds at most ``max_line_length + 4 * spool_threshold`` bytes in memory.
  A literal over ``max_literal_size``, or one that takes the command's literals past
  ``max_command_literals``, gives ``LiteralTooLarge``. Both may change between commands
  (``limit_literals``): before sign-in the connection allows only a few KiB, so a
  stranger can neither fill memory nor write to disk.
- Spool files of every receiver sharing a ``SpoolBudget`` total at most its limit,
  counted by their announced sizes: a literal that does not fit is refused before any
  byte is written (``SpoolFailed`` with ``no_space``; a synchronizing one before the
  client is asked to send it).
- Only spool files are I/O. Files of a returned command live until
  ``discard_spools``; those of an abandoned command are deleted at once.
- A spool file that cannot be written (a full disk) never ends the connection: the
  rest of that command, literals included, is read and dropped, and the command
  becomes ``SpoolFailed`` instead.
- A spooled literal that is not literal8 records whether it holds a NUL
  (``Literal.contains_nul``), so APPEND can refuse it without reading the file again
  (RFC 9051 §4.3: NUL is allowed only in literal8).
"""

from __future__ import annotations

import enum
import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from roost.imap.wire.commands import BadCommand, Command, Literal
from roost.imap.wire.grammar import parse_command
from roost.imap.wire.tokenizer import LiteralValue, literal_marker, read_tag_prefix

_TAG_SCAN = 1024  # how far into an unfinished line to look for its tag
_TAIL = 40  # bytes of a discarded line kept to spot a literal marker at its end


@dataclass(frozen=True, slots=True)
class NeedData:
    """Feed more bytes."""


@dataclass(frozen=True, slots=True)
class NeedLiteral:
    """A synchronizing literal ``{size}`` ends the line: send "+ Ready", keep feeding."""

    size: int


@dataclass(frozen=True, slots=True)
class RawLine:
    """The line asked for by ``expect_raw_line``, without its CRLF."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LiteralTooLarge:
    """A literal over the current limit (``limit`` bytes). Synchronizing: the command
    is dropped and the client sends nothing more for it (answer ``tag NO [TOOBIG]``).
    Not synchronizing (RFC 7888 §4): the bytes are coming anyway; send BYE and close.
    ``size`` saturates at 10**30 for absurd announcements: say "too large", not it."""

    tag: str
    size: int
    synchronizing: bool
    limit: int


@dataclass(frozen=True, slots=True)
class SpoolFailed:
    """A literal could not be written to its spool file; the command it belonged to
    was read to its end and dropped. ``no_space``: the disk is full (answer
    ``tag NO [LIMIT]``); otherwise another I/O error (``reason`` is its text).
    ``over_budget``: not the disk but the ``SpoolBudget`` is full (``no_space`` too)."""

    tag: str
    reason: str
    no_space: bool
    over_budget: bool = False


class SpoolBudget:
    """Bytes of spooled literals that may be on disk at once, shared by every receiver
    of a process: however many connections upload at once, the spool directory holds at
    most ``limit`` bytes. Sizes are reserved when a literal is announced and released
    when its file is deleted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def reserve(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def release(self, size: int) -> None:
        self.used -= size


class _OverBudget(OSError):
    """The spool budget has no room for a literal (a policy, not the disk)."""


Event = Command | NeedData | NeedLiteral | RawLine | LiteralTooLarge | SpoolFailed

_NEED_DATA = NeedData()


class _State(enum.Enum):
    LINE = enum.auto()  # reading a line piece
    LITERAL = enum.auto()  # reading a literal's bytes
    SKIP_LINE = enum.auto()  # discarding the rest of a rejected command's line
    SKIP_LITERAL = enum.auto()  # discarding a rejected command's non-sync literal


class Receiver:
    def __init__(
        self,
        *,
        max_line_length: int = 256 * 1024,
        max_literal_size: int = 64 * 1024 * 1024,
        max_nesting_depth: int = 32,
        spool_threshold: int = 1024 * 1024,
        spool_dir: Path | None = None,
        spool_budget: SpoolBudget | None = None,
    ) -> None:
        self._max_line_length = max_line_length
        self._max_literal_size = max_literal_size
        self._max_command_literals: int | None = None
        self._spool_budget = spool_budget
        self._max_nesting_depth = max_nesting_depth
        self._spool_threshold = spool_threshold
        self._max_literal_memory = 4 * spool_threshold
        self._spool_dir = spool_dir

        self._buffer = bytearray()
        self._start = 0  # first unconsumed byte of _buffer
        self._scan = 0  # no LF in _buffer[_start:_scan]
        self._state = _State.LINE
        self._raw_line_expected = False

        # The command being read.
        self._pieces: list[bytes] = []
        self._literals: list[LiteralValue] = []
        self._text_size = 0
        self._literal_memory = 0
        self._literal_total = 0  # announced sizes of the command's literals so far
        self._command_spools: list[Path] = []
        self._spool_sizes: dict[Path, int] = {}  # reserved in the budget, by file

        # The literal being read.
        self._literal_size = 0
        self._literal_remaining = 0
        self._literal_binary = False
        self._literal_nul = False
        self._literal_data = bytearray()
        self._spool_fd: int | None = None
        self._literal_dropped = False  # read the literal's bytes without keeping them
        self._spool_error: OSError | None = None  # the command is beyond saving

        # Discarding.
        self._skip_remaining = 0
        self._skip_tail = b""
        self._skip_literals = True  # a raw line has no literals to skip

        self._returned_spools: list[Path] = []

    # ---- public -----------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        return len(self._buffer) - self._start

    @property
    def mid_command(self) -> bool:
        """Whether part of a command (or of a raw line) has arrived but not all of it:
        the connection gives a command a deadline from then on, not only a silence
        time-out."""
        return bool(self._pieces) or self._state is not _State.LINE or self.buffered > 0

    @property
    def command_literal_bytes(self) -> int:
        """The announced sizes of the literals of the command being read."""
        return self._literal_total

    def limit_literals(self, max_size: int, max_per_command: int | None = None) -> None:
        """Set the largest literal, and optionally the most literal bytes one command
        may carry, for the commands read from now on (call between commands)."""
        self._max_literal_size = max_size
        self._max_command_literals = max_per_command

    def feed(self, data: bytes) -> None:
        if self._start and self._start * 2 >= len(self._buffer):
            # Everything before _start is consumed and is at least half the buffer, so
            # moving the rest costs no more than the bytes already consumed.
            del self._buffer[: self._start]
            self._scan -= self._start
            self._start = 0
        self._buffer += data

    def next_event(self) -> Event:
        while True:
            if self._state is _State.LINE:
                event = self._read_line()
                if event is not None:
                    return event
            elif self._state is _State.LITERAL:
                if not self._read_literal():
                    return _NEED_DATA
            elif self._state is _State.SKIP_LITERAL:
                if not self._skip_literal():
                    return _NEED_DATA
            elif not self._skip_line():
                return _NEED_DATA

    def expect_raw_line(self) -> None:
        """Return the next complete line as ``RawLine`` (AUTHENTICATE responses, RFC
        9051 §6.2.2; IDLE's "DONE", RFC 9051 §6.3.13). Call between commands."""
        if self._state is not _State.LINE or self._pieces:
            raise RuntimeError("expect_raw_line() while a command is being read")
        self._raw_line_expected = True

    def clear_buffer(self) -> None:
        """Forget every buffered byte and any partly read command (after STARTTLS,
        RFC 9051 §6.2.1: nothing sent before the handshake may be acted on)."""
        self._buffer.clear()
        self._start = self._scan = 0
        self._abandon_command()
        self._state = _State.LINE
        self._raw_line_expected = False

    def take_buffer(self) -> bytes:
        """Return and forget the unparsed bytes after the last command: when a layer
        (COMPRESS, RFC 4978) starts between commands, they belong to the new layer."""
        pending = bytes(self._buffer[self._start :])
        self.clear_buffer()
        return pending

    def discard_spools(self) -> None:
        """Delete the files of spooled literals in commands already returned."""
        for path in self._returned_spools:
            self._delete_spool(path)
        self._returned_spools.clear()

    def close(self) -> None:
        self.clear_buffer()
        self.discard_spools()

    # ---- lines ------------------------------------------------------------------------

    def _read_line(self) -> Event | None:
        """Handle the next line piece: an event, or None to keep going."""
        buffer = self._buffer
        start = self._start
        end = buffer.find(b"\n", self._scan)
        if end < 0:
            self._scan = len(buffer)
            pending = len(buffer) - start
            if pending and buffer.endswith(b"\r"):
                pending -= 1  # the CR of a CRLF still on its way
            if pending + self._text_size <= self._max_line_length:
                return _NEED_DATA
            head = bytes(buffer[start : start + _TAG_SCAN])
            self._skip_tail = bytes(buffer[max(start, len(buffer) - _TAIL) :])
            self._start = self._scan = len(buffer)
            return self._line_too_long(head)
        stop = end - 1 if end > start and buffer[end - 1] == 0x0D else end
        self._start = self._scan = end + 1
        if stop - start + self._text_size > self._max_line_length:
            self._skip_tail = bytes(buffer[max(start, stop - _TAIL) : stop])
            event = self._line_too_long(bytes(buffer[start : start + _TAG_SCAN]))
            self._end_skipped_line()
            return event
        line = bytes(buffer[start:stop])
        if self._raw_line_expected:
            self._raw_line_expected = False
            return RawLine(line)
        if not line and not self._pieces:
            return None  # an empty line is no command; ignore it as most servers do
        self._pieces.append(line)
        self._text_size += len(line)
        marker = literal_marker(line)
        if marker is None:
            return self._finish_command()
        size, synchronizing, binary = marker
        limit = self._max_literal_size
        per_command = self._max_command_literals
        if size > limit or (per_command is not None and self._literal_total + size > per_command):
            tag = read_tag_prefix(self._pieces[0])
            self._abandon_command()
            if not synchronizing:
                self._skip_remaining = size
                self._state = _State.SKIP_LITERAL
            stated = limit if per_command is None else min(limit, per_command)
            return LiteralTooLarge(tag, size, synchronizing, stated)
        self._literal_total += size
        self._start_literal(size, binary)
        if not synchronizing:
            return None
        if self._spool_error is not None:
            # The command is lost (the spool budget is spent): the client waits for "+",
            # so answer now instead and expect nothing more of it (RFC 9051 §7.5).
            return self._finish_command()
        return NeedLiteral(size)

    def _line_too_long(self, head: bytes) -> BadCommand:
        """Abandon the command and discard the rest of its line (RFC 9051 §7.1.5)."""
        if self._raw_line_expected:
            self._raw_line_expected = False
            self._skip_literals = False
            tag = "*"
        else:
            tag = read_tag_prefix(self._pieces[0] if self._pieces else head)
        self._abandon_command()
        self._state = _State.SKIP_LINE
        return BadCommand(tag, "Line too long")

    def _finish_command(self) -> Command | SpoolFailed:
        if self._spool_error is not None:
            error = self._spool_error
            tag = read_tag_prefix(self._pieces[0])
            self._abandon_command()
            no_space = error.errno in (errno.ENOSPC, errno.EDQUOT)
            over_budget = isinstance(error, _OverBudget)
            return SpoolFailed(tag, error.strerror or str(error), no_space, over_budget)
        pieces, literals = self._pieces, self._literals
        self._returned_spools.extend(self._command_spools)
        self._command_spools = []
        self._reset_command()
        return parse_command(pieces, literals, max_nesting_depth=self._max_nesting_depth)

    def _reset_command(self) -> None:
        self._pieces = []
        self._literals = []
        self._text_size = 0
        self._literal_memory = 0
        self._literal_total = 0
        self._literal_dropped = False
        self._spool_error = None

    def _abandon_command(self) -> None:
        if self._spool_fd is not None:
            os.close(self._spool_fd)
            self._spool_fd = None
        self._literal_data = bytearray()
        for path in self._command_spools:
            self._delete_spool(path)
        self._command_spools = []
        self._reset_command()
        self._state = _State.LINE

    def _delete_spool(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        size = self._spool_sizes.pop(path, 0)
        if self._spool_budget is not None:
            self._spool_budget.release(size)

    # ---- literals ---------------------------------------------------------------------

    def _start_literal(self, size: int, binary: bool) -> None:
        self._literal_size = self._literal_remaining = size
        self._literal_binary = binary
        self._literal_nul = False
        self._state = _State.LITERAL
        if self._spool_error is not None:
            self._literal_dropped = True  # the command is lost already
        elif size <= self._spool_threshold and (
            self._literal_memory + size <= self._max_literal_memory
        ):
            self._literal_memory += size
        elif self._spool_budget is not None and not self._spool_budget.reserve(size):
            self._spool_failed(_OverBudget(errno.ENOSPC, "too much is being uploaded at once"))
        else:
            try:
                fd, name = tempfile.mkstemp(prefix="roost-literal-", dir=self._spool_dir)
            except OSError as error:
                if self._spool_budget is not None:
                    self._spool_budget.release(size)
                self._spool_failed(error)
                return
            self._spool_fd = fd
            path = Path(name)
            self._command_spools.append(path)
            self._spool_sizes[path] = size

    def _spool_failed(self, error: OSError) -> None:
        """Give up on the command: drop its spool file, read the rest of it for nothing."""
        if self._spool_fd is not None:
            os.close(self._spool_fd)
            self._spool_fd = None
            self._delete_spool(self._command_spools.pop())
        self._spool_error = error
        self._literal_dropped = True

    def _read_literal(self) -> bool:
        """Take the literal's bytes that have arrived; True once it is complete."""
        count = min(len(self._buffer) - self._start, self._literal_remaining)
        if count:
            chunk = self._buffer[self._start : self._start + count]
            self._start = self._scan = self._start + count
            self._literal_remaining -= count
            if self._literal_dropped:
                pass
            elif self._spool_fd is None:
                self._literal_data += chunk
            else:
                if not self._literal_binary and not self._literal_nul:
                    self._literal_nul = b"\x00" in chunk
                try:
                    _write_all(self._spool_fd, chunk)
                except OSError as error:
                    self._spool_failed(error)
        if self._literal_remaining:
            return False
        value: LiteralValue
        if self._literal_dropped:
            value = b""  # a stand-in: the command becomes SpoolFailed, never parsed
            self._literal_dropped = False
        elif self._spool_fd is None:
            value = bytes(self._literal_data)
            self._literal_data = bytearray()
        else:
            os.close(self._spool_fd)
            self._spool_fd = None
            path = self._command_spools[-1]
            value = Literal(path, self._literal_size, self._literal_binary, self._literal_nul)
        self._literals.append(value)
        self._state = _State.LINE
        return True

    # ---- discarding -------------------------------------------------------------------

    def _skip_line(self) -> bool:
        """Discard up to the end of the line; True once it has been reached."""
        buffer = self._buffer
        end = buffer.find(b"\n", self._scan)
        if end < 0:
            self._skip_tail = (self._skip_tail + buffer[max(self._start, len(buffer) - _TAIL) :])[
                -_TAIL:
            ]
            self._start = self._scan = len(buffer)
            return False
        tail = self._skip_tail + buffer[max(self._start, end - _TAIL) : end]
        self._skip_tail = bytes(tail[:-1] if tail.endswith(b"\r") else tail)[-_TAIL:]
        self._start = self._scan = end + 1
        self._end_skipped_line()
        return True

    def _end_skipped_line(self) -> None:
        """After a discarded line: if it ended with a non-synchronizing literal, that
        literal and the rest of the command are coming too (RFC 7888), so skip them. A
        synchronizing one will not be sent: the client has its BAD."""
        marker = literal_marker(self._skip_tail) if self._skip_literals else None
        self._skip_tail = b""
        self._skip_literals = True
        if marker is not None and not marker[1]:
            self._skip_remaining = marker[0]
            self._state = _State.SKIP_LITERAL
        else:
            self._state = _State.LINE

    def _skip_literal(self) -> bool:
        count = min(len(self._buffer) - self._start, self._skip_remaining)
        self._start = self._scan = self._start + count
        self._skip_remaining -= count
        if self._skip_remaining:
            return False
        self._state = _State.SKIP_LINE
        return True


def _write_all(fd: int, data: bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
