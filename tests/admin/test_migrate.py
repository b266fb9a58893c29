"""``roost migrate`` from a private Dovecot (Debian's dovecot-imapd) started here, with
its own configuration on a loopback port, over implicit TLS: every folder (nested, and a
non-ASCII name), flag, keyword and internal date arrives; an interrupted run, and a run
that stops between a batch's commit and its state write, continue without duplicates."""

from __future__ import annotations

import asyncio
import imaplib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from roost.admin import migrate
from roost.auth.passwords import hash_password
from roost.cli import main
from roost.runtime.tls import ensure_self_signed
from roost.store.base import Store
from roost.store.sqlite import SqliteStore

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        shutil.which("dovecot") is None and not Path("/usr/sbin/dovecot").exists(),
        reason="Dovecot is not installed (Debian: dovecot-imapd)",
    ),
]

SOURCE_PASSWORD = "old secret"
MAIL_UID = 61_000  # as the benchmark's Dovecot: a uid no real user has


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Dovecot:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    def client(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        client = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=20)
        client.login("olduser", SOURCE_PASSWORD)
        return client


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    # Not under pytest's tmp_path (mode 0700): Dovecot's login processes run as
    # dovenull and must reach base_dir.
    root = Path(tempfile.mkdtemp(prefix="roost-dovecot-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        uid = gid = MAIL_UID
        internal, login = "dovecot", "dovenull"
    else:
        uid, gid = os.getuid(), os.getgid()
        import pwd

        internal = login = pwd.getpwuid(uid).pw_name
    cert, key = ensure_self_signed(root / "tls")
    home = root / "mail" / "olduser"
    home.mkdir(parents=True)
    os.chown(root / "mail", uid, gid)
    os.chown(home, uid, gid)
    passwd = root / "passwd"
    passwd.write_text(f"olduser:{{PLAIN}}{SOURCE_PASSWORD}:{uid}:{gid}::{home}::\n")
    passwd.chmod(0o644)
    port = _free_port()
    (root / "state").mkdir()
    config = root / "dovecot.conf"
    config.write_text(
        f"""instance_name = roost-test-{os.getpid()}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain login
default_internal_user = {internal}
default_login_user = {login}
mail_location = maildir:~/Maildir
first_valid_uid = {min(uid, 500)}
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = passwd-file
  args = {passwd}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
"""
    )
    log = (root / "dovecot.log").open("ab")
    process = subprocess.Popen(
        ["dovecot", "-F", "-c", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
    )
    server = Dovecot(root, port, process)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (root / "dovecot.log").read_text()[-3000:]
            try:
                server.client().logout()
                break
            except (OSError, imaplib.IMAP4.error):
                assert time.monotonic() < deadline, (root / "dovecot.log").read_text()[-3000:]
                time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


BASE = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)


def message(n: int) -> bytes:
    return f"From: a@example.org\r\nSubject: message {n}\r\n\r\nbody {n}\r\n".encode()


# (folder at the source, its name in Roost, messages: (flags, days before BASE))
FOLDERS = [
    ("INBOX", "INBOX", [("\\Seen", 1), ("\\Flagged $Label1", 2), ("", 3), ("\\Answered", 4)]),
    ("Work", "Work", [("\\Seen project-x", 5)]),
    ("Work.Old", "Work/Old", [("\\Draft", 6), ("\\Seen", 7)]),
    ("Entw&APw-rfe", "Entwürfe", [("\\Draft", 8)]),
]


def seed(server: Dovecot) -> None:
    client = server.client()
    n = 0
    for folder, _, messages in FOLDERS:
        if folder != "INBOX":
            assert client.create(folder)[0] == "OK"
        for flags, days in messages:
            n += 1
            date = imaplib.Time2Internaldate(BASE - timedelta(days=days))
            status, _ = client.append(folder, f"({flags})", date, message(n))
            assert status == "OK"
    client.logout()


def create_account(data: Path) -> None:
    async def go() -> None:
        store = await SqliteStore.open(data, durable=False)
        try:
            hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            await store.create_account("alice", hash_password("x", hasher=hasher))
        finally:
            await store.close()

    asyncio.run(go())


Contents = dict[str, list[tuple[frozenset[str], datetime, bytes]]]


async def store_contents(store: Store, name: str = "alice") -> Contents:
    """Each selectable, non-special mailbox of the account: its messages' flags,
    internal dates and bytes, by UID (either backend)."""
    result: Contents = {}
    account = await store.open_account(name)
    try:
        for box in await account.list_mailboxes():
            if box.noselect or box.special_use:
                continue
            snapshot = await account.snapshot(box.id)
            metas = await account.fetch_meta(box.id, list(snapshot.uids), with_model=False)
            result[box.name] = [
                (
                    meta.flags,
                    meta.internaldate,
                    b"".join([chunk async for chunk in account.read_message(meta)]),
                )
                for meta in metas
            ]
    finally:
        await account.close()
    return result


def contents(data: Path) -> Contents:
    async def go() -> Contents:
        store = await SqliteStore.open(data, durable=False)
        try:
            return await store_contents(store)
        finally:
            await store.close()

    return asyncio.run(go())


def expected() -> dict[str, list[tuple[frozenset[str], datetime, bytes]]]:
    n = 0
    result: dict[str, list[tuple[frozenset[str], datetime, bytes]]] = {}
    for _, name, messages in FOLDERS:
        for flags, days in messages:
            n += 1
            result.setdefault(name, []).append(
                (frozenset(flags.split()), BASE - timedelta(days=days), message(n))
            )
    return result


def run_cli(dovecot: Dovecot, data: Path, password_file: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main,
        [
            "migrate",
            "alice",
            "--from",
            f"imaps://olduser@127.0.0.1:{dovecot.port}",
            "--password-file",
            str(password_file),
            "--insecure",
            "--data-dir",
            str(data),
        ],
    )
    return result.exit_code, result.stdout, result.stderr


def test_migrate_copies_everything_and_a_rerun_adds_nothing(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    seed(dovecot)
    data = tmp_path / "data"
    create_account(data)
    password_file = tmp_path / "password"
    password_file.write_text(SOURCE_PASSWORD + "\n")
    code, out, err = run_cli(dovecot, data, password_file)
    assert code == 0, out + err
    assert out.startswith("Copied 8 messages")
    assert "INBOX: 4/4" in err and "Work/Old: 2/2" in err
    assert contents(data) == expected()
    code, out, err = run_cli(dovecot, data, password_file)
    assert code == 0 and "Copied 0 messages" in out and "8 were already there" in out
    assert contents(data) == expected()
    password_file.write_text("wrong\n")
    code, out, err = run_cli(dovecot, data, password_file)
    assert code == 1 and "roost:" in err


def _migrate(dovecot: Dovecot, data: Path, **options: object) -> migrate.MigrationReport:
    async def go() -> migrate.MigrationReport:
        store = await SqliteStore.open(data, durable=False)
        client = await asyncio.to_thread(dovecot.client)
        try:
            account = await store.open_account("alice")
            try:
                state = migrate.State(migrate.state_path(data, "alice"))
                return await migrate.migrate(client, account, state, **options)  # type: ignore[arg-type]
            finally:
                await account.close()
        finally:
            migrate.close(client)
            await store.close()

    return asyncio.run(go())


def test_an_interrupted_migration_continues_without_duplicates(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(dovecot)
    data = tmp_path / "data"
    create_account(data)
    # Interrupted between batches: two batches of two messages made it.
    report = _migrate(dovecot, data, batch_messages=2, stop_after=2)
    assert report.folders.get("INBOX") == 4
    # Interrupted between a batch's commit and its state write (a crash there).
    real_save = migrate.State.save
    saves = 0

    def crash_after_commit(state: migrate.State) -> None:
        nonlocal saves
        saves += 1
        # Folders go INBOX (done already), Entwürfe, Work, Work/Old. Saves: Entwürfe's
        # batch pending (1) and done (2), Work's pending (3) and done (4): the fourth
        # fails, after that batch was stored.
        if saves == 4:
            raise RuntimeError("power cut")
        real_save(state)

    monkeypatch.setattr(migrate.State, "save", crash_after_commit)
    with pytest.raises(RuntimeError, match="power cut"):
        _migrate(dovecot, data, batch_messages=1)
    monkeypatch.setattr(migrate.State, "save", real_save)
    partial = contents(data)
    assert {name: len(messages) for name, messages in partial.items()} == {
        "INBOX": 4,
        "Entwürfe": 1,
        "Work": 1,
    }
    assert migrate.State(migrate.state_path(data, "alice")).folders['"Work"']["pending"]
    report = _migrate(dovecot, data, batch_messages=1)
    assert report.skipped == 4 + 1 + 1  # the pending batch was found stored
    assert contents(data) == expected()


def test_a_broken_connection_fails_cleanly_and_the_rerun_completes(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(dovecot)
    data = tmp_path / "data"
    create_account(data)
    password_file = tmp_path / "password"
    password_file.write_text(SOURCE_PASSWORD + "\n")
    real_fetch = migrate.fetch_batch
    calls = 0

    def dropping(client: imaplib.IMAP4, uids: list[int]) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise imaplib.IMAP4.abort("socket error: EOF")
        return real_fetch(client, uids)

    monkeypatch.setattr(migrate, "fetch_batch", dropping)
    code, out, err = run_cli(dovecot, data, password_file)
    assert code == 1
    assert "EOF (run the command again to continue)" in err
    monkeypatch.setattr(migrate, "fetch_batch", real_fetch)
    code, out, err = run_cli(dovecot, data, password_file)
    assert code == 0, out + err
    assert contents(data) == expected()
