"""A real Roost with a ManageSieve listener on port 0 of 127.0.0.1 (plaintext sign-in
allowed there, as on loopback), a fresh store and the account alice; and a small client
that reads whole responses (data lines, then OK/NO/BYE)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
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
from roost.config import AuthSettings, Settings
from roost.config.sections import ListenAddress, ManageSieveSettings
from roost.runtime.app import Server
from roost.runtime.listeners import MANAGESIEVE
from roost.store.sqlite import SqliteStore
from tests.conftest import FAST_HASHER, PASSWORD


class SieveClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def line(self) -> bytes:
        line = await asyncio.wait_for(self.reader.readline(), 10)
        assert line.endswith(b"\r\n"), line
        return line[:-2]

    async def response(self) -> tuple[list[bytes], bytes]:
        """Data lines (a literal's content as one item) and the final OK/NO/BYE line."""
        data: list[bytes] = []
        while True:
            line = await self.line()
            if line.startswith((b"OK", b"NO", b"BYE")):
                return data, line
            if line.startswith(b"{") and line.endswith(b"}"):
                size = int(line[1:-1].rstrip(b"+"))
                data.append(await asyncio.wait_for(self.reader.readexactly(size), 10))
                continue
            data.append(line)

    async def command(self, line: bytes | str) -> tuple[list[bytes], bytes]:
        await self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return await self.response()

    async def login(self, user: str = "alice", password: str = PASSWORD) -> bytes:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        _, final = await self.command(f'AUTHENTICATE "PLAIN" "{token}"')
        return final

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@dataclass
class SieveServer:
    server: Server
    store: SqliteStore
    authenticator: StoreAuthenticator
    clients: list[SieveClient] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.address(protocol=MANAGESIEVE)[1]

    async def connect(self, *, greeting: bool = True) -> SieveClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        client = SieveClient(reader, writer)
        self.clients.append(client)
        if greeting:
            _, final = await client.response()
            assert final.startswith(b"OK")
        return client

    async def signed_in(self) -> SieveClient:
        client = await self.connect()
        assert (await client.login()).startswith(b"OK")
        return client


@asynccontextmanager
async def managesieve_server(**options: Any) -> AsyncIterator[SieveServer]:
    data_dir = Path(tempfile.mkdtemp(prefix="rms-", dir="/tmp"))
    settings = Settings.for_dev(data_dir / "d", ["127.0.0.1:0"], [], [], [])
    settings = settings.replace(
        auth=AuthSettings.without_delays(),
        imap=dataclasses.replace(settings.imap, starttls=False),
        managesieve=ManageSieveSettings(
            listen=(ListenAddress("127.0.0.1", 0),),
            **{"allow_plaintext_auth": True, **options},
        ),
    )
    store = await SqliteStore.open(data_dir / "store", durable=False)
    authenticator = StoreAuthenticator(
        store, LoginThrottle(ThrottlePolicy.disabled()), hasher=FAST_HASHER, rehash=False
    )
    server = Server(settings, store=store, authenticator=authenticator)
    await server.start()
    await store.create_account("alice", hash_password(PASSWORD, hasher=FAST_HASHER))
    handle = SieveServer(server, store, authenticator)
    try:
        yield handle
    finally:
        for client in handle.clients:
            await client.close()
        await server.shutdown()
        await store.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
async def managesieve() -> AsyncIterator[SieveServer]:
    async with managesieve_server() as handle:
        yield handle
