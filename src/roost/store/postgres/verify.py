"""``roost verify [USER]`` on the PostgreSQL store: is every message there, intact, and
are the counters right?

For each account, in one read-only REPEATABLE READ transaction (a snapshot, so it runs
while every node keeps serving, and a message expunged meanwhile is simply not seen):

* every message's bytes are there: ``blob_chunks`` rows numbered from 0 without a
  gap, every chunk but the last ``CHUNK`` octets (blobs.py); they hash (SHA-256) to
  the blob's name and add up to the size the blob row and the message rows record;
* every message's content has its analysis (without one, SEARCH and SORT miss it:
  ``roost index rebuild`` makes them again);
* per mailbox: no message UID at or above UIDNEXT, no MODSEQ above HIGHESTMODSEQ, no
  message in a \\Noselect placeholder, no expunge logged above HIGHESTMODSEQ; the
  account's MODSEQ counter at or above every mailbox's (RFC 7162 §3);
* the quota usage kept in ``mail_counters`` equals the sum over the message rows
  (ARCHITECTURE.md decision 10; ``roost user quota recalc`` repairs it).

Bytes are hashed here, streamed through a cursor, never a whole message in memory on
either side; content shared by several accounts is hashed once per run (as long as
the run remembers it: ``HASHED_MAX``). Each problem
is one line naming the account; the command exits non-zero when there is any.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import asyncpg

from roost.store.postgres.blobs import CHUNK
from roost.store.postgres.store import fold_name
from roost.store.sqlite.verify import VerifyError, VerifyReport

PREFETCH = 16  # chunks a cursor fetches per round trip: at most 4 MiB
HASHED_MAX = 200_000  # contents remembered as hashed (a site's may not fit in memory)

# The account's messages, found through its mailboxes (an index on mailboxes, then the
# messages' primary key): messages.account_id has no index of its own.
MINE = "messages m JOIN mailboxes mb ON mb.id = m.mailbox_id AND mb.account_id = $1"


@dataclass
class _Blob:
    """One content as the account's rows and its blob row describe it."""

    size: int  # the blob row's
    message_sizes: tuple[int, int]  # min and max over the account's message rows


async def verify(url: str, user: str | None = None) -> VerifyReport:
    """Verify every account of the database at ``url`` (only ``user``'s, when given)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, name, name_key FROM accounts ORDER BY name_key")
        if user is not None:
            rows = [row for row in rows if row["name_key"] == fold_name(user)]
            if not rows:
                raise VerifyError(f"no account {user!r}")
        report = VerifyReport()
        hashed: dict[str, list[str]] = {}  # blob id → its problems, across accounts
        for row in rows:
            report.accounts += 1
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                problems = await _verify_account(conn, row["id"], report, hashed)
            report.problems.extend(f"{row['name']}: {problem}" for problem in problems)
            if len(hashed) > HASHED_MAX:
                hashed.clear()  # a shared content may then be hashed again: only slower
        return report
    finally:
        await conn.close()


async def _verify_account(
    conn: asyncpg.Connection, account_id: int, report: VerifyReport, hashed: dict[str, list[str]]
) -> list[str]:
    problems: list[str] = []
    report.messages += await conn.fetchval(f"SELECT count(*) FROM {MINE}", account_id)
    contents = {
        row["blob_id"]: _Blob(row["size"], (row["least"], row["most"]))
        for row in await conn.fetch(
            "SELECT m.blob_id, b.size, min(m.size) AS least, max(m.size) AS most"
            f" FROM {MINE} JOIN blobs b ON b.blob_id = m.blob_id GROUP BY m.blob_id, b.size",
            account_id,
        )
    }
    report.blobs += len(contents)
    for blob_id, blob in contents.items():
        least, most = blob.message_sizes
        if least != most:
            problems.append(f"message {blob_id}: rows disagree on its size")
        elif least != blob.size:
            problems.append(f"message {blob_id}: {blob.size} bytes stored, {least} recorded")
    await _hash_contents(conn, account_id, contents, hashed)
    for blob_id in contents:
        problems.extend(f"message {blob_id}: {problem}" for problem in hashed[blob_id])
    (unanalysed,) = await conn.fetchrow(
        f"SELECT count(DISTINCT m.blob_id) FROM {MINE} WHERE NOT EXISTS"
        " (SELECT 1 FROM analyses a WHERE a.account_id = $1 AND a.blob_id = m.blob_id)",
        account_id,
    )
    if unanalysed:
        problems.append(
            f"{unanalysed} messages have no analysis, so searches miss them (roost index rebuild)"
        )
    problems.extend(await _counter_problems(conn, account_id))
    return problems


class _Hashing:
    """One content's chunks as they stream by, in ``seq`` order."""

    def __init__(self, blob_id: str) -> None:
        self.blob_id = blob_id
        self.digest = hashlib.sha256()
        self.size = 0
        self.next_seq = 0
        self.short_seen = False
        self.problems: list[str] = []

    def feed(self, seq: int, data: bytes) -> None:
        if seq != self.next_seq or self.short_seen:  # only the last chunk may be short
            self.problems.append(f"chunk {seq} where chunk {self.next_seq} should be")
        self.next_seq = seq + 1
        self.short_seen = len(data) < CHUNK
        self.digest.update(data)
        self.size += len(data)

    def finish(self, recorded_size: int) -> list[str]:
        name = self.digest.hexdigest()
        if name != self.blob_id:
            self.problems.append(f"content hashes to {name[:16]}…")
        if self.size != recorded_size:
            self.problems.append(f"{self.size} bytes in its chunks, {recorded_size} recorded")
        return self.problems


