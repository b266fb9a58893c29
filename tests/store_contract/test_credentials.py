"""Credentials: sign-in records, SCRAM keys, two-factor secrets and replay protection,
app passwords (store/credentials.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from roost.store.base import CannotDoThat, NoSuchAccount, Store
from roost.store.credentials import AppPasswordRecord
from tests.store_contract.conftest import open_store


def app_password(label: str, selector: str, created: int = 100) -> AppPasswordRecord:
    return AppPasswordRecord(label, selector, f"hash-of-{selector}", created)


async def test_sign_in_record_of_a_new_account(store: Store) -> None:
    await store.create_account("Alice", "h1")
    record = await store.get_sign_in_record("ALICE")
    assert record is not None
    assert record.name == "Alice" and record.password_hash == "h1"
    assert record.scram_keys is None and record.totp_secret is None
    assert record.totp_last_step == 0 and record.app_passwords == ()
    assert await store.get_sign_in_record("nobody") is None


async def test_set_password_replaces_hash_and_scram_keys_together(store: Store) -> None:
    await store.create_account("alice", "h1")
    await store.set_password("ALICE", "h2", "SCRAM-SHA-256$keys")
    record = await store.get_sign_in_record("alice")
    assert record is not None and (record.password_hash, record.scram_keys) == (
        "h2",
        "SCRAM-SHA-256$keys",
    )
    await store.set_password_hash("alice", "h2-rehashed")  # same password: keys stay
    record = await store.get_sign_in_record("alice")
    assert record is not None and record.scram_keys == "SCRAM-SHA-256$keys"
    await store.set_password("alice", "h3", None)
    record = await store.get_sign_in_record("alice")
    assert record is not None and record.scram_keys is None
    with pytest.raises(NoSuchAccount):
        await store.set_password("nobody", "h", None)


async def test_totp_steps_are_accepted_once_and_in_order(store: Store) -> None:
    await store.create_account("alice", "h")
    assert not await store.accept_totp_step("alice", 5)  # two-factor off
    await store.set_totp_secret("Alice", "SECRET")
    record = await store.get_sign_in_record("alice")
    assert record is not None and record.totp_secret == "SECRET"
    assert await store.accept_totp_step("alice", 5)
    assert not await store.accept_totp_step("alice", 5)
    assert not await store.accept_totp_step("alice", 4)
    assert await store.accept_totp_step("ALICE", 6)
    record = await store.get_sign_in_record("alice")
    assert record is not None and record.totp_last_step == 6
    await store.set_totp_secret("alice", None)
    record = await store.get_sign_in_record("alice")
    assert record is not None and record.totp_secret is None and record.totp_last_step == 0
    with pytest.raises(NoSuchAccount):
        await store.set_totp_secret("nobody", "S")


async def test_app_passwords(store: Store) -> None:
    await store.create_account("alice", "h")
    await store.add_app_password("alice", app_password("Phone", "abcd", created=100))
    await store.add_app_password("ALICE", app_password("Laptop", "efgh", created=200))
    with pytest.raises(CannotDoThat):
        await store.add_app_password("alice", app_password("PHONE", "wxyz"))  # label taken
    with pytest.raises(CannotDoThat):
        await store.add_app_password("alice", app_password("Tablet", "abcd"))  # selector
    with pytest.raises(NoSuchAccount):
        await store.add_app_password("nobody", app_password("Phone", "abcd"))
    record = await store.get_sign_in_record("alice")
    assert record is not None
    assert [(a.label, a.selector, a.created, a.last_used) for a in record.app_passwords] == [
        ("Phone", "abcd", 100, None),
        ("Laptop", "efgh", 200, None),
    ]
    assert record.app_passwords[0].password_hash == "hash-of-abcd"
    await store.app_password_used("alice", "efgh", 300)
    await store.app_password_used("alice", "efgh", 250)  # never goes back
    record = await store.get_sign_in_record("alice")
    assert record is not None and record.app_passwords[1].last_used == 300
    assert await store.delete_app_password("alice", "phone")
    assert not await store.delete_app_password("alice", "phone")
    with pytest.raises(NoSuchAccount):
        await store.delete_app_password("nobody", "phone")
    record = await store.get_sign_in_record("alice")
    assert record is not None and [a.label for a in record.app_passwords] == ["Laptop"]


async def test_app_passwords_are_per_account_and_go_with_it(store: Store) -> None:
    await store.create_account("alice", "h")
    await store.create_account("bob", "h")
    await store.add_app_password("alice", app_password("Phone", "abcd"))
    await store.add_app_password("bob", app_password("Phone", "abcd"))
    await store.delete_account("alice")
    await store.create_account("alice", "h")
    record = await store.get_sign_in_record("alice")
    assert record is not None and record.app_passwords == ()
    bob = await store.get_sign_in_record("bob")
    assert bob is not None and len(bob.app_passwords) == 1


async def test_instance_secret_is_random_and_kept(
    store: Store, backend: str, store_path: Path, tmp_path: Path
) -> None:
    secret = await store.instance_secret()
    assert len(secret) >= 32 and secret == await store.instance_secret()
    await store.close()
    again = await open_store(backend, store_path)
    try:
        assert await again.instance_secret() == secret
    finally:
        await again.close()
    other = await open_store(backend, tmp_path / "other")
    try:
        assert await other.instance_secret() != secret
    finally:
        await other.close()


async def test_sqlite_users_db_is_private(store: Store, backend: str, store_path: Path) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite file modes")
    await store.create_account("alice", "h")
    for name in ("users.db", "users.db-wal", "users.db-shm"):
        path = store_path / name
        if path.exists():
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, name


async def test_sqlite_accounts_from_before_credentials_are_migrated(tmp_path: Path) -> None:
    from roost.store.sqlite import SqliteStore
    from roost.store.sqlite.schema import USERS_MIGRATIONS, connect, migrate

    data_dir = tmp_path / "old"
    data_dir.mkdir()
    conn = connect(data_dir / "users.db", durable=False, create=True)
    migrate(conn, USERS_MIGRATIONS[:1])
    conn.execute(
        "INSERT INTO accounts (name_key, name, dirname, password_hash, created)"
        " VALUES ('alice', 'Alice', 'alice-1', 'h', 0)"
    )
    conn.close()
    store = await SqliteStore.open(data_dir, durable=False)
    try:
        record = await store.get_sign_in_record("alice")
        assert record is not None and record.name == "Alice" and record.scram_keys is None
        assert len(await store.instance_secret()) == 32
    finally:
        await store.close()


async def test_sign_in_addresses_are_kept_the_most_recent_first(store: Store) -> None:
    await store.create_account("alice", "h")
    for n in range(20):
        await store.remember_sign_in_address("ALICE", f"192.0.2.{n}", 1000 + n)
    await store.remember_sign_in_address("alice", "192.0.2.19", 900)  # never goes back
    assert await store.last_sign_in_from("alice", "192.0.2.19") == 1019
    assert await store.last_sign_in_from("alice", "192.0.2.4") == 1004
    assert await store.last_sign_in_from("alice", "192.0.2.3") is None  # 16 kept
    assert await store.last_sign_in_from("bob", "192.0.2.19") is None
