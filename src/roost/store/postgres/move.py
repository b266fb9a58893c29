"""``roost store move-account``: move one account to another shard of a sharded store
(shards.py): copy it, switch the map, delete the old copy.

The account is copied row for row, ids included (each shard gives ids from its own
range, schema.py ``SHARD_ID_SPAN``, so they are free on the target): UIDs,
UIDVALIDITYs, MODSEQs, MAILBOXIDs, THREADIDs and EMAILIDs all stay, and clients do not
resync. Message bytes already on the target (the same content) are shared, not copied.

Invariants:

* While moving, the mover holds the account's write turn on the source (the locks
  every writer takes first, pool.py): no write lands there between the copy and the
  delete. Writers that waited then find the account gone, and their sessions sign in
  again, to the new shard.
* The copy is one transaction on the target, verified (the rows of every table and
  every message's bytes) before it commits; the map is switched after; the old copy is
  deleted last, in the transaction that held the lock. A crash before the switch
  leaves an unmapped copy on the target; after it, the old copy on the source. Either
  is invisible (the map decides) and is removed by running the move again.
* A table that holds account data but that this module does not know stops the move
  before anything is written: a newer schema needs a newer mover.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from roost.store.errors import CannotDoThat, NoSuchAccount
from roost.store.postgres import blobs
from roost.store.postgres.copy import VerifyFailed, verify_bytes
from roost.store.postgres.shards import ShardedStore
from roost.store.postgres.store import fold_name

Progress = Callable[[str], None]
BATCH = 500  # rows read and written at a time

_ACCOUNT = "account_id = $1"
_MAILBOXES = "mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = $1)"

# (table, the rows of the account) in an order the foreign keys accept; mail_counters
# last, so that the usage triggers on messages add to no row and the copied counters
# stand as they were. Blobs are copied apart (shared, and large).
TABLES: tuple[tuple[str, str], ...] = (
    ("accounts", "id = $1"),
    ("app_passwords", _ACCOUNT),
    ("mailboxes", _ACCOUNT),
    ("subscriptions", _ACCOUNT),
    ("analyses", _ACCOUNT),
    ("messages", _ACCOUNT),
    ("expunged", _MAILBOXES),
    ("keywords", _MAILBOXES),
    ("sieve_scripts", _ACCOUNT),
    ("sieve_tracking", _ACCOUNT),
    ("aliases", _ACCOUNT),
    ("submissions", _ACCOUNT),
    ("urlauth_keys", _ACCOUNT),
    ("metadata", _ACCOUNT),
    ("acl", _ACCOUNT),
    ("sharers", "grantee_key = $2"),
    ("known_addresses", "name_key = $2"),
    ("mail_counters", _ACCOUNT),
)
# Keyed by account or mailbox but not the account's own rows to move.
NOT_MOVED = frozenset({"account_shards", "alias_claims"})


@dataclass(frozen=True, slots=True)
class MoveOutcome:
    source: int  # shard indexes
    target: int
    messages: int
    leftovers: int  # old copies removed (of moves cut short)


async def move_account(
    store: ShardedStore, name: str, target: int, progress: Progress
) -> MoveOutcome:
    """Move ``name`` to shard ``target`` (an index); see the module docstring."""
    if not 0 <= target < len(store.shards):
        raise CannotDoThat(f"there is no shard {target + 1} (shards: 1-{len(store.shards)})")
    source = await store.shard_of(name)
    if source is None:
        raise NoSuchAccount(name)
    key = fold_name(name)
    leftovers = 0
    for index, shard in enumerate(store.shards):
        if index != source:
            async with shard.database.pool.acquire() as conn:
                if await _delete_copy(conn, key):
                    leftovers += 1
                    progress(f"removed the old copy on shard {index + 1}")
    if source == target:
        progress(f"{name} is on shard {target + 1}")
        return MoveOutcome(source, target, 0, leftovers)
    async with (
        store.shards[source].database.pool.acquire() as src,
        store.shards[target].database.pool.acquire() as dst,
    ):
        await _check_tables(src)
        async with src.transaction():
            account_id = await src.fetchval(
                "SELECT id FROM accounts WHERE name_key = $1 FOR UPDATE", key
            )
            if account_id is None:
                raise NoSuchAccount(name)
            # Every writer of the account takes this lock first (pool.py): none now.
            await src.execute(
                "SELECT 1 FROM mail_counters WHERE account_id = $1 FOR UPDATE", account_id
            )
            progress(f"copying {name} from shard {source + 1} to shard {target + 1}")
            async with dst.transaction():
                messages = await _copy(src, dst, account_id, key, progress)
                await _verify(src, dst, account_id, key)
            progress(f"copied {messages} messages and verified the copy")
            moved = await store.directory.execute(
                "UPDATE account_shards SET shard = $2 WHERE name_key = $1 AND shard = $3",
                key,
                target,
                source,
            )
            if moved != "UPDATE 1":
                raise CannotDoThat(f"{name} was moved or deleted meanwhile")
            progress(f"{name} is now served from shard {target + 1}")
            await _delete_copy(src, key)
    progress(f"removed {name} from shard {source + 1}")
    return MoveOutcome(source, target, messages, leftovers)


async def _check_tables(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "SELECT DISTINCT table_name FROM information_schema.columns"
        " WHERE table_schema = current_schema()"
        " AND column_name IN ('account_id', 'mailbox_id', 'name_key', 'grantee_key')"
    )
    known = {table for table, _ in TABLES} | NOT_MOVED
    unknown = sorted(str(row[0]) for row in rows if row[0] not in known)
    if unknown:
        raise CannotDoThat(f"this Roost cannot move the rows of {', '.join(unknown)}")


async def _copy(
    src: asyncpg.Connection, dst: asyncpg.Connection, account_id: int, key: str, progress: Progress
) -> int:
    """Copy the account's rows (and the bytes the target lacks); the message count."""
    copied = await _copy_blobs(src, dst, account_id)
    progress(f"copied the bytes of {copied} messages")
    messages = 0
    for table, where in TABLES:
        args = (key,) if "$2" in where else (account_id,)
        where = where.replace("$2", "$1")
        if args == (key,):
            # Keyed by name, with no account row to hang from: the target may keep
            # some of a name that was never its (a grant to a name not yet an account).
            await dst.execute(f"DELETE FROM {table} WHERE {where}", key)
        count = 0
        batch: list[asyncpg.Record] = []
        async for row in src.cursor(f"SELECT * FROM {table} WHERE {where}", *args):
            batch.append(row)
            if len(batch) >= BATCH:
                count += await _write(dst, table, batch)
        count += await _write(dst, table, batch)
        if table == "messages":
            messages = count
    return messages


