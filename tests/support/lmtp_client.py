"""A minimal LMTP client for transcript tests: send raw bytes, read whole replies."""

from __future__ import annotations

import asyncio
import contextlib


class LmtpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int) -> LmtpClient:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
        client = cls(reader, writer)
        greeting = await client.reply()
        assert greeting.startswith("220 "), greeting
        return client

    @classmethod
    async def connect_unix(cls, path: str) -> LmtpClient:
        reader, writer = await asyncio.open_unix_connection(path, limit=1 << 22)
        client = cls(reader, writer)
        greeting = await client.reply()
        assert greeting.startswith("220 "), greeting
        return client

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def reply(self) -> str:
        """One whole reply (all lines of a multi-line one), CRLFs kept."""
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 30)
            assert line.endswith(b"\r\n"), f"connection closed after {lines!r}: {line!r}"
            lines.append(line.decode())
            if line[3:4] != b"-":
                return "".join(lines)

    async def command(self, line: str) -> str:
        await self.send(line + "\r\n")
        return await self.reply()

    async def lhlo(self) -> str:
        return await self.command("LHLO mta.example")

    async def send_message(
        self, sender: str, recipients: list[str], message: bytes
    ) -> tuple[list[str], list[str]]:
        """MAIL, RCPTs and DATA pipelined; returns (RCPT replies, per-recipient replies)."""
        lines = [f"MAIL FROM:<{sender}>"] + [f"RCPT TO:<{r}>" for r in recipients] + ["DATA"]
        await self.send("".join(line + "\r\n" for line in lines))
        assert (await self.reply()).startswith("250")
        rcpt = [await self.reply() for _ in recipients]
        accepted = sum(1 for reply in rcpt if reply.startswith("250"))
        data = await self.reply()
        if not accepted:
            assert data.startswith("503"), data
            return rcpt, []
        assert data.startswith("354"), data
        stuffed = message.replace(b"\r\n.", b"\r\n..")
        if stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        await self.send(stuffed + b".\r\n")
        return rcpt, [await self.reply() for _ in range(accepted)]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
