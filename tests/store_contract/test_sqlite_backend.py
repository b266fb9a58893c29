"""What only the SQLite backend promises: its files on disk, blob lifetime, the orphan
sweep, durability across store instances, and a full disk."""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.store.base import (
    DELETED,
    FlagOp,
    MailboxChanged,
    MessageSource,
    NewMessage,
    StorageFull,
)
from roost.store.blobs import BlobStore
from roost.store.events import EventHub
from roost.store.sqlite import SqliteStore
from roost.store.sqlite.account import SqliteAccount
from roost.store.sqlite.db import INLINE_MAX
from roost.store.sqlite.schema import ACCOUNT_MIGRATIONS
from tests.store_contract.helpers import append, message, new, read_all


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(tmp_path / "data")
    await store.create_account("alice", "h")
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def account(sqlite_store: SqliteStore) -> AsyncIterator[SqliteAccount]:
    opened = await sqlite_store.open_account("alice")
    try:
        yield opened
    finally:
        await opened.close()


def account_dir(data: Path) -> Path:
    [directory] = (data / "accounts").iterdir()
    return directory


def blob_files(data: Path) -> set[str]:
    blobs = account_dir(data) / "blobs"
    return {p.parent.name + p.name for p in blobs.glob("*/*")}


def blob_rows(data: Path) -> set[str]:
    with sqlite3.connect(account_dir(data) / "mail.db") as conn:
        return {blob_id for (blob_id,) in conn.execute("SELECT blob_id FROM blob_data")}


def stored_blobs(data: Path) -> set[str]:
    """Every blob kept, as a file or in the database."""
    return blob_files(data) | blob_rows(data)


