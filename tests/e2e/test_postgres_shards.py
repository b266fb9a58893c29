"""Two ``roost serve`` nodes on a store of two shards (two databases on the local
server; issue 15, store/postgres/shards.py): each node serves accounts of either
shard over IMAP and LMTP, an IDLE on an account of the second shard hears an APPEND
made through the other node, and a node refuses to start while a shard's schema is
stale.

Every process is started here and stopped by its own PID.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from argon2 import PasswordHasher

from roost.auth.passwords import hash_password
from roost.store.postgres.schema import claim_shard
from roost.store.postgres.shards import ShardedStore
from tests.support.imap_client import ImapClient, message
from tests.support.lmtp_client import LmtpClient
from tests.support.postgres import ScratchDatabases
from tests.support.server_process import RoostProcess, start_all, stop_all_clean, write_config

PASSWORD = "secret pass"
HOST = "127.0.0.1"
# alice on the first shard, bob on the second.
PLACES = {"alice": 0, "bob": 1}


@pytest.fixture
async def shards() -> AsyncIterator[list[str]]:
    scratch = ScratchDatabases()
    urls = [await scratch.acquire(), await scratch.acquire()]
    for index, url in enumerate(urls):
        conn = await asyncpg.connect(url)
        try:
            await claim_shard(conn, index, len(urls))
        finally:
            await conn.close()
    store = await ShardedStore.open(urls, listen=False)
    try:
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        for name, shard in PLACES.items():
            password_hash = hash_password(PASSWORD, hasher=hasher)
            await store.create_account(name, password_hash, shard=shard)
    finally:
        await store.close()
    try:
        yield urls
    finally:
        await scratch.drop_all()


def node_config(tmp_path: Path, n: int, urls: list[str]) -> Path:
    config = write_config(tmp_path / f"node{n}.toml", tmp_path / f"data{n}")
    with config.open("a") as file:
        file.write(
            "\n".join(
                [
                    "[store]",
                    'backend = "postgresql"',
                    f"shards = [{', '.join(repr(url) for url in urls)}]",
                    "[lmtp]",
                    'listen = ["127.0.0.1:0"]',
                    "[delivery]",
                    'domains = ["example.org"]',
                    "strip_domain = true",
                    "",
                ]
            )
        )
    return config


@pytest.fixture
async def nodes(tmp_path: Path, shards: list[str]) -> AsyncIterator[list[RoostProcess]]:
    processes = [
        RoostProcess(node_config(tmp_path, n, shards), tmp_path / f"node{n}.log") for n in (1, 2)
    ]
    try:
        await start_all(processes)
        yield processes
    finally:
        stop_all_clean(processes)


async def login(node: RoostProcess, user: str) -> ImapClient:
    client = await ImapClient.connect(HOST, node.port)
    await client.login(user, PASSWORD)
    return client


async def messages_on(url: str, user: str) -> int:
    """The messages the database at ``url`` holds for ``user``."""
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM messages m JOIN accounts a ON a.id = m.account_id"
            " WHERE a.name_key = $1",
            user,
        )
        return count
    finally:
        await conn.close()


async def test_imap_and_lmtp_serve_accounts_of_either_shard(
    nodes: list[RoostProcess], shards: list[str]
) -> None:
    for user in PLACES:
        client = await login(nodes[0], user)
        try:
            reply = await client.append("INBOX", message(f"appended for {user}"))
            assert b"[APPENDUID" in reply.line
            lmtp = await LmtpClient.connect(HOST, nodes[1].lmtp_port)
            try:
                assert (await lmtp.lhlo()).startswith("250")
                body = message(f"delivered to {user}")
                _, final = await lmtp.send_message("s@example.net", [f"{user}@example.org"], body)
                assert final[0].startswith("250 2.0.0"), final
            finally:
                await lmtp.close()
            selected = await client.ok("SELECT INBOX")
            assert b"* 2 EXISTS" in selected.untagged
            fetched = await client.ok("FETCH 1:2 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
            text = b"\n".join(fetched.untagged)
            assert f"appended for {user}".encode() in text
            assert f"delivered to {user}".encode() in text
        finally:
            await client.close()
    # Each account's mail is on its own shard, and only there.
    for user, shard in PLACES.items():
        assert await messages_on(shards[shard], user) == 2
        assert await messages_on(shards[1 - shard], user) == 0


async def test_idle_on_the_second_shard_hears_an_append_through_another_node(
    nodes: list[RoostProcess],
) -> None:
    watcher = await login(nodes[0], "bob")
    writer = await login(nodes[1], "bob")
    try:
        await watcher.ok("SELECT INBOX")
        tag = await watcher.idle()
        reply = await writer.append("INBOX", message("through node 2"))
        assert b"[APPENDUID" in reply.line
        async with asyncio.timeout(30):
            while not (await watcher.read_response()).startswith(b"* 1 EXISTS"):
                pass
        await watcher.done(tag)
    finally:
        await watcher.close()
        await writer.close()


async def test_a_node_refuses_to_start_while_a_shard_schema_is_stale(
    tmp_path: Path, shards: list[str]
) -> None:
    conn = await asyncpg.connect(shards[1])
    try:
        await conn.execute("UPDATE roost_schema SET version = version - 1")
    finally:
        await conn.close()
    node = RoostProcess(node_config(tmp_path, 1, shards), tmp_path / "node1.log")
    try:
        with pytest.raises(AssertionError, match="no banner"):
            node.start()
    finally:
        node.stop()
    log = node.log_path.read_text()
    assert "shard 2" in log and "roost db migrate" in log, log


async def test_an_account_moved_under_a_session_keeps_its_mail_and_uids(
    nodes: list[RoostProcess], shards: list[str]
) -> None:
    """``move_account`` while a session of bob is open: that session's next write is
    refused, nothing is lost, and a new session (on either node) sees the same mailbox
    with the same UIDVALIDITY and UIDs, now served from the first shard."""
    from roost.store.postgres.move import move_account

    old = await login(nodes[0], "bob")
    try:
        first = await old.append("INBOX", message("before the move"))
        selected = await old.ok("SELECT INBOX")
        store = await ShardedStore.open(shards, listen=False)
        try:
            await move_account(store, "bob", 0, lambda _line: None)
        finally:
            await store.close()
        refused = await old.command(b"APPEND INBOX {5+}\r\nHello")
        assert refused.status == "NO", refused.line
    finally:
        await old.close()
    assert await messages_on(shards[0], "bob") == 1
    assert await messages_on(shards[1], "bob") == 0
    for node in nodes:
        new = await login(node, "bob")
        try:
            again = await new.ok("SELECT INBOX")
            validity = [u for u in again.untagged if b"UIDVALIDITY" in u]
            assert validity == [u for u in selected.untagged if b"UIDVALIDITY" in u]
            assert b"* 1 EXISTS" in again.untagged
            uids = await new.ok("UID FETCH 1:* (FLAGS)")
            assert uids.untagged[0].startswith(b"* 1 FETCH (UID 1 ")
        finally:
            await new.close()
    assert b"[APPENDUID" in first.line
