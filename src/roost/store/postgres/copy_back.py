"""``roost store copy --from postgresql://... --to sqlite:DATA_DIR``: every account of a
PostgreSQL store into a SQLite data directory, keeping what clients have cached — the
reverse of copy.py, with the same guarantees.

Kept exactly: what copy.py keeps (credentials, app passwords, quota overrides,
aliases, URLAUTH keys, the throttle's trusted addresses and the last hour's
submissions, Sieve scripts and tracking, mailboxes with UIDVALIDITY, UIDNEXT,
HIGHESTMODSEQ, special use and \\Recent floor, keywords, messages with UID, MODSEQ,
flags, dates and bytes, the expunge log, subscriptions, METADATA, ACL grants and
sharers, the account's counters), and mailbox ids, so MAILBOXID stays too.
Recomputed: the analyses and search text (from the bytes, by the same analysis) and
threads, so THREADID changes; EMAILID, named by the content, does not.

Invariants:

* An account is built in a directory of its own, read from one snapshot of the
  database (REPEATABLE READ), committed, verified, and only then registered in
  users.db (one transaction): until that commit it does not exist, and an interrupted
  copy leaves at most an unregistered directory, removed at once or ignored. An
  account already in users.db is checked (sqlite/verify.py) and skipped: run the
  command again to resume.
* Verification: per mailbox the UIDs, MODSEQs, flags and content names equal the
  database's, and every message's bytes hash to their name (sqlite/verify.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from roost.store.postgres.copy import CopyOutcome, Progress, VerifyFailed
from roost.store.sqlite import analyses
from roost.store.sqlite.db import INLINE_MAX
from roost.store.sqlite.directory import Directory
from roost.store.sqlite.mail_db import MailDB
from roost.store.sqlite.schema import connect
from roost.store.sqlite.verify import VerifyReport, verify_account
from roost.store.values import MessageSource

PREFETCH = 16  # chunks per round trip of the cursor: at most 4 MiB


async def copy_to_sqlite(url: str, data_dir: Path, progress: Progress) -> CopyOutcome:
    """Copy every account of the database at ``url`` into ``data_dir`` (made if
    needed). The servers on ``data_dir`` must be stopped."""
    directory = Directory(data_dir, durable=True)  # makes and migrates users.db
    users = connect(data_dir / "users.db", durable=True, create=False)
    conn = await asyncpg.connect(url)
    copied = skipped = messages = 0
    try:
        fresh = users.execute("SELECT count(*) FROM accounts").fetchone()[0] == 0
        rows = await conn.fetch(
            "SELECT id, name_key, name, password_hash, created, scram_keys, totp_secret,"
            " totp_last_step, quota_storage, quota_messages FROM accounts ORDER BY name_key"
        )
        for number, row in enumerate(rows, 1):
            name = row["name"]
            there = users.execute(
                "SELECT dirname FROM accounts WHERE name_key = ?", (row["name_key"],)
            ).fetchone()
            if there is not None:
                _check(name, data_dir / "accounts" / there[0])
                skipped += 1
                progress(f"[{number}/{len(rows)}] {name}: already there, verified")
                continue
            dirname, target = directory.new_account_dir(name)
            try:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    count = await _copy_mail(conn, row["id"], target)
                    await _verify(conn, row["id"], name, target)
                    _sync_dir(target)
                    _sync_dir(target.parent)
                    await _register(conn, users, row, dirname)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            copied += 1
            messages += count
            progress(f"[{number}/{len(rows)}] {name}: copied {count} messages, verified")
        floor, secret = await conn.fetchrow("SELECT uidvalidity_floor, secret FROM settings")
        with _transaction(users):
            users.execute(
                "UPDATE counters SET uidvalidity_floor = max(uidvalidity_floor, ?) WHERE id = 0",
                (floor,),
            )
            if fresh:  # a site moved whole keeps its made-up SCRAM salts (copy.py)
                users.execute("UPDATE counters SET secret = ? WHERE id = 0", (bytes(secret),))
    finally:
        users.close()
        directory.close()
        await conn.close()
    return CopyOutcome(copied, skipped, messages)


def _check(name: str, directory: Path) -> None:
    report = VerifyReport()
    verify_account(name, directory, report)
    if report.problems:
        raise VerifyFailed(f"{name} is already there but damaged: {report.problems[0]}")


async def _copy_mail(conn: asyncpg.Connection, account_id: int, target: Path) -> int:
    """Build the account's mail.db in ``target``; the number of messages."""
    db = MailDB.open(target, durable=True, create=True)
    try:
        with db.write():
            await _copy_contents(conn, account_id, db)
            await _copy_rows(conn, account_id, db)
            count: int = db.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        analyses.index_queued(db)
        return count
    finally:
        db.close()


