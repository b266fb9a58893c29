"""Mailboxes: defaults, CREATE, DELETE, RENAME, subscriptions (RFC 9051 §6.3)."""

from __future__ import annotations

import pytest

from roost.store.base import (
    SEEN,
    SPECIAL_USES,
    Account,
    CannotDoThat,
    FlagOp,
    MailboxExists,
    MailboxHasChildren,
    MailboxListChanged,
    NoSuchMailbox,
)
from tests.store_contract.helpers import append

DEFAULTS = {
    "INBOX": None,
    "Drafts": "\\Drafts",
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}


async def names(account: Account) -> set[str]:
    return {m.name for m in await account.list_mailboxes()}


async def test_new_account_has_the_default_mailboxes_subscribed(alice: Account) -> None:
    boxes = await alice.list_mailboxes()
    assert {m.name: m.special_use for m in boxes} == DEFAULTS
    assert sorted(await alice.list_subscriptions()) == sorted(DEFAULTS)
    for box in boxes:
        assert not box.noselect
        assert box.uidnext == 1
        assert 0 < box.uidvalidity < 2**32
    assert len({m.uidvalidity for m in boxes}) == len(boxes)
    assert len({m.id for m in boxes}) == len(boxes)


async def test_get_mailbox(alice: Account) -> None:
    sent = await alice.get_mailbox("Sent")
    assert (sent.name, sent.special_use) == ("Sent", "\\Sent")
    with pytest.raises(NoSuchMailbox):
        await alice.get_mailbox("sent")  # names compare exactly
    with pytest.raises(NoSuchMailbox):
        await alice.get_mailbox("Nope")


async def test_create_makes_missing_parents_real_mailboxes(alice: Account) -> None:
    created = await alice.create_mailbox("a/b/c")
    assert created.name == "a/b/c"
    assert {"a", "a/b", "a/b/c"} <= await names(alice)
    for name in ("a", "a/b"):
        parent = await alice.get_mailbox(name)
        assert not parent.noselect
        await alice.status(parent.id)  # selectable


async def test_create_existing_fails(alice: Account) -> None:
    await alice.create_mailbox("Work")
    for name in ("Work", "INBOX"):
        with pytest.raises(MailboxExists):
            await alice.create_mailbox(name)


@pytest.mark.parametrize("name", ["", "/a", "a/", "a//b"])
async def test_create_rejects_empty_name_parts(alice: Account, name: str) -> None:
    with pytest.raises(CannotDoThat):
        await alice.create_mailbox(name)


async def test_create_with_special_use(alice: Account) -> None:
    assert "\\Flagged" in SPECIAL_USES
    box = await alice.create_mailbox("Starred", "\\Flagged")
    assert box.special_use == "\\Flagged"
    assert (await alice.get_mailbox("Starred")).special_use == "\\Flagged"
    with pytest.raises(CannotDoThat):
        await alice.create_mailbox("Odd", "\\NotAThing")


async def test_create_over_placeholder_makes_it_real(alice: Account) -> None:
    old = await alice.create_mailbox("p")
    await alice.create_mailbox("p/child")
    await alice.delete_mailbox("p")
    assert (await alice.get_mailbox("p")).noselect
    with pytest.raises(NoSuchMailbox):
        await alice.status(old.id)

    again = await alice.create_mailbox("p")
    assert not again.noselect
    assert again.uidvalidity != old.uidvalidity
    assert (await alice.status(again.id)).messages == 0


async def test_recreated_mailbox_gets_new_uidvalidity(alice: Account) -> None:
    first = await alice.create_mailbox("x")
    await alice.delete_mailbox("x")
    second = await alice.create_mailbox("x")
    assert second.uidvalidity != first.uidvalidity
    assert second.id != first.id
    assert second.uidnext == 1


async def test_delete_inbox_is_refused(alice: Account) -> None:
    with pytest.raises(CannotDoThat):
        await alice.delete_mailbox("INBOX")


async def test_delete_missing_fails(alice: Account) -> None:
    with pytest.raises(NoSuchMailbox):
        await alice.delete_mailbox("Nope")


async def test_delete_leaf_removes_it_and_its_messages(alice: Account) -> None:
    box = await alice.create_mailbox("Old")
    await append(alice, box.id, 1, 2)
    await alice.delete_mailbox("Old")
    assert "Old" not in await names(alice)
    with pytest.raises(NoSuchMailbox):
        await alice.fetch_meta(box.id, [1, 2])


async def test_delete_with_inferiors_leaves_an_empty_placeholder(alice: Account) -> None:
    parent = await alice.create_mailbox("Parent")
    await alice.create_mailbox("Parent/Child")
    await append(alice, parent.id, 1, 2)
    await alice.delete_mailbox("Parent")

    placeholder = await alice.get_mailbox("Parent")
    assert placeholder.noselect
    assert "Parent/Child" in await names(alice)
    with pytest.raises(NoSuchMailbox):
        await alice.append(parent.id, [])
    with pytest.raises(MailboxHasChildren):
        await alice.delete_mailbox("Parent")


