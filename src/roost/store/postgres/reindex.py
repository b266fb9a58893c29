"""``roost index rebuild`` on the PostgreSQL store: analyse every message of an account
again from its bytes, as delivery does (mime/analysis.py), and store the result over
the old analysis; then analyse any content of the account that has none.

Invariants:

* An analysis keeps its id and its thread (RFC 8474: a THREADID does not change); the
  trigram indexes follow the updated text by themselves.
* ``BATCH`` analyses per transaction, computed before it (off the event loop for
  large messages), so a search meanwhile finds each message either as before or as
  rebuilt, and no transaction holds locks while parsing.
* A missing analysis is added under the account's write turn and only while a
  message still refers to its content: an expunge that ran meanwhile (and dropped
  the analyses it orphaned, messages.py ``forget``) leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from roost.mime.parse import MimeLimits
from roost.store.errors import MessageGone
from roost.store.postgres import blobs
from roost.store.postgres.messages import ANALYSE_IN_THREAD, clean_text, insert_analysis
from roost.store.postgres.pool import Database
from roost.store.sqlite.analyses import AnalysisRow, compute
from roost.store.values import MessageSource

BATCH = 200
IN_MEMORY = 4 * blobs.CHUNK  # larger contents are analysed from a temporary file

_UPDATE = (
    "UPDATE analyses SET model = $2, sent_date = $3, sent_day = $4, message_id = $5,"
    " in_reply_to = $6, refs = $7, sort_subject = $8, sort_from = $9, sort_to = $10,"
    " sort_cc = $11, display_from = $12, display_to = $13, preview = $14, subject = $15,"
    " t_header = $16, t_body = $17, t_subject = $18, t_from = $19, t_to = $20, t_cc = $21,"
    " t_bcc = $22 WHERE id = $1"
)


async def rebuild(db: Database, account_id: int, limits: MimeLimits) -> int:
    """Rebuild the account's analyses; the number it now has."""
    last = 0
    while batch := await db.fetch(
        "SELECT id, blob_id FROM analyses WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        account_id,
        last,
        BATCH,
    ):
        rows = await _analyse_many(db, [blob_id for _, blob_id in batch], limits)
        updates = [
            (analysis_id, *_values(rows[blob_id]))
            for analysis_id, blob_id in batch
            if blob_id in rows
        ]
        if updates:
            await db.run(functools.partial(_update, rows=updates))
        last = batch[-1]["id"]
    missing = await db.fetch(
        "SELECT DISTINCT m.blob_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
        " WHERE b.account_id = $1 AND NOT EXISTS"
        " (SELECT 1 FROM analyses a WHERE a.account_id = $1 AND a.blob_id = m.blob_id)",
        account_id,
    )
    found = await _analyse_many(db, [blob_id for (blob_id,) in missing], limits)
    for blob_id, row in found.items():
        add = functools.partial(_add, account_id=account_id, blob_id=blob_id, row=row)
        await db.run(add, account_id=account_id)
    count: int = await db.fetchval(
        "SELECT count(*) FROM analyses WHERE account_id = $1", account_id
    )
    return count


async def _update(conn: asyncpg.Connection, rows: Sequence[tuple[object, ...]]) -> None:
    await conn.executemany(_UPDATE, rows)


async def _add(conn: asyncpg.Connection, account_id: int, blob_id: str, row: AnalysisRow) -> None:
    referenced = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE blob_id = $2 AND account_id = $1)",
        account_id,
        blob_id,
    )
    if referenced:
        await insert_analysis(conn, account_id, blob_id, row)


def _values(row: AnalysisRow) -> tuple[object, ...]:
    """The columns of ``_UPDATE`` after the id, as ``insert_analysis`` stores them."""
    texts = tuple(clean_text(text) for text in row.texts)
    columns = tuple(clean_text(c) if isinstance(c, str) else c for c in row.columns)
    return (*columns, texts[2], *texts)


async def _analyse_many(
    db: Database, blob_ids: Sequence[str], limits: MimeLimits
) -> dict[str, AnalysisRow]:
    """The analyses of stored contents, but of those gone (expunged meanwhile). Those of
    one chunk (most mail) are read in one query and analysed together off the loop."""
    sizes = {
        row["blob_id"]: row["size"]
        for row in await db.fetch(
            "SELECT blob_id, size FROM blobs WHERE blob_id = ANY($1::text[])", list(blob_ids)
        )
    }
    small = [blob_id for blob_id, size in sizes.items() if size < blobs.CHUNK]
    contents = {
        row["blob_id"]: bytes(row["data"])
        for row in await db.fetch(
            "SELECT blob_id, data FROM blob_chunks WHERE blob_id = ANY($1::text[]) AND seq = 0",
            small,
        )
    }
    found = await asyncio.to_thread(
        lambda: {
            blob_id: compute(MessageSource(data=data), limits) for blob_id, data in contents.items()
        }
    )
    for blob_id, size in sizes.items():
        if blob_id not in contents:
            row = await _analyse(db, blob_id, size, limits)
            if row is not None:
                found[blob_id] = row
    return found


async def _analyse(db: Database, blob_id: str, size: int, limits: MimeLimits) -> AnalysisRow | None:
    """The analysis of one stored content; None when it is gone (expunged meanwhile)."""
    try:
        if size <= IN_MEMORY:
            data = b"".join([chunk async for chunk in blobs.read_chunks(db, blob_id)])
            source = MessageSource(data=data)
            if size <= ANALYSE_IN_THREAD:
                return compute(source, limits)
            return await asyncio.to_thread(compute, source, limits)
        with tempfile.TemporaryDirectory(prefix="roost-reindex-") as directory:
            path = Path(directory) / "message"
            with open(path, "wb") as file:  # noqa: ASYNC230 - one chunk at a time
                async for chunk in blobs.read_chunks(db, blob_id):
                    await asyncio.to_thread(file.write, chunk)
            return await asyncio.to_thread(compute, MessageSource(path=path), limits)
    except MessageGone:
        return None
