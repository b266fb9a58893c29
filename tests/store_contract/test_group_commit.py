"""Group commit in the SQLite backend (sqlite/account.py, AppendQueue): APPENDs of one
account that queue up while its worker is busy are stored in one transaction, and each
caller is answered only after that commit.

The worker is held busy by a job waiting on an Event, so the APPENDs queue behind it
deterministically; it is released once every APPEND has queued.
"""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any

import pytest

from roost.store.base import (
    AppendResult,
    MailboxChanged,
    NewMessage,
    NoSuchMailbox,
    StorageFull,
)
from roost.store.sqlite import SqliteStore
from roost.store.sqlite import messages as message_ops
from roost.store.sqlite.account import SqliteAccount
from roost.store.sqlite.mail_db import MailDB
from tests.store_contract.helpers import message, new


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "data", durable=True)
    await opened.create_account("alice", "h")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch stored, in order."""
    sizes: list[int] = []
    real = message_ops.append_batch

    def recording(db: Any, batch: Sequence[tuple[int, Sequence[NewMessage]]], **kw: Any) -> Any:
        sizes.append(len(batch))
        return real(db, batch, **kw)

    monkeypatch.setattr(message_ops, "append_batch", recording)
    return sizes


async def queued_behind_busy_worker(
    account: SqliteAccount, appends: list[Awaitable[AppendResult]]
) -> list[AppendResult | BaseException]:
    """Run ``appends`` while the account's worker is held busy, then release it."""
    release = threading.Event()
    account._shared.worker.run_soon(release.wait, 30)
    tasks = [asyncio.ensure_future(append) for append in appends]
    await asyncio.sleep(0)  # each task runs up to waiting for its answer: all queued
    release.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_queued_appends_share_one_transaction(
    store: SqliteStore, tmp_path: Path, batches: list[int]
) -> None:
    sessions = [await store.open_account("alice") for _ in range(5)]
    inbox = await sessions[0].get_mailbox("INBOX")
    listener = sessions[0].listen()
    results = await queued_behind_busy_worker(
        sessions[0],
        [s.append(inbox.id, [new(message(n))]) for n, s in enumerate(sessions, start=1)],
    )
    assert batches == [5]
    uids = [uid for result in results if isinstance(result, AppendResult) for uid in result.uids]
    assert uids == [1, 2, 3, 4, 5]  # distinct, in the order the APPENDs queued
    events = listener.pending()
    assert [e for e in events if isinstance(e, MailboxChanged)]  # told before answered
    for session in sessions:
        await session.close()
    await store.close()

    reopened = await SqliteStore.open(tmp_path / "data", durable=True)  # all on disk
    account = await reopened.open_account("alice")
    try:
        metas = await account.fetch_meta(inbox.id, range(1, 6), with_content=True)
        assert [meta.content for meta in metas] == [message(n) for n in range(1, 6)]
    finally:
        await account.close()
        await reopened.close()


async def test_a_refused_append_fails_alone(store: SqliteStore, batches: list[int]) -> None:
    """An APPEND to a mailbox that is gone is rolled back to its savepoint; the others
    in the same transaction are stored and keep consecutive UIDs."""
    account = await store.open_account("alice")
    try:
        inbox = await account.get_mailbox("INBOX")
        results = await queued_behind_busy_worker(
            account,
            [
                account.append(inbox.id, [new(message(1))]),
                account.append(inbox.id + 999, [new(message(2))]),
                account.append("Nowhere", [new(message(5))]),
                account.append(inbox.id, [new(message(3)), new(message(4))]),
            ],
        )
        assert batches == [4]
        assert isinstance(results[0], AppendResult) and results[0].uids == [1]
        assert isinstance(results[1], NoSuchMailbox)
        assert isinstance(results[2], NoSuchMailbox)
        assert isinstance(results[3], AppendResult) and results[3].uids == [2, 3]
        metas = await account.fetch_meta(inbox.id, range(1, 4), with_content=True)
        assert [meta.content for meta in metas] == [message(1), message(3), message(4)]
        snapshot = await account.snapshot(inbox.id)
        assert snapshot.info.uidnext == 4
    finally:
        await account.close()


async def test_a_failed_batch_fails_every_append_and_stores_none(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch, batches: list[int]
) -> None:
    account = await store.open_account("alice")
    try:
        inbox = await account.get_mailbox("INBOX")

        def full(self: MailDB, sources: object) -> object:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(MailDB, "put_blobs", full)
        results = await queued_behind_busy_worker(
            account, [account.append(inbox.id, [new(message(n))]) for n in (1, 2)]
        )
        assert batches == [2]
        assert all(isinstance(result, StorageFull) for result in results)
        monkeypatch.undo()
        assert list((await account.snapshot(inbox.id)).uids) == []
        result = await account.append(inbox.id, [new(message(3))])
        assert result.uids == [1]  # no UID was used up by the failed batch
    finally:
        await account.close()


async def test_an_append_alone_is_a_batch_of_one(store: SqliteStore, batches: list[int]) -> None:
    account = await store.open_account("alice")
    try:
        inbox = await account.get_mailbox("INBOX")
        first = await account.append(inbox.id, [new(message(1))])
        second = await account.append(inbox.id, [new(message(2))])
        assert (first.uids, second.uids) == ([1], [2])
        assert batches == [1, 1]
    finally:
        await account.close()
