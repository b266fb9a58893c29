"""Quota usage and enforcement (RFC 9208; ARCHITECTURE.md decision 10): usage counted
exactly with every change, APPEND and COPY refused past a limit with nothing stored,
MOVE and EXPUNGE never refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from roost.store.base import (
    DELETED,
    Account,
    FlagOp,
    QuotaExceeded,
    QuotaLimits,
    QuotaOverride,
    QuotaUsage,
    Store,
)
from roost.store.sqlite import SqliteStore
from tests.store_contract.helpers import append, message, new
from tests.store_contract.test_group_commit import queued_behind_busy_worker


def size(*numbers: int) -> int:
    return sum(len(message(n)) for n in numbers)


async def test_a_new_account_uses_nothing_and_is_unlimited(alice: Account) -> None:
    assert await alice.quota() == QuotaUsage(0, 0, None, None)


async def test_usage_follows_append_copy_move_and_expunge(
    store: Store, alice: Account, inbox_id: int
) -> None:
    archive = (await alice.get_mailbox("Archive")).id
    await append(alice, inbox_id, 1, 2, 3)
    assert await alice.quota() == QuotaUsage(size(1, 2, 3), 3, None, None)

    await alice.copy(inbox_id, [1, 2], archive)
    assert await alice.quota() == QuotaUsage(size(1, 2, 3, 1, 2), 5, None, None)

    await alice.move(inbox_id, [3], archive)
    assert await alice.quota() == QuotaUsage(size(1, 2, 3, 1, 2), 5, None, None)

    await alice.store_flags(inbox_id, [1], FlagOp.ADD, frozenset({DELETED}))
    assert await alice.quota() == QuotaUsage(size(1, 2, 3, 1, 2), 5, None, None)
    assert await alice.expunge(inbox_id) == [1]
    assert await alice.quota() == QuotaUsage(size(2, 3, 1, 2), 4, None, None)

    await alice.delete_mailbox("Archive")
    assert await alice.quota() == QuotaUsage(size(2), 1, None, None)
    await alice.rename_mailbox("INBOX", "Old")  # moves INBOX's messages: same usage
    assert await alice.quota() == QuotaUsage(size(2), 1, None, None)
    assert await alice.recalculate_quota() == (await alice.quota(),) * 2


async def test_append_past_the_storage_limit_stores_nothing(
    store: Store, alice: Account, inbox_id: int
) -> None:
    await append(alice, inbox_id, 1)
    limit = size(1, 2) + 5  # room for message 2, not for 2 and 3
    await store.set_quota_override("alice", QuotaOverride(storage=limit))
    before = await alice.get_mailbox("INBOX")

    with pytest.raises(QuotaExceeded):
        await alice.append(inbox_id, [new(message(2)), new(message(3))])

    assert await alice.quota() == QuotaUsage(size(1), 1, limit, None)
    after = await alice.get_mailbox("INBOX")
    assert (after.uidnext, after.highestmodseq) == (before.uidnext, before.highestmodseq)
    assert list((await alice.snapshot(inbox_id)).uids) == [1]
    assert await append(alice, inbox_id, 2) == [2]  # exactly what fits still fits
    assert (await alice.quota()).storage == size(1, 2)


async def test_append_past_the_message_limit_is_refused(
    store: Store, alice: Account, inbox_id: int
) -> None:
    await store.set_quota_override("alice", QuotaOverride(messages=2))
    await append(alice, inbox_id, 1, 2)
    with pytest.raises(QuotaExceeded):
        await append(alice, inbox_id, 3)
    usage = await alice.quota()
    assert (usage.messages, usage.message_limit) == (2, 2)
    assert not usage.fits(1)


async def test_copy_past_the_limit_is_refused_move_and_expunge_are_not(
    store: Store, alice: Account, inbox_id: int
) -> None:
    archive = (await alice.get_mailbox("Archive")).id
    await append(alice, inbox_id, 1, 2)
    # Lowered below what is used: nothing may be added, but nothing is taken away.
    await store.set_quota_override("alice", QuotaOverride(storage=size(1)))
    with pytest.raises(QuotaExceeded):
        await alice.copy(inbox_id, [1], archive)
    assert list((await alice.snapshot(archive)).uids) == []

    moved = await alice.move(inbox_id, [1], archive)
    assert moved.source_uids == [1]
    await alice.store_flags(archive, moved.dest_uids, FlagOp.ADD, frozenset({DELETED}))
    assert await alice.expunge(archive) == moved.dest_uids
    assert await alice.quota() == QuotaUsage(size(2), 1, size(1), None)


async def test_overrides_default_and_unlimited(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path, durable=False, quota=QuotaLimits(100, 10))
    try:
        await store.create_account("alice", "h")
        alice = await store.open_account("alice")
        try:
            assert await store.quota_override("alice") == QuotaOverride()
            assert await alice.quota() == QuotaUsage(0, 0, 100, 10)
            await store.set_quota_override("ALICE", QuotaOverride(storage=0, messages=5))
            assert await alice.quota() == QuotaUsage(0, 0, None, 5)
            await store.set_quota_override("alice", QuotaOverride(storage=None, messages=5))
            assert await alice.quota() == QuotaUsage(0, 0, 100, 5)
            inbox = (await alice.get_mailbox("INBOX")).id
            with pytest.raises(QuotaExceeded):
                await append(alice, inbox, 1)  # over 100 octets
        finally:
            await alice.close()
    finally:
        await store.close()


async def test_queued_appends_are_checked_one_after_another(tmp_path: Path) -> None:
    """Group commit: each APPEND of a batch counts those stored before it."""
    store = await SqliteStore.open(tmp_path, durable=True, quota=QuotaLimits(messages=3))
    try:
        await store.create_account("alice", "h")
        alice = await store.open_account("alice")
        try:
            inbox = (await alice.get_mailbox("INBOX")).id
            outcomes = await queued_behind_busy_worker(
                alice,
                [
                    alice.append(inbox, [new(message(n)) for n in group])
                    for group in ([1, 2], [3, 4], [5])
                ],
            )
            assert [type(outcome).__name__ for outcome in outcomes] == [
                "AppendResult",
                "QuotaExceeded",
                "AppendResult",
            ]
            assert await alice.quota() == QuotaUsage(size(1, 2, 5), 3, None, 3)
            assert list((await alice.snapshot(inbox)).uids) == [1, 2, 3]
        finally:
            await alice.close()
    finally:
        await store.close()


_APPENDER = """
import asyncio, sys
from pathlib import Path
from roost.store.base import MessageSource, NewMessage, QuotaExceeded, QuotaLimits
from roost.store.sqlite import SqliteStore

