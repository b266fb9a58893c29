"""A scripted POP3 client for transcript tests (STYLE.md §11).

It speaks raw lines so a test states exactly what goes over the wire: ``ok``/``err``
send one command and return its status line (failing the test on the other status);
``multi`` returns the status line and the raw lines of a multi-line response (still
byte-stuffed, without the final "."); ``retr`` returns a message as the client sees it
after un-stuffing. Nothing waits on a clock except the bound on a reply that never
comes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl

RESPONSE_TIMEOUT = 10.0


class Pop3Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.greeting = b""

    @classmethod
    async def connect(
        cls, host: str, port: int, *, tls: ssl.SSLContext | None = None
    ) -> Pop3Client:
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)
        client = cls(reader, writer)
        client.greeting = await client.read_line()
        return client

    # ---- raw I/O -------------------------------------------------------------------

    async def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.writer.write(data)
        await self.writer.drain()

    async def read_line(self) -> bytes:
        """One line, CRLF stripped; EOF fails the test."""
        async with asyncio.timeout(RESPONSE_TIMEOUT):
            line = await self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"server closed the connection (read {line!r})")
        return line[:-2]

    async def read_multiline(self) -> list[bytes]:
        """The lines of a multi-line response after its status line, up to the ".",
        still byte-stuffed."""
        lines = []
        while (line := await self.read_line()) != b".":
            lines.append(line)
        return lines

    async def expect_eof(self) -> bytes:
        """Whatever the server still sends before it closes."""
        async with asyncio.timeout(RESPONSE_TIMEOUT):
            return await self.reader.read()

    # ---- commands ------------------------------------------------------------------

    async def command(self, text: str | bytes) -> bytes:
        await self.send((text.encode() if isinstance(text, str) else text) + b"\r\n")
        return await self.read_line()

    async def ok(self, text: str | bytes) -> bytes:
        line = await self.command(text)
        assert line.startswith(b"+OK"), f"{text!r} → {line!r}"
        return line

    async def err(self, text: str | bytes) -> bytes:
        line = await self.command(text)
        assert line.startswith(b"-ERR"), f"{text!r} → {line!r}"
        return line

    async def multi(self, text: str | bytes) -> tuple[bytes, list[bytes]]:
        status = await self.ok(text)
        return status, await self.read_multiline()

    async def retr(self, number: int) -> bytes:
        """Message ``number`` as a client stores it: lines un-stuffed, CRLF kept."""
        _, lines = await self.multi(f"RETR {number}")
        return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)

    async def login(self, user: str, password: str) -> bytes:
        await self.ok(f"USER {user}")
        return await self.ok(f"PASS {password}")

    async def auth_plain(self, user: str, password: str) -> bytes:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return await self.command(f"AUTH PLAIN {token}")

    async def stls(self, context: ssl.SSLContext) -> None:
        await self.ok("STLS")
        await self.writer.start_tls(context, server_hostname="localhost")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