async def _hash_contents(
    conn: asyncpg.Connection,
    account_id: int,
    contents: dict[str, _Blob],
    hashed: dict[str, list[str]],
) -> None:
    """Hash every content of the account not hashed yet in this run, chunk by chunk,
    recording its problems (none: intact) in ``hashed``."""
    wanted = {blob_id for blob_id in contents if blob_id not in hashed}
    if not wanted:
        return
    current: _Hashing | None = None
    cursor = conn.cursor(
        "SELECT c.blob_id, c.seq, c.data FROM blob_chunks c WHERE c.blob_id IN"
        f" (SELECT DISTINCT m.blob_id FROM {MINE})"
        " ORDER BY c.blob_id, c.seq",
        account_id,
        prefetch=PREFETCH,
    )
    async for blob_id, seq, data in cursor:
        if blob_id not in wanted:
            continue
        if current is None or current.blob_id != blob_id:
            if current is not None:
                hashed[current.blob_id] = current.finish(contents[current.blob_id].size)
            current = _Hashing(blob_id)
        current.feed(seq, data)
    if current is not None:
        hashed[current.blob_id] = current.finish(contents[current.blob_id].size)
    for blob_id in wanted - hashed.keys():
        hashed[blob_id] = ["its bytes are missing"]


async def _counter_problems(conn: asyncpg.Connection, account_id: int) -> list[str]:
    problems = []
    rows = await conn.fetch(
        "SELECT b.name, b.uidnext, b.highestmodseq, b.noselect,"
        " (SELECT max(uid) FROM messages m WHERE m.mailbox_id = b.id) AS max_uid,"
        " (SELECT max(modseq) FROM messages m WHERE m.mailbox_id = b.id) AS max_modseq,"
        " (SELECT count(*) FROM messages m WHERE m.mailbox_id = b.id) AS count,"
        " (SELECT max(modseq) FROM expunged e WHERE e.mailbox_id = b.id) AS max_expunged"
        " FROM mailboxes b WHERE b.account_id = $1 ORDER BY b.name",
        account_id,
    )
    for name, uidnext, highest, noselect, max_uid, max_modseq, count, max_expunged in rows:
        if max_uid is not None and max_uid >= uidnext:
            problems.append(f"mailbox {name}: UID {max_uid} at or above UIDNEXT {uidnext}")
        if max_modseq is not None and max_modseq > highest:
            problems.append(
                f"mailbox {name}: a message's MODSEQ {max_modseq} above HIGHESTMODSEQ {highest}"
            )
        if max_expunged is not None and max_expunged > highest:
            problems.append(
                f"mailbox {name}: an expunge's MODSEQ {max_expunged} above HIGHESTMODSEQ {highest}"
            )
        if noselect and count:
            problems.append(f"mailbox {name}: {count} messages in a \\Noselect placeholder")
    misfiled = await conn.fetchval(
        f"SELECT count(*) FROM {MINE} WHERE m.account_id != $1",
        account_id,
    )
    if misfiled:
        problems.append(f"{misfiled} messages in its mailboxes are counted in another account")
    counters = await conn.fetchrow(
        "SELECT modseq, storage, messages FROM mail_counters WHERE account_id = $1", account_id
    )
    if counters is None:
        return [*problems, "no counters row (MODSEQ and quota usage)"]
    top = max((row["highestmodseq"] for row in rows), default=0)
    if top > counters["modseq"]:
        problems.append(
            f"MODSEQ counter {counters['modseq']} below a mailbox's HIGHESTMODSEQ {top}"
        )
    storage, messages = await conn.fetchrow(
        f"SELECT coalesce(sum(m.size), 0), count(*) FROM {MINE}", account_id
    )
    if (counters["storage"], counters["messages"]) != (storage, messages):
        problems.append(
            f"quota usage kept as {counters['storage']} bytes in {counters['messages']}"
            f" messages, but the messages add up to {storage} bytes in {messages}"
        )
    return problems
