"""The store contract suite: every backend runs every test here (STYLE.md, "one suite
every backend passes"). Add a backend by adding a name to BACKENDS and a case below."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.store.base import Account, MailboxInfo, Store
from roost.store.sqlite import SqliteStore
from tests.support.postgres import SCRATCH

BACKENDS = ["sqlite", "postgresql", "sharded"]

# PostgreSQL: each store path of a test is a scratch database (tests/support/postgres.py);
# sharded: two, as two shards.
_urls: dict[Path, str] = {}
_shard_urls: dict[Path, list[str]] = {}


async def open_store(backend: str, path: Path) -> Store:
    """A store on ``path``; opening the same path again sees the same data."""
    match backend:
        case "sqlite":
            # durable=True: the contract includes the fsyncs, and they are cheap here.
            return await SqliteStore.open(path, durable=True)
        case "postgresql":
            from roost.store.postgres import PostgresStore

            url = _urls.get(path)
            if url is None:
                url = _urls[path] = await SCRATCH.acquire()
            return await PostgresStore.open(url, pool_size=4)
        case "sharded":
            from roost.store.postgres.shards import ShardedStore

            urls = _shard_urls.get(path)
            if urls is None:
                urls = _shard_urls[path] = await make_shards(2)
            return await ShardedStore.open(urls, pool_size=4)
    raise ValueError(f"unknown backend {backend}")


async def make_shards(count: int) -> list[str]:
    """``count`` scratch databases set up as shards (as ``roost db migrate`` does). The
    map counts one phantom account on the first, so that the first account made lands
    on the second shard and the next on the first: tests span both."""
    import asyncpg

    from roost.store.postgres.schema import claim_shard

    urls = [await SCRATCH.acquire() for _ in range(count)]
    for index, url in enumerate(urls):
        conn = await asyncpg.connect(url)
        try:
            await claim_shard(conn, index, count)
            if index == 0:
                await conn.execute(
                    "INSERT INTO account_shards (name_key, shard) VALUES (' phantom', 0)"
                )
        finally:
            await conn.close()
    return urls


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    name: str = request.param
    if name != "sqlite":
        await SCRATCH.check()
    yield name
    while _urls:
        _, url = _urls.popitem()
        await SCRATCH.release(url)
    while _shard_urls:
        _, urls = _shard_urls.popitem()
        for url in urls:
            await SCRATCH.release(url)


@pytest.fixture
async def url() -> AsyncIterator[str]:
    """A scratch PostgreSQL database of the test's own (the PostgreSQL-only tests)."""
    found = await SCRATCH.acquire()
    try:
        yield found
    finally:
        await SCRATCH.release(found)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
async def store(backend: str, store_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(backend, store_path)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def alice(store: Store) -> AsyncIterator[Account]:
    await store.create_account("alice", "hash-of-alice")
    account = await store.open_account("alice")
    try:
        yield account
    finally:
        await account.close()


@pytest.fixture
async def inbox(alice: Account) -> MailboxInfo:
    return await alice.get_mailbox("INBOX")


@pytest.fixture
def inbox_id(inbox: MailboxInfo) -> int:
    return inbox.id