async def _copy_contents(conn: asyncpg.Connection, account_id: int, db: MailDB) -> None:
    """Every content the account's messages refer to, small ones into ``blob_data``,
    others as files, each analysed; in the order the account first stored them, so
    that a reply finds its parent's thread."""
    cursor = conn.cursor(
        "WITH b AS (SELECT m.blob_id, min(coalesce(a.id, 0)) AS first FROM messages m"
        " JOIN mailboxes mb ON mb.id = m.mailbox_id AND mb.account_id = $1"
        " LEFT JOIN analyses a ON a.account_id = $1 AND a.blob_id = m.blob_id"
        " GROUP BY m.blob_id)"
        " SELECT c.blob_id, c.data FROM b JOIN blob_chunks c ON c.blob_id = b.blob_id"
        " ORDER BY b.first, c.blob_id, c.seq",
        account_id,
        prefetch=PREFETCH,
    )
    pending: _Content | None = None
    try:
        async for blob_id, data in cursor:
            if pending is None or pending.blob_id != blob_id:
                if pending is not None:
                    pending.store(db)
                pending = _Content(blob_id, db.blobs.tmp)
            pending.add(data)
        if pending is not None:
            pending.store(db)
    finally:
        if pending is not None:
            pending.discard()


class _Content:
    """One content's bytes as its chunks arrive: in memory up to ``INLINE_MAX``, then in
    a temporary file."""

    def __init__(self, blob_id: str, tmp: Path) -> None:
        self.blob_id = blob_id
        self._tmp = tmp
        self._data = bytearray()
        self._file: Path | None = None

    def add(self, data: bytes) -> None:
        if self._file is None and len(self._data) + len(data) <= INLINE_MAX:
            self._data += data
            return
        if self._file is None:
            fd, name = tempfile.mkstemp(dir=self._tmp, prefix="copy-")
            os.close(fd)
            self._file = Path(name)
            self._append(bytes(self._data))
            self._data.clear()
        self._append(data)

    def _append(self, data: bytes) -> None:
        assert self._file is not None
        with open(self._file, "ab") as file:
            file.write(data)

    def store(self, db: MailDB) -> None:
        """Inside the write transaction: keep the bytes and their analysis."""
        if self._file is None:
            source = MessageSource(data=bytes(self._data))
            db.conn.execute(
                "INSERT OR IGNORE INTO blob_data (blob_id, data) VALUES (?, ?)",
                (self.blob_id, source.data),
            )
        else:
            source = MessageSource(path=self._file)
            db.blobs.put(source)  # named by its own hash: verification compares names
        analyses.insert(db, self.blob_id, analyses.compute(source, db.mime_limits))
        self.discard()

    def discard(self) -> None:
        if self._file is not None:
            with contextlib.suppress(FileNotFoundError):
                self._file.unlink()
            self._file = None


async def _copy_rows(conn: asyncpg.Connection, account_id: int, db: MailDB) -> None:
    """Inside the write transaction: everything of the account but the bytes."""
    counters = await conn.fetchrow(
        "SELECT modseq, uidvalidity FROM mail_counters WHERE account_id = $1", account_id
    )
    db.conn.execute(
        "UPDATE counters SET modseq = ?, uidvalidity = ? WHERE id = 0",
        (counters["modseq"], counters["uidvalidity"]),
    )
    boxes = await conn.fetch(
        "SELECT id, name, uidvalidity, uidnext, highestmodseq, special_use, noselect,"
        " recent_floor FROM mailboxes WHERE account_id = $1 ORDER BY id",
        account_id,
    )
    db.conn.executemany(
        "INSERT INTO mailboxes (id, name, uidvalidity, uidnext, highestmodseq, special_use,"
        " noselect, recent_floor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(*box[:6], int(box["noselect"]), box["recent_floor"]) for box in boxes],
    )
    ids = [box["id"] for box in boxes]

    async def copy(select: str, insert: str, *args: object) -> None:
        rows = await conn.fetch(select, *args)
        db.conn.executemany(insert, [tuple(row) for row in rows])

    await copy(
        "SELECT mailbox_id, name FROM keywords WHERE mailbox_id = ANY($1::bigint[])",
        "INSERT OR IGNORE INTO keywords (mailbox_id, name) VALUES (?, ?)",
        ids,
    )
    await copy(
        "SELECT mailbox_id, uid, modseq FROM expunged WHERE mailbox_id = ANY($1::bigint[])",
        "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
        ids,
    )
    await copy(
        "SELECT name FROM subscriptions WHERE account_id = $1",
        "INSERT INTO subscriptions (name) VALUES (?)",
        account_id,
    )
    await copy(
        "SELECT coalesce(mailbox_id, 0), name, value FROM metadata WHERE account_id = $1",
        "INSERT INTO metadata (mailbox_id, name, value) VALUES (?, ?, ?)",
        account_id,
    )
    await copy(
        "SELECT mailbox_id, identifier, rights FROM acl WHERE account_id = $1",
        "INSERT INTO acl (mailbox_id, identifier, rights) VALUES (?, ?, ?)",
        account_id,
    )
    await copy(
        "SELECT name, source, compiled, compiled_version, active::int FROM sieve_scripts"
        " WHERE account_id = $1",
        "INSERT INTO sieve_scripts (name, source, compiled, compiled_version, active)"
        " VALUES (?, ?, ?, ?, ?)",
        account_id,
    )
    await copy(
        "SELECT kind, key, expires FROM sieve_tracking WHERE account_id = $1",
        "INSERT INTO sieve_tracking (kind, key, expires) VALUES (?, ?, ?)",
        account_id,
    )
    await copy(
        "SELECT mailbox_id, uid, modseq, flags, keywords, internaldate, tzoffset, size,"
        " header_size, blob_id, savedate FROM messages WHERE mailbox_id = ANY($1::bigint[])"
        " ORDER BY mailbox_id, uid",
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internaldate,"
        " tzoffset, size, header_size, blob_id, savedate)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ids,
    )


