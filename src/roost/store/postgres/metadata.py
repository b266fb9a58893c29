"""METADATA (RFC 5464) and ACL (RFC 4314) entries of one account's mailboxes on
PostgreSQL, behaving exactly as the SQLite backend's (sqlite/metadata.py).

Invariants:

* A NULL mailbox_id stands for the server (the account's own server entries); any other
  is a mailbox's, and its entries go with its row (ON DELETE CASCADE) or when it becomes
  a \\Noselect placeholder (mailboxes.delete_mailbox): RFC 5464 §3.2.
* Names arrive validated and in lower case (the protocol's job); values are octets.
* SETMETADATA is all or nothing (RFC 5464 §4.3): the entry count is checked inside the
  transaction, in the account's write turn, so two writers cannot both pass it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg

from roost.store.errors import TooManyMetadataEntries
from roost.store.postgres.mailboxes import mailbox


async def get_metadata(
    conn: asyncpg.Connection, account_id: int, mailbox_id: int | None, names: Sequence[str]
) -> dict[str, bytes]:
    """Every entry named in ``names`` or below one of them ("/a" covers "/a/b")."""
    owner = await _owner(conn, account_id, mailbox_id)
    found: dict[str, bytes] = {}
    for name in names:
        low, high = name + "/", name + chr(ord("/") + 1)
        rows = await conn.fetch(
            "SELECT name, value FROM metadata WHERE account_id = $1"
            " AND mailbox_id IS NOT DISTINCT FROM $2"
            " AND (name = $3 OR (name >= $4 AND name < $5))",
            account_id,
            owner,
            name,
            low,
            high,
        )
        found.update((row["name"], bytes(row["value"])) for row in rows)
    return found


async def set_metadata(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int | None,
    changes: Mapping[str, bytes | None],
    max_entries: int,
) -> None:
    """Set (bytes) or remove (None) entries; TooManyMetadataEntries, with nothing
    changed (the transaction rolls back), when the owner would hold more than
    ``max_entries``."""
    owner = await _owner(conn, account_id, mailbox_id)
    for name, value in changes.items():
        if value is None:
            await conn.execute(
                "DELETE FROM metadata WHERE account_id = $1"
                " AND mailbox_id IS NOT DISTINCT FROM $2 AND name = $3",
                account_id,
                owner,
                name,
            )
        else:
            await conn.execute(
                "INSERT INTO metadata (account_id, mailbox_id, name, value)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT"
                " (account_id, (coalesce(mailbox_id, 0)), name)"
                " DO UPDATE SET value = EXCLUDED.value",
                account_id,
                owner,
                name,
                value,
            )
    count = await conn.fetchval(
        "SELECT count(*) FROM metadata WHERE account_id = $1"
        " AND mailbox_id IS NOT DISTINCT FROM $2",
        account_id,
        owner,
    )
    if int(count) > max_entries:
        raise TooManyMetadataEntries(f"{count} entries, at most {max_entries}")


async def _owner(conn: asyncpg.Connection, account_id: int, mailbox_id: int | None) -> int | None:
    """The key of the server (None) or of a mailbox that exists (NoSuchMailbox)."""
    if mailbox_id is None:
        return None
    return (await mailbox(conn, account_id, mailbox_id, selectable=False)).id


async def get_acl(conn: asyncpg.Connection, account_id: int, mailbox_id: int) -> dict[str, str]:
    owner = (await mailbox(conn, account_id, mailbox_id, selectable=False)).id
    rows = await conn.fetch(
        "SELECT identifier, rights FROM acl WHERE account_id = $1 AND mailbox_id = $2"
        " ORDER BY identifier",
        account_id,
        owner,
    )
    return {row["identifier"]: row["rights"] for row in rows}


async def set_acl(
    conn: asyncpg.Connection, account_id: int, mailbox_id: int, identifier: str, rights: str | None
) -> None:
    owner = (await mailbox(conn, account_id, mailbox_id, selectable=False)).id
    if rights:
        await conn.execute(
            "INSERT INTO acl (account_id, mailbox_id, identifier, rights) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (account_id, mailbox_id, identifier)"
            " DO UPDATE SET rights = EXCLUDED.rights",
            account_id,
            owner,
            identifier,
            rights,
        )
    else:
        await conn.execute(
            "DELETE FROM acl WHERE account_id = $1 AND mailbox_id = $2 AND identifier = $3",
            account_id,
            owner,
            identifier,
        )


async def acl_entries_for(
    conn: asyncpg.Connection, account_id: int, identifiers: Sequence[str]
) -> dict[str, dict[str, str]]:
    """The entries for any of ``identifiers`` on each of the account's selectable
    mailboxes, by mailbox name."""
    rows = await conn.fetch(
        "SELECT m.name, a.identifier, a.rights FROM acl a JOIN mailboxes m ON m.id = a.mailbox_id"
        " WHERE a.account_id = $1 AND a.identifier = ANY($2::text[]) AND NOT m.noselect"
        " ORDER BY m.name",
        account_id,
        list(identifiers),
    )
    found: dict[str, dict[str, str]] = {}
    for row in rows:
        found.setdefault(row["name"], {})[row["identifier"]] = row["rights"]
    return found
