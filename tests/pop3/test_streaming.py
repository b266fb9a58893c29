"""RETR and TOP stream a message (issue 13, item 8): the encoder is fed the store's
chunks as they come, byte-stuffing and TOP's line count carry across chunk boundaries,
and a 20 MB one-line message goes out with a few hundred KiB traced, not 20 MB.

The encoding is checked against a reference built from the whole message at once
(RFC 1939 §3: CRLF line ends, a "." doubled at a line start, "CRLF.CRLF" at the end),
for every split into two chunks and byte by byte (STYLE.md §12)."""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import AsyncIterator
from typing import cast

import pytest

from roost.pop3.commands import _encoded
from roost.pop3.maildrop import Maildrop
from roost.pop3.wire.message import MessageEncoder
from roost.store.base import MessageMeta

_BARE_LF = re.compile(rb"(?<!\r)\n")

MESSAGES = [
    b"A: 1\r\n.B: 2\r\n\r\n.one\r\n..two\r\nthree.\r\n.\r\n",
    b"A: 1\n\n.\n.x\n\n.\nend",
    b".starts with a dot\r\n\r\n.",
    b"Subject: x\r\n\r\nline\r\r\n.\r\n\r.\n.\0.\r\n",
    b"\r\n.\r\n.\n\r.",
]


def reference(message: bytes, body_lines: int | None = None) -> bytes:
    """The multi-line body of RFC 1939 §3, from the whole message at once."""
    data = _BARE_LF.sub(b"\r\n", message.replace(b"\0", b"\x80"))
    if data and not data.endswith(b"\n"):
        data += b"\r\n"
    lines = data.split(b"\r\n")[:-1] if data else []
    if body_lines is not None:
        blank = lines.index(b"") if b"" in lines else len(lines)
        lines = lines[: blank + 1 + body_lines]
    return b"".join(
        (b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines
    ) + (b".\r\n")


def encode(chunks: list[bytes], body_lines: int | None = None) -> bytes:
    encoder = MessageEncoder(body_lines)
    return b"".join(encoder.feed(chunk) for chunk in chunks) + encoder.finish()


@pytest.mark.parametrize("message", MESSAGES)
@pytest.mark.parametrize("body_lines", [None, 0, 1, 2, 5])
def test_stuffing_and_top_across_every_chunk_boundary(
    message: bytes, body_lines: int | None
) -> None:
    expected = reference(message, body_lines)
    assert encode([message], body_lines) == expected
    assert encode([bytes([b]) for b in message], body_lines) == expected
    for split in range(len(message) + 1):
        chunks = [message[:split], message[split:]]
        assert encode(chunks, body_lines) == expected, split
        for second in range(split, len(message) + 1):
            three = [message[:split], message[split:second], message[second:]]
            assert encode(three, body_lines) == expected, (split, second)


class _Store:
    """A maildrop whose message is made chunk by chunk, never whole in memory."""

    def __init__(self, chunks: int, chunk: bytes, head: bytes = b"") -> None:
        self.chunks = chunks
        self.chunk = chunk
        self.head = head
        self.made = 0  # chunks handed out

    async def _read(self) -> AsyncIterator[bytes]:
        if self.head:
            yield self.head
        for _ in range(self.chunks):
            self.made += 1
            yield bytes(self.chunk)  # a fresh object each time, as a file read gives

    def read(self, meta: MessageMeta) -> AsyncIterator[bytes]:
        return self._read()


async def _send(store: _Store, encoder: MessageEncoder) -> tuple[int, bytes, int]:
    """Bytes sent, the last 16 of them, and the traced peak while sending."""
    tracemalloc.start()
    try:
        sent = 0
        tail = b""
        meta = cast(MessageMeta, None)
        async for data in _encoded(cast(Maildrop, store), meta, encoder):
            sent += len(data.data)
            tail = (tail + data.data)[-16:]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return sent, tail, peak


async def test_retr_of_a_20_mb_one_line_message_streams() -> None:
    """A 20 MB header line with dots: sent whole, stuffed, in bounded memory."""
    chunk = b"x" * (256 * 1024 - 2) + b"\n."  # every chunk ends in LF, the next begins "."
    store = _Store(80, chunk, b"Subject: ")
    sent, tail, peak = await _send(store, MessageEncoder())
    # each LF becomes CRLF and each "." after it is doubled; CRLF.CRLF at the end
    assert sent == 9 + 80 * (len(chunk) + 2) + 2 + 3
    assert tail.endswith(b"\r\n..\r\n.\r\n")
    assert peak < 4 * len(chunk), peak


async def test_top_of_a_huge_message_stops_reading_after_its_lines() -> None:
    store = _Store(80, b"line\n" * 50_000, b"Subject: x\n\n")
    sent, tail, peak = await _send(store, MessageEncoder(body_lines=3))
    assert sent == len(b"Subject: x\r\n\r\nline\r\nline\r\nline\r\n.\r\n")
    assert tail.endswith(b"line\r\nline\r\n.\r\n")
    assert store.made == 1  # the rest of the message is never read
    assert peak < 4 * len(store.chunk), peak