def sized(n: int, size: str) -> bytes:
    """``message(n)``, small (kept in the database) or large (kept as a file)."""
    if size == "small":
        return message(n)
    return message(n, body=b"a line of a long message\r\n" * (INLINE_MAX // 26 + 1))


async def test_small_messages_are_kept_in_the_database_large_ones_as_files(
    tmp_path: Path, account: SqliteAccount
) -> None:
    data = tmp_path / "data"
    inbox = await account.get_mailbox("INBOX")
    spooled = tmp_path / "spooled.eml"
    spooled.write_bytes(message(3))
    sources = [
        MessageSource(data=message(1)),
        MessageSource(data=sized(2, "large")),
        MessageSource(path=spooled),  # arrived in a file: stays one
    ]
    await account.append(inbox.id, [NewMessage(source) for source in sources])
    small, large, from_file = await account.fetch_meta(inbox.id, [1, 2, 3])
    assert blob_rows(data) == {small.blob_id}
    assert blob_files(data) == {large.blob_id, from_file.blob_id}
    assert await read_all(account, small) == message(1)
    assert await read_all(account, large) == sized(2, "large")
    assert await read_all(account, from_file) == message(3)
    assert await account.read_range(small, 6, 3) == message(1)[6:9]
    assert await account.read_range(small, len(message(1)) - 2, 10) == b"\r\n"
    [with_content] = await account.fetch_meta(inbox.id, [1], with_content=True)
    assert with_content.content == message(1)


async def test_layout(tmp_path: Path, account: SqliteAccount) -> None:
    data = tmp_path / "data"
    assert (data / "users.db").is_file()
    directory = account_dir(data)
    assert (directory / "mail.db").is_file()
    assert (directory / "blobs").is_dir()
    assert (directory / "tmp").is_dir()
    with sqlite3.connect(directory / "mail.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(ACCOUNT_MIGRATIONS)


async def test_account_directories_never_come_from_the_name(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = await SqliteStore.open(data)
    try:
        for name in ("../../escape", "/abs", "..", "a/../../b", "CON", "x" * 300):
            await store.create_account(name, "h")
        dirs = list((data / "accounts").iterdir())
        assert len(dirs) == 6
        for directory in dirs:
            assert directory.parent == data / "accounts"
            assert len(directory.name) < 64
            assert (directory / "mail.db").is_file()
        assert sorted(os.listdir(tmp_path)) == ["data"]
    finally:
        await store.close()


async def test_delete_account_removes_its_directory(
    tmp_path: Path, sqlite_store: SqliteStore
) -> None:
    assert list((tmp_path / "data" / "accounts").iterdir())
    await sqlite_store.delete_account("alice")
    assert list((tmp_path / "data" / "accounts").iterdir()) == []


@pytest.mark.parametrize("size", ["small", "large"])
async def test_identical_content_is_stored_once(
    tmp_path: Path, account: SqliteAccount, size: str
) -> None:
    inbox = await account.get_mailbox("INBOX")
    trash = await account.get_mailbox("Trash")
    one, two = sized(1, size), sized(2, size)
    await account.append(inbox.id, [new(one), new(one), new(two)])
    await account.copy(inbox.id, [1], trash.id)
    await account.append(trash.id, [new(one)])
    metas = await account.fetch_meta(inbox.id, [1, 2, 3])
    assert metas[0].blob_id == metas[1].blob_id != metas[2].blob_id
    kept = blob_rows if size == "small" else blob_files
    assert kept(tmp_path / "data") == {metas[0].blob_id, metas[2].blob_id}
    assert stored_blobs(tmp_path / "data") == {metas[0].blob_id, metas[2].blob_id}


@pytest.mark.parametrize("size", ["small", "large"])
async def test_a_blob_goes_with_its_last_reference(
    tmp_path: Path, account: SqliteAccount, size: str
) -> None:
    data = tmp_path / "data"
    inbox = await account.get_mailbox("INBOX")
    trash = await account.get_mailbox("Trash")
    await account.append(inbox.id, [new(sized(1, size))])
    [meta] = await account.fetch_meta(inbox.id, [1])
    await account.copy(inbox.id, [1], trash.id)

    await account.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({DELETED}))
    await account.expunge(inbox.id)
    assert stored_blobs(data) == {meta.blob_id}  # still in Trash

    await account.move(trash.id, [1], inbox.id)
    assert stored_blobs(data) == {meta.blob_id}  # moved, not dropped

    work = await account.create_mailbox("Work")
    await account.move(inbox.id, [2], work.id)
    await account.delete_mailbox("Work")
    assert stored_blobs(data) == set()


async def test_sweep_removes_orphans_and_stale_temporary_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = await SqliteStore.open(data)
    await store.create_account("alice", "h")
    account = await store.open_account("alice")
    inbox = await account.get_mailbox("INBOX")
    await append(account, inbox.id, 1)
    [kept] = await account.fetch_meta(inbox.id, [1])
    await account.close()
    await store.close()

    directory = account_dir(data)
    orphan = BlobStore(directory / "blobs", directory / "tmp", durable=False).put(
        MessageSource(data=b"nobody refers to me")
    )
    with sqlite3.connect(directory / "mail.db") as conn:  # as a lost release leaves it
        conn.execute("INSERT INTO blob_data VALUES ('ab' || hex(randomblob(31)), x'00')")
    assert len(blob_rows(data)) == 2
    stale = directory / "tmp" / "blob-stale"
    fresh = directory / "tmp" / "blob-fresh"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    assert blob_files(data) == {orphan.blob_id}  # kept is in the database

    store = await SqliteStore.open(data)
    account = await store.open_account("alice")
    try:
        assert stored_blobs(data) == {kept.blob_id}
        assert not stale.exists()
        assert fresh.exists()  # may belong to another process's APPEND
        assert await read_all(account, kept) == message(1)
    finally:
        await account.close()
        await store.close()


@pytest.mark.parametrize("close_first", [True, False])
async def test_appended_mail_survives_into_a_new_store(tmp_path: Path, close_first: bool) -> None:
    data = tmp_path / "data"
    first = await SqliteStore.open(data, durable=True)
    await first.create_account("alice", "h")
    account = await first.open_account("alice")
    inbox = await account.get_mailbox("INBOX")
    result = await account.append(inbox.id, [new(message(1), frozenset({"\\Seen"}))])
    if close_first:
        await account.close()
        await first.close()

    second = await SqliteStore.open(data, durable=True)
    try:
        reopened = await second.open_account("alice")
        [meta] = await reopened.fetch_meta(inbox.id, result.uids)
        assert meta.flags == {"\\Seen"}
        assert await read_all(reopened, meta) == message(1)
        await reopened.close()
    finally:
        await second.close()
        if not close_first:
            await account.close()
            await first.close()


async def test_full_disk_while_writing_a_message(
    tmp_path: Path, account: SqliteAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = await account.get_mailbox("INBOX")
    calls = 0

    def fill_up(self: BlobStore, f: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BlobStore, "_sync_file", fill_up)
    with pytest.raises(StorageFull):
        await account.append(inbox.id, [new(sized(1, "large")), new(sized(2, "large"))])
    monkeypatch.undo()

    directory = account_dir(tmp_path / "data")
    assert (await account.get_mailbox("INBOX")).uidnext == 1
    assert stored_blobs(tmp_path / "data") == set()
    assert list((directory / "tmp").iterdir()) == []
    assert await append(account, inbox.id, 3) == [1]


async def test_full_database(tmp_path: Path, account: SqliteAccount) -> None:
    inbox = await account.get_mailbox("INBOX")
    await append(account, inbox.id, 1)
    conn = account._shared.db.conn  # white box: the worker is idle between calls
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")

    many = [NewMessage(MessageSource(data=message(n)), frozenset({f"k{n}"})) for n in range(120)]
    with pytest.raises(StorageFull):
        await account.append(inbox.id, many)

    conn.execute("PRAGMA max_page_count = 1073741823")
    assert list((await account.snapshot(inbox.id)).uids) == [1]
    assert len(stored_blobs(tmp_path / "data")) == 1  # nothing of the failed APPEND is kept
    assert await append(account, inbox.id, 2) == [2]


async def test_stores_sharing_a_hub_share_events(tmp_path: Path) -> None:
    hub = EventHub()
    first = await SqliteStore.open(tmp_path / "data", hub=hub)
    second = await SqliteStore.open(tmp_path / "data", hub=hub)
    await first.create_account("Alice", "h")
    writer = await first.open_account("alice")
    reader = await second.open_account("ALICE")
    listener = reader.listen()
    try:
        inbox = await writer.get_mailbox("INBOX")
        result = await writer.append(inbox.id, [new(message(1))])
        assert listener.pending() == [MailboxChanged(inbox.id, result.mailbox.highestmodseq)]
        assert list((await reader.snapshot(inbox.id)).uids) == result.uids
    finally:
        await reader.close()  # closes its listeners too
        assert listener.closed
        await writer.close()
        await second.close()
        await first.close()


# ---- accounts kept open between sessions ----------------------------------------------


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The account directories opened (database opened) by this process, in order."""
    from roost.store.sqlite import store as store_module

    opened: list[str] = []
    real = store_module._open_account_db

    def counting(directory: Path, durable: bool, sweep: bool, *rest: float) -> object:
        opened.append(directory.name.split("-")[0])
        return real(directory, durable, sweep, *rest)

    monkeypatch.setattr(store_module, "_open_account_db", counting)
    return opened


async def test_an_account_stays_open_between_sessions(tmp_path: Path, opens: list[str]) -> None:
    store = await SqliteStore.open(tmp_path / "data")
    try:
        await store.create_account("alice", "h")
        for n in range(3):
            session = await store.open_account("alice")
            inbox = await session.get_mailbox("INBOX")
            await append(session, inbox.id, n)
            await session.close()
        assert opens == ["alice"]  # opened once, not once per session
        session = await store.open_account("alice")
        info = await session.get_mailbox("INBOX")
        assert len((await session.snapshot(info.id)).uids) == 3
        await session.close()
    finally:
        await store.close()


async def test_least_recently_used_idle_accounts_are_closed(
    tmp_path: Path, opens: list[str]
) -> None:
    store = await SqliteStore.open(tmp_path / "data", max_idle_open=2)
    try:
        for name in ("alice", "bob", "carol"):
            await store.create_account(name, "h")
            await (await store.open_account(name)).close()
        # Three idle, two allowed: alice (released first) was closed.
        for name in ("bob", "carol", "alice"):
            await (await store.open_account(name)).close()
        assert opens == ["alice", "bob", "carol", "alice"]
    finally:
        await store.close()


async def test_keep_open_zero_closes_with_the_last_session(
    tmp_path: Path, opens: list[str]
) -> None:
    store = await SqliteStore.open(tmp_path / "data", keep_open=0)
    try:
        await store.create_account("alice", "h")
        await (await store.open_account("alice")).close()
        await (await store.open_account("alice")).close()
        assert opens == ["alice", "alice"]
    finally:
        await store.close()


async def test_an_idle_account_is_closed_when_its_time_is_up(
    tmp_path: Path, opens: list[str]
) -> None:
    store = await SqliteStore.open(tmp_path / "data", keep_open=3600)
    try:
        await store.create_account("alice", "h")
        session = await store.open_account("alice")
        shared = session._shared
        await session.close()
        assert shared.expiry is not None and not shared.closed
        shared.expiry.cancel()
        store._expire(shared)  # what the timer does when keep_open has passed
        await asyncio.gather(*store._expiring)
        assert shared.closed and shared.worker.closed
        await (await store.open_account("alice")).close()
        assert opens == ["alice", "alice"]
    finally:
        await store.close()


async def test_an_account_recreated_elsewhere_is_not_served_from_the_old_one(
    tmp_path: Path,
) -> None:
    """Another worker process (here: another store on the same directory) deletes and
    creates the account again while this one keeps the old database open."""
    here = await SqliteStore.open(tmp_path / "data")
    there = await SqliteStore.open(tmp_path / "data", keep_open=0)
    try:
        await here.create_account("alice", "h")
        session = await here.open_account("alice")
        await append(session, (await session.get_mailbox("INBOX")).id, 1)
        await session.close()
        await there.delete_account("alice")
        await there.create_account("alice", "h")
        session = await here.open_account("alice")
        info = await session.get_mailbox("INBOX")
        assert list((await session.snapshot(info.id)).uids) == []
        await session.close()
    finally:
        await there.close()
        await here.close()


def test_an_unsynced_write_leaves_later_writes_synced(tmp_path: Path) -> None:
    from roost.store.sqlite.mail_db import MailDB

    db = MailDB.open(tmp_path / "acct", durable=True, create=True)
    try:

        def synchronous() -> int:
            return db.scalar("PRAGMA synchronous")

        assert synchronous() == 2  # FULL
        with db.write(sync=False):
            assert synchronous() == 1  # NORMAL, for this commit only
            db.next_modseq()
        assert synchronous() == 2
        with pytest.raises(RuntimeError), db.write(sync=False):
            db.next_modseq()
            raise RuntimeError("rolled back")
        assert synchronous() == 2 and not db.conn.in_transaction
    finally:
        db.close()


def test_writers_take_turns_on_the_account_lock(tmp_path: Path) -> None:
    """A write holds writers.lock (what another worker process waits on) exactly for
    its transaction, also when it fails."""
    import fcntl

    from roost.store.sqlite.db import WRITERS_LOCK
    from roost.store.sqlite.mail_db import MailDB

    db = MailDB.open(tmp_path / "acct", durable=True, create=True)
    other = os.open(tmp_path / "acct" / WRITERS_LOCK, os.O_RDWR)  # another process's view
    try:

        def free() -> bool:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(other, fcntl.LOCK_UN)
            return True

        assert free()
        with db.write():
            assert not free()
            db.next_modseq()
        assert free()
        with pytest.raises(RuntimeError), db.write():
            assert not free()
            raise RuntimeError("rolled back")
        assert free()
    finally:
        os.close(other)
        db.close()


# ---- the per-process UID cache (uid_cache.py) -------------------------------------------


@pytest.fixture
def small_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every mailbox's list, few of them in memory, and store them often, so small
    tests exercise the cache, its table and catching up from either."""
    from roost.store.sqlite import uid_cache

    monkeypatch.setattr(uid_cache, "CACHE_MIN_MESSAGES", 1)
    monkeypatch.setattr(uid_cache, "CACHE_MAILBOXES", 2)
    monkeypatch.setattr(uid_cache, "STORE_AFTER_CHANGES", 3)
    monkeypatch.setattr(uid_cache, "_DELETE_ONE_BY_ONE", 3)


async def _truth(account: SqliteAccount, mailbox_id: int) -> list[int]:
    """The UIDs as the database holds them, read without the cache."""
    uidnext = (await account.snapshot(mailbox_id)).info.uidnext
    return [uid for uid, _, _ in (await account.fetch_flags(mailbox_id, range(1, uidnext))).rows]


async def test_uid_cache_follows_another_process(tmp_path: Path, small_cache: None) -> None:
    """Two stores on one data directory are two worker processes, each with its own
    cache: random appends, expunges, moves and renames through either, and every
    SELECT snapshot equals the database."""
    import random

    rng = random.Random(5)
    first = await SqliteStore.open(tmp_path / "data")
    second = await SqliteStore.open(tmp_path / "data")
    await first.create_account("alice", "h")
    accounts = [await first.open_account("alice"), await second.open_account("alice")]
    try:
        for name in ("A", "B", "C"):
            await accounts[0].create_mailbox(name)
        names = ["INBOX", "A", "B", "C"]
        n = 0
        for _ in range(120):
            actor = rng.choice(accounts)
            info = await actor.get_mailbox(rng.choice(names))
            uids = await _truth(actor, info.id)
            op = rng.random()
            if op < 0.4 or not uids:
                n += 1
                await append(actor, info.id, *range(n, n + rng.randint(1, 6)))
            elif op < 0.75:
                doomed = rng.sample(uids, rng.randint(1, min(len(uids), 6)))
                await actor.store_flags(info.id, doomed, FlagOp.ADD, frozenset({DELETED}))
                await actor.expunge(info.id)
            elif op < 0.9:
                dest = await actor.get_mailbox(rng.choice(names))
                await actor.move(info.id, rng.sample(uids, min(len(uids), 2)), dest.id)
            else:
                await actor.store_flags(info.id, uids[:3], FlagOp.ADD, frozenset({"$x"}))
            for account in accounts:
                for name in names:
                    mailbox = await account.get_mailbox(name)
                    snap = await account.snapshot(mailbox.id)
                    assert list(snap.uids) == await _truth(account, mailbox.id), name
        await accounts[1].rename_mailbox("INBOX", "Old")  # INBOX's messages all leave
        inbox = await accounts[0].get_mailbox("INBOX")
        assert list((await accounts[0].snapshot(inbox.id)).uids) == []
    finally:
        for account in accounts:
            await account.close()
        await second.close()
        await first.close()


async def test_uid_cache_notices_a_placeholder_made_real(tmp_path: Path, small_cache: None) -> None:
    """DELETE of a mailbox with inferiors keeps its id as a \\Noselect placeholder; made
    real again it is a new mailbox (new UIDVALIDITY) whose UIDs start over."""
    first = await SqliteStore.open(tmp_path / "data")
    second = await SqliteStore.open(tmp_path / "data")
    await first.create_account("alice", "h")
    reader = await first.open_account("alice")
    writer = await second.open_account("alice")
    try:
        parent = await writer.create_mailbox("P")
        await writer.create_mailbox("P/child")
        await append(writer, parent.id, 1, 2, 3)
        await writer.store_flags(parent.id, [2], FlagOp.ADD, frozenset({DELETED}))
        await writer.expunge(parent.id)
        assert list((await reader.snapshot(parent.id)).uids) == [1, 3]
        await writer.delete_mailbox("P")
        again = await writer.create_mailbox("P")
        assert again.id == parent.id and again.uidvalidity != parent.uidvalidity
        await append(writer, again.id, 4, 5, 6, 7)
        snap = await reader.snapshot(again.id)
        assert (snap.info.uidvalidity, list(snap.uids)) == (again.uidvalidity, [1, 2, 3, 4])
    finally:
        await reader.close()
        await writer.close()
        await second.close()
        await first.close()


async def test_a_new_process_starts_from_the_stored_uid_list(
    tmp_path: Path, small_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process that never read a mailbox takes the list another one stored,
    and catches up from there, without reading the messages table."""
    from roost.store.sqlite import uid_cache

    first = await SqliteStore.open(tmp_path / "data")
    await first.create_account("alice", "h")
    writer = await first.open_account("alice")
    later: list[SqliteStore] = []
    try:
        inbox = await writer.get_mailbox("INBOX")
        await append(writer, inbox.id, *range(1, 9))
        assert list((await writer.snapshot(inbox.id)).uids) == list(range(1, 9))  # stored

        def no_full_read(db: object, mailbox_id: int) -> None:
            raise AssertionError("read every UID")

        monkeypatch.setattr(uid_cache, "_read_all", no_full_read)
        await writer.store_flags(inbox.id, [2, 3], FlagOp.ADD, frozenset({DELETED}))
        await writer.expunge(inbox.id)
        await append(writer, inbox.id, 9)
        for _ in range(2):  # a fresh process each time: the stored list, caught up
            later.append(await SqliteStore.open(tmp_path / "data"))
            reader = await later[-1].open_account("alice")
            try:
                assert list((await reader.snapshot(inbox.id)).uids) == [1, 4, 5, 6, 7, 8, 9]
            finally:
                await reader.close()
    finally:
        await writer.close()
        for store in later:
            await store.close()
        await first.close()


async def test_storing_a_uid_list_never_waits_for_another_writer(
    tmp_path: Path, small_cache: None
) -> None:
    """The list is stored after SELECT's answer, and only if the write lock is free at
    once; otherwise a later SELECT stores it."""
    store = await SqliteStore.open(tmp_path / "data")
    await store.create_account("alice", "h")
    account = await store.open_account("alice")
    [db_path] = (tmp_path / "data").glob("accounts/*/mail.db")
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        inbox = await account.get_mailbox("INBOX")
        await append(account, inbox.id, 1, 2, 3, 4)
        other.execute("BEGIN IMMEDIATE")  # another process writing
        started = time.monotonic()
        assert list((await account.snapshot(inbox.id)).uids) == [1, 2, 3, 4]
        await account.get_mailbox("INBOX")  # after the queued attempt to store
        assert time.monotonic() - started < 5  # far below the 10 s busy timeout
        other.execute("COMMIT")
        assert other.execute("SELECT count(*) FROM uid_lists").fetchone() == (0,)
        await account.snapshot(inbox.id)
        await account.get_mailbox("INBOX")
        [(blob,)] = other.execute("SELECT uids FROM uid_lists").fetchall()
        assert len(blob) == 4 * 4
    finally:
        other.close()
        await account.close()
        await store.close()


async def test_a_site_names_the_special_folders(tmp_path: Path) -> None:
    """``[imap] special_use_names`` reaches the store as ``special_folders``: a new
    account gets those names (a nested one with its parent), each subscribed."""
    folders = (("\\Sent", "Mail/Sent Items"), ("\\Trash", "Deleted Items"))
    store = await SqliteStore.open(tmp_path / "data", durable=False, special_folders=folders)
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


@pytest.mark.parametrize("fsync", ["always", "optimized"])
async def test_fsync_setting_spares_flag_changes_and_expunges_only(
    tmp_path: Path, fsync: str
) -> None:
    """``[store] fsync = "optimized"`` (as Dovecot's mail_fsync): STORE and EXPUNGE
    commit without waiting for the disk; new mail always waits for it."""
    store = await SqliteStore.open(tmp_path / "data", durable=True, fsync=fsync)
    try:
        await store.create_account("alice", "h")
        account = await store.open_account("alice")
        assert isinstance(account, SqliteAccount)
        inbox = (await account.get_mailbox("INBOX")).id
        statements: list[str] = []
        account._shared.db.conn.set_trace_callback(statements.append)

        def synced_commits() -> int:
            """COMMITs made since the last call while synchronous was FULL."""
            synced, count = True, 0
            for statement in statements:
                if statement.startswith("PRAGMA synchronous = "):
                    synced = statement.endswith("FULL")
                elif statement == "COMMIT":
                    count += synced
            statements.clear()
            return count

        spared = fsync == "optimized"
        (uid,) = await append(account, inbox, 1)
        assert synced_commits() >= 1
        await account.store_flags(inbox, [uid], FlagOp.ADD, frozenset({DELETED}))
        assert (synced_commits() == 0) == spared
        assert await account.expunge(inbox) == [uid]
        assert (synced_commits() == 0) == spared
        await append(account, inbox, 2)
        assert synced_commits() >= 1
        account._shared.db.conn.set_trace_callback(None)
        await account.close()
    finally:
        await store.close()
