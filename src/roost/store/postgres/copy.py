"""``roost store copy``: move every account of a SQLite data directory into PostgreSQL,
keeping what clients have cached, so that none must resync.

Kept exactly: account names, password hashes, SCRAM keys, TOTP secrets and last step,
app passwords, quota overrides, aliases (send-as addresses), URLAUTH keys (RFC 4467
§7: URLs already handed out still verify), the addresses the sign-in throttle trusts,
the submissions of the last hour (the hourly limit); Sieve scripts with the active
one, and the vacation and duplicate tracking (RFC 5230, RFC 7352: no second
auto-reply); per mailbox its name, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, special use,
\\Recent floor and keywords; per message its UID, MODSEQ, flags, INTERNALDATE (with
its zone), SAVEDATE and bytes; the expunge log (VANISHED); subscriptions; the account's
modseq and UIDVALIDITY counters; METADATA entries (server and mailbox), ACL grants and
who shared with the account; the site's UIDVALIDITY floor, and its secret (the made-up
SCRAM salts of unknown names) when the target held no account before. Recomputed: the
search text and threads (from the bytes, by the same analysis), mailbox ids — so
MAILBOXID and THREADID (RFC 8474) change; EMAILID, named by the content, does not.

Invariants:

* One account is copied in one transaction: in the target it exists whole or not at
  all. An account already there is skipped (its bytes checked against their hashes:
  nodes may have served it since), so an interrupted copy is resumed by running it
  again.
* After copying, each account is verified: per mailbox the count, UIDs and content
  hashes of its messages equal the source's, and every blob's bytes hash to its name.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import asyncpg

from roost.store.blobs import StoredBlob
from roost.store.postgres import blobs
from roost.store.postgres.messages import ANALYSIS_COLUMNS, analysis_values
from roost.store.sqlite.analyses import AnalysisRow, compute
from roost.store.sqlite.mail_db import MailDB
from roost.store.values import MessageSource

Progress = Callable[[str], None]

ANALYSED_TABLES = ("messages", "analyses", "blobs", "blob_chunks", "mailboxes", "expunged")
BATCH = 500  # messages per statement: a few MB of bytes at most (one chunk each)


@dataclass(frozen=True, slots=True)
class CopyOutcome:
    copied: int
    skipped: int  # already there and verified
    messages: int


class VerifyFailed(Exception):
    """The target does not hold what the source does."""


async def copy_store(data_dir: Path, url: str, progress: Progress) -> CopyOutcome:
    users = sqlite3.connect(f"{(data_dir / 'users.db').resolve().as_uri()}?mode=ro", uri=True)
    conn = await asyncpg.connect(url)
    copied = skipped = messages = 0
    try:
        fresh = await conn.fetchval("SELECT NOT EXISTS (SELECT 1 FROM accounts)")
        rows = users.execute(
            "SELECT name_key, name, dirname, password_hash, created, scram_keys, totp_secret,"
            " totp_last_step, quota_storage, quota_messages FROM accounts ORDER BY name_key"
        ).fetchall()
        for number, row in enumerate(rows, 1):
            key, name, dirname = row[0], row[1], row[2]
            db = MailDB.open(data_dir / "accounts" / dirname, durable=False)
            try:
                exists = await conn.fetchval("SELECT id FROM accounts WHERE name_key = $1", key)
                if exists is not None:
                    # Served since, perhaps: only its bytes are checked, not its state.
                    await verify_bytes(conn, exists)
                    skipped += 1
                    progress(f"[{number}/{len(rows)}] {name}: already there, bytes verified")
                    continue
                async with conn.transaction():
                    account_id = await _copy_account(conn, row, users, db)
                count = await _verify(conn, account_id, db)
                copied += 1
                messages += count
                progress(f"[{number}/{len(rows)}] {name}: copied {count} messages, verified")
            finally:
                db.close()
        floor, secret = users.execute(
            "SELECT uidvalidity_floor, secret FROM counters WHERE id = 0"
        ).fetchone()
        await conn.execute(
            "UPDATE settings SET uidvalidity_floor = greatest(uidvalidity_floor, $1)", floor
        )
        if fresh and secret:
            # A site moved whole keeps its made-up salts: an unknown name's SCRAM salt
            # does not change under an observer's eyes (store/credentials.py).
            await conn.execute("UPDATE settings SET secret = $1", bytes(secret))
        if copied:
            # Fresh statistics for the planner: until autovacuum next looks, it would
            # take a copied 100,000-message mailbox for a few rows, and a SEARCH that
            # the trigram index answers in a millisecond would walk every message
            # (over a second). ANALYZE reads a bounded sample: cheap on any size.
            await conn.execute(f"ANALYZE {', '.join(ANALYSED_TABLES)}")
    finally:
        users.close()
        await conn.close()
    return CopyOutcome(copied, skipped, messages)


async def _copy_account(
    conn: asyncpg.Connection, row: tuple[object, ...], users: sqlite3.Connection, db: MailDB
) -> int:
    key, name, _, password_hash, created, scram, totp, step, q_storage, q_messages = row
    account_id: int = await conn.fetchval(
        "INSERT INTO accounts (name_key, name, password_hash, created, scram_keys, totp_secret,"
        " totp_last_step, quota_storage, quota_messages)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        key,
        name,
        password_hash,
        created,
        scram,
        totp,
        step,
        q_storage,
        q_messages,
    )
    await _copy_directory_rows(conn, account_id, key, str(name), users)
    await _copy_sieve(conn, account_id, db)
    modseq, uidvalidity = db.conn.execute(
        "SELECT modseq, uidvalidity FROM counters WHERE id = 0"
    ).fetchone()
    await conn.execute(
        "INSERT INTO mail_counters (account_id, modseq, uidvalidity) VALUES ($1, $2, $3)",
        account_id,
        modseq,
        uidvalidity,
    )
    await conn.executemany(
        "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2)",
        [(account_id, n) for (n,) in db.conn.execute("SELECT name FROM subscriptions")],
    )
    await _copy_metadata(conn, account_id, 0, None, db)  # the server's entries
    analysed = Threads()
    for box in db.conn.execute(
        "SELECT id, name, uidvalidity, uidnext, highestmodseq, special_use, noselect,"
        " recent_floor FROM mailboxes ORDER BY id"
    ).fetchall():
        old_id, *rest = box
        new_id = await conn.fetchval(
            "INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, highestmodseq,"
            " special_use, noselect, recent_floor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " RETURNING id",
            account_id,
            rest[0],
            rest[1],
            rest[2],
            rest[3],
            rest[4],
            bool(rest[5]),
            rest[6],
        )
        await conn.executemany(
            "INSERT INTO keywords (mailbox_id, name_key, name) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            [
                (new_id, k.lower(), k)
                for (k,) in db.conn.execute(
                    "SELECT name FROM keywords WHERE mailbox_id = ?", (old_id,)
                )
            ],
        )
        await conn.executemany(
            "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES ($1, $2, $3)",
            [
                (new_id, uid, m)
                for uid, m in db.conn.execute(
                    "SELECT uid, modseq FROM expunged WHERE mailbox_id = ?", (old_id,)
                )
            ],
        )
        await _copy_metadata(conn, account_id, old_id, new_id, db)
        await _copy_messages(conn, account_id, old_id, new_id, db, analysed)
    return account_id


async def _copy_directory_rows(
    conn: asyncpg.Connection, account_id: int, key: object, name: str, users: sqlite3.Connection
) -> None:
    """What users.db keeps of the account besides its row."""

    def rows(sql: str) -> list[tuple[object, ...]]:
        return [(account_id, *row) for row in users.execute(sql, (key,))]

    await conn.executemany(
        "INSERT INTO app_passwords (account_id, label_key, label, selector, password_hash,"
        " created, last_used) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        rows(
            "SELECT label_key, label, selector, password_hash, created, last_used"
            " FROM app_passwords WHERE name_key = ?"
        ),
    )
    await conn.executemany(
        "INSERT INTO aliases (account_id, address_key, address) VALUES ($1, $2, $3)",
        rows("SELECT address_key, address FROM aliases WHERE name_key = ?"),
    )
    await conn.executemany(
        "INSERT INTO urlauth_keys (account_id, mailbox, secret) VALUES ($1, $2, $3)",
        rows("SELECT mailbox, secret FROM urlauth_keys WHERE name_key = ?"),
    )
    await conn.executemany(
        "INSERT INTO submissions (account_id, sent_at) VALUES ($1, $2)",
        rows("SELECT sent_at FROM submissions WHERE name_key = ?"),
    )
    # Keyed by name, not account (a throttle fact about the name tried).
    await conn.executemany(
        "INSERT INTO known_addresses (name_key, address, last_success) VALUES ($1, $2, $3)"
        " ON CONFLICT (name_key, address) DO UPDATE"
        " SET last_success = greatest(known_addresses.last_success, excluded.last_success)",
        [
            (key, address, when)
            for _, address, when in rows(
                "SELECT address, last_success FROM known_addresses WHERE name_key = ?"
            )
        ],
    )
    # Who shared with the account, and whether it shared with "anyone" (RFC 4314 §2:
    # every user), which no account's own rows carry.
    await conn.executemany(
        "INSERT INTO sharers (grantee_key, owner) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        users.execute(
            "SELECT grantee_key, owner FROM sharers"
            " WHERE grantee_key = ? OR (grantee_key = 'anyone' AND owner = ?)",
            (key, name),
        ).fetchall(),
    )


async def _copy_sieve(conn: asyncpg.Connection, account_id: int, db: MailDB) -> None:
    """The account's Sieve scripts (the active one stays active) and what vacation and
    duplicate remembered."""
    await conn.executemany(
        "INSERT INTO sieve_scripts (account_id, name, source, compiled, compiled_version,"
        " active) VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (account_id, name, source, compiled, version, bool(active))
            for name, source, compiled, version, active in db.conn.execute(
                "SELECT name, source, compiled, compiled_version, active FROM sieve_scripts"
            )
        ],
    )
    await conn.executemany(
        "INSERT INTO sieve_tracking (account_id, kind, key, expires) VALUES ($1, $2, $3, $4)",
        [
            (account_id, *row)
            for row in db.conn.execute("SELECT kind, key, expires FROM sieve_tracking")
        ],
    )


async def _copy_metadata(
    conn: asyncpg.Connection, account_id: int, old_id: int, new_id: int | None, db: MailDB
) -> None:
    """A mailbox's METADATA entries and ACL grants (``old_id`` 0, ``new_id`` None: the
    server's entries, which have no ACL)."""
    await conn.executemany(
        "INSERT INTO metadata (account_id, mailbox_id, name, value) VALUES ($1, $2, $3, $4)",
        [
            (account_id, new_id, name, bytes(value))
            for name, value in db.conn.execute(
                "SELECT name, value FROM metadata WHERE mailbox_id = ?", (old_id,)
            )
        ],
    )
    if new_id is None:
        return
    await conn.executemany(
        "INSERT INTO acl (account_id, mailbox_id, identifier, rights) VALUES ($1, $2, $3, $4)",
        [
            (account_id, new_id, identifier, rights)
            for identifier, rights in db.conn.execute(
                "SELECT identifier, rights FROM acl WHERE mailbox_id = ?", (old_id,)
            )
        ],
    )


