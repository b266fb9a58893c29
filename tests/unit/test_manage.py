"""Credential changes for the command-line tools (roost.auth.manage), on a real store."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from roost.auth import app_passwords, manage, scram
from roost.auth.authenticator import StoreAuthenticator
from roost.auth.throttle import LoginThrottle, ThrottlePolicy
from roost.store.base import NoSuchAccount
from roost.store.sqlite import SqliteStore

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "data", durable=False)
    try:
        yield opened
    finally:
        await opened.close()


def authenticator(store: SqliteStore) -> StoreAuthenticator:
    return StoreAuthenticator(store, LoginThrottle(ThrottlePolicy.disabled()), hasher=FAST)


async def test_new_passwords_get_scram_keys(store: SqliteStore) -> None:
    assert await manage.create_account(store, "alice", "pencil", hasher=FAST)
    record = await store.get_sign_in_record("alice")
    assert record is not None and record.scram_keys is not None
    keys = scram.ScramKeys.decode(record.scram_keys)
    assert keys == scram.derive_keys("pencil", salt=keys.salt, iterations=keys.iterations)
    assert await manage.set_password(store, "alice", "crayon", hasher=FAST)
    record = await store.get_sign_in_record("alice")
    assert record is not None and record.scram_keys is not None
    new_keys = scram.ScramKeys.decode(record.scram_keys)
    assert new_keys.salt != keys.salt
    result = await authenticator(store).authenticate(
        "alice", "crayon", remote_ip="::1", protocol="test"
    )
    assert result.ok


async def test_password_saslprep_refuses_has_no_scram_keys(store: SqliteStore) -> None:
    assert not await manage.create_account(store, "bob", "bell\u0007", hasher=FAST)
    record = await store.get_sign_in_record("bob")
    assert record is not None and record.scram_keys is None
    await manage.set_password(store, "bob", "fine", hasher=FAST)
    assert not await manage.set_password(store, "bob", "bell\u0007", hasher=FAST)
    record = await store.get_sign_in_record("bob")
    assert record is not None and record.scram_keys is None  # the old keys are gone too


async def test_app_passwords_add_list_revoke(store: SqliteStore) -> None:
    await manage.create_account(store, "alice", "pencil", hasher=FAST)
    phone = await manage.add_app_password(store, "alice", "Phone", now=1000)
    laptop = await manage.add_app_password(store, "alice", "Laptop", now=2000)
    assert re.fullmatch(r"([a-z]{4}-){6}[a-z]{4}", phone) and phone != laptop
    listed = await manage.list_app_passwords(store, "alice")
    # 131 bits: stored as a fast hash, not argon2id (auth/app_passwords.py).
    assert all(app_passwords.is_fast_hash(a.password_hash) for a in listed)
    assert [(a.label, a.created, a.last_used) for a in listed] == [
        ("Phone", 1000, None),
        ("Laptop", 2000, None),
    ]
    auth = authenticator(store)
    auth.clock = lambda: 5000.0
    assert (await auth.authenticate("alice", phone, remote_ip="::1", protocol="test")).ok
    listed = await manage.list_app_passwords(store, "alice")
    assert listed[0].last_used == 5000 and listed[1].last_used is None
    with pytest.raises(manage.CredentialError, match="already has"):
        await manage.add_app_password(store, "alice", "PHONE")
    with pytest.raises(manage.CredentialError, match="invalid label"):
        await manage.add_app_password(store, "alice", "")
    assert await store.delete_app_password("alice", "phone")
    assert not (await auth.authenticate("alice", phone, remote_ip="::1", protocol="test")).ok
    assert (await auth.authenticate("alice", laptop, remote_ip="::1", protocol="test")).ok
    with pytest.raises(NoSuchAccount):
        await manage.add_app_password(store, "nobody", "Phone")


async def test_app_passwords_are_bounded_per_account(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_passwords, "MAX_PER_ACCOUNT", 2)
    await manage.create_account(store, "alice", "pencil", hasher=FAST)
    await manage.add_app_password(store, "alice", "a")
    await manage.add_app_password(store, "alice", "b")
    with pytest.raises(manage.CredentialError, match="the most allowed"):
        await manage.add_app_password(store, "alice", "c")


async def test_totp_enable_and_disable(store: SqliteStore) -> None:
    await manage.create_account(store, "alice", "pencil", hasher=FAST)
    secret = await manage.enable_totp(store, "alice")
    record = await store.get_sign_in_record("alice")
    assert record is not None and record.totp_secret == secret
    with pytest.raises(manage.CredentialError, match="already on"):
        await manage.enable_totp(store, "alice")
    assert await manage.disable_totp(store, "alice")
    assert not await manage.disable_totp(store, "alice")
    with pytest.raises(NoSuchAccount):
        await manage.enable_totp(store, "nobody")
