"""A real Roost — ``roost.runtime.app.Server`` with IMAP and POP3 listeners on port 0 of
127.0.0.1 — on a fresh store in a temporary directory, so that POP3 tests can watch
the same INBOX over IMAP. Each test starts from nothing; nothing waits on a clock."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from roost.auth.authenticator import StoreAuthenticator
from roost.auth.passwords import hash_password
from roost.auth.throttle import LoginThrottle, ThrottlePolicy
from roost.config import AuthSettings, LimitSettings, Settings
from roost.pop3.context import Pop3Limits
from roost.runtime.app import Server
from roost.runtime.listeners import POP3
from roost.store.base import FlagOp, MessageSource, NewMessage
from roost.store.sqlite import SqliteStore
from tests.conftest import FAST_HASHER, PASSWORD
from tests.support.imap_client import ImapClient
from tests.support.pop3_client import Pop3Client

ANY_PORT = "127.0.0.1:0"


@dataclass
class Pop3Server:
    server: Server
    store: SqliteStore
    data_dir: Path
    authenticator: StoreAuthenticator  # tests may set its tokens, throttle and clock
    clients: list[Pop3Client | ImapClient] = field(default_factory=list)

    @property
    def cert(self) -> Path:
        return self.data_dir / "tls" / "cert.pem"

    @property
    def client_tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def pop3_port(self) -> int:
        return self.server.address(protocol=POP3)[1]

    @property
    def pop3s_port(self) -> int:
        return self.server.address(protocol=POP3, implicit_tls=True)[1]

    @property
    def imap_port(self) -> int:
        return self.server.address()[1]

    async def add_user(self, name: str, password: str = PASSWORD) -> None:
        await self.store.create_account(name, hash_password(password, hasher=FAST_HASHER))

    async def deliver(
        self, *messages: bytes, user: str = "alice", flags: Iterable[str] = ()
    ) -> list[int]:
        """Store ``messages`` in INBOX as an MTA would; return their UIDs."""
        account = await self.store.open_account(user)
        try:
            inbox = await account.get_mailbox("INBOX")
            new = [NewMessage(MessageSource(data=m), frozenset(flags)) for m in messages]
            return (await account.append(inbox.id, new)).uids
        finally:
            await account.close()

    async def inbox(self, user: str = "alice") -> dict[int, frozenset[str]]:
        """UID → flags of every message in INBOX, as the store holds them."""
        account = await self.store.open_account(user)
        try:
            info = await account.get_mailbox("INBOX")
            found = await account.fetch_flags(info.id, (await account.snapshot(info.id)).uids)
            return {uid: flags for uid, flags, _ in found.states()}
        finally:
            await account.close()

    async def mailbox_count(self, name: str, user: str = "alice") -> int:
        account = await self.store.open_account(user)
        try:
            return len((await account.snapshot((await account.get_mailbox(name)).id)).uids)
        finally:
            await account.close()

    async def flag(self, uids: list[int], flag: str, user: str = "alice") -> None:
        account = await self.store.open_account(user)
        try:
            inbox = await account.get_mailbox("INBOX")
            await account.store_flags(inbox.id, uids, FlagOp.ADD, frozenset({flag}))
        finally:
            await account.close()

    async def connect(self, *, implicit_tls: bool = False) -> Pop3Client:
        if implicit_tls:
            client = await Pop3Client.connect(self.host, self.pop3s_port, tls=self.client_tls)
        else:
            client = await Pop3Client.connect(self.host, self.pop3_port)
        self.clients.append(client)
        return client

    async def login(self, user: str = "alice", password: str = PASSWORD) -> Pop3Client:
        client = await self.connect()
        await client.login(user, password)
        return client

    async def imap(self, user: str = "alice", select: bool = True) -> ImapClient:
        """An IMAP session of ``user`` on the same server, INBOX selected."""
        client = await ImapClient.connect(self.host, self.imap_port)
        self.clients.append(client)
        await client.login(user, PASSWORD)
        if select:
            await client.ok("SELECT INBOX")
        return client


@asynccontextmanager
async def pop3_server(
    tmp_path: Path,
    *,
    limits: Pop3Limits | None = None,
    max_connections_per_account: int = 100,
    max_connections_per_ip: int = 50,
    **pop3: Any,
) -> AsyncIterator[Pop3Server]:
    """A running server with the account alice; ``pop3`` overrides [pop3] settings."""
    data_dir = tmp_path / "roost"
    settings = Settings.for_dev(data_dir, [ANY_PORT], [ANY_PORT], [ANY_PORT], [ANY_PORT])
    settings = settings.replace(
        auth=AuthSettings.without_delays(),
        pop3=dataclasses.replace(settings.pop3, **pop3),
        limits=LimitSettings(
            pop3=limits or Pop3Limits(),
            max_connections_per_account=max_connections_per_account,
            max_connections_per_ip=max_connections_per_ip,
        ),
    )
    store = await SqliteStore.open(tmp_path / "store", durable=False)
    authenticator = StoreAuthenticator(
        store, LoginThrottle(ThrottlePolicy.disabled()), hasher=FAST_HASHER, rehash=False
    )
    server = Server(settings, store=store, authenticator=authenticator)
    await server.start()
    handle = Pop3Server(server, store, data_dir, authenticator)
    await handle.add_user("alice")
    try:
        yield handle
    finally:
        for client in handle.clients:
            await client.close()
        await server.shutdown()
        await store.close()


@pytest.fixture
async def pop3(tmp_path: Path) -> AsyncIterator[Pop3Server]:
    """A server with default POP3 settings and the account alice (password PASSWORD)."""
    async with pop3_server(tmp_path) as handle:
        yield handle
