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

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from roost.store.blobs import StoredBlob
from roost.store.postgres import blobs
from roost.store.postgres.messages import insert_analysis
from roost.store.sqlite.analyses import compute
from roost.store.sqlite.mail_db import MailDB

Progress = Callable[[str], None]


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
    analysed: set[str] = set()
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
    analysed: set[str],
) -> None:
    rows = db.conn.execute(
        "SELECT uid, modseq, flags, keywords, internaldate, tzoffset, size, header_size,"
        " blob_id, savedate FROM messages WHERE mailbox_id = ? ORDER BY uid",
        (old_id,),
    ).fetchall()
    for row in rows:
        blob_id = row[8]
        if blob_id not in analysed:
            source = db.blob_source(blob_id)
            described = StoredBlob(blob_id, row[6], row[7])
            await blobs.store(conn, described, source)
            await insert_analysis(conn, account_id, blob_id, compute(source))
            analysed.add(blob_id)
    await conn.executemany(
        "INSERT INTO messages (mailbox_id, uid, account_id, modseq, flags, keywords,"
        " internaldate, tzoffset, size, header_size, blob_id, savedate)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        [(new_id, row[0], account_id, *row[1:]) for row in rows],
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
