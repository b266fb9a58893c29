"""``roost backup``, ``roost restore`` and ``roost verify`` on a live data directory.

The main test runs writer processes (backup_writer.py) appending and expunging while
the backup runs, kills them with SIGKILL in the middle of it, restores into a fresh
directory, and checks that every message acknowledged before the backup started is
there byte for byte, and that ``verify`` finds nothing wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from roost.cli import main
from roost.store.sqlite import SqliteStore
from roost.store.sqlite import backup as backups
from roost.store.sqlite import verify as verifying
from roost.store.values import DELETED, FlagOp, MessageSource, NewMessage
from tests.admin.backup_writer import message

ROOT = Path(__file__).resolve().parents[2]


class Writer:
    """One writer process and the acknowledgements it printed."""

    def __init__(self, data_dir: Path, account: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.admin.backup_writer", str(data_dir), account],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.acked: list[tuple[int, int]] = []  # (uid, n)
        self.enough = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            _, uid, n = line.split()
            self.acked.append((int(uid), int(n)))
            if len(self.acked) >= 30:
                self.enough.set()
        self.enough.set()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._reader.join()


def make_accounts(data_dir: Path, names: list[str]) -> None:
    async def create() -> None:
        store = await SqliteStore.open(data_dir, durable=True)
        try:
            for name in names:
                await store.create_account(name, "x")
        finally:
            await store.close()

    asyncio.run(create())


def inbox_contents(data_dir: Path, name: str) -> dict[int, bytes]:
    async def read() -> dict[int, bytes]:
        store = await SqliteStore.open(data_dir, durable=False)
        account = await store.open_account(name)
        try:
            info = await account.get_mailbox("INBOX")
            snapshot = await account.snapshot(info.id)
            metas = await account.fetch_meta(info.id, list(snapshot.uids), with_model=False)
            return {
                meta.uid: b"".join([chunk async for chunk in account.read_message(meta)])
                for meta in metas
            }
        finally:
            await account.close()
            await store.close()

    return asyncio.run(read())


def test_backup_while_writers_run_and_die_restores_every_acked_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_accounts(data, ["alice", "bob"])
    writers = {name: Writer(data, name) for name in ("alice", "bob")}
    try:
        for writer in writers.values():
            assert writer.enough.wait(60), "the writer did not start"
        assert backups.in_use_by(data) is not None  # the writers hold users.db open
        before = {name: list(writer.acked) for name, writer in writers.items()}
        notices: list[str] = []

        def notice(line: str) -> None:
            notices.append(line)
            if len(notices) == 1:  # one account copied: kill every writer mid-backup
                for writer in writers.values():
                    writer.kill()

        report = backups.backup(data, tmp_path / "backup", notice=notice)
    finally:
        for writer in writers.values():
            writer.kill()
    assert report.complete, report.errors
    assert [copy.name for copy in report.accounts] == ["alice", "bob"]
    manifest = json.loads((tmp_path / "backup" / backups.MANIFEST).read_text())
    assert manifest["complete"] is True

    restored = tmp_path / "restored"
    backups.restore(tmp_path / "backup", restored)
    for name, acked in before.items():
        contents = inbox_contents(restored, name)
        for uid, n in acked:
            assert contents.get(uid) == message(n), f"{name} UID {uid} lost or changed"
    assert verifying.verify(restored).problems == []
    assert verifying.verify(data).problems == []


def test_incremental_backup_keeps_files_and_drops_deleted_accounts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_accounts(data, ["carol", "dave"])

    async def fill(name: str, numbers: range) -> None:
        store = await SqliteStore.open(data, durable=False)
        account = await store.open_account(name)
        try:
            for n in numbers:
                await account.append("INBOX", [NewMessage(MessageSource(data=message(n)))])
        finally:
            await account.close()
            await store.close()

    asyncio.run(fill("carol", range(10)))
    first = backups.backup(data, tmp_path / "b")
    assert first.accounts[0].files_linked == 2  # messages 0 and 5 are files
    asyncio.run(fill("carol", range(10, 11)))

    async def delete() -> None:
        store = await SqliteStore.open(data, durable=False)
        await store.delete_account("dave")
        await store.close()

    asyncio.run(delete())
    second = backups.backup(data, tmp_path / "b")
    [carol] = second.accounts
    assert (carol.files_linked, carol.files_kept, carol.messages) == (1, 2, 11)
    assert len(list((tmp_path / "b" / "accounts").iterdir())) == 1


def test_restore_refuses_incomplete_backups_and_used_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_accounts(data, ["erin"])
    backups.backup(data, tmp_path / "b")
    with pytest.raises(backups.BackupError, match="already holds data"):
        backups.restore(tmp_path / "b", data)
    manifest = tmp_path / "b" / backups.MANIFEST
    body = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**body, "complete": False}))
    with pytest.raises(backups.BackupError, match="incomplete"):
        backups.restore(tmp_path / "b", tmp_path / "fresh")
    manifest.write_text(json.dumps(body))
    # A supervisor's lock held by another process.
    (data / "run").mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            f"fd = os.open({str(data / 'run' / 'supervisor.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.lockf(fd, fcntl.LOCK_EX); os.write(fd, b'4242')\n"
            "print('locked', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(backups.BackupError, match=r"server \(pid 4242\) is serving"):
            backups.restore(tmp_path / "b", data, force=True)
    finally:
        holder.kill()
        holder.wait()
    backups.restore(tmp_path / "b", data, force=True)
    assert verifying.verify(data).accounts == 1


def test_verify_finds_corrupt_and_missing_messages(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_accounts(data, ["frank"])

    async def fill() -> None:
        store = await SqliteStore.open(data, durable=False)
        account = await store.open_account("frank")
        try:
            for n in range(6):
                await account.append("INBOX", [NewMessage(MessageSource(data=message(n)))])
        finally:
            await account.close()
            await store.close()

    asyncio.run(fill())
    runner = CliRunner()
    ok = runner.invoke(main, ["verify", "--data-dir", str(data)])
    assert ok.exit_code == 0, ok.output
    assert "Verified 1 accounts, 6 messages, 6 distinct contents: no problems." in ok.stdout
    [account_dir] = (data / "accounts").iterdir()
    files = sorted(p for p in (account_dir / "blobs").rglob("*") if p.is_file())
    assert len(files) == 2
    corrupt, gone = files
    corrupt.write_bytes(corrupt.read_bytes().replace(b"line", b"LINE", 1))
    gone.unlink()
    bad = runner.invoke(main, ["verify", "frank", "--data-dir", str(data)])
    assert bad.exit_code == 1
    lines = bad.stdout.splitlines()
    assert any("content hashes to" in line for line in lines), lines
    assert any("file missing (1 messages refer to it)" in line for line in lines), lines
    assert all(line.startswith("frank: message ") for line in lines)
    assert "2 problems." in bad.stderr
    unknown = runner.invoke(main, ["verify", "nobody", "--data-dir", str(data)])
    assert unknown.exit_code == 1 and "no account 'nobody'" in unknown.stderr


def test_cli_backup_and_restore(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_accounts(data, ["gina"])
    runner = CliRunner()
    result = runner.invoke(main, ["backup", str(tmp_path / "b"), "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Backed up 1 accounts, 0 messages, to ")
    restored = tmp_path / "r"
    result = runner.invoke(main, ["restore", str(tmp_path / "b"), "--data-dir", str(restored)])
    assert result.exit_code == 0, result.output
    assert "Restored 1 accounts" in result.stdout
    again = runner.invoke(main, ["restore", str(tmp_path / "b"), "--data-dir", str(restored)])
    assert again.exit_code == 1 and "--force replaces it" in again.stderr


def test_a_file_expunged_after_the_snapshot_means_another_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    make_accounts(data, ["hank"])

    async def change(expunge: bool) -> None:
        store = await SqliteStore.open(data, durable=False)
        account = await store.open_account("hank")
        try:
            inbox = await account.get_mailbox("INBOX")
            if not expunge:
                for n in (0, 5, 1):
                    await account.append(inbox.id, [NewMessage(MessageSource(data=message(n)))])
                return
            await account.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({DELETED}))
            assert await account.expunge(inbox.id) == [1]
        finally:
            await account.close()
            await store.close()

    asyncio.run(change(expunge=False))
    original = backups.copy_database
    calls: list[Path] = []

    def copy_then_expunge(source: Path, target: Path) -> None:
        original(source, target)
        calls.append(source)
        if source.name == "mail.db" and len(calls) == 2:  # users.db, then hank's first
            asyncio.run(change(expunge=True))  # message 0's file goes

    monkeypatch.setattr(backups, "copy_database", copy_then_expunge)
    report = backups.backup(data, tmp_path / "b")
    [hank] = report.accounts
    assert (hank.rounds, hank.messages, hank.files_linked) == (2, 2, 1)
    assert verifying.verify(tmp_path / "b").problems == []


def test_backup_and_restore_of_a_store_without_accounts(tmp_path: Path) -> None:
    make_accounts(tmp_path / "data", [])
    report = backups.backup(tmp_path / "data", tmp_path / "b")
    assert report.complete and report.accounts == []
    backups.restore(tmp_path / "b", tmp_path / "r")
    assert verifying.verify(tmp_path / "r").accounts == 0


def test_verify_reports_quota_usage_that_does_not_add_up(tmp_path: Path) -> None:
    """ARCHITECTURE.md decision 10: usage is kept with the data; verify recounts it."""
    data = tmp_path / "data"
    make_accounts(data, ["grace"])

    async def fill() -> None:
        store = await SqliteStore.open(data, durable=False)
        account = await store.open_account("grace")
        try:
            await account.append("INBOX", [NewMessage(MessageSource(data=message(1)))])
        finally:
            await account.close()
            await store.close()

    asyncio.run(fill())
    assert verifying.verify(data).problems == []
    [account_dir] = (data / "accounts").iterdir()
    conn = sqlite3.connect(account_dir / "mail.db")
    with conn:
        conn.execute("UPDATE counters SET storage = storage + 7 WHERE id = 0")
    conn.close()
    [problem] = verifying.verify(data).problems
    assert problem.startswith("grace: quota usage kept as") and "add up to" in problem
