"""A small asyncio SMTP client that hands one submitted message to the site's relay.

Roost does not queue: the submitting client waits while the message is relayed and
gets the relay's verdict as its own reply to the end of DATA (or BDAT LAST).

Invariants:

- One connection per message: EHLO, AUTH PLAIN when credentials are configured, MAIL
  and every RCPT (pipelined when the relay offers PIPELINING, RFC 2920), then BDAT
  LAST when it offers CHUNKING (RFC 3030) or DATA with dot-stuffing, then QUIT.
- What the client asked for is passed on only where the relay advertised it: SIZE,
  BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), RET/ENVID/NOTIFY/ORCPT (RFC 3461).
  A need the relay cannot meet (SMTPUTF8, BINARYMIME) is a permanent 5xx, since a
  retry would meet the same relay.
- Anything transient — cannot connect, a timeout, the connection closing, a 4xx — is
  ``451 4.4.1`` (RFC 3463: no answer from host), so the client keeps the message and
  retries. A relay's 5xx is passed through, code, enhanced code and text: the relay
  is the one that knows why it is permanent.
- Nothing is sent after a refused recipient: a message goes to every recipient or to
  none, because the client was told each one was accepted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from roost.config.submission import RelayTarget
from roost.smtp import Body, MailParams, RcptParams, Reply

log = logging.getLogger("roost.submission.relay")

MAX_REPLY_LINES = 100
MAX_LINE = 4096
CHUNK = 256 * 1024

_ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})(?: |$)")


def unavailable(why: str) -> Reply:
    return Reply(451, "4.4.1", f"Relay unavailable, try again later ({why})")


class RelayError(Exception):
    """The relay cannot be talked to: gone, silent, or speaking nonsense."""


@dataclass(frozen=True, slots=True)
class RelayEnvelope:
    sender: str  # "" for the null reverse-path
    params: MailParams
    recipients: tuple[tuple[str, RcptParams], ...]


@dataclass(frozen=True, slots=True)
class RelayReply:
    code: int
    lines: tuple[str, ...]

    @property
    def enhanced(self) -> str | None:
        match = _ENHANCED.match(self.lines[-1]) if self.lines else None
        return match.group(1) if match else None

    @property
    def text(self) -> str:
        last = self.lines[-1] if self.lines else ""
        enhanced = self.enhanced
        return last[len(enhanced) :].strip() if enhanced else last

    def __str__(self) -> str:
        return f"{self.code} {self.lines[-1] if self.lines else ''}".strip()


class _Client:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.extensions: dict[str, str] = {}

    async def reply(self) -> RelayReply:
        lines: list[str] = []
        while True:
            try:
                raw = await asyncio.wait_for(self.reader.readline(), self.timeout)
            except TimeoutError:
                raise RelayError("timed out waiting for the relay") from None
            if not raw.endswith(b"\n"):
                raise RelayError("the relay closed the connection")
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if len(line) < 3 or not line[:3].isdigit() or len(raw) > MAX_LINE:
                raise RelayError(f"not an SMTP reply: {line[:80]!r}")
            lines.append(line[4:])
            if len(lines) > MAX_REPLY_LINES:
                raise RelayError("reply too long")
            if line[3:4] != "-":
                return RelayReply(int(line[:3]), tuple(lines))

    async def send(self, *lines: str) -> None:
        self.writer.write(b"".join(line.encode() + b"\r\n" for line in lines))
        await self.drain()

    async def drain(self) -> None:
        try:
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except TimeoutError:
            raise RelayError("timed out writing to the relay") from None

    async def command(self, line: str) -> RelayReply:
        await self.send(line)
        return await self.reply()

    async def hello(self, name: str) -> RelayReply:
        reply = await self.command(f"EHLO {name}")
        if reply.code == 250:
            for line in reply.lines[1:]:
                keyword, _, value = line.partition(" ")
                self.extensions[keyword.upper()] = value
            return reply
        return await self.command(f"HELO {name}")

    def has(self, keyword: str) -> bool:
        return keyword in self.extensions


def _refusal(reply: RelayReply, what: str) -> Reply:
    """The client's answer to a relay's non-success reply."""
    if 500 <= reply.code < 600:
        return Reply(reply.code, reply.enhanced or "5.0.0", f"Relay refused {what}: {reply.text}")
    return unavailable(f"relay answered {what} with {reply}")


async def relay_message(
    target: RelayTarget,
    envelope: RelayEnvelope,
    content: AsyncIterator[bytes],
    size: int,
    *,
    helo_name: str,
    reply_timeout: float,
    tls_context: ssl.SSLContext | None = None,
) -> Reply:
    """Relay one message; the reply is what the submitting client is told.
    ``reply_timeout`` bounds the connection and each wait for the relay."""
    try:
        async with asyncio.timeout(reply_timeout):
            reader, writer = await asyncio.open_connection(
                target.host,
                target.port,
                ssl=(tls_context or ssl.create_default_context()) if target.tls else None,
                limit=MAX_LINE * 2,
            )
    except (OSError, TimeoutError, ssl.SSLError) as error:
        log.warning("relay %s: cannot connect: %s", target, error)
        return unavailable("cannot connect")
    client = _Client(reader, writer, reply_timeout)
    try:
        return await _transaction(client, target, envelope, content, size, helo_name)
    except (RelayError, OSError, asyncio.IncompleteReadError, ssl.SSLError) as error:
        log.warning("relay %s: %s", target, error)
        return unavailable(str(error) or type(error).__name__)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


async def _transaction(
    client: _Client,
    target: RelayTarget,
    envelope: RelayEnvelope,
    content: AsyncIterator[bytes],
    size: int,
    helo_name: str,
) -> Reply:
    greeting = await client.reply()
    if greeting.code != 220:
        return _refusal(greeting, "the connection")
    hello = await client.hello(helo_name)
    if hello.code != 250:
        return _refusal(hello, "the greeting")
    if target.username is not None and target.password is not None:
        if not client.has("AUTH"):
            raise RelayError("the relay offers no AUTH but relay credentials are set")
        token = f"\0{target.username}\0{target.password}".encode()
        reply = await client.command("AUTH PLAIN " + base64.b64encode(token).decode())
        if reply.code != 235:
            log.error("relay %s refused Roost's credentials: %s", target, reply)
            return unavailable("the relay refused Roost's credentials")
    mail = _mail_command(client, envelope, size)
    if isinstance(mail, Reply):
        return mail
    rcpts = [_rcpt_command(client, address, params) for address, params in envelope.recipients]
    replies = await _pipeline(client, [mail, *rcpts])
    if replies[0].code != 250:
        return _refusal(replies[0], "the sender")
    for (address, _), reply in zip(envelope.recipients, replies[1:], strict=True):
        if reply.code not in (250, 251):
            with contextlib.suppress(RelayError, OSError):
                await client.command("RSET")
            return _refusal(reply, f"<{address}>")
    if client.has("CHUNKING"):
        final = await _send_bdat(client, content, size)
    else:
        final = await _send_data(client, content)
    with contextlib.suppress(RelayError, OSError):
        await client.send("QUIT")
    if final.code == 250:
        return Reply(250, final.enhanced or "2.0.0", f"Sent: {final.text}".rstrip(": "))
    return _refusal(final, "the message")


def _mail_command(client: _Client, envelope: RelayEnvelope, size: int) -> str | Reply:
    params = envelope.params
    words = [f"MAIL FROM:<{envelope.sender}>"]
    if client.has("SIZE"):
        words.append(f"SIZE={size}")
    if params.body is Body.BINARY_MIME:
        if not (client.has("BINARYMIME") and client.has("CHUNKING")):
            return Reply(554, "5.6.3", "The relay cannot take BINARYMIME")
        words.append("BODY=BINARYMIME")
    elif params.body is Body.EIGHT_BIT_MIME and client.has("8BITMIME"):
        words.append("BODY=8BITMIME")
    if params.smtputf8:
        if not client.has("SMTPUTF8"):
            return Reply(553, "5.6.7", "The relay cannot take SMTPUTF8 addresses")
        words.append("SMTPUTF8")
    if client.has("DSN"):
        if params.ret:
            words.append(f"RET={params.ret}")
        if params.envid:
            words.append(f"ENVID={params.envid}")
    return " ".join(words)


def _rcpt_command(client: _Client, address: str, params: RcptParams) -> str:
    words = [f"RCPT TO:<{address}>"]
    if client.has("DSN"):
        if params.notify:
            words.append("NOTIFY=" + ",".join(params.notify))
        if params.orcpt:
            words.append(f"ORCPT={params.orcpt}")
    return " ".join(words)


async def _pipeline(client: _Client, commands: Sequence[str]) -> list[RelayReply]:
    """One write and the replies in order with PIPELINING; one by one without."""
    if client.has("PIPELINING"):
        await client.send(*commands)
        return [await client.reply() for _ in commands]
    out = []
    for command in commands:
        reply = await client.command(command)
        out.append(reply)
        if reply.code >= 400 and command.startswith("MAIL"):
            return out + [reply] * (len(commands) - 1)  # no transaction: RCPTs moot
    return out


async def _send_bdat(client: _Client, content: AsyncIterator[bytes], size: int) -> RelayReply:
    """One BDAT of the whole message (RFC 3030 §2): its size is known from the spool."""
    client.writer.write(f"BDAT {size} LAST\r\n".encode())
    sent = 0
    async for chunk in content:
        client.writer.write(chunk)
        sent += len(chunk)
        await client.drain()
    if sent != size:
        raise RelayError(f"message changed size while relaying ({sent} != {size})")
    return await client.reply()


async def _send_data(client: _Client, content: AsyncIterator[bytes]) -> RelayReply:
    reply = await client.command("DATA")
    if reply.code != 354:
        return reply
    at_line_start = True
    last = b""
    async for chunk in content:
        if not chunk:
            continue
        stuffed = chunk.replace(b"\n.", b"\n..")
        if at_line_start and stuffed.startswith(b"."):
            stuffed = b"." + stuffed  # RFC 5321 §4.5.2
        client.writer.write(stuffed)
        at_line_start = chunk.endswith(b"\n")
        last = chunk[-2:] if len(chunk) >= 2 else last[-1:] + chunk
        await client.drain()
    client.writer.write(b".\r\n" if last.endswith(b"\r\n") or not last else b"\r\n.\r\n")
    await client.drain()
    return await client.reply()
