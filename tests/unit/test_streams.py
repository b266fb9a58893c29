"""drop_buffered_input: plaintext buffered below the protocol never survives STARTTLS."""

from __future__ import annotations

import asyncio

from roost.runtime.streams import drop_buffered_input


async def test_drops_what_the_stream_buffered() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"a1 LOGIN injected command\r\n")
    assert drop_buffered_input(reader) == 27
    reader.feed_data(b"after\r\n")
    reader.feed_eof()
    assert await reader.read() == b"after\r\n"
