"""The client side of a COMPRESS=DEFLATE stream (RFC 4978), for tests."""

from __future__ import annotations

import asyncio
import zlib

from tests.support.imap_client import RESPONSE_TIMEOUT, ImapClient


class DeflatedStream:
    def __init__(self, client: ImapClient) -> None:
        self.client = client
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)
        self.buffer = b""

    async def send(self, data: bytes) -> None:
        await self.client.send(self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH))

    async def read_line(self) -> bytes:
        """The next line, inflated. A line the server does not flush whole (RFC 4978:
        each response must be decodable as soon as it is sent) fails the test after
        RESPONSE_TIMEOUT seconds instead of hanging it."""
        async with asyncio.timeout(RESPONSE_TIMEOUT):
            while b"\r\n" not in self.buffer:
                chunk = await self.client.reader.read(65536)
                assert chunk, "connection closed"
                self.buffer += self.inflate.decompress(chunk)
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    async def read_exactly(self, size: int) -> bytes:
        """``size`` inflated bytes (a literal's contents)."""
        async with asyncio.timeout(RESPONSE_TIMEOUT):
            while len(self.buffer) < size:
                chunk = await self.client.reader.read(65536)
                assert chunk, "connection closed"
                self.buffer += self.inflate.decompress(chunk)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    async def read_until_tagged(self, tag: bytes) -> list[bytes]:
        lines: list[bytes] = []
        while True:
            line = await self.read_line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines
