"""APPEND, FETCH metadata, reading message bytes, SELECT snapshots."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import MutableSequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from roost.store.base import (
    DELETED,
    SEEN,
    Account,
    CannotDoThat,
    FlagOp,
    MailboxChanged,
    MessageSource,
    NewMessage,
    NoSuchMailbox,
    Store,
)
from tests.store_contract.conftest import open_store
from tests.store_contract.helpers import append, message, new, read_all


async def test_append_one(alice: Account, inbox_id: int) -> None:
    before = await alice.get_mailbox("INBOX")
    data = message(1)
    result = await alice.append(inbox_id, [new(data)])

    assert result.uids == [1]
    assert result.uidvalidity == before.uidvalidity
    assert result.mailbox.uidnext == 2
    assert result.mailbox.highestmodseq > before.highestmodseq
    [meta] = await alice.fetch_meta(inbox_id, [1])
    assert meta.size == len(data)
    assert meta.header_size == data.index(b"\r\n\r\n") + 4
    assert meta.flags == frozenset()
    assert meta.modseq == result.mailbox.highestmodseq
    assert (await alice.get_mailbox("INBOX")).uidnext == 2


async def test_append_by_name(alice: Account, inbox_id: int) -> None:
    """By name, the lookup and the store are one step: absent is NoSuchMailbox, a
    \\Noselect placeholder is CannotDoThat, and nothing is stored for either."""
    result = await alice.append("INBOX", [new(message(1))])
    assert result.mailbox.id == inbox_id and result.uids == [1]
    assert await alice.append("INBOX", []) == dataclasses.replace(result, uids=[])
    with pytest.raises(NoSuchMailbox):
        await alice.append("Nowhere", [new(message(2))])
    await alice.create_mailbox("Parent/Child")
    await alice.delete_mailbox("Parent")  # has a child: becomes a placeholder
    with pytest.raises(CannotDoThat):
        await alice.append("Parent", [new(message(3))])
    assert list((await alice.snapshot(inbox_id)).uids) == [1]


async def test_multiappend_gives_consecutive_uids_in_order(alice: Account, inbox_id: int) -> None:
    first = await append(alice, inbox_id, 1)
    result = await alice.append(inbox_id, [new(message(n)) for n in (2, 3, 4)])
    assert first == [1]
    assert result.uids == [2, 3, 4]
    assert result.mailbox.uidnext == 5
    metas = await alice.fetch_meta(inbox_id, result.uids)
    assert len({m.modseq for m in metas}) == 1
    for n, meta in zip((2, 3, 4), metas, strict=True):
        assert await read_all(alice, meta) == message(n)


async def test_append_keeps_internaldate_with_its_zone(alice: Account, inbox_id: int) -> None:
    zone = timezone(timedelta(hours=-7))
    given = datetime(1996, 7, 17, 2, 44, 25, tzinfo=zone)
    await alice.append(inbox_id, [new(message(1), internaldate=given)])
    [meta] = await alice.fetch_meta(inbox_id, [1])
    assert meta.internaldate == given
    assert meta.internaldate.utcoffset() == timedelta(hours=-7)


async def test_append_without_internaldate_uses_now(alice: Account, inbox_id: int) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    await append(alice, inbox_id, 1)
    [meta] = await alice.fetch_meta(inbox_id, [1])
    assert meta.internaldate.tzinfo is not None
    assert before <= meta.internaldate <= datetime.now(UTC)


async def test_append_from_a_spooled_file(alice: Account, inbox_id: int, tmp_path: Path) -> None:
    data = message(7, body=b"x" * 700_000 + b"\r\n")
    spool = tmp_path / "literal"
    spool.write_bytes(data)
    result = await alice.append(inbox_id, [NewMessage(MessageSource(path=spool))])
    [meta] = await alice.fetch_meta(inbox_id, result.uids)
    assert meta.size == len(data)
    assert meta.header_size == data.index(b"\r\n\r\n") + 4
    assert await read_all(alice, meta) == data


@pytest.mark.parametrize(
    ("data", "header_size"),
    [
        (b"Subject: lf\r\n\r\nbody\r\n", 15),
        (b"Subject: only a header\r\n", 24),
        (b"\r\nno header at all\r\n", 2),
        (b"", 0),
    ],
)
async def test_header_size(alice: Account, inbox_id: int, data: bytes, header_size: int) -> None:
    result = await alice.append(inbox_id, [new(data)])
    [meta] = await alice.fetch_meta(inbox_id, result.uids)
    assert (meta.size, meta.header_size) == (len(data), header_size)


async def test_bare_lf_is_stored_as_crlf_unless_binary(alice: Account, inbox_id: int) -> None:
    """ARCHITECTURE.md decision 9 and RFC 9051 §6.3.12: every delivery path stores
    through append, which makes bare LF CRLF; a binary (literal8) message is kept
    byte-exact (RFC 3516 §4.4)."""
    sent = b"Subject: lf\n\nbody\nmore\r\n"
    text = await alice.append(inbox_id, [new(sent)])
    binary = await alice.append(inbox_id, [NewMessage(MessageSource(data=sent), binary=True)])
    [stored] = await alice.fetch_meta(inbox_id, text.uids)
    assert (stored.size, stored.header_size) == (27, 15)
    assert await read_all(alice, stored) == b"Subject: lf\r\n\r\nbody\r\nmore\r\n"
    [kept] = await alice.fetch_meta(inbox_id, binary.uids)
    assert (kept.size, kept.header_size) == (len(sent), 13)
    assert await read_all(alice, kept) == sent


async def test_append_with_flags(alice: Account, inbox_id: int) -> None:
    await alice.append(inbox_id, [new(message(1), frozenset({"\\SEEN", "$Label1", "\\Recent"}))])
    [meta] = await alice.fetch_meta(inbox_id, [1])
    assert meta.flags == {SEEN, "$Label1"}
    assert "$Label1" in (await alice.snapshot(inbox_id)).keywords


async def test_append_to_missing_mailbox(alice: Account) -> None:
    with pytest.raises(NoSuchMailbox):
        await alice.append(999_999, [new(message(1))])


async def test_append_publishes_after_commit(alice: Account, inbox_id: int) -> None:
    listener = alice.listen()
    result = await alice.append(inbox_id, [new(message(1))])
    assert listener.pending() == [MailboxChanged(inbox_id, result.mailbox.highestmodseq)]
    listener.close()


async def test_concurrent_appends_get_distinct_uids(alice: Account, inbox_id: int) -> None:
    results = await asyncio.gather(*(append(alice, inbox_id, n) for n in range(20)))
    assert sorted(uid for uids in results for uid in uids) == list(range(1, 21))


async def test_fetch_meta_subsets(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, *range(1, 11))
    assert [m.uid for m in await alice.fetch_meta(inbox_id, [9, 3, 3, 42, 1])] == [1, 3, 9]
    assert [m.uid for m in await alice.fetch_meta(inbox_id, range(4, 8))] == [4, 5, 6, 7]
    assert [m.uid for m in await alice.fetch_meta(inbox_id, range(5, 100))] == list(range(5, 11))
    assert await alice.fetch_meta(inbox_id, []) == []
    assert await alice.fetch_meta(inbox_id, [11, 12]) == []


async def test_fetch_meta_large_lists(alice: Account, inbox_id: int) -> None:
    count = 300
    await alice.append(inbox_id, [new(message(n)) for n in range(count)])
    every = list(range(1, count + 1))
    assert [m.uid for m in await alice.fetch_meta(inbox_id, every)] == every
    # 100,000 wanted UIDs, sparse: every 7th exists
    sparse = list(range(7, 700_001, 7))
    assert [m.uid for m in await alice.fetch_meta(inbox_id, sparse)] == sparse[: count // 7]
    odd = list(range(count, 0, -2))
    assert [m.uid for m in await alice.fetch_meta(inbox_id, odd)] == sorted(odd)


async def test_read_message_and_ranges_are_byte_identical(alice: Account, inbox_id: int) -> None:
    body = bytes(range(256)) * 4000  # ~1 MB, every byte value, several read chunks
    data = message(1, body=body)
    small = message(2)
    # Binary (literal8), so its bare LF bytes are content and stored as they are.
    big = NewMessage(MessageSource(data=data), binary=True)
    result = await alice.append(inbox_id, [big, new(small)])
    big_meta, small_meta = await alice.fetch_meta(inbox_id, result.uids)

    assert await read_all(alice, big_meta) == data
    assert await read_all(alice, small_meta) == small
    assert await alice.read_range(big_meta, 0, 10) == data[:10]
    assert await alice.read_range(big_meta, 300_000, 5000) == data[300_000:305_000]
    assert await alice.read_range(big_meta, len(data) - 3, 100) == data[-3:]
    assert await alice.read_range(big_meta, len(data) + 10, 100) == b""


async def test_snapshot_peeking_at_recent_claims_nothing(alice: Account, inbox_id: int) -> None:
    """RFC 3501 §6.3.2: EXAMINE sees \\Recent without taking it away."""
    await append(alice, inbox_id, 1, 2)
    peeked = await alice.snapshot(inbox_id, peek_recent=True)
    assert peeked.recent_floor == 1
    assert await alice.recent_floor(inbox_id) == 1
    assert (await alice.status(inbox_id)).recent == 2
    assert (await alice.snapshot(inbox_id, claim_recent=True)).recent_floor == 1
    assert await alice.recent_floor(inbox_id) == 3
    assert (await alice.status(inbox_id)).recent == 0


async def test_snapshot(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2)
    await alice.append(inbox_id, [new(message(3), frozenset({SEEN, "Work"}))])
    snap = await alice.snapshot(inbox_id)
    assert snap.info.uidnext == 4
    assert list(snap.uids) == [1, 2, 3]
    assert snap.keywords == {"Work"}
    assert snap.first_unseen == 1
    assert snap.recent_floor is None  # not asked to claim
    assert (await alice.status(inbox_id)).recent == 3  # so nothing was claimed


async def test_snapshot_of_empty_mailbox(alice: Account, inbox_id: int) -> None:
    snap = await alice.snapshot(inbox_id)
    assert (list(snap.uids), snap.keywords, snap.first_unseen) == ([], frozenset(), None)
    assert (await alice.snapshot(inbox_id, claim_recent=True)).recent_floor == 1


async def test_snapshot_uids_are_the_callers_own(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2)
    first = await alice.snapshot(inbox_id)
    assert isinstance(first.uids, MutableSequence)
    first.uids[0] = 99
    assert list((await alice.snapshot(inbox_id)).uids) == [1, 2]


async def test_snapshot_first_unseen_follows_flags_and_expunges(
    alice: Account, inbox_id: int
) -> None:
    uids = await append(alice, inbox_id, 1, 2, 3, 4)
    await alice.store_flags(inbox_id, uids[:2], FlagOp.ADD, frozenset({SEEN}))
    assert (await alice.snapshot(inbox_id)).first_unseen == 3
    await alice.store_flags(inbox_id, [3], FlagOp.ADD, frozenset({SEEN, DELETED}))
    await alice.store_flags(inbox_id, [1], FlagOp.REMOVE, frozenset({SEEN}))
    assert (await alice.snapshot(inbox_id)).first_unseen == 1
    await alice.store_flags(inbox_id, uids, FlagOp.ADD, frozenset({SEEN}))
    assert (await alice.snapshot(inbox_id)).first_unseen is None
    await alice.store_flags(inbox_id, [4], FlagOp.REPLACE, frozenset({"$Later"}))
    assert (await alice.snapshot(inbox_id)).first_unseen == 4
    await alice.store_flags(inbox_id, [4], FlagOp.ADD, frozenset({DELETED}))
    await alice.expunge(inbox_id)
    snap = await alice.snapshot(inbox_id)
    assert (list(snap.uids), snap.first_unseen) == ([1, 2], None)


async def test_snapshot_claims_recent_like_claim_recent(
    store: Store, alice: Account, inbox_id: int
) -> None:
    """RFC 3501 §2.3.1.2: \\Recent belongs to the one session that first sees it."""
    other = await store.open_account("alice")
    try:
        await append(alice, inbox_id, 1, 2)
        snap = await alice.snapshot(inbox_id, claim_recent=True)
        assert (list(snap.uids), snap.recent_floor) == ([1, 2], 1)
        assert (await other.snapshot(inbox_id, claim_recent=True)).recent_floor == 3
        assert (await alice.status(inbox_id)).recent == 0
        await append(alice, inbox_id, 3)
        assert (await other.snapshot(inbox_id)).recent_floor is None  # looking claims none
        assert await alice.claim_recent(inbox_id) == 3
        assert (await other.snapshot(inbox_id, claim_recent=True)).recent_floor == 4
    finally:
        await other.close()


async def test_snapshot_sees_another_store_on_the_same_data(
    backend: str, store_path: Path, alice: Account, inbox_id: int
) -> None:
    """Two stores on one path are two worker processes: each sees the other's changes."""
    uids = await append(alice, inbox_id, *range(1, 11))
    assert list((await alice.snapshot(inbox_id)).uids) == uids
    second = await open_store(backend, store_path)
    try:
        bob = await second.open_account("alice")
        try:
            assert list((await bob.snapshot(inbox_id)).uids) == uids
            await bob.store_flags(inbox_id, [2, 5, 9], FlagOp.ADD, frozenset({DELETED}))
            await bob.expunge(inbox_id)
            await append(bob, inbox_id, 11, 12)
            expected = [1, 3, 4, 6, 7, 8, 10, 11, 12]
            assert list((await alice.snapshot(inbox_id)).uids) == expected
            trash = await alice.get_mailbox("Trash")
            await alice.move(inbox_id, [1, 12], trash.id)
            await append(alice, inbox_id, 13)
            assert list((await bob.snapshot(inbox_id)).uids) == [3, 4, 6, 7, 8, 10, 11, 13]
            assert list((await bob.snapshot(trash.id)).uids) == [1, 2]
        finally:
            await bob.close()
    finally:
        await second.close()


