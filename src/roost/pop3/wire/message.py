"""A stored message as a POP3 multi-line body, its size as transmitted, and its UIDL.

Messages are stored exactly as received, so their line ends may be CRLF or bare LF and
they may hold NUL bytes. On the wire (RFC 1939 §3, RETR and TOP) every line ends in
CRLF, a line starting with "." gets another "." in front, and the body ends with
"CRLF.CRLF". ``MessageEncoder`` does that chunk by chunk, so a huge message is never
held in memory, and splitting the input anywhere gives the same output:

* every LF not preceded by CR becomes CRLF (a CR alone, not before LF, is kept);
* every NUL becomes 0x80 — a NUL makes Outlook hang (CLIENTS.md), and a one-for-one
  replacement keeps the size unchanged (Dovecot's "outlook-no-nuls" does the same);
* a message that does not end with a line end gets CRLF before the final ".".

The size reported by STAT, LIST and the "+OK n octets" of RETR is the size of exactly
those bytes — the message with line ends made CRLF and the missing last CRLF added —
without the byte-stuffing and without the final ".CRLF". That is what RFC 1939 §5 asks
for ("the exact size ... as transmitted", which clients compare with what they
received after un-stuffing) and what Dovecot reports. ``SizeCounter`` computes it
without building the encoded bytes; the two are tested to agree on any input.
"""

from __future__ import annotations

_TERMINATOR = b".\r\n"


def _crlf(data: bytes) -> bytes:
    """Every bare LF made CRLF; CRLF and a lone CR kept. Two C-level passes: a regular
    expression substitution allocates an object per line, forty times a chunk of short
    lines."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def uidl(uidvalidity: int, uid: int) -> str:
    """The unique-id listing of a message (RFC 1939 §7): unique and stable for as long
    as the message exists and never reused, since UIDs only grow and UIDVALIDITY of
    INBOX never changes. Dovecot's default format (``%08Xu%08Xv``), so 16 characters."""
    return f"{uid:08X}{uidvalidity:08X}"


class MessageEncoder:
    """Encode one message for RETR (``body_lines=None``) or TOP (the header, the blank
    line after it, and ``body_lines`` lines of the body; RFC 1939 §7).

    ``feed`` returns the encoded bytes for a chunk; ``finish`` returns the rest, the
    terminating ".CRLF" included. Once ``done`` is true (TOP has all it needs),
    ``feed`` ignores its input, so the caller can stop reading.
    """

    def __init__(self, body_lines: int | None = None) -> None:
        self._after_cr = False  # the last input byte was CR
        self._line_start = True  # the next output byte starts a line
        self._lines_left = body_lines  # body lines still to send; None: all
        self._in_header = body_lines is not None
        self._line_head = b""  # first bytes of a header line not ended yet
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        if self.done or not chunk:
            return b""
        data = self._normalize(chunk)
        if self._lines_left is not None:
            data = self._cut(data)
        return self._stuff(data)

    def finish(self) -> bytes:
        return (b"" if self._line_start else b"\r\n") + _TERMINATOR

    def _normalize(self, chunk: bytes) -> bytes:
        data = chunk.replace(b"\0", b"\x80")
        if self._after_cr and data.startswith(b"\n"):
            normalized = b"\n" + _crlf(data[1:])
        else:
            normalized = _crlf(data)
        self._after_cr = data.endswith(b"\r")
        return normalized

    def _cut(self, data: bytes) -> bytes:
        """The part of ``data`` TOP sends; sets ``done`` when that is all."""
        position = 0
        while self._in_header:
            end = data.find(b"\n", position)
            if end < 0:
                self._line_head = (self._line_head + data[position:])[:2]
                return data
            line_head = (self._line_head + data[position : end + 1])[:3]
            self._line_head = b""
            position = end + 1
            if line_head == b"\r\n":  # the blank line that ends the header
                self._in_header = False
        assert self._lines_left is not None
        body_line_ends = data.count(b"\n", position)
        if body_line_ends < self._lines_left:
            self._lines_left -= body_line_ends
            return data
        end = position - 1
        for _ in range(self._lines_left):
            end = data.find(b"\n", end + 1)
        self._lines_left = 0
        self.done = True
        return data[: end + 1]

    def _stuff(self, data: bytes) -> bytes:
        if not data:
            return data
        stuffed = data.replace(b"\n.", b"\n..")
        if self._line_start and stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        self._line_start = stuffed.endswith(b"\n")
        return stuffed


class SizeCounter:
    """The size as transmitted of a message fed in chunks (see the module docstring)."""

    def __init__(self) -> None:
        self._size = 0
        self._after_cr = False
        self._ends_with_lf = True

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        bare_lfs = chunk.count(b"\n") - chunk.count(b"\r\n")
        if self._after_cr and chunk.startswith(b"\n"):
            bare_lfs -= 1
        self._size += len(chunk) + bare_lfs
        self._after_cr = chunk.endswith(b"\r")
        self._ends_with_lf = chunk.endswith(b"\n")

    def finish(self) -> int:
        return self._size + (0 if self._ends_with_lf else 2)
