"""THREADID is found at every delivery: the parent lookup must use the message-id index,
not scan every analysis of the account (it once did: 11 deliveries a second at 100,000)."""

from __future__ import annotations

import sqlite3

from roost.store.sqlite.schema import ACCOUNT_MIGRATIONS


def test_parent_lookup_uses_the_index() -> None:
    conn = sqlite3.connect(":memory:")
    for migration in ACCOUNT_MIGRATIONS:
        for statement in migration:
            conn.execute(statement)
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT thread_id FROM analyses WHERE message_id = ?"
        " AND message_id != '' AND thread_id IS NOT NULL LIMIT 1",
        ("<x@y>",),
    ).fetchall()
    assert any("analyses_by_message_id" in row[-1] for row in plan), plan
