"""METADATA entries (RFC 5464): server and mailbox entries, subtrees, all-or-nothing
writes under an entry limit, and entries removed with their mailbox (§3.2)."""

from __future__ import annotations

import pytest

from roost.store.base import Account, NoSuchMailbox, Store, TooManyMetadataEntries


async def test_server_and_mailbox_entries_are_separate(alice: Account) -> None:
    inbox = await alice.get_mailbox("INBOX")
    await alice.set_metadata(None, {"/shared/comment": b"server"}, 10)
    await alice.set_metadata(inbox.id, {"/shared/comment": b"inbox"}, 10)
    assert await alice.get_metadata(None, ["/shared/comment"]) == {"/shared/comment": b"server"}
    assert await alice.get_metadata(inbox.id, ["/shared/comment"]) == {"/shared/comment": b"inbox"}
    assert await alice.get_metadata(inbox.id, ["/private/comment"]) == {}


async def test_a_name_covers_its_subtree_only(alice: Account) -> None:
    values = {
        "/private/vendor/a": b"1",
        "/private/vendor/a/b": b"\x00binary",
        "/private/vendor/ab": b"3",
    }
    await alice.set_metadata(None, values, 10)
    assert await alice.get_metadata(None, ["/private/vendor/a"]) == {
        "/private/vendor/a": b"1",
        "/private/vendor/a/b": b"\x00binary",
    }
    assert await alice.get_metadata(None, ["/private"]) == values


async def test_none_removes_and_the_limit_changes_nothing(alice: Account) -> None:
    await alice.set_metadata(None, {"/shared/comment": b"x", "/private/comment": b"y"}, 2)
    with pytest.raises(TooManyMetadataEntries):
        await alice.set_metadata(None, {"/shared/vendor/z": b"z"}, 2)
    assert set(await alice.get_metadata(None, ["/shared", "/private"])) == {
        "/shared/comment",
        "/private/comment",
    }
    # Removing one and adding another in the same call stays within the limit.
    await alice.set_metadata(None, {"/shared/comment": None, "/shared/vendor/z": b"z"}, 2)
    assert set(await alice.get_metadata(None, ["/shared"])) == {"/shared/vendor/z"}


async def test_entries_go_with_their_mailbox(alice: Account) -> None:
    box = await alice.create_mailbox("Projects")
    await alice.set_metadata(box.id, {"/private/comment": b"old"}, 10)
    await alice.rename_mailbox("Projects", "Work")  # a rename keeps them
    assert await alice.get_metadata(box.id, ["/private"]) == {"/private/comment": b"old"}
    await alice.delete_mailbox("Work")
    with pytest.raises(NoSuchMailbox):
        await alice.get_metadata(box.id, ["/private"])
    again = await alice.create_mailbox("Work")
    assert await alice.get_metadata(again.id, ["/private"]) == {}


async def test_a_placeholder_left_by_delete_loses_them(alice: Account) -> None:
    parent = await alice.create_mailbox("Lists/rust")
    lists = await alice.get_mailbox("Lists")
    await alice.set_metadata(lists.id, {"/shared/comment": b"mailing lists"}, 10)
    await alice.delete_mailbox("Lists")  # has an inferior: becomes \Noselect
    assert parent.name == "Lists/rust"
    assert await alice.get_metadata(lists.id, ["/shared"]) == {}


async def test_acl_entries(alice: Account) -> None:
    """ACL (RFC 4314) entries: set, replaced, removed with "" or None; kept by RENAME,
    removed with the mailbox."""
    box = await alice.create_mailbox("Shared")
    assert await alice.get_acl(box.id) == {}
    await alice.set_acl(box.id, "bob", "lr")
    await alice.set_acl(box.id, "carol", "lrswipkxtea")
    await alice.set_acl(box.id, "bob", "lrs")
    assert await alice.get_acl(box.id) == {"bob": "lrs", "carol": "lrswipkxtea"}
    await alice.set_acl(box.id, "carol", "")
    await alice.rename_mailbox("Shared", "Team")
    assert await alice.get_acl(box.id) == {"bob": "lrs"}
    await alice.set_acl(box.id, "bob", None)
    assert await alice.get_acl(box.id) == {}
    await alice.set_acl(box.id, "bob", "l")
    await alice.delete_mailbox("Team")
    with pytest.raises(NoSuchMailbox):
        await alice.get_acl(box.id)
    with pytest.raises(NoSuchMailbox):
        await alice.set_acl(box.id, "bob", "l")


async def test_acl_entries_for_identifiers(alice: Account) -> None:
    """Every selectable mailbox with an entry for one of the identifiers, by name, with
    those entries only; "anyone" and negative ("-bob") entries are kept as given."""
    team = await alice.create_mailbox("Team")
    inbox = await alice.get_mailbox("INBOX")
    await alice.set_acl(team.id, "bob", "lrs")
    await alice.set_acl(team.id, "-bob", "s")
    await alice.set_acl(inbox.id, "bob", "lr")
    await alice.set_acl(inbox.id, "carol", "l")
    await alice.set_acl(inbox.id, "anyone", "l")
    assert await alice.acl_entries_for(["bob", "-bob"]) == {
        "INBOX": {"bob": "lr"},
        "Team": {"bob": "lrs", "-bob": "s"},
    }
    assert await alice.acl_entries_for(["dave", "anyone"]) == {"INBOX": {"anyone": "l"}}
    assert await alice.acl_entries_for(["dave"]) == {}
    assert await alice.get_acl(team.id) == {"-bob": "s", "bob": "lrs"}
    await alice.create_mailbox("Team/Sub")
    await alice.delete_mailbox("Team")  # a \Noselect placeholder keeps no entries
    assert await alice.acl_entries_for(["bob", "-bob"]) == {"INBOX": {"bob": "lr"}}


async def test_sharers(store: Store, alice: Account) -> None:
    """Who granted an account something: by the grantee's name in any case, each once,
    forgotten with the grantee's account."""
    await store.create_account("Bob", "h")
    assert await store.sharers_of("bob") == []
    await store.add_sharer("alice", "Bob")
    await store.add_sharer("alice", "bob")
    await store.add_sharer("carol", "BOB")
    assert await store.sharers_of("bob") == ["alice", "carol"]
    await store.delete_account("Bob")
    assert await store.sharers_of("Bob") == []
