"""The users.db reads of every sign-in (store/sqlite/directory.py ``DirectoryReader``):
made on the event loop, they see what any process committed, and where SQLite answers
"busy" the users worker answers instead; any other error is not hidden."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from roost.store.errors import NoSuchAccount
from roost.store.sqlite import SqliteStore
from roost.store.sqlite.directory import DirectoryReader


async def test_reads_see_what_another_store_committed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    serving = await SqliteStore.open(data, durable=False)
    admin = await SqliteStore.open(data, durable=False)  # as `roost user` would
    try:
        await admin.create_account("Alice", "hash-1")
        record = await serving.get_sign_in_record("alice")
        assert record is not None and (record.name, record.password_hash) == ("Alice", "hash-1")
        await admin.set_password_hash("alice", "hash-2")
        record = await serving.get_sign_in_record("ALICE")
        assert record is not None and record.password_hash == "hash-2"
        account = await serving.open_account("alice")
        assert account.name == "Alice"
        await account.close()
        await admin.delete_account("alice")
        assert await serving.get_sign_in_record("alice") is None
        with pytest.raises(NoSuchAccount):
            await serving.open_account("alice")
    finally:
        await admin.close()
        await serving.close()


async def test_a_busy_read_goes_to_the_users_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await SqliteStore.open(tmp_path / "data", durable=False)
    try:
        await store.create_account("alice", "hash-1")
        refusals: list[str] = []

        def busy(self: DirectoryReader, key: str) -> None:
            refusals.append(key)
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(DirectoryReader, "sign_in_record", busy)
        monkeypatch.setattr(DirectoryReader, "opening", busy)
        record = await store.get_sign_in_record("Alice")
        assert record is not None and record.password_hash == "hash-1"
        account = await store.open_account("alice")
        await account.close()
        assert refusals == ["alice", "alice"]

        def broken(self: DirectoryReader, key: str) -> None:
            raise sqlite3.OperationalError("no such table: accounts")

        monkeypatch.setattr(DirectoryReader, "sign_in_record", broken)
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await store.get_sign_in_record("alice")
    finally:
        await store.close()


async def test_sign_in_bookkeeping_does_not_wait_for_the_disk(tmp_path: Path) -> None:
    """A known address and an app password's last use are committed without an fsync;
    the writes after them wait for the disk again."""
    store = await SqliteStore.open(tmp_path / "data", durable=True)
    try:
        await store.create_account("alice", "hash-1")
        statements: list[str] = []
        conn = store._directory._conn
        conn.set_trace_callback(statements.append)

        def synchronous_at_commits() -> list[str]:
            mode, modes = "FULL", []
            for statement in statements:
                if statement.startswith("PRAGMA synchronous = "):
                    mode = statement.rpartition(" ")[2]
                elif statement == "COMMIT" or statement.startswith(("UPDATE", "INSERT")):
                    modes.append(mode)
            statements.clear()
            return modes

        await store.remember_sign_in_address("alice", "192.0.2.1", 1000)
        assert set(synchronous_at_commits()) == {"NORMAL"}
        await store.app_password_used("alice", "selector", 1000)
        assert set(synchronous_at_commits()) == {"NORMAL"}
        await store.set_password_hash("alice", "hash-2")
        assert set(synchronous_at_commits()) == {"FULL"}
        assert await store.last_sign_in_from("alice", "192.0.2.1") == 1000
        conn.set_trace_callback(None)
    finally:
        await store.close()
