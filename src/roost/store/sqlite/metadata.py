"""METADATA (RFC 5464) and ACL (RFC 4314) entries of one account's mailboxes (run on
its worker thread): both are small per-mailbox tables that go with their mailbox.

Invariants:

* Mailbox id 0 stands for the server; any other id is a mailbox's, and its entries
  are removed with its row (a schema trigger) or when it becomes a \\Noselect
  placeholder (mailboxes.delete_mailbox): RFC 5464 §3.2.
* Names arrive validated and in lower case (the protocol's job); values are octets.
* SETMETADATA is all or nothing (RFC 5464 §4.3): the entry count is checked inside the
  write, so two concurrent writers cannot both pass it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from roost.store.errors import TooManyMetadataEntries
from roost.store.sqlite.mail_db import MailDB

SERVER = 0


def get_metadata(db: MailDB, mailbox_id: int | None, names: Sequence[str]) -> dict[str, bytes]:
    """Every entry named in ``names`` or below one of them ("/a" covers "/a/b")."""
    owner = _owner(db, mailbox_id)
    found: dict[str, bytes] = {}
    for name in names:
        low, high = name + "/", name + chr(ord("/") + 1)
        rows = db.conn.execute(
            "SELECT name, value FROM metadata WHERE mailbox_id = ?"
            " AND (name = ? OR (name >= ? AND name < ?))",
            (owner, name, low, high),
        )
        found.update((entry, bytes(value)) for entry, value in rows)
    return found


def set_metadata(
    db: MailDB,
    mailbox_id: int | None,
    changes: Mapping[str, bytes | None],
    max_entries: int,
) -> None:
    """Set (bytes) or remove (None) entries; TooManyMetadataEntries, with nothing
    changed, when the owner would hold more than ``max_entries``."""
    with db.write():
        owner = _owner(db, mailbox_id)
        for name, value in changes.items():
            if value is None:
                db.conn.execute(
                    "DELETE FROM metadata WHERE mailbox_id = ? AND name = ?", (owner, name)
                )
            else:
                db.conn.execute(
                    "INSERT OR REPLACE INTO metadata (mailbox_id, name, value) VALUES (?, ?, ?)",
                    (owner, name, value),
                )
        count = db.scalar("SELECT count(*) FROM metadata WHERE mailbox_id = ?", (owner,))
        if count > max_entries:
            raise TooManyMetadataEntries(f"{count} entries, at most {max_entries}")


def _owner(db: MailDB, mailbox_id: int | None) -> int:
    """The row key of the server (None) or of a mailbox that exists (NoSuchMailbox)."""
    if mailbox_id is None:
        return SERVER
    return db.mailbox(mailbox_id, selectable=False).id


def get_acl(db: MailDB, mailbox_id: int) -> dict[str, str]:
    owner = db.mailbox(mailbox_id, selectable=False).id
    rows = db.conn.execute(
        "SELECT identifier, rights FROM acl WHERE mailbox_id = ? ORDER BY identifier", (owner,)
    )
    return dict(rows.fetchall())


def set_acl(db: MailDB, mailbox_id: int, identifier: str, rights: str | None) -> None:
    with db.write():
        owner = db.mailbox(mailbox_id, selectable=False).id
        if rights:
            db.conn.execute(
                "INSERT OR REPLACE INTO acl (mailbox_id, identifier, rights) VALUES (?, ?, ?)",
                (owner, identifier, rights),
            )
        else:
            db.conn.execute(
                "DELETE FROM acl WHERE mailbox_id = ? AND identifier = ?", (owner, identifier)
            )


def acl_entries_for(db: MailDB, identifiers: Sequence[str]) -> dict[str, dict[str, str]]:
    marks = ", ".join("?" * len(identifiers))
    rows = db.conn.execute(
        "SELECT m.name, a.identifier, a.rights FROM acl a JOIN mailboxes m ON m.id = a.mailbox_id"
        f" WHERE a.identifier IN ({marks}) AND m.noselect = 0 ORDER BY m.name",
        tuple(identifiers),
    )
    found: dict[str, dict[str, str]] = {}
    for name, identifier, rights in rows.fetchall():
        found.setdefault(name, {})[identifier] = rights
    return found