async def _copy_messages(
    conn: asyncpg.Connection,
    account_id: int,
    old_id: int,
    new_id: int,
    db: MailDB,
    analysed: Threads,
) -> None:
    """A mailbox's messages: their bytes and analyses ``BATCH`` at a time, each batch
    one round trip for the bytes and one for the analyses, the next batch analysed in
    a thread meanwhile (the analysis is the CPU and PostgreSQL's index upkeep the
    rest, so the two overlap), then the rows ``BATCH`` at a time."""
    rows = db.conn.execute(
        "SELECT uid, modseq, flags, keywords, internaldate, tzoffset, size, header_size,"
        " blob_id, savedate FROM messages WHERE mailbox_id = ? ORDER BY uid",
        (old_id,),
    ).fetchall()
    fresh: list[StoredBlob] = []
    for row in rows:
        blob_id = row[8]
        if blob_id not in analysed.seen:
            analysed.seen.add(blob_id)
            fresh.append(StoredBlob(blob_id, row[6], row[7]))
    # Bytes are read a batch at a time, as it goes: two batches in memory, not all.
    batches = [fresh[at : at + BATCH] for at in range(0, len(fresh), BATCH)]

    def analyse(number: int) -> asyncio.Future[Analysed]:
        read = [(blob, db.blob_source(blob.blob_id)) for blob in batches[number]]
        return asyncio.ensure_future(asyncio.to_thread(_analyse, read))

    ids: list[int] = [
        row[0]
        for row in await conn.fetch(
            "SELECT nextval(pg_get_serial_sequence('analyses', 'id')) FROM generate_series(1, $1)",
            len(fresh),
        )
    ]
    ahead = analyse(0) if batches else None
    try:
        for number in range(len(batches)):
            assert ahead is not None
            batch, analyses = await ahead
            ahead = analyse(number + 1) if number + 1 < len(batches) else None
            await _store_blobs(conn, batch)
            first = number * BATCH
            await _insert_analyses(
                conn, account_id, ids[first : first + BATCH], batch, analyses, analysed
            )
    finally:
        if ahead is not None:  # a failed batch: the thread's work is not wanted
            ahead.cancel()
            with contextlib.suppress(BaseException):
                await ahead
    for at in range(0, len(rows), BATCH):
        part = rows[at : at + BATCH]
        columns = list(zip(*part, strict=True))
        await conn.execute(
            "INSERT INTO messages (mailbox_id, uid, account_id, modseq, flags, keywords,"
            " internaldate, tzoffset, size, header_size, blob_id, savedate)"
            " SELECT $1, u.uid, $2, u.modseq, u.flags, u.keywords, u.internaldate,"
            " u.tzoffset, u.size, u.header_size, u.blob_id, u.savedate"
            " FROM unnest($3::bigint[], $4::bigint[], $5::int[], $6::text[], $7::bigint[],"
            " $8::int[], $9::bigint[], $10::bigint[], $11::text[], $12::bigint[])"
            " AS u(uid, modseq, flags, keywords, internaldate, tzoffset, size, header_size,"
            " blob_id, savedate)",
            new_id,
            account_id,
            *columns,
        )


