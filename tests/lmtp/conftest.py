"""A real Roost (``runtime.app.Server``) with IMAP and LMTP on port 0 of 127.0.0.1 and
the private LMTP socket, on a fresh store; accounts alice, bob and carol."""

from __future__ import annotations

import dataclasses
import shutil
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
from roost.config.sections import SieveSettings
from roost.runtime.app import Server
from roost.runtime.listeners import LMTP
from roost.store.sqlite import SqliteStore
from tests.conftest import FAST_HASHER, PASSWORD
from tests.support.imap_client import ImapClient
from tests.support.lmtp_client import LmtpClient

ANY_PORT = "127.0.0.1:0"
USERS = ("alice", "bob", "carol")


@dataclass
class LmtpServer:
    server: Server
    store: SqliteStore
    data_dir: Path
    clients: list[LmtpClient | ImapClient] = field(default_factory=list)

    @property
    def lmtp_port(self) -> int:
        return self.server.address(protocol=LMTP)[1]

    async def connect(self, *, lhlo: bool = True) -> LmtpClient:
        client = await LmtpClient.connect("127.0.0.1", self.lmtp_port)
        self.clients.append(client)
        if lhlo:
            assert (await client.lhlo()).startswith("250")
        return client

    async def imap(self, user: str = "alice", select: str | None = "INBOX") -> ImapClient:
        client = await ImapClient.connect("127.0.0.1", self.server.address()[1])
        self.clients.append(client)
        await client.login(user, PASSWORD)
        if select:
            await client.ok(f'SELECT "{select}"')
        return client

    async def messages(self, user: str = "alice", mailbox: str = "INBOX") -> list[bytes]:
        """The stored bytes of every message in ``mailbox``, by ascending UID."""
        account = await self.store.open_account(user)
        try:
            info = await account.get_mailbox(mailbox)
            uids = (await account.snapshot(info.id)).uids
            out = []
            for meta in await account.fetch_meta(info.id, uids, with_model=False):
                out.append(b"".join([chunk async for chunk in account.read_message(meta)]))
            return out
        finally:
            await account.close()


@asynccontextmanager
async def lmtp_server(
    sieve: SieveSettings | None = None, **delivery: Any
) -> AsyncIterator[LmtpServer]:
    # A short directory: the private socket's path must fit a sockaddr_un.
    data_dir = Path(tempfile.mkdtemp(prefix="rl-", dir="/tmp"))
    settings = Settings.for_dev(data_dir / "d", [ANY_PORT], [], [], [], lmtp_listen=[ANY_PORT])
    settings = settings.replace(
        auth=AuthSettings.without_delays(),
        imap=dataclasses.replace(settings.imap, starttls=False),
        delivery=DeliverySettings(
            **{"domains": ("example.org",), "strip_domain": True, **delivery}
        ),
        sieve=sieve or settings.sieve,
    )
    store = await SqliteStore.open(data_dir / "store", durable=False)
    authenticator = StoreAuthenticator(
        store, LoginThrottle(ThrottlePolicy.disabled()), hasher=FAST_HASHER, rehash=False
    )
    server = Server(settings, store=store, authenticator=authenticator)
    await server.start()
    handle = LmtpServer(server, store, settings.server.data_dir)
    for user in USERS:
        await store.create_account(user, hash_password(PASSWORD, hasher=FAST_HASHER))
    try:
        yield handle
    finally:
        for client in handle.clients:
            await client.close()
        await server.shutdown()
        await store.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
async def lmtp() -> AsyncIterator[LmtpServer]:
    async with lmtp_server() as handle:
        yield handle
