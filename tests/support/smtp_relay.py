"""A fake SMTP relay for tests: an asyncio server on port 0 that accepts every message
(or refuses all with ``refuse``) and keeps (MAIL FROM, RCPT TOs, data) in ``received``."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class FakeRelay:
    refuse: bool = False
    received: list[Received] = field(default_factory=list)
    port: int = 0
    tls: ssl.SSLContext | None = None  # offer STARTTLS with this server context
    tls_used: list[bool] = field(default_factory=list)  # per message: under TLS?

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay.test ESMTP\r\n")
        sender, recipients = "", list[str]()
        secure = False
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    offer = b"250-STARTTLS\r\n" if self.tls is not None and not secure else b""
                    writer.write(b"250-relay.test\r\n" + offer + b"250 8BITMIME\r\n")
                elif verb == b"STAR" and self.tls is not None:
                    writer.write(b"220 go ahead\r\n")
                    await writer.drain()
                    await writer.start_tls(self.tls)
                    secure = True
                    continue
                elif verb == b"MAIL":
                    sender = line.decode().split("<", 1)[1].split(">", 1)[0]
                    recipients = []
                    writer.write(b"250 ok\r\n" if not self.refuse else b"550 5.7.1 no\r\n")
                elif verb == b"RCPT":
                    recipients.append(line.decode().split("<", 1)[1].split(">", 1)[0])
                    writer.write(b"250 ok\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go\r\n")
                    await writer.drain()
                    data = b""
                    while (chunk := await reader.readline()) != b".\r\n":
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    self.received.append(Received(sender, recipients, data))
                    self.tls_used.append(secure)
                    writer.write(b"250 queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"502 what\r\n")
                await writer.drain()
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def fake_relay(
    refuse: bool = False, tls: ssl.SSLContext | None = None
) -> AsyncIterator[FakeRelay]:
    relay = FakeRelay(refuse=refuse, tls=tls)
    server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    relay.port = server.sockets[0].getsockname()[1]
    try:
        yield relay
    finally:
        server.close()
        await server.wait_closed()