class Threads:
    """The account's analyses copied so far: which blobs, and the thread each
    Message-ID names (RFC 8474 THREADID), so that a batch's threads are known without
    asking the database — the account is new in the target, so these are all its
    analyses, in the order the one-at-a-time INSERT (messages.py) would see them."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.by_message_id: dict[str, int] = {}

    def thread_of(self, analysis_id: int, message_id: str, parents: list[str]) -> int | None:
        """The nearest known parent's thread, else None (its own); remembers this one."""
        thread = next((self.by_message_id[p] for p in parents if p in self.by_message_id), None)
        if message_id:
            self.by_message_id.setdefault(message_id, analysis_id if thread is None else thread)
        return thread


Read = list[tuple[StoredBlob, MessageSource]]
Analysed = tuple[Read, list[AnalysisRow]]


def _analyse(batch: Read) -> Analysed:
    return batch, [compute(source) for _, source in batch]


async def _store_blobs(
    conn: asyncpg.Connection, batch: list[tuple[StoredBlob, MessageSource]]
) -> None:
    """The batch's bytes, the one-chunk ones (most mail) in one statement; a blob
    already there (another account's) is kept as it is."""
    small = [
        (blob, source.data)
        for blob, source in batch
        if source.data is not None and len(source.data) <= blobs.CHUNK
    ]
    if small:
        await conn.execute(
            "WITH nb AS (INSERT INTO blobs (blob_id, size, header_size)"
            " SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])"
            " ON CONFLICT (blob_id) DO NOTHING RETURNING blob_id)"
            " INSERT INTO blob_chunks (blob_id, seq, data)"
            " SELECT u.blob_id, 0, u.data FROM unnest($1::text[], $4::bytea[]) AS u(blob_id, data)"
            " JOIN nb ON nb.blob_id = u.blob_id",
            [blob.blob_id for blob, _ in small],
            [blob.size for blob, _ in small],
            [blob.header_size for blob, _ in small],
            [data for _, data in small],
        )
    for blob, source in batch:
        if source.data is None or len(source.data) > blobs.CHUNK:
            await blobs.store(conn, blob, source)


