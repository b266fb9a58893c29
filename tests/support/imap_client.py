"""A scripted IMAP client for transcript tests (STYLE.md §11).

It speaks raw lines so a test states exactly what goes over the wire, and it reads
responses as whole logical lines with literals inlined, so assertions can compare
bytes. ``await a.ok("SELECT INBOX")`` returns the untagged lines that came before the
tagged OK and fails the test on anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import ssl
import zlib
from dataclasses import dataclass, field

RESPONSE_TIMEOUT = 10.0
_LITERAL_AT_END = re.compile(rb"~?\{(\d+)\+?\}\r\n$")


@dataclass
class Reply:
    tag: str
    status: str
    line: bytes  # the whole tagged line
    untagged: list[bytes] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.line.decode("utf-8", "replace")

    def lines_starting(self, prefix: bytes) -> list[bytes]:
        return [u for u in self.untagged if u.startswith(prefix)]


class ImapClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._tags = (f"A{n:03d}" for n in itertools.count(1))
        self.greeting = b""

    @classmethod
    async def connect(
        cls, host: str, port: int, *, tls: ssl.SSLContext | None = None
    ) -> ImapClient:
        reader, writer = await asyncio.open_connection(host, port, ssl=tls, limit=64 << 20)
        client = cls(reader, writer)
        client.greeting = await client.read_response()
        return client

    def next_tag(self) -> str:
        return next(self._tags)

    # ---- raw I/O -------------------------------------------------------------------

    async def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.writer.write(data)
        await self.writer.drain()

    async def read_response(self) -> bytes:
        """One logical response line, CRLF stripped, with any literals inlined; a test
        that waits more than RESPONSE_TIMEOUT seconds for one has failed."""
        async with asyncio.timeout(RESPONSE_TIMEOUT):
            chunks: list[bytes] = []
            while True:
                line = await self.reader.readline()
                if not line:
                    raise ConnectionError(f"server closed the connection after {chunks!r}")
                chunks.append(line)
                match = _LITERAL_AT_END.search(line)
                if match is None:
                    break
                chunks.append(await self.reader.readexactly(int(match.group(1))))
            return b"".join(chunks).removesuffix(b"\r\n")

    async def read_until_tagged(self, tag: str) -> Reply:
        untagged: list[bytes] = []
        prefix = tag.encode() + b" "
        while True:
            line = await self.read_response()
            if line.startswith(prefix):
                status = line[len(prefix) :].split(b" ", 1)[0].decode()
                return Reply(tag, status, line, untagged)
            untagged.append(line)

    async def expect_eof(self) -> bytes:
        async with asyncio.timeout(10):
            return await self.reader.read()

    # ---- commands ------------------------------------------------------------------

    async def command(self, text: str | bytes) -> Reply:
        """Send one command line (tag added) and collect its replies. A command with a
        synchronizing literal is sent piece by piece after each continuation."""
        tag = self.next_tag()
        data = text.encode() if isinstance(text, str) else text
        pieces = re.split(rb"(\{\d+\}\r\n)", tag.encode() + b" " + data + b"\r\n")
        pending = b""
        for piece in pieces:
            pending += piece
            if re.fullmatch(rb"\{\d+\}\r\n", piece):
                await self.send(pending)
                pending = b""
                reply = await self.read_response()
                if not reply.startswith(b"+"):
                    return Reply(tag, reply.split(b" ", 2)[1].decode(), reply)
        await self.send(pending)
        return await self.read_until_tagged(tag)

    async def ok(self, text: str | bytes) -> Reply:
        reply = await self.command(text)
        assert reply.status == "OK", f"{text!r} → {reply.line!r} after {reply.untagged!r}"
        return reply

    async def no(self, text: str | bytes) -> Reply:
        reply = await self.command(text)
        assert reply.status == "NO", f"{text!r} → {reply.line!r}"
        return reply

    async def bad(self, text: str | bytes) -> Reply:
        reply = await self.command(text)
        assert reply.status == "BAD", f"{text!r} → {reply.line!r}"
        return reply

    async def login(self, user: str, password: str) -> Reply:
        return await self.ok(f'LOGIN "{user}" "{password}"')

    async def append(self, mailbox: str, message: bytes, flags: str = "") -> Reply:
        """APPEND as a careful client does: a message holding a NUL goes as literal8
        (``~{n+}``, RFC 3516), since a ``{n}`` literal cannot carry one (RFC 9051 §4.3)."""
        flag_part = f"({flags}) " if flags else ""
        binary = "~" if b"\x00" in message else ""
        return await self.ok(
            f'APPEND "{mailbox}" {flag_part}{binary}{{{len(message)}+}}\r\n'.encode() + message
        )

    async def idle(self) -> str:
        tag = self.next_tag()
        await self.send(f"{tag} IDLE\r\n")
        line = await self.read_response()
        assert line.startswith(b"+"), line
        return tag

    async def done(self, tag: str) -> Reply:
        await self.send(b"DONE\r\n")
        return await self.read_until_tagged(tag)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


def message(
    subject: str = "Hello",
    body: str = "Hi there.\r\n",
    sender: str = "alice@example.org",
    to: str = "bob@example.org",
    extra_headers: str = "",
) -> bytes:
    """A small, valid RFC 5322 message."""
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{zlib.crc32(subject.encode()):08x}@test>\r\n"
        f"{extra_headers}\r\n{body}"
    ).encode()
