"""The admin commands on a PostgreSQL store: import and export, verify (which finds
each kind of damage), the mailbox commands and index rebuild, backup by pg_dump, and
restore by pg_restore. Each test has its own scratch database
(tests/support/postgres.py)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from roost.cli import main
from roost.store.postgres import PostgresStore
from roost.store.postgres.blobs import CHUNK
from roost.store.query import MatchText, SearchQuery, TextField
from roost.store.values import MessageSource, NewMessage
from tests.admin.test_migrate import (  # noqa: F401
    SOURCE_PASSWORD,
    Contents,
    Dovecot,
    dovecot,
    expected,
    seed,
    store_contents,
)
from tests.support.postgres import SCRATCH, url_for
from tests.support.server_process import write_config

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def url(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    monkeypatch.setenv("ROOST_STORE", "")  # --store sets it for the command's process
    found = await SCRATCH.acquire()
    try:
        yield found
    finally:
        await SCRATCH.release(found)


def message(subject: str, body: str = "hello") -> bytes:
    return f"From: a@example.org\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()


BIG_BODY = "zebrafish " * (CHUNK // 4)  # 2.5 chunks: a content of several rows


async def fill(url: str) -> None:
    store = await PostgresStore.open(url, listen=False)
    try:
        for name in ("alice", "bob"):
            await store.create_account(name, "hash")
        alice = await store.open_account("alice")
        old = datetime(2020, 1, 1, tzinfo=UTC)
        await alice.append(
            "INBOX",
            [
                NewMessage(MessageSource(data=message("old seen")), frozenset({"\\Seen"}), old),
                NewMessage(MessageSource(data=message("old unseen")), frozenset(), old),
                NewMessage(MessageSource(data=message("big", BIG_BODY)), frozenset({"\\Seen"})),
                NewMessage(MessageSource(data=message("new", "needle")), frozenset()),
            ],
        )
        await alice.close()
        bob = await store.open_account("bob")
        await bob.append("INBOX", [NewMessage(MessageSource(data=message("to bob")))])
        await bob.close()
    finally:
        await store.close()


async def fill_more(url: str) -> None:
    """A message made after the backup, which a restore must take away."""
    store = await PostgresStore.open(url, listen=False)
    try:
        alice = await store.open_account("alice")
        await alice.append("INBOX", [NewMessage(MessageSource(data=message("late", "later")))])
        await alice.close()
    finally:
        await store.close()


async def roost(*args: str, stdin: str | None = None) -> tuple[int, str]:
    """A ``roost`` command, off this test's event loop (commands run their own)."""
    result = await asyncio.to_thread(CliRunner().invoke, main, list(args), input=stdin)
    return result.exit_code, result.output


async def search(url: str, user: str, needle: str) -> list[int]:
    store = await PostgresStore.open(url, listen=False)
    try:
        account = await store.open_account(user)
        box = await account.get_mailbox("INBOX")
        found = await account.search(box.id, SearchQuery(MatchText(TextField.BODY, needle)))
        await account.close()
        return found.uids
    finally:
        await store.close()


