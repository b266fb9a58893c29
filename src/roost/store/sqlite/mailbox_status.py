"""STATUS counts of one mailbox (run on the worker), without reading its messages.

MESSAGES and SIZE come from the per-mailbox counters the schema's triggers keep in the
statement that adds or removes a message (RFC 8438: SIZE is exact); UNSEEN, DELETED
and DELETED-STORAGE count through partial indexes, RECENT through the key, so STATUS
costs the unseen and deleted messages, not the mailbox.
"""

from __future__ import annotations

from roost.store.sqlite.mail_db import MailDB
from roost.store.values import MailboxStatus


def status(db: MailDB, mailbox_id: int) -> MailboxStatus:
    """Counters and index probes only (schema.py): no scan of the mailbox's messages."""
    with db.read():
        row = db.mailbox(mailbox_id)
        messages, size = db.conn.execute(
            "SELECT message_count, message_size FROM mailboxes WHERE id = ?", (mailbox_id,)
        ).fetchone()
        recent = db.scalar(
            "SELECT count(*) FROM messages WHERE mailbox_id = ? AND uid >= ?",
            (mailbox_id, row.recent_floor),
        )
        # Through the partial indexes messages_unseen and messages_deleted (schema.py),
        # whose WHERE terms these repeat: a count costs the unseen (deleted) messages,
        # not the mailbox. Named, because without statistics SQLite prefers the key.
        unseen = db.scalar(
            "SELECT count(*) FROM messages INDEXED BY messages_unseen"
            " WHERE mailbox_id = ? AND flags & 1 = 0",
            (mailbox_id,),
        )
        deleted, deleted_size = db.conn.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM messages INDEXED BY messages_deleted"
            " WHERE mailbox_id = ? AND flags & 8 != 0",
            (mailbox_id,),
        ).fetchone()
    return MailboxStatus(
        messages=messages,
        recent=recent,
        uidnext=row.uidnext,
        uidvalidity=row.uidvalidity,
        unseen=unseen,
        deleted=deleted,
        size=size,
        highestmodseq=row.highestmodseq,
        deleted_size=deleted_size,
    )
