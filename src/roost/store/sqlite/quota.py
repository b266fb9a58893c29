"""Quota usage of one account (run on its worker thread).

Invariants:

* Usage lives in the ``counters`` row of mail.db and is changed only by the triggers on
  ``messages`` (schema.py), in the same statement as the rows: it is exact at every
  commit, after any crash, whichever path added or removed a message.
* A check runs inside the write transaction that added the messages, after they are
  inserted: the transaction holds SQLite's write lock, so no other writer (thread or
  process) can add messages between the check and the commit, and a refusal rolls the
  insert back with everything else (nothing stored, no usage changed).
* Only operations that raise usage are checked; one that lowers it or leaves it alone
  (EXPUNGE, MOVE within the account) is never refused, even over the limit.
"""

from __future__ import annotations

from roost.store.errors import QuotaExceeded
from roost.store.sqlite.db import Database
from roost.store.values import QuotaLimits, QuotaUsage

UNLIMITED = QuotaLimits()


def read_usage(db: Database) -> tuple[int, int]:
    """(storage in octets, message count) as of the current transaction."""
    storage, messages = db.conn.execute(
        "SELECT storage, messages FROM counters WHERE id = 0"
    ).fetchone()
    return int(storage), int(messages)


def usage(db: Database, limits: QuotaLimits) -> QuotaUsage:
    with db.read():
        storage, messages = read_usage(db)
    return QuotaUsage(storage, messages, limits.storage, limits.messages)


def check(db: Database, limits: QuotaLimits) -> None:
    """Inside the write transaction, after the insert: QuotaExceeded (so the caller
    rolls back) when usage now passes a limit."""
    if limits.storage is None and limits.messages is None:
        return
    storage, messages = read_usage(db)
    if limits.storage is not None and storage > limits.storage:
        raise QuotaExceeded(f"storage quota of {limits.storage} octets exceeded")
    if limits.messages is not None and messages > limits.messages:
        raise QuotaExceeded(f"quota of {limits.messages} messages exceeded")


def recalculate(db: Database, limits: QuotaLimits) -> tuple[QuotaUsage, QuotaUsage]:
    """Rebuild usage from the message rows; return (before, after). Nothing depends on
    this (the triggers keep usage exact); it repairs a database edited by hand."""
    with db.write():
        before = read_usage(db)
        db.conn.execute(
            "UPDATE counters SET storage = (SELECT coalesce(sum(size), 0) FROM messages),"
            " messages = (SELECT count(*) FROM messages) WHERE id = 0"
        )
        # The per-mailbox counters STATUS reads (schema.py), kept by triggers alike.
        db.conn.execute(
            "UPDATE mailboxes SET"
            " message_count = (SELECT count(*) FROM messages WHERE mailbox_id = mailboxes.id),"
            " message_size = (SELECT coalesce(sum(size), 0) FROM messages"
            " WHERE mailbox_id = mailboxes.id)"
        )
        after = read_usage(db)
    return (
        QuotaUsage(*before, limits.storage, limits.messages),
        QuotaUsage(*after, limits.storage, limits.messages),
    )
