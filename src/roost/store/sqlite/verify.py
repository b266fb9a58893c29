"""``roost verify [USER]``: is every message there, intact, and are the counters right?

For each account of the embedded SQLite store, in one read transaction (a snapshot,
so it runs while serving):

* SQLite's own ``quick_check`` of mail.db;
* every message's bytes exist (in ``blob_data`` or as a file), hash to their name
  (SHA-256, store/blobs.py) and have the size the message rows say;
* per mailbox: no message UID at or above UIDNEXT, no message MODSEQ above
  HIGHESTMODSEQ, no message in a \\Noselect placeholder; the account's MODSEQ counter
  at or above every mailbox's HIGHESTMODSEQ (RFC 7162 §3: modseqs only grow);
* every message row belongs to an existing mailbox;
* the quota usage kept in ``counters`` (storage and message count) equals the sum over
  the message rows (ARCHITECTURE.md decision 10: nothing depends on recounting, so a
  difference is a bug to report; ``roost user quota recalc`` repairs it).

A message file missing from the snapshot's view is looked for again in a fresh one:
a message expunged meanwhile is no problem. users.db is checked too: every account's
directory and mail.db exist. Each problem is one line naming the account; the command
exits non-zero when there is any.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from roost.store.sqlite.backup import blob_path

READ_CHUNK = 1 << 20


class VerifyError(Exception):
    """Verification could not start (no data directory, no such account)."""


@dataclass
class VerifyReport:
    accounts: int = 0
    messages: int = 0
    blobs: int = 0
    problems: list[str] = field(default_factory=list)


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def verify(data_dir: Path, user: str | None = None) -> VerifyReport:
    users_db = data_dir / "users.db"
    if not users_db.is_file():
        raise VerifyError(f"{data_dir} holds no Roost data (no users.db)")
    conn = _open(users_db)
    try:
        accounts = conn.execute("SELECT name, dirname FROM accounts ORDER BY name_key").fetchall()
    finally:
        conn.close()
    if user is not None:
        accounts = [row for row in accounts if row[0].casefold() == user.casefold()]
        if not accounts:
            raise VerifyError(f"no account {user!r}")
    report = VerifyReport()
    for name, dirname in accounts:
        report.accounts += 1
        directory = data_dir / "accounts" / dirname
        if not (directory / "mail.db").is_file():
            report.problems.append(f"{name}: account directory {dirname} has no mail.db")
            continue
        verify_account(name, directory, report)
    return report


def verify_account(name: str, directory: Path, report: VerifyReport) -> None:
    problems: list[str] = []
    missing: list[str] = []
    conn = _open(directory / "mail.db")
    try:
        conn.execute("BEGIN")
        check = conn.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            problems.extend(f"database: {row[0]}" for row in check[:20])
        report.messages += conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        rows = conn.execute(
            "SELECT blob_id, min(size), max(size),"
            " EXISTS (SELECT 1 FROM blob_data d WHERE d.blob_id = m.blob_id)"
            " FROM messages m GROUP BY blob_id"
        ).fetchall()
        for blob_id, smallest, largest, inline in rows:
            report.blobs += 1
            if smallest != largest:
                problems.append(f"message {blob_id}: rows disagree on its size")
            if inline:
                (data,) = conn.execute(
                    "SELECT data FROM blob_data WHERE blob_id = ?", (blob_id,)
                ).fetchone()
                digest, size = hashlib.sha256(data).hexdigest(), len(data)
            else:
                try:
                    digest, size = _hash_file(blob_path(directory, blob_id))
                except FileNotFoundError:
                    missing.append(blob_id)
                    continue
            if digest != blob_id:
                problems.append(f"message {blob_id}: content hashes to {digest[:16]}…")
            if size != smallest:
                problems.append(f"message {blob_id}: {size} bytes stored, {smallest} recorded")
        problems.extend(_counter_problems(conn))
        conn.execute("COMMIT")
        problems.extend(_still_missing(conn, directory, missing))
    except sqlite3.DatabaseError as error:
        problems.append(f"database: {error}")
    finally:
        conn.close()
    report.problems.extend(f"{name}: {problem}" for problem in problems)


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _counter_problems(conn: sqlite3.Connection) -> list[str]:
    problems = []
    rows = conn.execute(
        "SELECT b.name, b.uidnext, b.highestmodseq, b.noselect,"
        " max(m.uid), max(m.modseq), count(m.uid)"
        " FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id GROUP BY b.id"
    ).fetchall()
    for name, uidnext, highest, noselect, max_uid, max_modseq, count in rows:
        if max_uid is not None and max_uid >= uidnext:
            problems.append(f"mailbox {name}: UID {max_uid} at or above UIDNEXT {uidnext}")
        if max_modseq is not None and max_modseq > highest:
            problems.append(
                f"mailbox {name}: a message's MODSEQ {max_modseq} above HIGHESTMODSEQ {highest}"
            )
        if noselect and count:
            problems.append(f"mailbox {name}: {count} messages in a \\Noselect placeholder")
    (modseq,) = conn.execute("SELECT modseq FROM counters WHERE id = 0").fetchone()
    top = max((row[2] for row in rows), default=0)
    if top > modseq:
        problems.append(f"MODSEQ counter {modseq} below a mailbox's HIGHESTMODSEQ {top}")
    (orphans,) = conn.execute(
        "SELECT count(*) FROM messages WHERE mailbox_id NOT IN (SELECT id FROM mailboxes)"
    ).fetchone()
    if orphans:
        problems.append(f"{orphans} messages belong to no mailbox")
    kept = conn.execute("SELECT storage, messages FROM counters WHERE id = 0").fetchone()
    counted = conn.execute("SELECT coalesce(sum(size), 0), count(*) FROM messages").fetchone()
    if tuple(kept) != tuple(counted):
        problems.append(
            f"quota usage kept as {kept[0]} bytes in {kept[1]} messages,"
            f" but the messages add up to {counted[0]} bytes in {counted[1]}"
        )
    return problems


def _still_missing(conn: sqlite3.Connection, directory: Path, blob_ids: list[str]) -> list[str]:
    """Of message files the snapshot missed, those a fresh look still misses while a
    message refers to them (others were expunged while verifying)."""
    problems = []
    for blob_id in blob_ids:
        referenced = conn.execute(
            "SELECT count(*) FROM messages WHERE blob_id = ?", (blob_id,)
        ).fetchone()[0]
        if referenced and not blob_path(directory, blob_id).exists():
            problems.append(f"message {blob_id}: file missing ({referenced} messages refer to it)")
    return problems
