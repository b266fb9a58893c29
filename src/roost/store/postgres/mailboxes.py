"""Mailbox and subscription operations of one account, inside a transaction.

The same rules as the SQLite backend (sqlite/mailboxes.py): every mailbox's ancestors
exist; a \\Noselect placeholder exists only while it has inferiors; UIDVALIDITY is fresh
for every mailbox created and kept by RENAME; subscriptions are names, left alone by
DELETE and RENAME (RFC 9051 §6.3.9). Every change runs in the account's write turn
(pool.py, ``Database.run``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import asyncpg

from roost.store.errors import (
    CannotDoThat,
    MailboxExists,
    MailboxHasChildren,
    NoSuchAccount,
    NoSuchMailbox,
)
from roost.store.events import ChangeEvent, MailboxChanged, MailboxListChanged
from roost.store.postgres.pool import next_modseq
from roost.store.values import DEFAULT_SPECIAL_FOLDERS, SPECIAL_USES, MailboxInfo

INBOX = "INBOX"
SEPARATOR = "/"
UIDVALIDITY_MAX = 0xFFFFFFFF
MAILBOX_COLUMNS = (
    "id, name, uidvalidity, uidnext, highestmodseq, special_use, noselect, recent_floor"
)


class MailboxRow(NamedTuple):
    id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    noselect: bool
    recent_floor: int

    def info(self) -> MailboxInfo:
        return MailboxInfo(
            id=self.id,
            name=self.name,
            uidvalidity=self.uidvalidity,
            uidnext=self.uidnext,
            highestmodseq=self.highestmodseq,
            special_use=self.special_use,
            noselect=self.noselect,
        )


async def mailbox(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    *,
    selectable: bool = True,
    lock: bool = False,
) -> MailboxRow:
    """The mailbox's row; NoSuchMailbox if absent, another account's, or (when
    ``selectable``) a placeholder."""
    row = await conn.fetchrow(
        f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = $1 AND account_id = $2"
        + (" FOR UPDATE" if lock else ""),
        mailbox_id,
        account_id,
    )
    if row is None or (selectable and row["noselect"]):
        raise NoSuchMailbox(f"no mailbox with id {mailbox_id}")
    return MailboxRow(*row.values())


async def mailbox_by_name(
    conn: asyncpg.Connection, account_id: int, name: str
) -> MailboxRow | None:
    row = await conn.fetchrow(
        f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 AND name = $2",
        account_id,
        name,
    )
    return None if row is None else MailboxRow(*row.values())


async def initialize(
    conn: asyncpg.Connection,
    account_id: int,
    special_folders: Sequence[tuple[str, str]] = DEFAULT_SPECIAL_FOLDERS,
) -> None:
    """Fill a new account: INBOX and the special folders (use, name), each subscribed,
    with any parent a nested name needs ("Mail/Sent"), as the SQLite backend does."""
    await _insert(conn, account_id, INBOX, None)
    for use, name in special_folders:
        _check_name(name)
        await _ensure_parents(conn, account_id, name)
        await _insert(conn, account_id, name, use)
    names = {INBOX, *(name for _, name in special_folders)}
    await conn.executemany(
        "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2)",
        [(account_id, name) for name in sorted(names)],
    )


async def list_mailboxes(conn: asyncpg.Connection, account_id: int) -> list[MailboxInfo]:
    rows = await conn.fetch(
        f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 ORDER BY name",
        account_id,
    )
    if not rows:  # every account has INBOX: it was deleted
        await _require_account(conn, account_id)
    return [MailboxRow(*row.values()).info() for row in rows]


async def get_mailbox(conn: asyncpg.Connection, account_id: int, name: str) -> MailboxInfo:
    row = await mailbox_by_name(conn, account_id, name)
    if row is None:
        raise NoSuchMailbox(name)
    return row.info()


async def create_mailbox(
    conn: asyncpg.Connection, account_id: int, name: str, special_use: str | None
) -> tuple[MailboxInfo, list[ChangeEvent]]:
    _check_name(name)
    if special_use is not None and special_use not in SPECIAL_USES:
        raise CannotDoThat(f"unknown special use {special_use}")
    row = await mailbox_by_name(conn, account_id, name)
    if row is not None and not row.noselect:
        raise MailboxExists(name)
    await _ensure_parents(conn, account_id, name)
    if row is None:
        row = await _insert(conn, account_id, name, special_use)
    else:  # a placeholder becomes a real mailbox, new to every client
        found = await conn.fetchrow(
            "UPDATE mailboxes SET noselect = false, uidvalidity = $1, uidnext = 1,"
            " highestmodseq = $2, special_use = $3, recent_floor = 1 WHERE id = $4"
            f" RETURNING {MAILBOX_COLUMNS}",
            await _next_uidvalidity(conn, account_id),
            await _current_modseq(conn, account_id),
            special_use,
            row.id,
        )
        row = MailboxRow(*found.values())
    return row.info(), [MailboxListChanged()]


async def delete_mailbox(
    conn: asyncpg.Connection, account_id: int, name: str
) -> tuple[list[str], list[ChangeEvent]]:
    """RFC 9051 §6.3.4; returns the blob ids to release after commit."""
    if name == INBOX:
        raise CannotDoThat("INBOX cannot be deleted")
    row = await mailbox_by_name(conn, account_id, name)
    if row is None:
        raise NoSuchMailbox(name)
    blob_ids = [
        r["blob_id"]
        for r in await conn.fetch(
            "SELECT DISTINCT blob_id FROM messages WHERE mailbox_id = $1", row.id
        )
    ]
    if await _has_inferiors(conn, account_id, name):
        if row.noselect:
            raise MailboxHasChildren(name)
        # A placeholder keeps no METADATA or ACL entries (RFC 5464 §3.2), as SQLite's.
        for table in ("messages", "expunged", "keywords", "metadata", "acl"):
            await conn.execute(f"DELETE FROM {table} WHERE mailbox_id = $1", row.id)
        await conn.execute(
            "UPDATE mailboxes SET noselect = true, special_use = NULL WHERE id = $1", row.id
        )
    else:
        await conn.execute("DELETE FROM mailboxes WHERE id = $1", row.id)
        await _prune_placeholders(conn, account_id, name)
    return blob_ids, [MailboxListChanged()]


async def rename_mailbox(
    conn: asyncpg.Connection, account_id: int, old: str, new: str
) -> list[ChangeEvent]:
    """RFC 9051 §6.3.6: inferiors move along; INBOX is special (see _rename_inbox)."""
    _check_name(new)
    row = await mailbox_by_name(conn, account_id, old)
    if row is None:
        raise NoSuchMailbox(old)
    if await mailbox_by_name(conn, account_id, new) is not None:
        raise MailboxExists(new)
    if old == INBOX:
        return await _rename_inbox(conn, account_id, row, new)
    if new.startswith(old + SEPARATOR):
        raise CannotDoThat("a mailbox cannot become its own inferior")
    low, high = _inferior_bounds(old)
    await conn.execute("SAVEPOINT rename")  # the error leaves the rest usable
    try:
        await conn.execute(
            "UPDATE mailboxes SET name = $1 || substr(name, $2)"
            " WHERE account_id = $3 AND (name = $4 OR (name >= $5 AND name < $6))",
            new,
            len(old) + 1,
            account_id,
            old,
            low,
            high,
        )
    except asyncpg.UniqueViolationError as exc:  # an inferior of ``new`` already exists
        await conn.execute("ROLLBACK TO SAVEPOINT rename")
        raise MailboxExists(new) from exc
    await conn.execute("RELEASE SAVEPOINT rename")
    await _ensure_parents(conn, account_id, new)
    await _prune_placeholders(conn, account_id, old)
    return [MailboxListChanged()]


async def _rename_inbox(
    conn: asyncpg.Connection, account_id: int, inbox: MailboxRow, new: str
) -> list[ChangeEvent]:
    """Create ``new`` and move every INBOX message into it with new UIDs; INBOX keeps
    its UIDVALIDITY, its UIDNEXT keeps growing, and the moves are logged as expunges."""
    await _ensure_parents(conn, account_id, new)
    dest = await _insert(conn, account_id, new, None)
    count = await conn.fetchval("SELECT count(*) FROM messages WHERE mailbox_id = $1", inbox.id)
    if count == 0:
        return [MailboxListChanged()]
    modseq = await next_modseq(conn, account_id)
    await conn.execute(
        "INSERT INTO messages (mailbox_id, uid, account_id, modseq, flags, keywords,"
        " internaldate, tzoffset, size, header_size, blob_id, savedate)"
        " SELECT $1, row_number() OVER (ORDER BY uid), account_id, $2, flags, keywords,"
        " internaldate, tzoffset, size, header_size, blob_id, $4"
        " FROM messages WHERE mailbox_id = $3",
        dest.id,
        modseq,
        inbox.id,
        int(time.time()),
    )
    await conn.execute(
        "INSERT INTO keywords (mailbox_id, name_key, name)"
        " SELECT $1, name_key, name FROM keywords WHERE mailbox_id = $2",
        dest.id,
        inbox.id,
    )
    await conn.execute(
        "INSERT INTO expunged (mailbox_id, uid, modseq)"
        " SELECT mailbox_id, uid, $1 FROM messages WHERE mailbox_id = $2"
        " ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq",
        modseq,
        inbox.id,
    )
    await conn.execute("DELETE FROM messages WHERE mailbox_id = $1", inbox.id)
    await conn.execute(
        "UPDATE mailboxes SET highestmodseq = $1, uidnext = $2 WHERE id = $3",
        modseq,
        count + 1,
        dest.id,
    )
    await conn.execute("UPDATE mailboxes SET highestmodseq = $1 WHERE id = $2", modseq, inbox.id)
    return [MailboxListChanged(), MailboxChanged(inbox.id, modseq)]


async def list_subscriptions(conn: asyncpg.Connection, account_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name", account_id
    )
    if not rows:
        await _require_account(conn, account_id)
    return [row["name"] for row in rows]


async def set_subscribed(
    conn: asyncpg.Connection, account_id: int, name: str, subscribed: bool
) -> list[ChangeEvent]:
    if subscribed:
        status = await conn.execute(
            "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            account_id,
            name,
        )
    else:
        status = await conn.execute(
            "DELETE FROM subscriptions WHERE account_id = $1 AND name = $2", account_id, name
        )
    return [MailboxListChanged()] if not status.endswith(" 0") else []


# ---- helpers ----------------------------------------------------------------------


async def _require_account(conn: asyncpg.Connection, account_id: int) -> None:
    if await conn.fetchval("SELECT 1 FROM accounts WHERE id = $1", account_id) is None:
        raise NoSuchAccount(f"account {account_id} was deleted")


def _check_name(name: str) -> None:
    if not name or any(not part for part in name.split(SEPARATOR)) or "\x00" in name:
        raise CannotDoThat(f"invalid mailbox name {name!r}")


async def _current_modseq(conn: asyncpg.Connection, account_id: int) -> int:
    value: int = await conn.fetchval(
        "SELECT modseq FROM mail_counters WHERE account_id = $1", account_id
    )
    return value


async def _next_uidvalidity(conn: asyncpg.Connection, account_id: int) -> int:
    """Above every earlier one of the account and at least the current time."""
    last: int = await conn.fetchval(
        "SELECT uidvalidity FROM mail_counters WHERE account_id = $1", account_id
    )
    value = max(last + 1, int(time.time()))
    if value > UIDVALIDITY_MAX:  # after 2106: wrap; uniqueness then rests on time
        value = 1 + value % UIDVALIDITY_MAX
    await conn.execute(
        "UPDATE mail_counters SET uidvalidity = $1 WHERE account_id = $2", value, account_id
    )
    return value


async def _insert(
    conn: asyncpg.Connection, account_id: int, name: str, special_use: str | None
) -> MailboxRow:
    row = await conn.fetchrow(
        "INSERT INTO mailboxes (account_id, name, uidvalidity, highestmodseq, special_use)"
        f" VALUES ($1, $2, $3, $4, $5) RETURNING {MAILBOX_COLUMNS}",
        account_id,
        name,
        await _next_uidvalidity(conn, account_id),
        await _current_modseq(conn, account_id),
        special_use,
    )
    return MailboxRow(*row.values())


async def _ensure_parents(conn: asyncpg.Connection, account_id: int, name: str) -> None:
    parts = name.split(SEPARATOR)
    for depth in range(1, len(parts)):
        parent = SEPARATOR.join(parts[:depth])
        if await mailbox_by_name(conn, account_id, parent) is None:
            await _insert(conn, account_id, parent, None)


def _inferior_bounds(name: str) -> tuple[str, str]:
    """Names in [low, high) are exactly those starting with ``name + "/"``."""
    return name + SEPARATOR, name + chr(ord(SEPARATOR) + 1)


async def _has_inferiors(conn: asyncpg.Connection, account_id: int, name: str) -> bool:
    low, high = _inferior_bounds(name)
    found = await conn.fetchval(
        "SELECT 1 FROM mailboxes WHERE account_id = $1 AND name >= $2 AND name < $3 LIMIT 1",
        account_id,
        low,
        high,
    )
    return found is not None


async def _prune_placeholders(conn: asyncpg.Connection, account_id: int, name: str) -> None:
    parts = name.split(SEPARATOR)
    for depth in range(len(parts) - 1, 0, -1):
        parent = SEPARATOR.join(parts[:depth])
        row = await mailbox_by_name(conn, account_id, parent)
        if row is None or not row.noselect or await _has_inferiors(conn, account_id, parent):
            return
        await conn.execute("DELETE FROM mailboxes WHERE id = $1", row.id)
