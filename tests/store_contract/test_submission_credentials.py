"""The submission side of the credential store, on every backend: aliases (an address
belongs to one account), the per-hour count that holds across processes and nodes,
and the URLAUTH secrets per mailbox (RFC 4467 §7)."""

from __future__ import annotations

import asyncio

import pytest

from roost.store.base import CannotDoThat, NoSuchAccount, Store


async def test_aliases_belong_to_one_account(store: Store) -> None:
    await store.create_account("alice", "h")
    await store.create_account("bob", "h")
    await store.add_alias("ALICE", "A.Smith@example.org")
    await store.add_alias("alice", "postmaster@example.org")
    assert await store.list_aliases("alice") == ["A.Smith@example.org", "postmaster@example.org"]
    with pytest.raises(CannotDoThat):
        await store.add_alias("bob", "a.smith@EXAMPLE.org")  # the same address, any case
    assert await store.delete_alias("bob", "a.smith@example.org") is False
    assert await store.delete_alias("alice", "a.smith@example.org") is True
    assert await store.list_aliases("alice") == ["postmaster@example.org"]
    with pytest.raises(NoSuchAccount):
        await store.add_alias("nobody", "x@example.org")
    await store.delete_account("alice")
    await store.add_alias("bob", "postmaster@example.org")  # freed with its account


async def test_the_hourly_count_refuses_beyond_the_limit_and_forgets_the_old(
    store: Store,
) -> None:
    await store.create_account("alice", "h")
    now = 1_000_000.0
    claims = await asyncio.gather(
        *(store.claim_submission("alice", now + n / 10, 3600, 3) for n in range(5))
    )
    assert sorted(claims) == [False, False, True, True, True]
    assert not await store.claim_submission("alice", now + 10, 3600, 3)
    await store.release_submission("alice", now)  # that one was not sent after all
    assert await store.claim_submission("alice", now + 11, 3600, 3)
    assert await store.claim_submission("alice", now + 3601, 3600, 3)  # an hour on
    assert await store.claim_submission("alice", now + 3602, 3600, 0)  # no limit


async def test_urlauth_keys_per_mailbox_and_reset(store: Store) -> None:
    await store.create_account("alice", "h")
    assert await store.urlauth_key("alice", "INBOX", create=False) is None
    inbox = await store.urlauth_key("alice", "INBOX", create=True)
    assert inbox is not None and len(inbox) == 32
    assert await store.urlauth_key("ALICE", "INBOX", create=True) == inbox
    sent = await store.urlauth_key("alice", "Sent", create=True)
    assert sent not in (None, inbox)
    await store.reset_urlauth_keys("alice", "INBOX")
    assert await store.urlauth_key("alice", "INBOX", create=False) is None
    assert await store.urlauth_key("alice", "Sent", create=False) == sent
    await store.reset_urlauth_keys("alice", None)
    assert await store.urlauth_key("alice", "Sent", create=False) is None
    with pytest.raises(NoSuchAccount):
        await store.urlauth_key("nobody", "INBOX", create=True)
