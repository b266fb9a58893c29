"""Mailbox and subscription operations of one account (run on its worker thread).

Invariants:

* Every mailbox's ancestors exist, as real mailboxes or \\Noselect placeholders; a
  placeholder exists only while it has inferiors, and holds no messages.
* UIDVALIDITY is fresh for every mailbox created (a placeholder turned real counts as
  created) and kept by RENAME.
* Names compare exactly; callers normalise INBOX. Subscriptions are names, independent
  of mailboxes: DELETE and RENAME leave them alone (RFC 9051 §6.3.9).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from roost.store.errors import CannotDoThat, MailboxExists, MailboxHasChildren, NoSuchMailbox
from roost.store.events import ChangeEvent, MailboxChanged, MailboxListChanged
from roost.store.sqlite.db import MAILBOX_COLUMNS, MailboxRow
from roost.store.sqlite.mail_db import MailDB
from roost.store.values import DEFAULT_SPECIAL_FOLDERS, SPECIAL_USES, MailboxInfo

INBOX = "INBOX"
SEPARATOR = "/"
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    (INBOX, None),
    *((name, use) for use, name in DEFAULT_SPECIAL_FOLDERS),
)

Changed = tuple[None, list[ChangeEvent]]


def initialize(
    db: MailDB,
    uidvalidity_floor: int,
    special_folders: Sequence[tuple[str, str]] = DEFAULT_SPECIAL_FOLDERS,
) -> None:
    """Fill a new account: INBOX and the special folders (use, name), each subscribed,
    with any parent a nested name needs ("Mail/Sent")."""
    with db.write():
        db.seed_uidvalidity(uidvalidity_floor)
        _insert(db, INBOX, None)
        for use, name in special_folders:
            _check_name(name)
            _ensure_parents(db, name)
            _insert(db, name, use)
        names = {INBOX, *(name for _, name in special_folders)}
        db.conn.executemany(
            "INSERT INTO subscriptions (name) VALUES (?)", [(n,) for n in sorted(names)]
        )


def list_mailboxes(db: MailDB) -> list[MailboxInfo]:
    rows = db.conn.execute(f"SELECT {MAILBOX_COLUMNS} FROM mailboxes ORDER BY name")
    return [MailboxRow(*row).info() for row in rows]


def get_mailbox(db: MailDB, name: str) -> MailboxInfo:
    row = db.mailbox_by_name(name)
    if row is None:
        raise NoSuchMailbox(name)
    return row.info()


def create_mailbox(
    db: MailDB, name: str, special_use: str | None
) -> tuple[MailboxInfo, list[ChangeEvent]]:
    _check_name(name)
    if special_use is not None and special_use not in SPECIAL_USES:
        raise CannotDoThat(f"unknown special use {special_use}")
    with db.write():
        row = db.mailbox_by_name(name)
        if row is not None and not row.noselect:
            raise MailboxExists(name)
        _ensure_parents(db, name)
        if row is None:
            row = _insert(db, name, special_use)
        else:  # a placeholder becomes a real mailbox, new to every client
            row = MailboxRow(
                *db.conn.execute(
                    "UPDATE mailboxes SET noselect = 0, uidvalidity = ?, uidnext = 1,"
                    " highestmodseq = ?, special_use = ?, recent_floor = 1 WHERE id = ?"
                    f" RETURNING {MAILBOX_COLUMNS}",
                    (db.next_uidvalidity(), db.current_modseq(), special_use, row.id),
                ).fetchall()[0]
            )
    return row.info(), [MailboxListChanged()]


def delete_mailbox(db: MailDB, name: str) -> Changed:
    """RFC 9051 §6.3.4. A session that had the mailbox selected learns of it from
    MailboxListChanged: the mailbox id then raises NoSuchMailbox."""
    if name == INBOX:
        raise CannotDoThat("INBOX cannot be deleted")
    with db.write():
        row = db.mailbox_by_name(name)
        if row is None:
            raise NoSuchMailbox(name)
        blob_ids = [
            blob_id
            for (blob_id,) in db.conn.execute(
                "SELECT DISTINCT blob_id FROM messages WHERE mailbox_id = ?", (row.id,)
            )
        ]
        if _has_inferiors(db, name):
            if row.noselect:
                raise MailboxHasChildren(name)
            for table in ("messages", "expunged", "keywords", "metadata", "acl"):
                db.conn.execute(f"DELETE FROM {table} WHERE mailbox_id = ?", (row.id,))
            db.conn.execute(
                "UPDATE mailboxes SET noselect = 1, special_use = NULL WHERE id = ?", (row.id,)
            )
        else:
            db.conn.execute("DELETE FROM mailboxes WHERE id = ?", (row.id,))
            _prune_placeholders(db, name)
    db.release_blobs(blob_ids)
    return None, [MailboxListChanged()]


def rename_mailbox(db: MailDB, old: str, new: str) -> Changed:
    """RFC 9051 §6.3.6: inferiors move along; INBOX is special (see _rename_inbox)."""
    _check_name(new)
    with db.write():
        row = db.mailbox_by_name(old)
        if row is None:
            raise NoSuchMailbox(old)
        if db.mailbox_by_name(new) is not None:
            raise MailboxExists(new)
        if old == INBOX:
            return None, _rename_inbox(db, row, new)
        if new.startswith(old + SEPARATOR):
            raise CannotDoThat("a mailbox cannot become its own inferior")
        low, high = _inferior_bounds(old)
        try:
            db.conn.execute(
                "UPDATE mailboxes SET name = ? || substr(name, ?)"
                " WHERE name = ? OR (name >= ? AND name < ?)",
                (new, len(old) + 1, old, low, high),
            )
        except sqlite3.IntegrityError as exc:  # an inferior of ``new`` already exists
            raise MailboxExists(new) from exc
        _ensure_parents(db, new)
        _prune_placeholders(db, old)
    return None, [MailboxListChanged()]


def _rename_inbox(db: MailDB, inbox: MailboxRow, new: str) -> list[ChangeEvent]:
    """Create ``new`` and move every INBOX message into it, with new UIDs; INBOX keeps
    its UIDVALIDITY, its UIDNEXT keeps growing, and the moves are logged as expunges.
    INBOX's inferiors stay where they are."""
    _ensure_parents(db, new)
    dest = _insert(db, new, None)
    count = db.scalar("SELECT count(*) FROM messages WHERE mailbox_id = ?", (inbox.id,))
    if count == 0:
        return [MailboxListChanged()]
    modseq = db.next_modseq()
    db.conn.execute(
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internaldate,"
        " tzoffset, size, header_size, blob_id, analysis_id, savedate)"
        " SELECT ?, row_number() OVER (ORDER BY uid), ?, flags, keywords, internaldate,"
        " tzoffset, size, header_size, blob_id, analysis_id,"
        " CAST(strftime('%s', 'now') AS INTEGER)"
        " FROM messages WHERE mailbox_id = ?",
        (dest.id, modseq, inbox.id),
    )
    db.conn.execute(
        "INSERT INTO keywords (mailbox_id, name) SELECT ?, name FROM keywords WHERE mailbox_id = ?",
        (dest.id, inbox.id),
    )
    db.conn.execute(
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
        " SELECT mailbox_id, uid, ? FROM messages WHERE mailbox_id = ?",
        (modseq, inbox.id),
    )
    db.conn.execute("DELETE FROM messages WHERE mailbox_id = ?", (inbox.id,))
    db.set_mailbox_state(dest.id, highestmodseq=modseq, uidnext=count + 1)
    db.set_mailbox_state(inbox.id, highestmodseq=modseq)
    return [MailboxListChanged(), MailboxChanged(inbox.id, modseq)]


