"""A lean asyncio IMAP client for load generation.

It is an ``asyncio.Protocol`` (no StreamReader, no task per connection) so that one
process can hold 10,000 idle connections and drive hundreds of busy ones without
becoming the bottleneck. Responses are split into logical lines with literals inlined;
a command returns its tagged line and, unless told to only count them, its untagged
lines. One command at a time per connection (no pipelining), as most clients do.

Times are ``time.perf_counter()`` values taken when the bytes were parsed, so a
waiter's own scheduling delay is not counted.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from dataclasses import dataclass, field

_LITERAL = re.compile(rb"~?\{(\d+)\+?\}$")


class ImapError(Exception):
    pass


@dataclass(slots=True)
class Reply:
    status: bytes  # OK, NO or BAD
    line: bytes  # the tagged line
    untagged: list[bytes] = field(default_factory=list)
    untagged_count: int = 0
    done_at: float = 0.0  # perf_counter when the tagged line was parsed

    @property
    def ok(self) -> bool:
        return self.status == b"OK"


class Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._literal_left = 0
        self._pieces: list[bytes] = []
        self._tag = 0
        self._tag_prefix = b""
        self._reply: Reply | None = None
        self._keep = True
        self._done: asyncio.Future[Reply] | None = None
        self._continuation: asyncio.Future[bytes] | None = None
        self._greeting: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._exists: asyncio.Future[float] | None = None
        self.closed = False
        self.capabilities: set[bytes] = set()

    # ---- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        position = 0
        size = len(buffer)
        while position < size:
            if self._literal_left:
                take = min(self._literal_left, size - position)
                if self._keep:
                    self._pieces.append(bytes(buffer[position : position + take]))
                position += take
                self._literal_left -= take
                continue
            end = buffer.find(b"\r\n", position)
            if end < 0:
                break
            line = bytes(buffer[position:end])
            position = end + 2
            if line.endswith(b"}"):
                found = _LITERAL.search(line)
                if found is not None:
                    self._pieces.append(line + b"\r\n")
                    self._literal_left = int(found.group(1))
                    continue
            if self._pieces:
                self._pieces.append(line)
                line = b"".join(self._pieces)
                self._pieces = []
            self._on_response(line)
        del buffer[:position]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = ConnectionError(f"connection closed: {exc}")
        for waiter in (self._done, self._continuation, self._greeting, self._exists):
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
                waiter.exception()  # marks it retrieved: nobody may be waiting for it

    # ---- responses ------------------------------------------------------------------

    def _on_response(self, line: bytes) -> None:
        reply = self._reply
        if reply is not None and line.startswith(self._tag_prefix):
            reply.line = line
            reply.status = line[len(self._tag_prefix) :].split(b" ", 1)[0]
            reply.done_at = time.perf_counter()
            self._reply = None
            if self._done is not None and not self._done.done():
                self._done.set_result(reply)
            return
        if line.startswith(b"+"):
            if self._continuation is not None and not self._continuation.done():
                self._continuation.set_result(line)
            return
        if not self._greeting.done():
            self._greeting.set_result(line)
            self._note_capabilities(line)
            return
        if line.endswith(b" EXISTS") and self._exists is not None and not self._exists.done():
            self._exists.set_result(time.perf_counter())
        if reply is not None:
            reply.untagged_count += 1
            if self._keep:
                reply.untagged.append(line)
            if line.startswith((b"* CAPABILITY ", b"* OK [CAPABILITY ")):
                self._note_capabilities(line)
        elif line.startswith(b"* BYE"):
            pass

    def _note_capabilities(self, line: bytes) -> None:
        start = line.find(b"CAPABILITY ")
        if start >= 0:
            words = line[start + 11 :].split(b"]", 1)[0].split()
            self.capabilities = {word.upper() for word in words}

    # ---- commands -------------------------------------------------------------------

    @property
    def local_port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    async def greeting(self) -> bytes:
        return await self._greeting

    def _start(self, keep: bool) -> tuple[bytes, asyncio.Future[Reply]]:
        if self.closed or self.transport is None:
            raise ConnectionError("connection closed")
        self._tag += 1
        tag = b"a%d" % self._tag
        self._tag_prefix = tag + b" "
        self._keep = keep
        self._reply = Reply(b"", b"")
        self._done = asyncio.get_running_loop().create_future()
        return tag, self._done

    async def command(self, text: bytes, *, keep: bool = True) -> Reply:
        """Send ``text`` (tag added) and wait for the tagged reply. ``keep=False``
        counts untagged lines instead of keeping them (large FETCH)."""
        tag, done = self._start(keep)
        assert self.transport is not None
        self.transport.write(tag + b" " + text + b"\r\n")
        return await done

    async def check(self, text: bytes, *, keep: bool = True) -> Reply:
        reply = await self.command(text, keep=keep)
        if not reply.ok:
            raise ImapError(f"{text[:60]!r} -> {reply.line[:200]!r}")
        return reply

    async def login(self, user: str, password: str) -> Reply:
        return await self.check(f'LOGIN "{user}" "{password}"'.encode())

    async def append(self, mailbox: bytes, message: bytes, flags: bytes = b"") -> Reply:
        """APPEND with a non-synchronizing literal (LITERAL+, offered by both servers)."""
        tag, done = self._start(True)
        assert self.transport is not None
        flag_part = b"(" + flags + b") " if flags else b""
        self.transport.write(
            b"%s APPEND %s %s{%d+}\r\n" % (tag, mailbox, flag_part, len(message))
            + message
            + b"\r\n"
        )
        reply = await done
        if not reply.ok:
            raise ImapError(f"APPEND -> {reply.line[:200]!r}")
        return reply

    async def idle(self) -> None:
        """Start IDLE; returns once the server's continuation arrived."""
        tag, _ = self._start(False)
        self._continuation = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(tag + b" IDLE\r\n")
        await self._continuation
        self._continuation = None

    def expect_exists(self) -> asyncio.Future[float]:
        """A future set to the time the next ``* n EXISTS`` is parsed."""
        self._exists = asyncio.get_running_loop().create_future()
        return self._exists

    async def done(self) -> Reply:
        """End IDLE."""
        assert self._done is not None and self.transport is not None
        self.transport.write(b"DONE\r\n")
        return await self._done

    async def logout(self) -> None:
        try:
            await asyncio.wait_for(self.command(b"LOGOUT"), 10)
        finally:
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


async def connect(
    host: str, port: int, *, within: float = 30.0, tls: ssl.SSLContext | None = None
) -> Connection:
    """A signed-out connection, greeting read; ``tls``: implicit TLS (port 993 style)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(within):
        _, connection = await loop.create_connection(Connection, host, port, ssl=tls)
        await connection.greeting()
    return connection


def appenduid(reply: Reply) -> int | None:
    """The UID from ``[APPENDUID v uid]`` in a tagged OK (RFC 4315), or None."""
    found = re.search(rb"\[APPENDUID \d+ (\d+)\]", reply.line)
    return int(found.group(1)) if found else None


def client_tls() -> ssl.SSLContext:
    """A TLS client context that accepts the servers' self-signed certificate; TLS 1.3
    and session tickets as a phone or webmail would negotiate them."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
