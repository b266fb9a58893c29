"""EXPUNGE, COPY and MOVE (RFC 9051 §6.4.3, §6.4.7; RFC 4315; RFC 6851)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from roost.store.base import (
    DELETED,
    FLAGGED,
    SEEN,
    Account,
    FlagOp,
    MailboxChanged,
    NoSuchMailbox,
)
from tests.store_contract.helpers import append, message, new, read_all


async def test_expunge_removes_deleted_messages(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2, 3, 4)
    await alice.store_flags(inbox_id, [3, 1], FlagOp.ADD, frozenset({DELETED}))
    before = await alice.get_mailbox("INBOX")

    assert await alice.expunge(inbox_id) == [1, 3]

    assert list((await alice.snapshot(inbox_id)).uids) == [2, 4]
    after = await alice.get_mailbox("INBOX")
    assert after.highestmodseq > before.highestmodseq
    assert after.uidnext == before.uidnext
    changes = await alice.changes_since(inbox_id, before.highestmodseq)
    assert changes.expunged == [1, 3]


async def test_expunge_by_uid_only_touches_those(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2, 3)
    await alice.store_flags(inbox_id, [1, 2, 3], FlagOp.ADD, frozenset({DELETED}))
    assert await alice.expunge(inbox_id, [3, 2, 9]) == [2, 3]
    assert list((await alice.snapshot(inbox_id)).uids) == [1]


async def test_expunge_nothing_changes_nothing(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1)
    before = await alice.get_mailbox("INBOX")
    listener = alice.listen()
    assert await alice.expunge(inbox_id) == []
    assert await alice.expunge(inbox_id, [1]) == []
    assert (await alice.get_mailbox("INBOX")).highestmodseq == before.highestmodseq
    assert listener.pending() == []
    listener.close()


async def test_uids_are_not_reused_after_expunge(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2)
    await alice.store_flags(inbox_id, [2], FlagOp.ADD, frozenset({DELETED}))
    await alice.expunge(inbox_id)
    assert await append(alice, inbox_id, 3) == [3]


async def test_copy(alice: Account, inbox_id: int) -> None:
    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    await alice.append(
        inbox_id,
        [
            new(message(n), frozenset({SEEN, "Work"}) if n == 2 else frozenset(), when)
            for n in (1, 2, 3)
        ],
    )
    work = await alice.create_mailbox("Work")
    await append(alice, work.id, 10)  # the destination's UIDs continue from its UIDNEXT

    result = await alice.copy(inbox_id, [3, 2, 77], work.id)

    assert result.uidvalidity == work.uidvalidity
    assert (result.source_uids, result.dest_uids) == ([2, 3], [2, 3])
    copies = await alice.fetch_meta(work.id, result.dest_uids)
    assert [m.flags for m in copies] == [{SEEN, "Work"}, frozenset()]
    assert all(m.internaldate == when for m in copies)
    assert [await read_all(alice, m) for m in copies] == [message(2), message(3)]
    assert list((await alice.snapshot(inbox_id)).uids) == [1, 2, 3]  # the source is untouched
    assert "Work" in (await alice.snapshot(work.id)).keywords


async def test_copy_of_nothing(alice: Account, inbox_id: int) -> None:
    trash = await alice.get_mailbox("Trash")
    listener = alice.listen()
    result = await alice.copy(inbox_id, [1, 2], trash.id)
    assert (result.source_uids, result.dest_uids) == ([], [])
    assert result.uidvalidity == trash.uidvalidity
    assert listener.pending() == []
    listener.close()


async def test_copy_into_the_same_mailbox(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1)
    result = await alice.copy(inbox_id, [1], inbox_id)
    assert result.dest_uids == [2]
    assert list((await alice.snapshot(inbox_id)).uids) == [1, 2]


async def test_copy_respells_keywords_for_the_destination(alice: Account, inbox_id: int) -> None:
    work = await alice.create_mailbox("Work")
    await alice.append(work.id, [new(message(1), frozenset({"$Todo"}))])
    await alice.append(inbox_id, [new(message(2), frozenset({"$TODO"}))])
    result = await alice.copy(inbox_id, [1], work.id)
    [copied] = await alice.fetch_meta(work.id, result.dest_uids)
    assert copied.flags == {"$Todo"}


async def test_copy_and_move_need_existing_mailboxes(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1)
    with pytest.raises(NoSuchMailbox):
        await alice.copy(inbox_id, [1], 999_999)
    with pytest.raises(NoSuchMailbox):
        await alice.move(999_999, [1], inbox_id)


async def test_copied_messages_are_recent_in_the_destination(alice: Account, inbox_id: int) -> None:
    work = await alice.create_mailbox("Work")
    await alice.claim_recent(work.id)
    await append(alice, inbox_id, 1)
    result = await alice.copy(inbox_id, [1], work.id)
    assert await alice.claim_recent(work.id) == result.dest_uids[0]


async def test_move(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2, 3)
    await alice.store_flags(inbox_id, [2], FlagOp.ADD, frozenset({FLAGGED}))
    archive = await alice.get_mailbox("Archive")
    before = await alice.get_mailbox("INBOX")
    listener = alice.listen()

    result = await alice.move(inbox_id, [2, 3, 4], archive.id)

    assert (result.source_uids, result.dest_uids) == ([2, 3], [1, 2])
    assert list((await alice.snapshot(inbox_id)).uids) == [1]
    moved = await alice.fetch_meta(archive.id, [1, 2])
    assert [m.flags for m in moved] == [{FLAGGED}, frozenset()]
    changes = await alice.changes_since(inbox_id, before.highestmodseq)
    assert changes.expunged == [2, 3]
    inbox_after = await alice.get_mailbox("INBOX")
    archive_after = await alice.get_mailbox("Archive")
    assert inbox_after.highestmodseq == archive_after.highestmodseq == moved[0].modseq
    assert set(listener.pending()) == {
        MailboxChanged(inbox_id, inbox_after.highestmodseq),
        MailboxChanged(archive.id, archive_after.highestmodseq),
    }
    listener.close()


async def test_replace_appends_and_expunges_at_once(alice: Account, inbox_id: int) -> None:
    """RFC 8508: the new message is stored and the old one expunged in one change;
    a refusal changes nothing."""
    from roost.store.base import CannotDoThat, NoSuchMailbox

    await append(alice, inbox_id, 1, 2)
    result = await alice.replace(inbox_id, 1, "INBOX", new(message(3)))
    assert result.uids == [3]
    assert [m.uid for m in await alice.fetch_meta(inbox_id, [1, 2, 3])] == [2, 3]
    changes = await alice.changes_since(inbox_id, 0)
    assert changes.expunged == [1]
    with pytest.raises(NoSuchMailbox):
        await alice.replace(inbox_id, 2, "Nowhere", new(message(4)))
    assert [m.uid for m in await alice.fetch_meta(inbox_id, [2, 3])] == [2, 3]
    with pytest.raises(CannotDoThat):
        await alice.replace(inbox_id, 1, inbox_id, new(message(4)))
    archive = await alice.create_mailbox("Replaced")
    moved = await alice.replace(inbox_id, 2, archive.id, new(message(5)))
    assert moved.mailbox.id == archive.id
    assert (await alice.status(inbox_id)).messages == 1
    assert (await alice.status(archive.id)).messages == 1


async def test_replace_with_the_same_bytes_keeps_them(alice: Account, inbox_id: int) -> None:
    """REPLACE by an identical message: the old one's last reference goes, the new
    one's comes, in one change; the bytes and the analysis stay for the new UID (the
    removal of what nothing refers to must see the new reference)."""
    await append(alice, inbox_id, 1)
    result = await alice.replace(inbox_id, 1, "INBOX", new(message(1)))
    assert result.uids == [2]
    [meta] = await alice.fetch_meta(inbox_id, [2])
    assert meta.model is not None
    assert await read_all(alice, meta) == message(1)
    assert (await alice.quota()).messages == 1