async def test_fetch_flags(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1, 2, 3, 4, 5)
    await alice.store_flags(inbox_id, [2, 4], FlagOp.ADD, frozenset({SEEN, "Work"}))
    await alice.store_flags(inbox_id, [3], FlagOp.ADD, frozenset({DELETED}))
    await alice.expunge(inbox_id)
    # Every UID of a range present or not, wanted UIDs with others between them, keywords
    # at either, a sparse set, duplicates, nothing found.
    cases = ([1, 2, 3, 4, 5], range(1, 7), [5, 1, 4], [1, 4], [1, 2], range(1, 3), [4, 5, 4])
    for uids in (*cases, [1, 200], [3], [1000], []):
        expected = [(m.uid, m.flags, m.modseq) for m in await alice.fetch_meta(inbox_id, uids)]
        found = await alice.fetch_flags(inbox_id, uids)
        assert found.states() == expected
        assert set(found.flags) == {key for _, key, _ in found.rows}
        # A FETCH of only UID and FLAGS reads no modseqs; the rest is the same.
        light = await alice.fetch_flags(inbox_id, uids, with_modseq=False)
        assert light.modseqs is None
        assert list(light.uids) == [uid for uid, _, _ in expected]
        assert [light.flags[key] for key in light.keys] == [flags for _, flags, _ in expected]
    found = await alice.fetch_flags(inbox_id, range(1, 6))
    assert [uid for uid, _, _ in found.rows] == [1, 2, 4, 5]
    assert len(found.flags) == 2  # messages with equal flags share a key
    with pytest.raises(NoSuchMailbox):
        await alice.fetch_flags(inbox_id + 1000, [1])


async def test_reading_an_expunged_message_says_it_is_gone(alice: Account) -> None:
    """Metadata read, then the message expunged elsewhere: reading it is MessageGone,
    which FETCH treats as an expunged message, not a server fault."""
    from roost.store.base import DELETED, FlagOp, MessageGone

    inbox = await alice.get_mailbox("INBOX")
    result = await alice.append(inbox.id, [new(message(7))])
    [meta] = await alice.fetch_meta(inbox.id, result.uids)
    await alice.store_flags(inbox.id, result.uids, FlagOp.ADD, frozenset({DELETED}))
    await alice.expunge(inbox.id)
    with pytest.raises(MessageGone):
        await alice.read_range(meta, 0, 10)
