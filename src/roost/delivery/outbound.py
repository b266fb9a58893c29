"""A small SMTP client that hands Sieve's outgoing mail (redirect, vacation) to the relay.

One message per connection: EHLO (HELO if refused), STARTTLS when the relay offers it and
a TLS context is given, MAIL, RCPT, DATA, QUIT (RFC 5321 §3.3). Every reply is awaited
with a time-out; any failure raises ``SendError`` naming the step, and the caller decides
what it means (a failed redirect keeps a copy; a failed vacation is only logged). The
message is dot-stuffed here (RFC 5321 §4.5.2) and sent with CRLF line endings.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from dataclasses import dataclass

MAX_REPLY_LINE = 4096
_BARE_LF = re.compile(rb"(?<!\r)\n")


class SendError(Exception):
    """The relay refused the message or could not be reached."""


@dataclass(frozen=True, slots=True)
class Relay:
    host: str
    port: int
    helo_name: str
    timeout: float = 30.0
    tls: ssl.SSLContext | None = None  # used when the relay offers STARTTLS


async def send_message(relay: Relay, sender: str, recipients: list[str], data: bytes) -> None:
    """Send ``data`` from ``sender`` ("" for the null path) to ``recipients``."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(relay.host, relay.port), relay.timeout
        )
    except (OSError, TimeoutError) as error:
        raise SendError(f"cannot connect to {relay.host}:{relay.port}: {error}") from None
    session = _Session(reader, writer, relay.timeout)
    try:
        await session.expect("greeting", 220)
        extensions = await session.hello(relay.helo_name)
        if relay.tls is not None and "STARTTLS" in extensions:
            await session.command("STARTTLS", 220)
            await writer.start_tls(relay.tls, server_hostname=relay.host)
            extensions = await session.hello(relay.helo_name)
        await session.command(f"MAIL FROM:<{sender}>", 250)
        for recipient in recipients:
            await session.command(f"RCPT TO:<{recipient}>", 250, 251)
        await session.command("DATA", 354)
        writer.write(_dot_stuffed(data) + b".\r\n")
        await session.expect("end of data", 250)
        with contextlib.suppress(SendError):
            await session.command("QUIT", 221)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
        raise SendError(f"relay {relay.host}:{relay.port}: {type(e).__name__}: {e}") from None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _dot_stuffed(data: bytes) -> bytes:
    data = _BARE_LF.sub(b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")


class _Session:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout

    async def reply(self) -> tuple[int, list[str]]:
        """One (possibly multi-line) reply: its code and its text lines."""
        lines: list[str] = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), self.timeout)
            if not line.endswith(b"\n") or len(line) > MAX_REPLY_LINE:
                raise SendError("the relay closed the connection or sent a bad reply")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if len(text) < 3 or not text[:3].isdigit():
                raise SendError(f"bad reply from the relay: {text!r}")
            lines.append(text[4:])
            if text[3:4] != "-":
                return int(text[:3]), lines

    async def expect(self, step: str, *codes: int) -> list[str]:
        code, lines = await self.reply()
        if code not in codes:
            raise SendError(f"{step}: {code} {' '.join(lines)}")
        return lines

    async def command(self, line: str, *codes: int) -> list[str]:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()
        return await self.expect(line.split(":")[0], *codes)

    async def hello(self, name: str) -> set[str]:
        self.writer.write(f"EHLO {name}\r\n".encode())
        await self.writer.drain()
        code, lines = await self.reply()
        if code == 250:
            return {line.split(" ")[0].upper() for line in lines[1:]}
        await self.command(f"HELO {name}", 250)
        return set()
