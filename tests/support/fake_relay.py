"""A scriptable SMTP relay on 127.0.0.1 port 0, for submission tests and the bench:
it records what it was given and answers as told (refuse, stall, hang up)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

EXTENSIONS = ("PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING", "DSN", "SIZE 100000000")


@dataclass
class Received:
    mail: str = ""
    rcpts: list[str] = field(default_factory=list)
    data: bytes = b""
    commands: list[str] = field(default_factory=list)


@dataclass
class FakeRelay:
    extensions: tuple[str, ...] = EXTENSIONS
    mail_reply: str = "250 2.1.0 Ok"
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> reply
    final_reply: str = "250 2.0.0 Ok: queued as FAKE1"
    stall_after_data: bool = False  # never answer the end of the message
    close_mid_data: bool = False  # hang up after the first bytes of the message
    auth: tuple[str, str] | None = None  # require AUTH PLAIN with these
    tls: ssl.SSLContext | None = None  # implicit TLS (an smtps:// relay)
    messages: list[Received] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> int:
        if self._server is not None:
            return self.port
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._dialogue(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _dialogue(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(*lines: str) -> None:
            writer.write(b"".join(line.encode() + b"\r\n" for line in lines))

        say("220 relay.test ESMTP fake")
        current = Received()
        signed_in = self.auth is None
        while True:
            await writer.drain()
            raw = await reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            current.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                lines = ["relay.test", *self.extensions, *(["AUTH PLAIN"] if self.auth else [])]
                say(*[f"250-{text}" for text in lines[:-1]], f"250 {lines[-1]}")
            elif verb == "AUTH":
                token = base64.b64decode(line.split()[2]).split(b"\0")
                signed_in = (
                    self.auth is not None and tuple(t.decode() for t in token[1:]) == self.auth
                )
                say("235 2.7.0 Ok" if signed_in else "535 5.7.8 No")
            elif verb == "MAIL":
                if not signed_in:
                    say("530 5.7.0 Authentication required")
                    continue
                current.mail = line
                say(self.mail_reply)
            elif verb == "RCPT":
                address = line.split("<", 1)[1].split(">", 1)[0]
                reply = self.rcpt_replies.get(address, "250 2.1.5 Ok")
                if reply.startswith("2"):
                    current.rcpts.append(line)
                say(reply)
            elif verb == "DATA":
                if not current.rcpts:
                    say("554 5.5.1 No valid recipients")
                    continue
                say("354 go ahead")
                await writer.drain()
                data = bytearray()
                while (chunk := await reader.readline()) != b".\r\n":
                    if not chunk:
                        return
                    if self.close_mid_data:
                        return
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                current.data = bytes(data)
                if not await self._finish(current, reader, say):
                    return
                current = Received()
            elif verb == "BDAT":
                size = int(line.split()[1])
                if self.close_mid_data:
                    await reader.readexactly(min(size, 10))
                    return
                current.data += await reader.readexactly(size)
                if "LAST" not in line.upper():
                    say("250 2.0.0 chunk ok")
                    continue
                if not await self._finish(current, reader, say):
                    return
                current = Received()
            elif verb == "RSET":
                current = Received()
                say("250 2.0.0 Ok")
            elif verb == "QUIT":
                say("221 2.0.0 Bye")
                await writer.drain()
                return
            else:
                say("502 5.5.1 What")

    async def _finish(
        self, current: Received, reader: asyncio.StreamReader, say: Callable[..., None]
    ) -> bool:
        if self.stall_after_data:
            await reader.read()  # until the client gives up and hangs up
            return False
        if self.final_reply.startswith("2"):
            self.messages.append(current)
        say(self.final_reply)
        return True