async def _insert_analyses(
    conn: asyncpg.Connection,
    account_id: int,
    ids: list[int],
    batch: list[tuple[StoredBlob, MessageSource]],
    analyses: list[AnalysisRow],
    threads: Threads,
) -> None:
    """The batch's analyses in one COPY, with ids taken from the table's sequence
    beforehand, so that their threads can name them."""
    records = []
    for analysis_id, (blob, _), row in zip(ids, batch, analyses, strict=True):
        values = analysis_values(account_id, blob.blob_id, row)
        parents = cast(list[str], values.pop())
        thread = threads.thread_of(analysis_id, cast(str, values[5]), parents)
        records.append((analysis_id, *values, thread))
    await conn.copy_records_to_table(
        "analyses", records=records, columns=["id", *ANALYSIS_COLUMNS.split(", ")]
    )


async def _verify(conn: asyncpg.Connection, account_id: int, db: MailDB) -> int:
    """The number of messages; VerifyFailed unless the target holds the source's."""
    total = 0
    for name, old_id in db.conn.execute("SELECT name, id FROM mailboxes").fetchall():
        source = db.conn.execute(
            "SELECT uid, modseq, flags, blob_id FROM messages WHERE mailbox_id = ? ORDER BY uid",
            (old_id,),
        ).fetchall()
        target = await conn.fetch(
            "SELECT m.uid, m.modseq, m.flags, m.blob_id FROM messages m"
            " JOIN mailboxes b ON b.id = m.mailbox_id"
            " WHERE b.account_id = $1 AND b.name = $2 ORDER BY m.uid",
            account_id,
            name,
        )
        if [tuple(r) for r in target] != [tuple(r) for r in source]:
            raise VerifyFailed(f"mailbox {name!r} differs ({len(source)} vs {len(target)})")
        total += len(source)
    await verify_bytes(conn, account_id)
    return total


async def verify_bytes(conn: asyncpg.Connection, account_id: int) -> None:
    """VerifyFailed unless every message's bytes hash to its name."""
    bad = await conn.fetch(
        "SELECT c.blob_id FROM blob_chunks c WHERE c.blob_id IN"
        " (SELECT blob_id FROM messages WHERE account_id = $1)"
        " GROUP BY c.blob_id"
        " HAVING encode(sha256(string_agg(c.data, ''::bytea ORDER BY c.seq)), 'hex') != c.blob_id",
        account_id,
    )
    if bad:
        raise VerifyFailed(f"{len(bad)} messages' bytes do not match their hash")