async def _write(dst: asyncpg.Connection, table: str, batch: list[asyncpg.Record]) -> int:
    if not batch:
        return 0
    columns = list(batch[0].keys())
    await dst.copy_records_to_table(table, records=[tuple(row) for row in batch], columns=columns)
    written = len(batch)
    batch.clear()
    return written


async def _copy_blobs(src: asyncpg.Connection, dst: asyncpg.Connection, account_id: int) -> int:
    """Copy the bytes of the account's messages that the target does not hold, one
    chunk at a time (a message may be large); how many were copied."""
    wanted = [
        str(row[0])
        for row in await src.fetch(
            "SELECT DISTINCT blob_id FROM messages WHERE account_id = $1", account_id
        )
    ]
    present = {
        str(row[0])
        for row in await dst.fetch(
            "SELECT blob_id FROM blobs WHERE blob_id = ANY($1::text[])", wanted
        )
    }
    copied = 0
    for blob_id in wanted:
        if blob_id in present:
            continue
        described = await src.fetchrow(
            "SELECT blob_id, size, header_size FROM blobs WHERE blob_id = $1", blob_id
        )
        assert described is not None  # referenced by a message the lock keeps
        await dst.execute(
            "INSERT INTO blobs (blob_id, size, header_size) VALUES ($1, $2, $3)"
            " ON CONFLICT (blob_id) DO NOTHING",
            *described,
        )
        await dst.execute("DELETE FROM blob_chunks WHERE blob_id = $1", blob_id)
        seq = 0
        while True:
            data = await src.fetchval(
                "SELECT data FROM blob_chunks WHERE blob_id = $1 AND seq = $2", blob_id, seq
            )
            if data is None:
                break
            await dst.execute(
                "INSERT INTO blob_chunks (blob_id, seq, data) VALUES ($1, $2, $3)",
                blob_id,
                seq,
                data,
            )
            seq += 1
        copied += 1
    return copied


async def _verify(
    src: asyncpg.Connection, dst: asyncpg.Connection, account_id: int, key: str
) -> None:
    """VerifyFailed unless the target holds every row of the source (counted per
    table, compared whole for messages and counters) and every message's bytes."""
    for table, where in TABLES:
        if table == "known_addresses":
            continue  # a hint written by sign-ins without the lock: it may grow meanwhile
        args = (key,) if "$2" in where else (account_id,)
        where = where.replace("$2", "$1")
        query = f"SELECT count(*) FROM {table} WHERE {where}"
        if await src.fetchval(query, *args) != await dst.fetchval(query, *args):
            raise VerifyFailed(f"the copy's {table} differs from the source's")
    for query in (
        "SELECT mailbox_id, uid, modseq, flags, keywords, blob_id FROM messages"
        " WHERE account_id = $1 ORDER BY mailbox_id, uid",
        "SELECT modseq, uidvalidity, storage, messages FROM mail_counters WHERE account_id = $1",
    ):
        if [tuple(r) for r in await src.fetch(query, account_id)] != [
            tuple(r) for r in await dst.fetch(query, account_id)
        ]:
            raise VerifyFailed("the copy's messages or counters differ from the source's")
    await verify_bytes(dst, account_id)


async def _delete_copy(conn: asyncpg.Connection, key: str) -> bool:
    """Delete the account ``key`` from this shard's database (rows and the bytes no
    other message uses); False when it has none. Inside a transaction or alone."""
    async with conn.transaction():
        account_id = await conn.fetchval("SELECT id FROM accounts WHERE name_key = $1", key)
        if account_id is None:
            return False
        blob_ids = await conn.fetch(
            "SELECT DISTINCT blob_id FROM messages WHERE account_id = $1", account_id
        )
        await conn.execute("DELETE FROM accounts WHERE id = $1", account_id)
        await conn.execute("DELETE FROM sharers WHERE grantee_key = $1", key)
        await conn.execute("DELETE FROM known_addresses WHERE name_key = $1", key)
        await blobs.release(conn, [str(row[0]) for row in blob_ids])
    return True