async def main() -> None:
    store = await SqliteStore.open(Path(sys.argv[1]), quota=QuotaLimits(messages={limit}))
    account = await store.open_account("alice")
    stored = 0
    for n in range({attempts}):
        data = b"Subject: %d %s\\r\\n\\r\\nbody\\r\\n" % (n, sys.argv[2].encode())
        try:
            await account.append("INBOX", [NewMessage(MessageSource(data=data))])
        except QuotaExceeded:
            continue
        stored += 1
    await account.close()
    await store.close()
    print(stored)

asyncio.run(main())
"""


async def test_two_processes_cannot_both_pass_the_limit(tmp_path: Path) -> None:
    """The check is inside the write transaction: processes appending at once store
    exactly up to the limit between them, never more."""
    limit, attempts = 25, 25
    store = await SqliteStore.open(tmp_path, durable=False)
    await store.create_account("alice", "h")
    await store.close()
    script = textwrap.dedent(_APPENDER.format(limit=limit, attempts=attempts))
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, str(tmp_path), name, stdout=subprocess.PIPE
        )
        for name in ("a", "b")
    ]
    outputs = [await process.communicate() for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    stored = [int(out) for out, _ in outputs]
    assert sum(stored) == limit

    store = await SqliteStore.open(tmp_path, durable=False)
    try:
        alice = await store.open_account("alice")
        try:
            usage = await alice.quota()
            assert usage.messages == limit
            assert len((await alice.snapshot((await alice.get_mailbox("INBOX")).id)).uids) == limit
            assert await alice.recalculate_quota() == (usage, usage)
        finally:
            await alice.close()
    finally:
        await store.close()


def test_usage_fits() -> None:
    usage = QuotaUsage(storage=90, messages=9, storage_limit=100, message_limit=10)
    assert usage.fits(10)
    assert not usage.fits(11)
    assert not usage.fits(1, count=2)
    assert QuotaUsage(10**12, 10**9, None, None).fits(10**12)


async def test_a_refused_large_message_leaves_no_file(tmp_path: Path) -> None:
    """A message kept as a file (above INLINE_MAX) is written before the transaction;
    refused there, its file goes with the rollback."""
    store = await SqliteStore.open(tmp_path, durable=True, quota=QuotaLimits(storage=1000))
    try:
        await store.create_account("alice", "h")
        alice = await store.open_account("alice")
        try:
            with pytest.raises(QuotaExceeded):
                await alice.append("INBOX", [new(message(1, body=b"x" * 200_000 + b"\r\n"))])
            assert await alice.quota() == QuotaUsage(0, 0, 1000, None)
        finally:
            await alice.close()
    finally:
        await store.close()
    assert blob_files(tmp_path) == []


def blob_files(data_dir: Path) -> list[Path]:
    return [path for path in data_dir.glob("accounts/*/blobs/**/*") if path.is_file()]


async def test_a_limit_set_by_another_process_applies_once_read_again(tmp_path: Path) -> None:
    """Each store stands for a process: the admin's change is read before the next
    APPEND when the last read is ``quota_refresh`` old, and at once by quota()."""
    admin = await SqliteStore.open(tmp_path, durable=False)
    eager = await SqliteStore.open(tmp_path, durable=False, quota_refresh=0)
    lazy = await SqliteStore.open(tmp_path, durable=False, quota_refresh=3600)
    try:
        await admin.create_account("alice", "h")
        in_eager = await eager.open_account("alice")
        in_lazy = await lazy.open_account("alice")
        try:
            await admin.set_quota_override("alice", QuotaOverride(storage=1))
            with pytest.raises(QuotaExceeded):
                await append(in_eager, (await in_eager.get_mailbox("INBOX")).id, 1)
            inbox = (await in_lazy.get_mailbox("INBOX")).id
            assert await append(in_lazy, inbox, 2) == [1]  # still its last read
            assert (await in_lazy.quota()).storage_limit == 1
            with pytest.raises(QuotaExceeded):
                await append(in_lazy, inbox, 3)
        finally:
            await in_eager.close()
            await in_lazy.close()
    finally:
        for store in (admin, eager, lazy):
            await store.close()


async def test_delivery_state_tells_room_and_filtering_in_one_answer(
    store: Store, alice: Account, inbox_id: int
) -> None:
    state = await alice.delivery_state()
    assert state.quota == await alice.quota()
    assert not state.filtering
    await append(alice, inbox_id, 1)
    await alice.put_script("main", "keep;", "compiled", 1)
    assert not (await alice.delivery_state()).filtering  # stored, not active
    await alice.set_active_script("main")
    state = await alice.delivery_state()
    assert state.filtering
    assert (state.quota.storage, state.quota.messages) == (size(1), 1)
    await alice.set_active_script(None)
    assert not (await alice.delivery_state()).filtering
    await store.set_quota_override("alice", QuotaOverride(storage=5))
    state = await alice.delivery_state()
    assert state.quota.storage_limit == 5 and not state.quota.fits(size(2))
