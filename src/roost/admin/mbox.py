"""Reading and writing mbox files (mboxo and mboxrd), with flags in Status headers.

A message starts at a ``From_`` line — "From " at the start of a line followed by a
sender and a ctime(3) date — and ends, after one blank separator line, where the next
begins. Body lines that would look like one were quoted by the writer with ">":

* mboxo quotes only "From " (so ">From " in a message is ambiguous once quoted);
* mboxrd quotes any run of ">" followed by "From " with one more ">", so unquoting
  (drop one ">") restores every line exactly.

The two differ only on lines starting ">>From " (mboxo leaves them alone, mboxrd strips
one ">"), so ``detect_style`` calls a file mboxrd exactly when it has such a line; for
every other file both readings give the same bytes. Written files are always mboxrd.

Flags travel in ``Status:``/``X-Status:``/``X-Keywords:`` headers (mutt, Dovecot); on
reading they, and Dovecot's X-UID/X-IMAP/X-IMAPbase bookkeeping, are removed from the
message, so export then import gives back the same bytes.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

from roost.admin.items import X_STATUS_FLAGS, X_STATUS_LETTERS, MailItem
from roost.store.values import SEEN, SYSTEM_FLAGS

_FROM_LINE = re.compile(rb"^From ([^\n]*)\n", re.M)
_MONTHS = {
    name: number
    for number, name in enumerate(
        b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(),
        start=1,
    )
}
# ctime(3): "Thu Nov 24 18:22:48 1986", sometimes with a zone before or after the year.
_CTIME = re.compile(
    rb"[A-Z][a-z]{2} +([A-Z][a-z]{2}) +(\d{1,2}) +(\d{1,2}):(\d\d)(?::(\d\d))?"
    rb"(?: +([+-]\d{4}|[A-Z]{1,5}))? +(\d{4})(?: +([+-]\d{4}))?"
)
_RD_QUOTED = re.compile(rb"^>(>*From )", re.M)
_O_QUOTED = re.compile(rb"^>From ", re.M)
_TO_QUOTE = re.compile(rb"^(>*From )", re.M)
_STATUS_HEADERS = re.compile(
    rb"^(Status|X-Status|X-Keywords|X-UID|X-IMAP|X-IMAPbase):[ \t]*([^\r\n]*)\r?\n", re.M | re.I
)


def from_line_date(rest: bytes) -> datetime | None:
    """The date of a From_ line (what follows "From "), or None when it has none: then
    the line is not a separator but text that was not quoted."""
    match = _CTIME.search(rest)
    if match is None or match.group(1) not in _MONTHS:
        return None
    zone = UTC
    offset = match.group(8) or match.group(6)
    if offset is not None and offset[:1] in b"+-":
        minutes = int(offset[1:3]) * 60 + int(offset[3:5])
        zone = timezone(timedelta(minutes=-minutes if offset[:1] == b"-" else minutes))
    try:
        return datetime(
            int(match.group(7)),
            _MONTHS[match.group(1)],
            int(match.group(2)),
            int(match.group(3)),
            int(match.group(4)),
            int(match.group(5) or 0),
            tzinfo=zone,
        )
    except ValueError:
        return None


def detect_style(data: bytes | mmap.mmap) -> str:
    """ "mboxrd" when a line starts ">>From " (only mboxrd writes those), else "mboxo"."""
    return "mboxrd" if re.search(rb"^>>+From ", data, re.M) else "mboxo"


class MboxReader:
    """The messages of one mbox file, found once (``count``) and read in order."""

    def __init__(self, path: Path, folder: str, style: str = "auto") -> None:
        self.path = path
        self.folder = folder
        self._file: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._map: mmap.mmap | None = None
        self._starts: list[tuple[int, int, datetime]] = []
        if self.size:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            for match in _FROM_LINE.finditer(self._map):
                date = from_line_date(match.group(1))
                if date is not None:
                    self._starts.append((match.start(), match.end(), date))
        self.style = style if style != "auto" else ("mboxo" if self._map is None else "")
        if not self.style:
            assert self._map is not None
            self.style = detect_style(self._map)

    @property
    def size(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    @property
    def count(self) -> int:
        return len(self._starts)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        self._file.close()

    def __iter__(self) -> Iterator[MailItem]:
        if self._map is None:
            return
        data = self._map
        quoted = _RD_QUOTED if self.style == "mboxrd" else _O_QUOTED
        replacement = rb"\1" if self.style == "mboxrd" else b"From "
        ends = [start for start, _, _ in self._starts[1:]] + [len(data)]
        for (_, body, date), end in zip(self._starts, ends, strict=True):
            message = data[body:end]
            if message.endswith(b"\r\n\r\n"):
                message = message[:-2]
            elif message.endswith(b"\n\n"):
                message = message[:-1]
            if b">From " in message:
                message = quoted.sub(replacement, message)
            message, flags = take_status(message)
            yield MailItem(self.folder, message, flags, date)


def header_end(message: bytes) -> int:
    """Where the blank line after the header starts (the header's length without it),
    or -1 when the message has no blank line."""
    lf = message.find(b"\n\n")
    crlf = message.find(b"\r\n\r\n")
    if crlf >= 0 and (lf < 0 or crlf + 1 <= lf):
        return crlf + 2
    return lf + 1 if lf >= 0 else -1


def take_status(message: bytes) -> tuple[bytes, frozenset[str]]:
    """Remove the flag headers from the header of ``message``; return it and the flags."""
    end = header_end(message)
    header = message if end < 0 else message[:end]
    if _STATUS_HEADERS.search(header) is None:
        return message, frozenset()
    flags: set[str] = set()
    for match in _STATUS_HEADERS.finditer(header):
        name = match.group(1).lower()
        value = match.group(2).decode("ascii", "replace")
        if name == b"status" and "R" in value:
            flags.add(SEEN)
        elif name == b"x-status":
            flags.update(X_STATUS_LETTERS[c] for c in value if c in X_STATUS_LETTERS)
        elif name == b"x-keywords":
            flags.update(word for word in re.split(r"[\s,]+", value) if word)
    header = _STATUS_HEADERS.sub(b"", header)
    return (header if end < 0 else header + message[end:]), frozenset(flags)


def status_headers(flags: frozenset[str], newline: bytes = b"\n") -> bytes:
    """The Status/X-Status/X-Keywords lines that carry ``flags`` (none for none)."""
    lines = []
    if SEEN in flags:
        lines.append(b"Status: RO")
    x_status = "".join(sorted(X_STATUS_FLAGS[f] for f in flags if f in X_STATUS_FLAGS))
    if x_status:
        lines.append(b"X-Status: " + x_status.encode())
    keywords = sorted(flag for flag in flags if flag not in SYSTEM_FLAGS)
    if keywords:
        lines.append(b"X-Keywords: " + " ".join(keywords).encode())
    return b"".join(line + newline for line in lines)


def from_line(date: datetime) -> bytes:
    moment = date.astimezone(UTC)
    return b"From MAILER-DAEMON " + moment.strftime("%a %b %e %H:%M:%S %Y").encode() + b"\n"


def write_message(out: BinaryIO, data: bytes, flags: frozenset[str], date: datetime) -> None:
    """Append one message to an mboxrd file: From_ line (the internal date, UTC), the
    message with LF line ends, its flags as headers, quoted, and a blank line."""
    data = data.replace(b"\r\n", b"\n")
    extra = status_headers(flags)
    if extra:
        end = header_end(data)
        if end < 0:
            data = data + (b"" if data.endswith(b"\n") or not data else b"\n") + extra
        else:
            data = data[:end] + extra + data[end:]
    if b"From " in data:
        data = _TO_QUOTE.sub(rb">\1", data)
    out.write(from_line(date))
    out.write(data)
    out.write(b"\n" if data.endswith(b"\n") else b"\n\n")


class MboxWriter:
    """One folder's mboxrd file, created with its parent directories."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.dropped_keywords: set[str] = set()

    def add(self, uid: int, data: bytes, flags: frozenset[str], date: datetime) -> None:
        write_message(self._out, data, flags, date)

    def close(self) -> None:
        self._out.close()
