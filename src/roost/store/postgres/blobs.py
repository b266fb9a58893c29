"""Message bytes in PostgreSQL: content-addressed, in chunks, shared by all accounts.

Invariants:

* A blob is named by the SHA-256 of its bytes (as store/blobs.py names files), so the
  same content is stored once in the whole database; its bytes are ``blob_chunks``
  rows of ``CHUNK`` octets (the last one shorter; an empty message has one empty
  chunk), so a 50 MB message is never one allocation, written or read.
* A blob is written inside the transaction that first refers to it, and deleted inside
  a transaction that removes its last reference (``release``). A writer that races a
  deletion gets a foreign-key violation and is retried whole (pool.py), storing the
  blob again.
* ``CHUNK`` never changes: chunk ``n`` holds bytes ``[n*CHUNK, (n+1)*CHUNK)``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import asyncpg

from roost.mime.layout import HeaderScanner
from roost.store.blobs import StoredBlob, describe
from roost.store.errors import MessageGone
from roost.store.values import MessageSource

if TYPE_CHECKING:
    from roost.store.postgres.pool import Database

CHUNK = 256 * 1024
DESCRIBE_IN_THREAD = 64 * 1024  # hash larger messages off the event loop


async def describe_source(source: MessageSource) -> StoredBlob:
    """Name, size and header size of a message to store."""
    if source.data is not None:
        if len(source.data) <= DESCRIBE_IN_THREAD:
            return describe(source.data)
        return await asyncio.to_thread(describe, source.data)
    assert source.path is not None
    return await asyncio.to_thread(_describe_file, source)


def _describe_file(source: MessageSource) -> StoredBlob:
    assert source.path is not None
    digest = hashlib.sha256()
    scanner = HeaderScanner()
    size = 0
    with open(source.path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            scanner.feed(chunk)
            size += len(chunk)
    return StoredBlob(digest.hexdigest(), size, size if scanner.end is None else scanner.end)


async def store(conn: asyncpg.Connection, blob: StoredBlob, source: MessageSource) -> None:
    """Inside a transaction: make sure ``blob`` is stored (a no-op if it is). A message
    that references it takes its key lock (the foreign key), which is what keeps a
    concurrent ``release`` from deleting it under that message."""
    if source.data is not None and len(source.data) <= CHUNK:
        # One round trip: most mail is one chunk.
        await conn.execute(
            "WITH b AS (INSERT INTO blobs (blob_id, size, header_size) VALUES ($1, $2, $3)"
            " ON CONFLICT (blob_id) DO NOTHING RETURNING blob_id)"
            " INSERT INTO blob_chunks (blob_id, seq, data) SELECT blob_id, 0, $4 FROM b",
            blob.blob_id,
            blob.size,
            blob.header_size,
            source.data,
        )
        return
    inserted = await conn.fetchval(
        "INSERT INTO blobs (blob_id, size, header_size) VALUES ($1, $2, $3)"
        " ON CONFLICT (blob_id) DO NOTHING RETURNING true",
        blob.blob_id,
        blob.size,
        blob.header_size,
    )
    if not inserted:
        return
    insert = "INSERT INTO blob_chunks (blob_id, seq, data) VALUES ($1, $2, $3)"
    if source.data is not None:
        data = source.data
        chunks = [data[at : at + CHUNK] for at in range(0, len(data), CHUNK)] or [b""]
        await conn.executemany(insert, [(blob.blob_id, n, c) for n, c in enumerate(chunks)])
        return
    assert source.path is not None
    with open(source.path, "rb") as file:  # noqa: ASYNC230 - one chunk at a time
        seq = 0
        while True:
            chunk = await asyncio.to_thread(file.read, CHUNK)
            if not chunk and seq > 0:
                break
            await conn.execute(insert, blob.blob_id, seq, chunk)
            seq += 1
            if len(chunk) < CHUNK:
                break


async def release(conn: asyncpg.Connection, blob_ids: Sequence[str]) -> None:
    """Inside the transaction that removed references: delete those of ``blob_ids`` no
    message refers to any more (their chunks go with them)."""
    if blob_ids:
        await conn.execute(
            "DELETE FROM blobs b WHERE b.blob_id = ANY($1::text[])"
            " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.blob_id)",
            sorted(set(blob_ids)),
        )


async def read_chunks(pool: Database, blob_id: str) -> AsyncIterator[bytes]:
    """The blob's bytes in chunks, one query each; MessageGone if it is not there."""
    seq = 0
    while True:
        chunk = await pool.fetchval(
            "SELECT data FROM blob_chunks WHERE blob_id = $1 AND seq = $2", blob_id, seq
        )
        if chunk is None:
            if seq == 0:
                raise MessageGone(f"message {blob_id} is gone")
            return
        if chunk:
            yield bytes(chunk)
        if len(chunk) < CHUNK:
            return
        seq += 1


async def read_range(pool: Database, blob_id: str, start: int, length: int) -> bytes:
    if start < 0 or length < 0:
        raise ValueError("negative offset or length")
    if length == 0:
        return b""
    first, last = start // CHUNK, (start + length - 1) // CHUNK
    rows = await pool.fetch(
        "SELECT seq, data FROM blob_chunks WHERE blob_id = $1 AND seq BETWEEN $2 AND $3"
        " ORDER BY seq",
        blob_id,
        first,
        last,
    )
    if not rows:
        exists = await pool.fetchval("SELECT 1 FROM blobs WHERE blob_id = $1", blob_id)
        if exists is None:
            raise MessageGone(f"message {blob_id} is gone")
        return b""
    data = b"".join(bytes(row["data"]) for row in rows)
    offset = start - first * CHUNK
    return data[offset : offset + length]


async def small_contents(
    conn: asyncpg.Connection | asyncpg.Pool, blob_ids: Sequence[str]
) -> dict[str, bytes]:
    """The whole bytes of blobs of one chunk, in one query."""
    rows = await conn.fetch(
        "SELECT blob_id, data FROM blob_chunks WHERE blob_id = ANY($1::text[]) AND seq = 0",
        list(blob_ids),
    )
    return {row["blob_id"]: bytes(row["data"]) for row in rows}