async def _verify(conn: asyncpg.Connection, account_id: int, name: str, target: Path) -> None:
    """VerifyFailed unless ``target`` holds the account as the snapshot does."""
    db = MailDB.open(target, durable=False)
    try:
        for (mailbox_id,) in db.conn.execute("SELECT id FROM mailboxes").fetchall():
            copied = db.conn.execute(
                "SELECT uid, modseq, flags, blob_id FROM messages WHERE mailbox_id = ?"
                " ORDER BY uid",
                (mailbox_id,),
            ).fetchall()
            source = await conn.fetch(
                "SELECT uid, modseq, flags, blob_id FROM messages WHERE mailbox_id = $1"
                " ORDER BY uid",
                mailbox_id,
            )
            if [tuple(row) for row in source] != copied:
                raise VerifyFailed(f"{name}: mailbox {mailbox_id} differs after the copy")
    finally:
        db.close()
    _check(name, target)


async def _register(
    conn: asyncpg.Connection, users: sqlite3.Connection, row: asyncpg.Record, dirname: str
) -> None:
    """The account's users.db rows, in one transaction: from its commit on, it exists."""
    account_id, key = row["id"], row["name_key"]

    async def fetch(sql: str) -> list[tuple[object, ...]]:
        return [tuple(found) for found in await conn.fetch(sql, account_id)]

    apps = await fetch(
        "SELECT label_key, label, selector, password_hash, created, last_used"
        " FROM app_passwords WHERE account_id = $1"
    )
    aliases = await fetch("SELECT address_key, address FROM aliases WHERE account_id = $1")
    keys = await fetch("SELECT mailbox, secret FROM urlauth_keys WHERE account_id = $1")
    sent = await fetch("SELECT sent_at FROM submissions WHERE account_id = $1")
    known = await conn.fetch(
        "SELECT address, last_success FROM known_addresses WHERE name_key = $1", key
    )
    sharers = await conn.fetch("SELECT owner FROM sharers WHERE grantee_key = $1", key)
    with _transaction(users):
        users.execute(
            "INSERT INTO accounts (name_key, name, dirname, password_hash, created, scram_keys,"
            " totp_secret, totp_last_step, quota_storage, quota_messages)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, row["name"], dirname, *tuple(row)[3:]),
        )
        users.executemany(
            "INSERT INTO app_passwords (name_key, label_key, label, selector, password_hash,"
            " created, last_used) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(key, *app) for app in apps],
        )
        users.executemany(
            "INSERT INTO aliases (name_key, address_key, address) VALUES (?, ?, ?)",
            [(key, *alias) for alias in aliases],
        )
        users.executemany(
            "INSERT INTO urlauth_keys (name_key, mailbox, secret) VALUES (?, ?, ?)",
            [(key, *one) for one in keys],
        )
        users.executemany(
            "INSERT INTO submissions (name_key, sent_at) VALUES (?, ?)",
            [(key, *one) for one in sent],
        )
        users.executemany(
            "INSERT INTO known_addresses (name_key, address, last_success) VALUES (?, ?, ?)"
            " ON CONFLICT (name_key, address) DO UPDATE"
            " SET last_success = max(last_success, excluded.last_success)",
            [(key, *tuple(address)) for address in known],
        )
        users.executemany(
            "INSERT OR IGNORE INTO sharers (grantee_key, owner) VALUES (?, ?)",
            [(key, sharer["owner"]) for sharer in sharers],
        )


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