async def sql(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def test_import_then_export(url: str, tmp_path: Path) -> None:
    await fill(url)
    mbox = tmp_path / "old.mbox"
    mbox.write_bytes(
        b"From a@b Mon Jan  1 00:00:00 2024\nSubject: one\nStatus: RO\n\nfirst\n\n"
        b"From a@b Tue Jan  2 00:00:00 2024\nSubject: two\n\n>From the start\n"
    )
    d = ("--store", url, "--data-dir", str(tmp_path / "node"))
    code, output = await roost("import", *d, "BOB", str(mbox), "--folder", "Archive/2024")
    assert code == 0 and "Imported 2 messages" in output, output
    code, output = await roost("mailbox", "status", *d, "bob", "Archive/2024")
    assert code == 0 and output.splitlines()[1].split()[:3] == ["Archive/2024", "2", "1"]

    dest = tmp_path / "export"
    code, output = await roost("export", *d, "bob", str(dest), "--format", "mbox")
    assert code == 0 and "Exported 3 messages" in output, output
    exported = (dest / "Archive.sbd" / "2024").read_bytes()
    assert exported.count(b"\nFrom ") + exported.startswith(b"From ") == 2
    assert b"Status: RO" in exported and b">From the start" in exported


async def test_verify_finds_nothing_wrong_in_a_sound_store(url: str, tmp_path: Path) -> None:
    await fill(url)
    code, output = await roost("verify", "--store", url)
    assert code == 0, output
    assert output.strip() == "Verified 2 accounts, 5 messages, 5 distinct contents: no problems."
    code, output = await roost("verify", "--store", url, "nobody")
    assert code == 1 and "no account 'nobody'" in output


ALICE = "(SELECT id FROM accounts WHERE name = 'alice')"

# Each damage, done in SQL behind the store's back, and the line verify must print.
DAMAGE = {
    "changed bytes": (
        "UPDATE blob_chunks SET data = 'X'::bytea || substring(data from 2)"
        " WHERE blob_id IN (SELECT blob_id FROM blobs WHERE size < 100) AND seq = 0",
        "content hashes to",
    ),
    "a lost chunk": (
        "DELETE FROM blob_chunks WHERE seq = 1",
        "chunk 2 where chunk 1 should be",
    ),
    "all bytes lost": (
        "DELETE FROM blob_chunks WHERE blob_id IN (SELECT blob_id FROM blobs WHERE size > 1000)",
        "its bytes are missing",
    ),
    "a wrong size": (
        "UPDATE messages SET size = size + 1 WHERE uid = 1",
        "bytes stored",
    ),
    "quota usage": (
        f"UPDATE mail_counters SET storage = storage + 7 WHERE account_id = {ALICE}",
        "quota usage kept as",
    ),
    "a missing analysis": (
        "DELETE FROM analyses WHERE blob_id IN (SELECT blob_id FROM messages WHERE uid = 4)",
        "1 messages have no analysis",
    ),
    "UIDNEXT": (
        "UPDATE mailboxes SET uidnext = 2 WHERE name = 'INBOX'",
        "at or above UIDNEXT 2",
    ),
    "a message counted in another account": (
        "UPDATE messages SET account_id = account_id + 1000 WHERE uid = 4",
        "1 messages in its mailboxes are counted in another account",
    ),
    "the MODSEQ counter": (
        f"UPDATE mail_counters SET modseq = 1 WHERE account_id = {ALICE}",
        "MODSEQ counter 1 below",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
async def test_verify_reports_damage(damage: str, url: str) -> None:
    await fill(url)
    statement, wanted = DAMAGE[damage]
    await sql(url, statement)
    code, output = await roost("verify", "--store", url, "alice")
    assert code == 1, output
    lines = output.splitlines()
    assert any(line.startswith("alice: ") and wanted in line for line in lines), output
    assert lines[-1].startswith("Verified 1 accounts") and "problems." in lines[-1]


async def test_verify_names_the_account_at_fault(url: str) -> None:
    await fill(url)
    bob = ALICE.replace("alice", "bob")
    await sql(url, f"UPDATE mail_counters SET messages = 9 WHERE account_id = {bob}")
    assert (await roost("verify", "--store", url, "alice"))[0] == 0
    code, output = await roost("verify", "--store", url)
    assert code == 1 and output.splitlines()[0].startswith("bob: quota usage kept as")


async def test_mailbox_commands_and_index_rebuild(url: str, tmp_path: Path) -> None:
    await fill(url)
    d = ("--store", url, "--data-dir", str(tmp_path / "node"))
    assert await roost("mailbox", "create", *d, "alice", "Work/2024") == (
        0,
        "Created Work/2024.\n",
    )
    assert (await roost("mailbox", "rename", *d, "alice", "Work", "Jobs"))[0] == 0
    code, output = await roost("mailbox", "list", *d, "alice")
    assert code == 0 and {"Jobs", "Jobs/2024", "INBOX", "Trash \\Trash"} <= set(output.splitlines())
    assert (await roost("mailbox", "delete", *d, "alice", "Jobs/2024"))[0] == 0
    code, output = await roost("mailbox", "status", *d, "alice", "INBOX")
    assert code == 0 and output.splitlines()[1].split()[:4] == ["INBOX", "4", "2", "0"]
    expunged = await roost("mailbox", "expunge", *d, "alice", "INBOX", "--before", "2021-01-01")
    assert expunged == (0, "Expunged 2 messages from INBOX.\n")

    # Analyses made wrong (and one lost) are made again from the bytes.
    await sql(url, "UPDATE analyses SET t_body = ''")
    await sql(
        url, "DELETE FROM analyses WHERE blob_id IN (SELECT blob_id FROM messages WHERE uid = 3)"
    )
    assert await search(url, "alice", "needle") == []
    assert await roost("index", "rebuild", *d, "alice") == (
        0,
        "Rebuilt the index of alice: 2 messages analysed.\n",
    )
    assert await search(url, "alice", "needle") == [4]
    assert await search(url, "alice", "zebrafish") == [3]
    assert await search(url, "bob", "hello") == []  # another account's: untouched
    assert (await roost("verify", "--store", url, "alice"))[0] == 0


@pytest.mark.skipif(shutil.which("pg_restore") is None, reason="no pg_dump/pg_restore")
async def test_backup_is_a_pg_dump_that_restores(url: str, tmp_path: Path) -> None:
    await fill(url)
    dest = tmp_path / "backup"
    code, output = await roost("backup", "--store", url, str(dest))
    assert code == 0 and "restore it with pg_restore" in output, output
    assert [path.name for path in dest.iterdir()] == ["roost.pgdump"]

    admin = await asyncpg.connect(url_for("postgres"))
    name = f"{url.rpartition('/')[2]}_restored"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    SCRATCH.adopt(name)
    code, output = await roost("restore", "--store", url_for(name), str(dest))
    assert code == 0 and "Restored" in output, output
    assert await search(url_for(name), "alice", "needle") == [4]
    code, output = await roost("verify", "--store", url_for(name))
    assert code == 0 and "5 messages" in output, output

    # Into a database that holds a store: refused without --force, nothing touched.
    await fill_more(url)
    code, output = await roost("restore", "--store", url, str(dest))
    assert code == 2 and "is not empty" in output and "--force" in output, output
    assert await search(url, "alice", "later") != []
    # With --force the backup replaces it, in one transaction.
    code, output = await roost("restore", "--force", "--store", url, str(dest))
    assert code == 0, output
    assert await search(url, "alice", "later") == []
    assert await search(url, "alice", "needle") == [4]
    code, output = await roost("verify", "--store", url)
    assert code == 0 and "5 messages" in output, output


async def test_backup_without_pg_dump_says_what_to_use(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump on it
    code, output = await roost("backup", "--store", url, str(tmp_path / "backup"))
    assert code == 1 and "back it up with pg_dump or pg_basebackup" in output
    assert not (tmp_path / "backup").exists()


async def test_the_configuration_names_the_store(url: str, tmp_path: Path) -> None:
    await fill(url)
    config = write_config(tmp_path / "roost.toml", tmp_path / "node")
    with config.open("a") as file:
        file.write(f'\n[store]\nbackend = "postgresql"\nurl = "{url}"\n')
    code, output = await roost("verify", "--config", str(config))
    assert code == 0 and "Verified 2 accounts" in output, output
    code, output = await roost("mailbox", "list", "--config", str(config), "bob")
    assert code == 0 and "INBOX" in output.splitlines(), output


@pytest.mark.skipif(
    shutil.which("dovecot") is None and not Path("/usr/sbin/dovecot").exists(),
    reason="Dovecot is not installed (Debian: dovecot-imapd)",
)
async def test_migrate_into_postgresql(
    dovecot: Dovecot,  # noqa: F811 - the fixture of test_migrate.py
    url: str,
    tmp_path: Path,
) -> None:
    await asyncio.to_thread(seed, dovecot)
    store = await PostgresStore.open(url, listen=False)
    try:
        await store.create_account("alice", "hash")
    finally:
        await store.close()
    password_file = tmp_path / "password"
    password_file.write_text(SOURCE_PASSWORD + "\n")
    source = f"imaps://olduser@127.0.0.1:{dovecot.port}"
    args = ("migrate", "--store", url, "--data-dir", str(tmp_path / "node"), "alice")
    options = ("--from", source, "--password-file", str(password_file), "--insecure")
    code, output = await roost(*args, *options)
    assert code == 0 and "Copied 8 messages" in output, output
    assert await migrated(url) == expected()
    code, output = await roost(*args, *options)
    assert code == 0 and "Copied 0 messages" in output and "8 were already there" in output
    assert await migrated(url) == expected()


async def migrated(url: str) -> Contents:
    store = await PostgresStore.open(url, listen=False)
    try:
        return await store_contents(store)
    finally:
        await store.close()


def test_pg_dump_gets_the_password_in_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not on its command line, which every local user can read (ps); and a failed
    dump leaves the previous one in place."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pg_dump"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {tmp_path}/args\n'
        f'echo "$PGPASSWORD" > {tmp_path}/password\n'
        'for a in "$@"; do case "$a" in --file=*) echo dump > "${a#--file=}";; esac; done\n'
        'test -z "$FAIL" || { echo "pg_dump: error: it broke" >&2; exit 1; }\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("FAIL", raising=False)
    monkeypatch.setenv("ROOST_STORE", "")
    url = "postgresql://roost:s%40cret@db.example:5433/mail?sslmode=require"
    dest = tmp_path / "backup"
    result = CliRunner().invoke(main, ["backup", "--store", url, str(dest)])
    assert result.exit_code == 0, result.output
    assert "s%40cret" not in result.output and "cret" not in result.output
    args = (tmp_path / "args").read_text()
    assert "cret" not in args
    assert "--dbname=postgresql://roost@db.example:5433/mail?sslmode=require" in args
    assert (tmp_path / "password").read_text() == "s@cret\n"
    assert (dest / "roost.pgdump").read_text() == "dump\n"

    (dest / "roost.pgdump").write_text("the previous dump\n")
    monkeypatch.setenv("FAIL", "1")
    result = CliRunner().invoke(main, ["backup", "--store", url, str(dest)])
    assert result.exit_code == 1 and "pg_dump failed: pg_dump: error: it broke" in result.output
    assert [p.name for p in dest.iterdir()] == ["roost.pgdump"]
    assert (dest / "roost.pgdump").read_text() == "the previous dump\n"