def list_subscriptions(db: MailDB) -> list[str]:
    return [name for (name,) in db.conn.execute("SELECT name FROM subscriptions ORDER BY name")]


def set_subscribed(db: MailDB, name: str, subscribed: bool) -> Changed:
    with db.write():
        if subscribed:
            cursor = db.conn.execute(
                "INSERT OR IGNORE INTO subscriptions (name) VALUES (?)", (name,)
            )
        else:
            cursor = db.conn.execute("DELETE FROM subscriptions WHERE name = ?", (name,))
    return None, [MailboxListChanged()] if cursor.rowcount else []


# ---- helpers ----------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not name or any(not part for part in name.split(SEPARATOR)) or "\x00" in name:
        raise CannotDoThat(f"invalid mailbox name {name!r}")


def _insert(db: MailDB, name: str, special_use: str | None) -> MailboxRow:
    return MailboxRow(
        *db.conn.execute(
            "INSERT INTO mailboxes (name, uidvalidity, highestmodseq, special_use)"
            f" VALUES (?, ?, ?, ?) RETURNING {MAILBOX_COLUMNS}",
            (name, db.next_uidvalidity(), db.current_modseq(), special_use),
        ).fetchall()[0]
    )


def _ensure_parents(db: MailDB, name: str) -> None:
    """Create the missing ancestors of ``name`` as real mailboxes (RFC 9051 §6.3.4)."""
    parts = name.split(SEPARATOR)
    for depth in range(1, len(parts)):
        parent = SEPARATOR.join(parts[:depth])
        if db.mailbox_by_name(parent) is None:
            _insert(db, parent, None)


def _inferior_bounds(name: str) -> tuple[str, str]:
    """Names in [low, high) are exactly those starting with ``name + "/"``."""
    return name + SEPARATOR, name + chr(ord(SEPARATOR) + 1)


def _has_inferiors(db: MailDB, name: str) -> bool:
    low, high = _inferior_bounds(name)
    row = db.conn.execute(
        "SELECT 1 FROM mailboxes WHERE name >= ? AND name < ? LIMIT 1", (low, high)
    ).fetchone()
    return row is not None


def _prune_placeholders(db: MailDB, name: str) -> None:
    """Delete the \\Noselect ancestors of a removed ``name`` that are left childless."""
    parts = name.split(SEPARATOR)
    for depth in range(len(parts) - 1, 0, -1):
        parent = SEPARATOR.join(parts[:depth])
        row = db.mailbox_by_name(parent)
        if row is None or not row.noselect or _has_inferiors(db, parent):
            return
        db.conn.execute("DELETE FROM mailboxes WHERE id = ?", (row.id,))
