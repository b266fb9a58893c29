"""What only the PostgreSQL backend has: change events between stores (nodes) by
LISTEN/NOTIFY, the resync after a dropped LISTEN connection, the schema check at
start, and message bytes in chunks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from roost.store.base import (
    DELETED,
    FlagOp,
    MailboxChanged,
    MailboxListChanged,
    MessageSource,
    NewMessage,
    StoreBusy,
)
from roost.store.postgres import PostgresStore, pool
from roost.store.postgres import messages as ops
from roost.store.postgres.blobs import CHUNK
from roost.store.postgres.schema import MIGRATIONS, SchemaMismatch, migrate
from roost.store.values import StoreFlagsResult
from tests.store_contract.helpers import message, new, read_all
from tests.support.postgres import PrivateServer


@pytest.fixture
async def two_nodes(url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    one = await PostgresStore.open(url)
    two = await PostgresStore.open(url)
    await one.create_account("alice", "h")
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


async def test_a_change_on_one_node_reaches_listeners_on_another(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    one, two = two_nodes
    watcher = await one.open_account("alice")
    writer = await two.open_account("ALICE")
    listener = watcher.listen()
    try:
        inbox = await writer.get_mailbox("INBOX")
        result = await writer.append(inbox.id, [new(message(1))])
        async with asyncio.timeout(10):
            events = await listener.wait()
        assert events == [MailboxChanged(inbox.id, result.mailbox.highestmodseq)]
        await writer.create_mailbox("Lists")
        async with asyncio.timeout(10):
            assert await listener.wait() == [MailboxListChanged()]
    finally:
        listener.close()
        await watcher.close()
        await writer.close()


async def test_after_a_dropped_listen_connection_every_listener_resyncs(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    one, _ = two_nodes
    account = await one.open_account("alice")
    listener = account.listen()
    notifier = one._notifier
    assert notifier is not None
    try:
        notifier.drop()
        async with asyncio.timeout(10):
            assert await listener.wait() == [MailboxListChanged()]
            await notifier.connected.wait()
    finally:
        listener.close()
        await account.close()


async def test_a_node_refuses_a_schema_it_does_not_know(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE roost_schema SET version = $1", len(MIGRATIONS) + 1)
        with pytest.raises(SchemaMismatch, match="newer"):
            await PostgresStore.open(url)
        await conn.execute("UPDATE roost_schema SET version = $1", len(MIGRATIONS) - 1)
        with pytest.raises(SchemaMismatch, match="roost db migrate"):
            await PostgresStore.open(url)
    finally:
        await conn.execute("UPDATE roost_schema SET version = $1", len(MIGRATIONS))
        await conn.close()


async def test_a_large_message_is_stored_in_chunks_and_read_back_whole(
    url: str, tmp_path: object
) -> None:
    store = await PostgresStore.open(url, listen=False)
    try:
        await store.create_account("alice", "h")
        alice = await store.open_account("alice")
        body = b"".join(b"line %07d of a big message\r\n" % n for n in range(40_000))
        data = message(1, body=body)
        assert len(data) > 3 * CHUNK
        inbox = await alice.get_mailbox("INBOX")
        await alice.append(inbox.id, [NewMessage(MessageSource(data=data))])
        [meta] = await alice.fetch_meta(inbox.id, [1])
        assert meta.size == len(data)
        assert await read_all(alice, meta) == data
        start = CHUNK - 10
        assert await alice.read_range(meta, start, 100) == data[start : start + 100]
        chunks = await store.database.pool.fetchval(
            "SELECT count(*) FROM blob_chunks WHERE blob_id = $1", meta.blob_id
        )
        assert chunks == -(-len(data) // CHUNK)
        await alice.close()
    finally:
        await store.close()


async def test_a_pooled_connection_the_server_cut_is_dropped_and_the_work_runs_again(
    url: str,
) -> None:
    """asyncpg refuses a connection whose server sent its FATAL goodbye while it sat
    idle in the pool (InternalClientError, "another operation is in progress"): the
    work runs on the next connection; if every one is refused, StoreBusy."""
    store = await PostgresStore.open(url, listen=False)
    try:
        tries: list[int] = []

        async def work(conn: asyncpg.Connection) -> int:
            tries.append(1)
            if len(tries) == 1:
                raise asyncpg.InternalClientError("cannot switch to state 12")
            return int(await conn.fetchval("SELECT 7"))

        assert await store.database.plain(work) == 7
        assert len(tries) == 2

        async def refused(conn: asyncpg.Connection) -> None:
            tries.append(1)
            raise asyncpg.InternalClientError("cannot switch to state 15")

        tries.clear()
        with pytest.raises(StoreBusy):
            await store.database.run(refused)
        assert len(tries) == store.database.pool.get_max_size() + 1
    finally:
        await store.close()


async def test_a_restart_of_postgresql_is_a_clean_refusal_then_service_again() -> None:
    """While the server is down, calls fail with StoreBusy (IMAP: NO [UNAVAILABLE]);
    once it is back, the same store serves again, nothing acknowledged is lost, and
    listeners are told to resync."""
    server = PrivateServer()
    try:
        await asyncio.to_thread(server.init)
        conn = await asyncpg.connect(server.url)
        await migrate(conn)
        await conn.close()
        store = await PostgresStore.open(server.url)
        try:
            await store.create_account("alice", "h")
            alice = await store.open_account("alice")
            inbox = await alice.get_mailbox("INBOX")
            await alice.append(inbox.id, [new(message(1))])
            listener = alice.listen()
            await asyncio.to_thread(server.stop)
            with pytest.raises(StoreBusy):
                await alice.append(inbox.id, [new(message(2))])
            with pytest.raises(StoreBusy):
                await alice.list_mailboxes()
            await asyncio.to_thread(server.start)
            async with asyncio.timeout(30):
                assert MailboxListChanged() in await listener.wait()
            result = await alice.append(inbox.id, [new(message(3))])
            assert result.uids == [2]  # the refused APPEND took no UID
            snapshot = await alice.snapshot(inbox.id)
            assert list(snapshot.uids) == [1, 2]
            listener.close()
            await alice.close()
        finally:
            await store.close()
    finally:
        await asyncio.to_thread(server.remove)


async def test_failed_sign_ins_count_on_every_node(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """The throttle's shared failures (auth.throttle.SharedFailures): counted on one
    node, seen by another; a success forgets its pair only."""
    one, two = two_nodes
    first, second = one.shared_sign_in_failures, two.shared_sign_in_failures
    for _ in range(3):
        await first.add("192.0.2.1", "alice")
    await second.add("192.0.2.1", "bob")
    await second.add("198.51.100.7", "alice")
    assert await second.counts("192.0.2.1", "alice", 60) == (4, 4)
    assert await first.counts("203.0.113.9", "carol", 60) == (0, 0)
    await second.forget("192.0.2.1", "alice")
    assert await first.counts("192.0.2.1", "alice", 60) == (1, 1)
    assert await first.counts("192.0.2.1", "alice", 0) == (0, 0)  # outside the window


async def test_a_site_names_the_special_folders(url: str) -> None:
    """``[imap] special_use_names`` reaches PostgreSQL too: a new account gets those
    names (a nested one with its parent), each subscribed, as on SQLite."""
    folders = (("\\Sent", "Mail/Sent Items"), ("\\Trash", "Deleted Items"))
    store = await PostgresStore.open(url, special_folders=folders)
    try:
        await store.create_account("alice", "h")
        account = await store.open_account("alice")
        try:
            boxes = {m.name: m.special_use for m in await account.list_mailboxes()}
            assert boxes == {
                "INBOX": None,
                "Mail": None,
                "Mail/Sent Items": "\\Sent",
                "Deleted Items": "\\Trash",
            }
            assert sorted(await account.list_subscriptions()) == [
                "Deleted Items",
                "INBOX",
                "Mail/Sent Items",
            ]
        finally:
            await account.close()
    finally:
        await store.close()


async def test_a_store_whose_read_went_stale_runs_again_in_the_write_turn(
    two_nodes: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """STORE reads before taking the account's write turn (pool.py run_optimistic);
    a write on another node between that read and the turn must not be overwritten:
    the STORE is checked under the turn, found stale and run again there."""
    one, two = two_nodes
    mine = await one.open_account("alice")
    theirs = await two.open_account("alice")
    inbox = await mine.get_mailbox("INBOX")
    await mine.append(inbox.id, [new(message(1))])
    real = ops.store_flags
    calls = 0
    interfered: list[StoreFlagsResult] = []
    in_turn: list[bool] = []  # whether each call read inside the write turn
    monkeypatch.setattr(pool, "CONTENDED_FOR", 3600.0)

    async def read_then_interfere(*args: object) -> object:
        nonlocal calls
        calls += 1
        conn = args[0]
        assert isinstance(conn, asyncpg.Connection)
        in_turn.append(conn.is_in_transaction())
        found = await real(*args)  # type: ignore[arg-type]
        if calls == 1:  # mine's first read; not theirs, nor mine's run again in the turn
            interfered.append(
                await theirs.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({"$Theirs"}))
            )
        return found

    monkeypatch.setattr(ops, "store_flags", read_then_interfere)
    try:
        result = await mine.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({"$Mine"}))
        assert calls == 3  # mine's read, theirs, mine's again in the turn
        (theirs_row,) = interfered[0].updated
        (mine_row,) = result.updated
        assert mine_row.modseq == theirs_row.modseq + 1
        assert mine_row.flags == frozenset({"$Mine", "$Theirs"})
        stored = await mine.fetch_flags(inbox.id, [1])
        assert stored.modseqs == [mine_row.modseq]
        assert stored.flags[stored.keys[0]] == mine_row.flags
        assert in_turn == [False, False, True]
        # Others write this account: its next writes wait for the turn to read...
        await mine.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({"$Again"}))
        assert in_turn[3:] == [True]
        # ...for a while (pool.CONTENDED_FOR), then read first again.
        monkeypatch.setattr(pool, "CONTENDED_FOR", 0.0)
        await mine.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({"$Later"}))
        assert in_turn[4:] == [False]
    finally:
        await mine.close()
        await theirs.close()


async def test_an_expunge_whose_read_went_stale_runs_again_in_the_write_turn(
    two_nodes: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """EXPUNGE too: a message flagged \\Deleted on another node between its read and
    the turn is expunged with the others, under the next modseq."""
    one, two = two_nodes
    mine = await one.open_account("alice")
    theirs = await two.open_account("alice")
    inbox = await mine.get_mailbox("INBOX")
    await mine.append(inbox.id, [new(message(n)) for n in (1, 2, 3)])
    await mine.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({DELETED}))
    real = ops.expunge
    calls = 0
    interfered: list[StoreFlagsResult] = []

    async def read_then_interfere(*args: object) -> object:
        nonlocal calls
        calls += 1
        found = await real(*args)  # type: ignore[arg-type]
        if calls == 1:
            interfered.append(
                await theirs.store_flags(inbox.id, [2], FlagOp.ADD, frozenset({DELETED}))
            )
        return found

    monkeypatch.setattr(ops, "expunge", read_then_interfere)
    try:
        assert await mine.expunge(inbox.id) == [1, 2]
        assert calls == 2  # mine's read, then mine's again in the turn
        changes = await mine.changes_since(inbox.id, interfered[0].updated[0].modseq)
        assert changes.expunged == [1, 2]
        assert changes.highestmodseq == interfered[0].updated[0].modseq + 1
        assert (await mine.fetch_flags(inbox.id, [1, 2, 3])).uids == [3]
    finally:
        await mine.close()
        await theirs.close()
