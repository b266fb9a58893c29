"""Fixtures shared by every test: a real Roost IMAP server on a loopback port, on a
fresh store in a temporary directory, and a guard that fails any test whose server
logged an unhandled exception (STYLE.md §14)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import settings

from roost.auth import scram
from roost.auth.authenticator import StoreAuthenticator
from roost.auth.passwords import hash_password
from roost.auth.throttle import LoginThrottle, ThrottlePolicy
from roost.imap.connection import serve_imap_connection
from roost.imap.context import ImapContext, ImapLimits
from roost.runtime.tls import ensure_self_signed, server_context
from roost.store.base import Store
from roost.store.sqlite import SqliteStore
from tests.support.imap_client import ImapClient
from tests.support.postgres import SCRATCH

# Cheap hashing for tests: the real parameters are exercised in tests/unit.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "secret pass"

# Every Hypothesis test draws the same examples on every run (derandomized, no example
# database), so a run on a fresh clone cannot fail by chance; a failure prints the
# blob that replays it. `make fuzz` (ROOST_FUZZ_SECONDS) draws fresh random examples.
settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
if not os.environ.get("ROOST_FUZZ_SECONDS"):
    settings.load_profile("deterministic")


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_server_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    collector = _ErrorCollector()
    logger = logging.getLogger("roost")
    logger.addHandler(collector)
    try:
        yield
    finally:
        logger.removeHandler(collector)
    if collector.records and "allow_server_errors" not in request.keywords:
        messages = [collector.format(r) for r in collector.records]
        pytest.fail("server logged errors:\n" + "\n".join(messages))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """PostgreSQL databases made by this run's tests go with it. A hook, not a session
    fixture's teardown: that would run inside the last test's per-test timeout, and each
    DROP DATABASE waits for a checkpoint, which a loaded machine can make slow. A
    database left behind is reported, never a failed run: the next run makes new ones."""
    try:
        asyncio.run(SCRATCH.drop_all())
    except Exception as error:  # cleanup of a run that has already been judged
        print(f"\nscratch PostgreSQL databases not dropped: {error!r}", file=sys.stderr)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_backends: run on the SQLite and PostgreSQL stores")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_backends`` run once on each store backend (the ``imap``
    server's, or ``store_url`` for a test that starts its own): the transcripts that
    touch the store. test_auth, test_limits and test_conformance stay on SQLite: their
    subject is the wire, TLS and sign-in layers and protocol details, whose store calls
    the other transcripts make on PostgreSQL too (test_sign_in, test_messages…)."""
    marked = metafunc.definition.get_closest_marker("both_backends") is not None
    if marked and "store_backend" in metafunc.fixturenames:
        metafunc.parametrize("store_backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@dataclass
class ImapServer:
    host: str
    port: int
    store: Store
    context: ImapContext
    data_dir: Path
    client_tls: ssl.SSLContext
    clients: list[ImapClient] = field(default_factory=list)
    connection_tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def add_user(self, name: str, password: str = PASSWORD) -> None:
        """As ``roost user add`` does: the password's hash and its SCRAM keys."""
        password_hash = hash_password(password, hasher=FAST_HASHER)
        await self.store.create_account(name, password_hash)
        keys = scram.derive_keys(password, iterations=scram.MIN_ITERATIONS).encode()
        await self.store.set_password(name, password_hash, keys)

    async def connect(self, *, tls: bool = False) -> ImapClient:
        client = await ImapClient.connect(
            self.host, self.port, tls=self.client_tls if tls else None
        )
        self.clients.append(client)
        return client

    async def login(self, user: str = "alice", password: str = PASSWORD) -> ImapClient:
        client = await self.connect()
        await client.login(user, password)
        return client

    async def share_team(
        self, rights: str, content: bytes | None = None
    ) -> tuple[ImapClient, ImapClient]:
        """alice, signed in with her mailbox Team (holding ``content`` when given)
        granted to bob with ``rights``, and bob signed in: the shared-folder tests'
        starting point (RFC 4314)."""
        await self.add_user("bob")
        alice = await self.login()
        await alice.ok("CREATE Team")
        if content is not None:
            await alice.append("Team", content)
        await alice.ok(f'SETACL Team bob "{rights}"')
        return alice, await self.login("bob")


async def start_imap_server(
    data_dir: Path,
    *,
    limits: ImapLimits | None = None,
    allow_plaintext_auth: bool = True,
    implicit_tls: bool = False,
    store_url: str | None = None,
) -> tuple[ImapServer, asyncio.Server]:
    store: Store
    if store_url is None:
        store = await SqliteStore.open(data_dir / "data", durable=False)
    else:
        from roost.store.postgres import PostgresStore

        # One process: its hub carries the events, and no LISTEN connection is needed.
        store = await PostgresStore.open(store_url, pool_size=4, listen=False)
    cert, key = ensure_self_signed(data_dir / "tls")
    tls = server_context(cert, key)
    context = ImapContext(
        store=store,
        authenticator=StoreAuthenticator(
            store, LoginThrottle(ThrottlePolicy.disabled()), hasher=FAST_HASHER, rehash=False
        ),
        limits=limits or ImapLimits(),
        tls_context=tls,
        allow_plaintext_auth=allow_plaintext_auth,
        spool_dir=data_dir,
    )

    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        peer = writer.get_extra_info("peername")
        try:
            await serve_imap_connection(
                reader, writer, context, tls_active=implicit_tls, remote_ip=str(peer[0])
            )
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls if implicit_tls else None)
    port = server.sockets[0].getsockname()[1]
    client_tls = ssl.create_default_context(cafile=str(cert))
    client_tls.check_hostname = False
    handle_ = ImapServer("127.0.0.1", port, store, context, data_dir, client_tls)
    handle_.connection_tasks = tasks
    return handle_, server


async def stop_imap_server(handle: ImapServer, server: asyncio.Server) -> None:
    for client in handle.clients:
        await client.close()
    server.close()
    if handle.connection_tasks:
        # Connections end on the clients' EOF; anything still running is cancelled.
        _, pending = await asyncio.wait(handle.connection_tasks, timeout=5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    await handle.store.close()


@contextlib.asynccontextmanager
async def backend_url(store_backend: str) -> AsyncIterator[str | None]:
    """``store_url`` for start_imap_server: None (a fresh SQLite store) or an empty
    scratch PostgreSQL database, emptied again afterwards."""
    url = await SCRATCH.acquire() if store_backend == "postgresql" else None
    try:
        yield url
    finally:
        if url is not None:
            await SCRATCH.release(url)


@pytest.fixture
async def store_url(store_backend: str) -> AsyncIterator[str | None]:
    """For tests that start their own server: pass it as ``store_url``."""
    async with backend_url(store_backend) as url:
        yield url


@pytest.fixture
async def imap(tmp_path: Path, store_url: str | None) -> AsyncIterator[ImapServer]:
    """A server with one account, alice, whose password is PASSWORD; on PostgreSQL in
    tests marked ``both_backends`` (once on each)."""
    handle, server = await start_imap_server(tmp_path, store_url=store_url)
    await handle.add_user("alice")
    try:
        yield handle
    finally:
        await stop_imap_server(handle, server)
