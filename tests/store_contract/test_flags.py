"""STORE: flag operations, modseqs, case rules, UNCHANGEDSINCE (RFC 9051 §6.4.6,
RFC 7162 §3.1.3)."""

from __future__ import annotations

from roost.store.base import (
    ANSWERED,
    DELETED,
    FLAGGED,
    SEEN,
    Account,
    FlagOp,
    MailboxChanged,
)
from tests.store_contract.helpers import append, message, new


async def flags_of(account: Account, mailbox_id: int) -> dict[int, frozenset[str]]:
    return {m.uid: m.flags for m in await account.fetch_meta(mailbox_id, range(1, 100))}


async def test_add_remove_replace(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2, 3)
    await alice.store_flags(inbox_id, [1, 2], FlagOp.ADD, frozenset({SEEN, "Work"}))
    await alice.store_flags(inbox_id, [2, 3], FlagOp.ADD, frozenset({FLAGGED}))
    await alice.store_flags(inbox_id, [2], FlagOp.REMOVE, frozenset({SEEN}))
    await alice.store_flags(inbox_id, [3], FlagOp.REPLACE, frozenset({ANSWERED, "Home"}))
    assert await flags_of(alice, inbox_id) == {
        1: {SEEN, "Work"},
        2: {FLAGGED, "Work"},
        3: {ANSWERED, "Home"},
    }
    await alice.store_flags(inbox_id, [1, 2, 3], FlagOp.REPLACE, frozenset())
    assert set((await flags_of(alice, inbox_id)).values()) == {frozenset()}


async def test_result_and_modseq_only_for_real_changes(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2)
    await alice.store_flags(inbox_id, [1], FlagOp.ADD, frozenset({SEEN}))
    before = await alice.get_mailbox("INBOX")

    result = await alice.store_flags(inbox_id, [1, 2, 99], FlagOp.ADD, frozenset({SEEN}))

    assert [(s.uid, s.flags) for s in result.updated] == [(2, frozenset({SEEN}))]
    assert [(s.uid, s.flags) for s in result.unchanged] == [(1, frozenset({SEEN}))]
    assert result.failed_unchangedsince == []
    after = await alice.get_mailbox("INBOX")
    assert result.updated[0].modseq == after.highestmodseq > before.highestmodseq
    [unchanged_meta] = await alice.fetch_meta(inbox_id, [1])
    assert unchanged_meta.modseq <= before.highestmodseq


async def test_a_store_that_changes_nothing_takes_no_modseq(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1)
    before = await alice.get_mailbox("INBOX")
    listener = alice.listen()
    result = await alice.store_flags(inbox_id, [1], FlagOp.REMOVE, frozenset({SEEN, "Nope"}))
    assert result.updated == []
    assert (await alice.get_mailbox("INBOX")).highestmodseq == before.highestmodseq
    assert listener.pending() == []
    listener.close()


async def test_store_publishes_the_new_modseq(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1)
    listener = alice.listen()
    result = await alice.store_flags(inbox_id, [1], FlagOp.ADD, frozenset({FLAGGED}))
    assert listener.pending() == [MailboxChanged(inbox_id, result.updated[0].modseq)]
    listener.close()


async def test_system_flags_are_case_insensitive(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1)
    await alice.store_flags(inbox_id, [1], FlagOp.ADD, frozenset({"\\SEEN", "\\deleted"}))
    assert (await flags_of(alice, inbox_id))[1] == {SEEN, DELETED}
    result = await alice.store_flags(inbox_id, [1], FlagOp.ADD, frozenset({"\\seen"}))
    assert result.updated == []
    await alice.store_flags(inbox_id, [1], FlagOp.REMOVE, frozenset({"\\sEEn"}))
    assert (await flags_of(alice, inbox_id))[1] == {DELETED}


async def test_keywords_keep_their_first_spelling(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2)
    await alice.store_flags(inbox_id, [1], FlagOp.ADD, frozenset({"$Label1"}))
    result = await alice.store_flags(inbox_id, [1, 2], FlagOp.ADD, frozenset({"$LABEL1"}))
    assert [s.uid for s in result.updated] == [2]
    assert await flags_of(alice, inbox_id) == {1: {"$Label1"}, 2: {"$Label1"}}
    assert (await alice.snapshot(inbox_id)).keywords == {"$Label1"}
    await alice.store_flags(inbox_id, [1], FlagOp.REMOVE, frozenset({"$label1"}))
    assert (await flags_of(alice, inbox_id))[1] == frozenset()


async def test_keywords_with_quotes_and_backslashes(alice: Account, inbox_id: int) -> None:
    """Keywords are kept byte for byte, whatever a store quotes them with, on STORE
    and on APPEND (an IMAP atom may hold an apostrophe; the store takes any non-space)."""
    odd = frozenset({"it's", "a\\b", "x''y"})
    await append(alice, inbox_id, 1)
    await alice.store_flags(inbox_id, [1], FlagOp.ADD, odd)
    await alice.append(inbox_id, [new(message(2), odd)])
    assert await flags_of(alice, inbox_id) == {1: odd, 2: odd}
    assert (await alice.snapshot(inbox_id)).keywords == odd


async def test_recent_is_never_stored(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1)
    result = await alice.store_flags(inbox_id, [1], FlagOp.ADD, frozenset({"\\Recent"}))
    assert result.updated == []
    await alice.store_flags(inbox_id, [1], FlagOp.REPLACE, frozenset({"\\Recent", SEEN}))
    assert (await flags_of(alice, inbox_id))[1] == {SEEN}


async def test_unchangedsince(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2, 3)
    metas = await alice.fetch_meta(inbox_id, [1, 2, 3])
    seen_at = metas[0].modseq
    await alice.store_flags(inbox_id, [2], FlagOp.ADD, frozenset({FLAGGED}))

    result = await alice.store_flags(
        inbox_id, [1, 2, 3], FlagOp.ADD, frozenset({SEEN}), unchangedsince=seen_at
    )

    assert result.failed_unchangedsince == [2]
    assert [s.uid for s in result.updated] == [1, 3]
    assert await flags_of(alice, inbox_id) == {1: {SEEN}, 2: {FLAGGED}, 3: {SEEN}}


async def test_unchangedsince_zero_fails_everything(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2)
    result = await alice.store_flags(
        inbox_id, [1, 2], FlagOp.ADD, frozenset({SEEN}), unchangedsince=0
    )
    assert result.failed_unchangedsince == [1, 2]
    assert result.updated == []


async def test_store_on_many_messages(alice: Account, inbox_id: int) -> None:
    uids = await append(alice, inbox_id, *range(200))
    result = await alice.store_flags(inbox_id, uids[::2], FlagOp.ADD, frozenset({SEEN}))
    assert [s.uid for s in result.updated] == uids[::2]
    assert len({s.modseq for s in result.updated}) == 1
    assert (await alice.status(inbox_id)).unseen == 100
