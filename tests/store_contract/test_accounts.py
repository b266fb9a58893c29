"""Accounts: creation, names, passwords, deletion."""

from __future__ import annotations

import pytest

from roost.store.base import AccountExists, NoSuchAccount, Store, StoreError


async def test_created_accounts_are_listed_in_their_stored_case(store: Store) -> None:
    assert await store.list_accounts() == []
    await store.create_account("Alice", "h1")
    await store.create_account("bob@example.org", "h2")
    assert sorted(await store.list_accounts()) == ["Alice", "bob@example.org"]


async def test_account_names_are_case_insensitive(store: Store) -> None:
    await store.create_account("Alice", "h1")
    with pytest.raises(AccountExists):
        await store.create_account("ALICE", "h2")
    account = await store.open_account("aLiCe")
    try:
        assert account.name == "Alice"
    finally:
        await account.close()
    assert await store.get_password_hash("alice") == "h1"


async def test_password_hashes(store: Store) -> None:
    await store.create_account("alice", "old")
    assert await store.get_password_hash("alice") == "old"
    await store.set_password_hash("alice", "new")
    assert await store.get_password_hash("alice") == "new"
    assert await store.get_password_hash("nobody") is None
    with pytest.raises(NoSuchAccount):
        await store.set_password_hash("nobody", "x")


async def test_missing_accounts(store: Store) -> None:
    with pytest.raises(NoSuchAccount):
        await store.open_account("nobody")
    with pytest.raises(NoSuchAccount):
        await store.delete_account("nobody")


async def test_delete_account(store: Store) -> None:
    await store.create_account("alice", "h")
    await store.delete_account("ALICE")
    assert await store.list_accounts() == []
    assert await store.get_password_hash("alice") is None
    with pytest.raises(NoSuchAccount):
        await store.open_account("alice")


async def test_recreated_account_starts_empty_with_new_uidvalidities(store: Store) -> None:
    await store.create_account("alice", "h")
    account = await store.open_account("alice")
    await account.create_mailbox("Projects")
    old = {m.name: m.uidvalidity for m in await account.list_mailboxes()}
    await account.close()
    await store.delete_account("alice")

    await store.create_account("alice", "h")
    account = await store.open_account("alice")
    try:
        new = {m.name: m.uidvalidity for m in await account.list_mailboxes()}
    finally:
        await account.close()
    assert "Projects" not in new
    assert all(new[name] != old[name] for name in new)


async def test_deleting_an_open_account_closes_its_handles(store: Store) -> None:
    await store.create_account("alice", "h")
    account = await store.open_account("alice")
    await store.delete_account("alice")
    with pytest.raises(StoreError):
        await account.list_mailboxes()
    await account.close()


@pytest.mark.parametrize("name", ["../../etc", "a/b", "x\\y", "üser@exämple.org", ".", "-"])
async def test_any_account_name_works(store: Store, name: str) -> None:
    await store.create_account(name, "h")
    account = await store.open_account(name)
    try:
        assert account.name == name
        assert (await account.get_mailbox("INBOX")).name == "INBOX"
    finally:
        await account.close()
    assert await store.list_accounts() == [name]


async def test_handles_share_one_account(store: Store) -> None:
    await store.create_account("alice", "h")
    first = await store.open_account("alice")
    second = await store.open_account("alice")
    await first.create_mailbox("Shared")
    await first.close()
    assert (await second.get_mailbox("Shared")).name == "Shared"
    await second.close()
    with pytest.raises(StoreError):
        await first.list_mailboxes()