async def test_deleting_last_child_removes_placeholder_ancestors(alice: Account) -> None:
    await alice.create_mailbox("a/b/c")
    await alice.create_mailbox("a/x")
    await alice.delete_mailbox("a")
    await alice.delete_mailbox("a/b")
    await alice.delete_mailbox("a/b/c")
    assert {"a", "a/x"} <= await names(alice)
    assert "a/b" not in await names(alice)  # childless placeholder: gone
    assert (await alice.get_mailbox("a")).noselect  # still has a/x
    await alice.delete_mailbox("a/x")
    assert not {"a", "a/b", "a/x"} & await names(alice)


async def test_delete_keeps_subscriptions(alice: Account) -> None:
    """RFC 9051 §6.3.9: the subscription outlives the mailbox."""
    await alice.create_mailbox("Gone")
    await alice.set_subscribed("Gone", True)
    await alice.delete_mailbox("Gone")
    assert "Gone" in await alice.list_subscriptions()


async def test_rename_moves_inferiors_and_keeps_uidvalidity_and_uids(alice: Account) -> None:
    top = await alice.create_mailbox("Work")
    child = await alice.create_mailbox("Work/2024")
    await alice.create_mailbox("Workshop")  # shares a prefix, not an inferior
    uids = await append(alice, child.id, 1, 2)

    await alice.rename_mailbox("Work", "Job")

    assert {"Job", "Job/2024", "Workshop"} <= await names(alice)
    assert not {"Work", "Work/2024"} & await names(alice)
    job = await alice.get_mailbox("Job")
    moved = await alice.get_mailbox("Job/2024")
    assert (job.id, job.uidvalidity) == (top.id, top.uidvalidity)
    assert (moved.uidvalidity, moved.uidnext) == (child.uidvalidity, child.uidnext + 2)
    assert [m.uid for m in await alice.fetch_meta(moved.id, uids)] == uids


async def test_rename_creates_parents_and_prunes_placeholders(alice: Account) -> None:
    await alice.create_mailbox("old/leaf")
    await alice.delete_mailbox("old")  # placeholder, kept alive by old/leaf
    await alice.rename_mailbox("old/leaf", "new/deep/leaf")
    boxes = await names(alice)
    assert {"new", "new/deep", "new/deep/leaf"} <= boxes
    assert not {"old", "old/leaf"} & boxes
    assert not (await alice.get_mailbox("new/deep")).noselect


async def test_rename_errors(alice: Account) -> None:
    await alice.create_mailbox("A")
    await alice.create_mailbox("B")
    with pytest.raises(NoSuchMailbox):
        await alice.rename_mailbox("Nope", "C")
    with pytest.raises(MailboxExists):
        await alice.rename_mailbox("A", "B")
    with pytest.raises(MailboxExists):
        await alice.rename_mailbox("A", "INBOX")
    with pytest.raises(CannotDoThat):
        await alice.rename_mailbox("A", "A/inside")


async def test_rename_inbox_moves_its_messages(alice: Account, inbox_id: int) -> None:
    """RFC 9051 §6.3.6: INBOX stays, empty, with its UIDVALIDITY; its inferiors stay."""
    await alice.create_mailbox("INBOX/Sub")
    before = await alice.get_mailbox("INBOX")
    await append(alice, inbox_id, 1, 2, 3)
    await alice.store_flags(inbox_id, [2], FlagOp.ADD, frozenset({SEEN}))

    await alice.rename_mailbox("INBOX", "Old Mail")

    inbox = await alice.get_mailbox("INBOX")
    assert inbox.id == inbox_id
    assert inbox.uidvalidity == before.uidvalidity
    assert inbox.uidnext == 4
    assert (await alice.status(inbox_id)).messages == 0
    assert "INBOX/Sub" in await names(alice)
    changes = await alice.changes_since(inbox_id, before.highestmodseq)
    assert changes.expunged == [1, 2, 3]

    old = await alice.get_mailbox("Old Mail")
    assert old.uidvalidity != inbox.uidvalidity
    snap = await alice.snapshot(old.id)
    assert list(snap.uids) == [1, 2, 3]
    found = await alice.fetch_flags(old.id, snap.uids)
    assert [("\\Seen" in f) for _, f, _ in found.states()] == [False, True, False]
    assert (await alice.append(inbox_id, [])).uids == []
    assert await append(alice, inbox_id, 4) == [4]


async def test_rename_empty_inbox(alice: Account) -> None:
    await alice.rename_mailbox("INBOX", "Elsewhere")
    assert {"INBOX", "Elsewhere"} <= await names(alice)


async def test_subscriptions(alice: Account) -> None:
    await alice.set_subscribed("Sent", False)
    await alice.set_subscribed("Not/Yet/There", True)
    await alice.set_subscribed("Not/Yet/There", True)
    subscribed = await alice.list_subscriptions()
    assert "Sent" not in subscribed
    assert subscribed.count("Not/Yet/There") == 1
    await alice.set_subscribed("Never", False)  # a no-op, not an error


async def test_mailbox_list_changes_are_published(alice: Account) -> None:
    listener = alice.listen()
    await alice.create_mailbox("New")
    assert listener.pending() == [MailboxListChanged()]
    await alice.rename_mailbox("New", "Newer")
    await alice.set_subscribed("Newer", True)
    await alice.delete_mailbox("Newer")
    assert listener.pending() == [MailboxListChanged()]  # coalesced
    listener.close()
