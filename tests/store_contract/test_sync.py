"""What sessions sync on: changes_since, \\Recent, STATUS, and change events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from roost.store.base import (
    DELETED,
    SEEN,
    Account,
    FlagOp,
    MailboxChanged,
    MailboxListChanged,
    Store,
)
from tests.store_contract.helpers import append, message, new


async def test_changes_since_reports_new_changed_and_expunged(
    alice: Account, inbox_id: int
) -> None:
    await append(alice, inbox_id, 1, 2, 3, 4)
    mark = (await alice.get_mailbox("INBOX")).highestmodseq
    await alice.store_flags(inbox_id, [2], FlagOp.ADD, frozenset({SEEN, "Later"}))
    await alice.store_flags(inbox_id, [3], FlagOp.ADD, frozenset({DELETED}))
    await alice.expunge(inbox_id)
    await append(alice, inbox_id, 5)

    changes = await alice.changes_since(inbox_id, mark)

    mailbox = await alice.get_mailbox("INBOX")
    assert changes.highestmodseq == mailbox.highestmodseq
    assert changes.uidnext == 6
    assert [(c.uid, c.flags) for c in changes.changed] == [
        (2, frozenset({SEEN, "Later"})),
        (5, frozenset()),
    ]
    assert changes.expunged == [3]
    assert changes.keywords == {"Later"}
    assert all(mark < c.modseq <= mailbox.highestmodseq for c in changes.changed)


async def test_changes_since_now_is_empty(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1)
    now = (await alice.get_mailbox("INBOX")).highestmodseq
    changes = await alice.changes_since(inbox_id, now)
    assert (changes.changed, changes.expunged, changes.highestmodseq) == ([], [], now)


async def test_changes_since_zero_is_everything(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2)
    changes = await alice.changes_since(inbox_id, 0)
    assert [c.uid for c in changes.changed] == [1, 2]


async def test_modseqs_grow_across_the_account(alice: Account, inbox_id: int) -> None:
    sent = await alice.get_mailbox("Sent")
    a = (await alice.append(inbox_id, [])).mailbox.highestmodseq
    await append(alice, inbox_id, 1)
    await append(alice, sent.id, 2)
    await append(alice, inbox_id, 3)
    modseqs = [m.modseq for m in await alice.fetch_meta(inbox_id, [1, 2])]
    [sent_modseq] = [m.modseq for m in await alice.fetch_meta(sent.id, [1])]
    assert a < modseqs[0] < sent_modseq < modseqs[1]


async def test_claim_recent_across_two_handles(store: Store, alice: Account, inbox_id: int) -> None:
    other = await store.open_account("alice")
    try:
        await append(alice, inbox_id, 1, 2)
        assert (await alice.status(inbox_id)).recent == 2
        assert await alice.claim_recent(inbox_id) == 1  # uids >= 1 are recent for alice
        assert await other.claim_recent(inbox_id) == 3  # none for the other session
        assert (await other.status(inbox_id)).recent == 0

        await append(alice, inbox_id, 3)
        assert (await alice.status(inbox_id)).recent == 1
        assert await other.claim_recent(inbox_id) == 3  # uid 3 is the other's
        assert await alice.claim_recent(inbox_id) == 4
    finally:
        await other.close()


async def test_status(alice: Account, inbox_id: int) -> None:
    uids = await append(alice, inbox_id, 1, 2, 3, 4)
    await alice.store_flags(inbox_id, uids[:2], FlagOp.ADD, frozenset({SEEN}))
    await alice.store_flags(inbox_id, uids[1:], FlagOp.ADD, frozenset({DELETED}))
    await alice.claim_recent(inbox_id)
    await append(alice, inbox_id, 5)
    metas = await alice.fetch_meta(inbox_id, range(1, 6))
    mailbox = await alice.get_mailbox("INBOX")

    status = await alice.status(inbox_id)

    assert status.messages == 5
    assert status.recent == 1
    assert status.unseen == 3
    assert status.deleted == 3
    assert status.size == sum(m.size for m in metas)
    assert (status.uidnext, status.uidvalidity) == (6, mailbox.uidvalidity)
    assert status.highestmodseq == mailbox.highestmodseq


async def test_status_size_stays_exact(alice: Account, inbox_id: int) -> None:
    """RFC 8438: STATUS SIZE is the exact sum of RFC822.SIZE, through APPEND, COPY,
    MOVE, EXPUNGE, RENAME of INBOX and DELETE of a mailbox."""
    other = (await alice.create_mailbox("Other")).id
    uids = await append(alice, inbox_id, 1, 2, 3)
    sizes = {m.uid: m.size for m in await alice.fetch_meta(inbox_id, uids)}

    async def sizes_now(mailbox_id: int) -> tuple[int, int, int]:
        status = await alice.status(mailbox_id)
        return status.messages, status.size, status.deleted_size

    assert await sizes_now(inbox_id) == (3, sum(sizes.values()), 0)
    await alice.copy(inbox_id, [1], other)
    await alice.move(inbox_id, [2], other)
    assert await sizes_now(inbox_id) == (2, sizes[1] + sizes[3], 0)
    assert await sizes_now(other) == (2, sizes[1] + sizes[2], 0)
    await alice.store_flags(inbox_id, [3], FlagOp.ADD, frozenset({DELETED}))
    assert await sizes_now(inbox_id) == (2, sizes[1] + sizes[3], sizes[3])
    await alice.expunge(inbox_id)
    assert await sizes_now(inbox_id) == (1, sizes[1], 0)
    await alice.rename_mailbox("INBOX", "Old")
    assert await sizes_now(inbox_id) == (0, 0, 0)
    moved = (await alice.get_mailbox("Old")).id
    assert await sizes_now(moved) == (1, sizes[1], 0)
    await alice.delete_mailbox("Other")
    again = (await alice.create_mailbox("Other")).id
    assert await sizes_now(again) == (0, 0, 0)
    assert (await alice.quota()).storage == sizes[1]


async def test_status_of_empty_mailbox(alice: Account, inbox_id: int) -> None:
    status = await alice.status(inbox_id)
    assert (status.messages, status.recent, status.unseen, status.deleted, status.size) == (
        0,
        0,
        0,
        0,
        0,
    )


async def test_events_reach_other_handles_after_commit(
    store: Store, alice: Account, inbox_id: int
) -> None:
    other = await store.open_account("alice")
    listener = other.listen()
    try:
        waiting = asyncio.create_task(listener.wait())
        await asyncio.sleep(0)
        result = await alice.append(inbox_id, [])
        assert not waiting.done()  # nothing changed, nothing published
        uids = await append(alice, inbox_id, 1)
        events = await asyncio.wait_for(waiting, 5)
        changes = await other.changes_since(inbox_id, result.mailbox.highestmodseq)
        assert events == [MailboxChanged(inbox_id, changes.highestmodseq)]
        assert [c.uid for c in changes.changed] == uids
    finally:
        listener.close()
        await other.close()


async def test_listener_coalesces(alice: Account, inbox_id: int) -> None:
    listener = alice.listen()
    await append(alice, inbox_id, 1)
    await append(alice, inbox_id, 2)
    await alice.create_mailbox("A")
    await alice.create_mailbox("B")
    last = (await alice.get_mailbox("INBOX")).highestmodseq
    assert await listener.wait() == [MailboxChanged(inbox_id, last), MailboxListChanged()]
    assert listener.pending() == []
    listener.close()


async def test_closed_listener_gets_nothing(alice: Account, inbox_id: int) -> None:
    listener = alice.listen()
    listener.close()
    await append(alice, inbox_id, 1)
    assert listener.pending() == []
    assert await asyncio.wait_for(listener.wait(), 1) == []


async def test_listeners_of_other_accounts_hear_nothing(store: Store, alice: Account) -> None:
    await store.create_account("bob", "h")
    bob = await store.open_account("bob")
    listener = bob.listen()
    try:
        await alice.create_mailbox("Mine")
        assert listener.pending() == []
    finally:
        listener.close()
        await bob.close()


async def test_changes_after_own_write_match_another_handles(
    store: Store, alice: Account, inbox_id: int
) -> None:
    """What the writing handle is told of its own write (a backend may answer it
    without asking its database) is what any other handle is told."""
    other = await store.open_account("alice")
    try:

        async def same_answer(write: Awaitable[object]) -> None:
            before = (await other.changes_since(inbox_id, 0)).highestmodseq
            await write
            mine = await alice.changes_since(inbox_id, before)
            theirs = await other.changes_since(inbox_id, before)
            assert mine == theirs
            assert mine.highestmodseq > before

        await same_answer(
            alice.append(inbox_id, [new(message(1)), new(message(2), frozenset({"$Work"}))])
        )
        await same_answer(alice.store_flags(inbox_id, [1, 2], FlagOp.ADD, frozenset({DELETED})))
        await same_answer(alice.store_flags(inbox_id, [2], FlagOp.REMOVE, frozenset({"$work"})))
        await same_answer(alice.expunge(inbox_id, [1]))
        await same_answer(alice.append(inbox_id, [new(message(3), frozenset({"New"}))]))
        await same_answer(alice.expunge(inbox_id))
    finally:
        await other.close()
