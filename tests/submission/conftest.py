"""A real Roost with submission on port 0 of 127.0.0.1 (plain, loopback: AUTH allowed
before STARTTLS unless a test says otherwise; and implicit TLS), relaying to a
``FakeRelay``; accounts alice (alice@example.org by [delivery] domains) and bob."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from roost.auth.authenticator import StoreAuthenticator
from roost.auth.passwords import hash_password
from roost.auth.throttle import LoginThrottle, ThrottlePolicy
from roost.config import AuthSettings, DeliverySettings, Settings
from roost.config.submission import RelayTarget
from roost.runtime.app import Server
from roost.runtime.listeners import SUBMISSION
from roost.store.sqlite import SqliteStore
from tests.conftest import FAST_HASHER, PASSWORD
from tests.support.fake_relay import FakeRelay
from tests.support.imap_client import ImapClient

ANY_PORT = "127.0.0.1:0"
USERS = ("alice", "bob")


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class SmtpClient:
    """Raw lines in, whole replies out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, *, tls: bool = False) -> SmtpClient:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_tls() if tls else None, limit=1 << 22
        )
        client = cls(reader, writer)
        greeting = await client.reply()
        assert greeting.startswith("220 "), greeting
        return client

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def reply(self) -> str:
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

    async def starttls(self) -> None:
        assert (await self.command("STARTTLS")).startswith("220 ")
        await self.writer.start_tls(client_tls())

    async def login(self, user: str = "alice", password: str = PASSWORD) -> str:
        assert (await self.command("EHLO client.example")).startswith("250")
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return await self.command(f"AUTH PLAIN {token}")

    async def send_message(self, sender: str, recipients: list[str], message: bytes) -> str:
        """MAIL, RCPT, DATA one by one (each must succeed); the reply to the end."""
        assert (await self.command(f"MAIL FROM:<{sender}>")).startswith("250")
        for recipient in recipients:
            assert (await self.command(f"RCPT TO:<{recipient}>")).startswith("250")
        assert (await self.command("DATA")).startswith("354")
        stuffed = message.replace(b"\r\n.", b"\r\n..")
        await self.send(stuffed + b".\r\n")
        return await self.reply()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def message(sender: str = "alice@example.org", to: str = "carol@elsewhere.test") -> bytes:
    return (
        f"From: Alice <{sender}>\r\nTo: {to}\r\nSubject: Hello\r\n"
        "Message-ID: <1@example.org>\r\n\r\nHi there.\r\n.leading dot\r\n"
    ).encode()


@dataclass
class SubmissionServer:
    server: Server
    store: SqliteStore
    relay: FakeRelay
    authenticator: StoreAuthenticator
    clients: list[SmtpClient] = field(default_factory=list)
    imap_clients: list[ImapClient] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.address(protocol=SUBMISSION)[1]

    @property
    def tls_port(self) -> int:
        return self.server.address(protocol=SUBMISSION, implicit_tls=True)[1]

    async def connect(self, *, tls: bool = False) -> SmtpClient:
        client = await SmtpClient.connect(self.tls_port if tls else self.port, tls=tls)
        self.clients.append(client)
        return client

    async def signed_in(self, user: str = "alice") -> SmtpClient:
        client = await self.connect()
        assert (await client.login(user)).startswith("235 ")
        return client

    async def imap(self, user: str = "alice") -> ImapClient:
        client = await ImapClient.connect("127.0.0.1", self.server.address()[1])
        self.imap_clients.append(client)
        await client.login(user, PASSWORD)
        return client

    async def mailbox(self, user: str, name: str) -> list[bytes]:
        account = await self.store.open_account(user)
        try:
            info = await account.get_mailbox(name)
            uids = (await account.snapshot(info.id)).uids
            out = []
            for meta in await account.fetch_meta(info.id, uids, with_model=False):
                out.append(b"".join([chunk async for chunk in account.read_message(meta)]))
            return out
        finally:
            await account.close()


@asynccontextmanager
async def submission_server(
    fake: FakeRelay | None = None, *, lmtp_port: int | None = None, **submission: Any
) -> AsyncIterator[SubmissionServer]:
    """``submission`` replaces [submission] settings (``relay=`` another target);
    ``lmtp_port``: an LMTP listener there too, for a relay that delivers back."""
    relay = fake or FakeRelay()
    await relay.start()
    data_dir = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))
    settings = Settings.for_dev(
        data_dir / "d",
        [ANY_PORT],
        [],
        [],
        [],
        submission_listen=[ANY_PORT],
        submissions_listen=[ANY_PORT],
        lmtp_listen=[f"127.0.0.1:{lmtp_port}"] if lmtp_port else [],
    )
    changes: dict[str, Any] = {
        "relay": RelayTarget("127.0.0.1", relay.port),
        "relay_timeout": 5.0,
        **submission,
    }
    settings = settings.replace(
        auth=AuthSettings.without_delays(),
        imap=dataclasses.replace(settings.imap, starttls=False),
        delivery=DeliverySettings(domains=("example.org",), strip_domain=True),
        submission=dataclasses.replace(settings.submission, **changes),
    )
    store = await SqliteStore.open(data_dir / "store", durable=False)
    authenticator = StoreAuthenticator(
        store, LoginThrottle(ThrottlePolicy.disabled()), hasher=FAST_HASHER, rehash=False
    )
    server = Server(settings, store=store, authenticator=authenticator)
    for user in USERS:
        await store.create_account(user, hash_password(PASSWORD, hasher=FAST_HASHER))
    await server.start()
    handle = SubmissionServer(server, store, relay, authenticator)
    try:
        yield handle
    finally:
        for client in handle.clients:
            await client.close()
        for imap in handle.imap_clients:
            await imap.close()
        await server.shutdown()
        await store.close()
        await relay.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
async def submission() -> AsyncIterator[SubmissionServer]:
    async with submission_server() as handle:
        yield handle
