"""Where a message's header block ends.

The header ends just past the first empty line, whether lines end in CRLF or bare LF
(whichever blank line comes first). A message that starts with an empty line has a header
of exactly that line; a message with no empty line at all is all header (RFC 5322 §2.1).
"""

from __future__ import annotations


class HeaderScanner:
    """Finds the end of the header block in a message fed in chunks of any size.

    It keeps only the last two bytes between chunks, so a huge message without an empty
    line costs no memory. ``end`` is the header length once found, else None.
    """

    __slots__ = ("_consumed", "_tail", "end")

    def __init__(self) -> None:
        # A virtual line end before the first byte makes "starts with an empty line" the
        # same search as "an empty line after a line end".
        self._tail = b"\n"
        self._consumed = 0
        self.end: int | None = None

    def feed(self, chunk: bytes) -> int | None:
        if self.end is not None:
            return self.end
        window = self._tail + chunk
        window_start = self._consumed - len(self._tail)
        lf = window.find(b"\n\n")
        crlf = window.find(b"\n\r\n")
        if lf >= 0 and (crlf < 0 or lf < crlf):
            self.end = window_start + lf + 2
        elif crlf >= 0:
            self.end = window_start + crlf + 3
        self._consumed += len(chunk)
        self._tail = window[-2:]
        return self.end


def header_length(data: bytes) -> int:
    """Bytes of the header block of ``data``, including the empty separator line."""
    end = HeaderScanner().feed(data)
    return len(data) if end is None else end
