"""Message operations of one account, each inside one transaction (pool.py).

The same semantics as the SQLite backend (sqlite/messages.py):

* A changing operation takes one modseq for all it changes, from the account counter,
  and sets it as HIGHESTMODSEQ of every mailbox it touched; an operation that changes
  nothing takes none and publishes nothing.
* UIDs are given from the mailbox's UIDNEXT, bumped in the inserting transaction while
  it holds the account's write turn — never from a SEQUENCE, whose values are not
  transactional (UID 11 could commit before 10, and a client would skip 10 forever).
* Every removed message is logged in ``expunged`` with the modseq that removed it, for
  CONDSTORE/QRESYNC and VANISHED.
* APPEND and COPY check the quota inside their transaction, after the insert (usage
  is kept by triggers, schema.py); MOVE, EXPUNGE and DELETE are never refused.
* A blob and an analysis no message refers to are removed in the transaction that
  removed the last reference.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple, cast

import asyncpg

from roost.mime.parse import MimeLimits
from roost.store.blobs import StoredBlob
from roost.store.errors import CannotDoThat, NoSuchMailbox, QuotaExceeded
from roost.store.events import ChangeEvent, MailboxChanged
from roost.store.postgres import blobs
from roost.store.postgres.mailboxes import MAILBOX_COLUMNS, MailboxRow, mailbox, mailbox_by_name
from roost.store.postgres.pool import next_modseq, sql_ints, sql_texts
from roost.store.sqlite.analyses import AnalysisRow, compute
from roost.store.sqlite.db import encode_date
from roost.store.sqlite.flags import (
    DELETED_BIT,
    FlagCodec,
    Keywords,
    encode,
    keyword_text,
)
from roost.store.values import (
    AppendResult,
    CopyResult,
    DeliveryState,
    FlagOp,
    FlagState,
    MailboxChanges,
    NewMessage,
    QuotaLimits,
    QuotaOverride,
    QuotaUsage,
    StoreFlagsResult,
)

log = logging.getLogger(__name__)

ANALYSE_IN_THREAD = 32 * 1024  # analyse larger messages off the event loop
CODEC = FlagCodec()  # pure and bounded: shared by every account

_INSERT_COLUMNS = (
    "mailbox_id, uid, account_id, modseq, flags, keywords, internaldate, tzoffset,"
    " size, header_size, blob_id, savedate"
)
_INSERT = (
    f"INSERT INTO messages ({_INSERT_COLUMNS})"
    " SELECT $1, u.uid, $2, $3, u.flags, u.keywords, u.internaldate, u.tzoffset,"
    " u.size, u.header_size, u.blob_id, $4"
    " FROM unnest($5::bigint[], $6::int[], $7::text[], $8::bigint[], $9::int[],"
    " $10::bigint[], $11::bigint[], $12::text[])"
    " AS u(uid, flags, keywords, internaldate, tzoffset, size, header_size, blob_id)"
)
ANALYSIS_COLUMNS = (
    "account_id, blob_id, model, sent_date, sent_day, message_id,"
    " in_reply_to, refs, sort_subject, sort_from, sort_to, sort_cc, display_from,"
    " display_to, preview, subject, t_header, t_body, t_subject, t_from, t_to, t_cc, t_bcc,"
    " thread_id"
)


def _insert_analysis(first: int) -> str:
    """The INSERT of an analysis with its parameters from ``$first``: the account, the
    blob, the 21 stored values, then the message's parents nearest first, of which the
    first one known gives the thread (RFC 8474 THREADID: the nearest ancestor's, else
    NULL, a thread of its own named by its own id) — looked up in the same statement."""
    values = ", ".join(f"${first + n}" for n in range(23))
    parents = f"${first + 23}::text[]"
    return (
        f"INSERT INTO analyses ({ANALYSIS_COLUMNS}) VALUES ({values},"
        f" (SELECT coalesce(thread_id, id) FROM analyses WHERE account_id = ${first}"
        f"  AND message_id = ANY({parents}) AND message_id != ''"
        f"  ORDER BY array_position({parents}, message_id) LIMIT 1))"
        " ON CONFLICT (account_id, blob_id) DO NOTHING"
    )


_INSERT_ANALYSIS = _insert_analysis(1)


# ---- APPEND -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    """A message ready to store: its blob described and its analysis computed, both
    before the transaction, so neither holds the account's write turn."""

    message: NewMessage
    blob: StoredBlob
    analysis: AnalysisRow


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """What ``changes_since(mailbox_id, since)`` answers right after a write of this
    handle: ``since`` is the mailbox's HIGHESTMODSEQ before it, so under the write turn
    the write's own changes are all there is to tell. An answer as of that commit;
    anything committed later has a higher modseq and is told at the next question."""

    mailbox_id: int
    since: int
    changes: MailboxChanges


@dataclasses.dataclass(slots=True)
class Turn:
    """What a write in the account's turn leaves behind: ``deferred`` statements for
    its COMMIT's round trip (pool.py ``Database.run``) and the ``answer`` to the
    session's next question, saving it a round trip."""

    deferred: list[str] = dataclasses.field(default_factory=list)
    answer: Answer | None = None
    # For a write that read without the turn (pool.py ``Database.run_optimistic``):
    # the condition under the turn that holds iff what it read is still so.
    expect: str | None = None


async def prepare(messages: Sequence[NewMessage], limits: MimeLimits) -> list[Prepared]:
    prepared = []
    for message in messages:
        blob = await blobs.describe_source(message.source)
        if blob.size > ANALYSE_IN_THREAD:
            analysis = await asyncio.to_thread(compute, message.source, limits)
        else:
            analysis = compute(message.source, limits)
        prepared.append(Prepared(message, blob, analysis))
    return prepared


async def target(conn: asyncpg.Connection, account_id: int, name_or_id: int | str) -> MailboxRow:
    """The mailbox an APPEND goes to, by id or by name (see ``Account.append``)."""
    if isinstance(name_or_id, int):
        return await mailbox(conn, account_id, name_or_id)
    row = await mailbox_by_name(conn, account_id, name_or_id)
    if row is None:
        raise NoSuchMailbox(f"no mailbox named {name_or_id}")
    if row.noselect:
        raise CannotDoThat(f"{name_or_id} cannot hold messages")
    return row


async def append(
    conn: asyncpg.Connection,
    account_id: int,
    name_or_id: int | str,
    prepared: Sequence[Prepared],
    default_quota: QuotaLimits,
    turn: Turn,
) -> tuple[AppendResult, list[ChangeEvent]]:
    """Inside the account's write turn: store all of ``prepared`` or none. A round
    trip for the mailbox with the quota, one per message (its blob and analysis), and
    the modseq, the rows and the new UIDNEXT deferred to the COMMIT's (pool.py;
    the turn keeps the modseq read); the first message's blob and analysis go with the
    mailbox read when it is one chunk (most mail)."""
    first = prepared[0] if prepared and _one_chunk(prepared[0]) else None
    row, keyword_names, now, account_modseq = await _target_and_usage(
        conn, account_id, name_or_id, default_quota, first
    )
    if not prepared:
        return AppendResult(row.uidvalidity, [], row.info()), []
    # The usage after the insert, as the insert's trigger will count it (schema.py):
    # the write turn keeps it from changing meanwhile.
    _check_limits(
        dataclasses.replace(
            now,
            storage=now.storage + sum(item.blob.size for item in prepared),
            messages=now.messages + len(prepared),
        )
    )
    for item in prepared[1:] if first is not None else prepared:
        if _one_chunk(item):
            await conn.execute(
                _small_blob_ctes(1) + "SELECT 1", *_small_blob_values(account_id, item)
            )
        else:
            await blobs.store(conn, item.blob, item.message.source)
            await insert_analysis(conn, account_id, item.blob.blob_id, item.analysis)
    keywords = Keywords(keyword_names)
    uids = list(range(row.uidnext, row.uidnext + len(prepared)))
    columns: list[list[object]] = [[] for _ in range(8)]
    for uid, item in zip(uids, prepared, strict=True):
        bits, names = encode(item.message.flags, keywords, define=True)
        seconds, offset = encode_date(item.message.internaldate)
        blob = item.blob
        values = (uid, bits, keyword_text(names), seconds, offset, blob.size)
        for column, value in zip(columns, (*values, blob.header_size, blob.blob_id), strict=True):
            column.append(value)
    modseq = account_modseq + 1
    turn.deferred.append(
        f"WITH s AS (UPDATE mail_counters SET modseq = {modseq}"
        f"  WHERE account_id = {int(account_id)}),"
        f" i AS (INSERT INTO messages ({_INSERT_COLUMNS})"
        f"  SELECT {int(row.id)}, u.uid, {int(account_id)}, {modseq}, u.flags, u.keywords,"
        f"  u.internaldate, u.tzoffset, u.size, u.header_size, u.blob_id, {_now()}"
        f"  FROM unnest({', '.join(_column_literals(columns))})"
        "  AS u(uid, flags, keywords, internaldate, tzoffset, size, header_size, blob_id)),"
        " k AS (INSERT INTO keywords (mailbox_id, name_key, name)"
        f"  SELECT {int(row.id)}, lower(k), k FROM unnest({sql_texts(keywords.added)}) AS k"
        "  ON CONFLICT DO NOTHING)"
        f" UPDATE mailboxes SET highestmodseq = {modseq}, uidnext = {uids[-1] + 1}"
        f" WHERE id = {int(row.id)}"
    )
    keywords.added.clear()
    decode = CODEC.decode
    new_rows = [
        FlagState(uid, decode(bits, text), modseq)
        for uid, bits, text in zip(
            uids, cast(list[int], columns[1]), cast(list[str], columns[2]), strict=True
        )
    ]
    turn.answer = Answer(
        row.id,
        row.highestmodseq,
        MailboxChanges(modseq, uids[-1] + 1, new_rows, [], keywords.all()),
    )
    info = dataclasses.replace(row.info(), uidnext=uids[-1] + 1, highestmodseq=modseq)
    return AppendResult(row.uidvalidity, uids, info), [MailboxChanged(row.id, modseq)]


async def _target_and_usage(
    conn: asyncpg.Connection,
    account_id: int,
    name_or_id: int | str,
    default: QuotaLimits,
    first: Prepared | None,
) -> tuple[MailboxRow, list[str], QuotaUsage, int]:
    """The mailbox an APPEND goes to (as ``target``), its keywords, and the account's
    usage and limits now: one round trip, which also stores ``first`` (a one-chunk
    message) when given. The usage read is the statement's snapshot, before that
    insert; what it stored goes if the mailbox is wrong (the transaction rolls back)."""
    by = "b.id = $2" if isinstance(name_or_id, int) else "b.name = $2"
    store_first, params = "", []
    if first is not None:
        store_first = _small_blob_ctes(3)
        params = _small_blob_values(account_id, first)
    found = await conn.fetchrow(
        f"{store_first}"
        f"SELECT {', '.join('b.' + c.strip() for c in MAILBOX_COLUMNS.split(','))},"
        " (SELECT coalesce(array_agg(name), '{}') FROM keywords WHERE mailbox_id = b.id),"
        " a.quota_storage, a.quota_messages, c.storage, c.messages, c.modseq"
        " FROM mailboxes b JOIN accounts a ON a.id = b.account_id"
        " JOIN mail_counters c ON c.account_id = b.account_id"
        f" WHERE b.account_id = $1 AND {by}",
        account_id,
        name_or_id,
        *params,
    )
    if found is None or found["noselect"]:
        if isinstance(name_or_id, int):
            raise NoSuchMailbox(f"no mailbox with id {name_or_id}")
        if found is None:
            raise NoSuchMailbox(f"no mailbox named {name_or_id}")
        raise CannotDoThat(f"{name_or_id} cannot hold messages")
    values = list(found.values())
    row = MailboxRow(*values[:8])
    keyword_names, *quota = values[8:]
    limits = QuotaOverride(quota[0], quota[1]).apply(default)
    usage = QuotaUsage(int(quota[2]), int(quota[3]), limits.storage, limits.messages)
    return row, list(keyword_names), usage, int(quota[4])


def _column_literals(columns: list[list[object]]) -> list[str]:
    """The eight columns of new message rows as array constants: uid, flags,
    keywords, internaldate, tzoffset, size, header_size, blob_id."""
    return [
        sql_texts(cast(list[str], column)) if n in (2, 7) else sql_ints(cast(list[int], column))
        for n, column in enumerate(columns)
    ]


def _one_chunk(item: Prepared) -> bool:
    data = item.message.source.data
    return data is not None and len(data) <= blobs.CHUNK


def _small_blob_ctes(first: int) -> str:
    """CTEs storing a one-chunk message's blob, its chunk and its analysis, with their
    parameters from ``$first`` (``_small_blob_values``): blobs.py ``store`` and
    ``insert_analysis`` in one round trip."""
    return (
        f"WITH nb AS (INSERT INTO blobs (blob_id, size, header_size)"
        f" VALUES (${first}, ${first + 1}, ${first + 2})"
        " ON CONFLICT (blob_id) DO NOTHING RETURNING blob_id),"
        f" nc AS (INSERT INTO blob_chunks (blob_id, seq, data) SELECT blob_id, 0, ${first + 3}"
        " FROM nb),"
        f" na AS ({_insert_analysis(first + 4)}) "
    )


def _small_blob_values(account_id: int, item: Prepared) -> list[object]:
    blob = item.blob
    return [
        blob.blob_id,
        blob.size,
        blob.header_size,
        item.message.source.data,
        *analysis_values(account_id, blob.blob_id, item.analysis),
    ]


def analysis_values(account_id: int, blob_id: str, row: AnalysisRow) -> list[object]:
    """The parameters of ``_insert_analysis``."""
    texts = tuple(clean_text(text) for text in row.texts)
    columns = tuple(clean_text(c) if isinstance(c, str) else c for c in row.columns)
    message_id, in_reply_to, refs = columns[3], columns[4], columns[5]
    assert isinstance(in_reply_to, str) and isinstance(refs, str)
    parents = [
        parent
        for parent in [in_reply_to, *reversed(refs.split("\n"))]
        if parent and parent != message_id
    ]
    return [account_id, blob_id, *columns, texts[2], *texts, parents]


async def insert_analysis(
    conn: asyncpg.Connection, account_id: int, blob_id: str, row: AnalysisRow
) -> None:
    """Record ``row`` for the account's ``blob_id`` unless it has one, with its thread."""
    await conn.execute(_INSERT_ANALYSIS, *analysis_values(account_id, blob_id, row))


def clean_text(text: str) -> str:
    """PostgreSQL text holds no NUL."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


# ---- quota ------------------------------------------------------------------------


async def usage(conn: asyncpg.Connection, account_id: int, default: QuotaLimits) -> QuotaUsage:
    """Usage now, and the account's effective limits read now (on every node alike)."""
    row = await conn.fetchrow(
        "SELECT a.quota_storage, a.quota_messages, c.storage, c.messages FROM accounts a"
        " JOIN mail_counters c ON c.account_id = a.id WHERE a.id = $1",
        account_id,
    )
    if row is None:
        return QuotaUsage(0, 0, default.storage, default.messages)
    effective = QuotaOverride(row[0], row[1]).apply(default)
    return QuotaUsage(int(row[2]), int(row[3]), effective.storage, effective.messages)


async def delivery_state(
    conn: asyncpg.Connection, account_id: int, default: QuotaLimits
) -> DeliveryState:
    """Usage, limits and whether a Sieve script is active: one query for LMTP's RCPT."""
    row = await conn.fetchrow(
        "SELECT a.quota_storage, a.quota_messages, c.storage, c.messages,"
        " EXISTS (SELECT 1 FROM sieve_scripts s WHERE s.account_id = a.id AND s.active)"
        " FROM accounts a JOIN mail_counters c ON c.account_id = a.id WHERE a.id = $1",
        account_id,
    )
    if row is None:
        return DeliveryState(QuotaUsage(0, 0, default.storage, default.messages), False)
    effective = QuotaOverride(row[0], row[1]).apply(default)
    usage = QuotaUsage(int(row[2]), int(row[3]), effective.storage, effective.messages)
    return DeliveryState(usage, bool(row[4]))


async def check_quota(conn: asyncpg.Connection, account_id: int, default: QuotaLimits) -> None:
    """After an insert, inside the write turn: QuotaExceeded (so it all rolls back)
    when usage now passes a limit."""
    _check_limits(await usage(conn, account_id, default))


def _check_limits(now: QuotaUsage) -> None:
    if now.storage_limit is not None and now.storage > now.storage_limit:
        raise QuotaExceeded(f"storage quota of {now.storage_limit} octets exceeded")
    if now.message_limit is not None and now.messages > now.message_limit:
        raise QuotaExceeded(f"quota of {now.message_limit} messages exceeded")


async def recalculate(
    conn: asyncpg.Connection, account_id: int, default: QuotaLimits
) -> tuple[QuotaUsage, QuotaUsage]:
    before = await usage(conn, account_id, default)
    await conn.execute(
        "UPDATE mail_counters SET"
        " storage = (SELECT coalesce(sum(size), 0) FROM messages WHERE account_id = $1),"
        " messages = (SELECT count(*) FROM messages WHERE account_id = $1)"
        " WHERE account_id = $1",
        account_id,
    )
    return before, await usage(conn, account_id, default)


# ---- keywords ---------------------------------------------------------------------


async def load_keywords(conn: asyncpg.Connection, mailbox_id: int) -> Keywords:
    rows = await conn.fetch("SELECT name FROM keywords WHERE mailbox_id = $1", mailbox_id)
    return Keywords(row["name"] for row in rows)


async def save_keywords(conn: asyncpg.Connection, mailbox_id: int, keywords: Keywords) -> None:
    if keywords.added:
        await conn.execute(
            "INSERT INTO keywords (mailbox_id, name_key, name)"
            " SELECT $1, lower(k), k FROM unnest($2::text[]) AS k ON CONFLICT DO NOTHING",
            mailbox_id,
            list(keywords.added),
        )
        keywords.added.clear()


# ---- reading ----------------------------------------------------------------------


def uid_condition(uids: Sequence[int], first_param: int) -> tuple[str, list[object]]:
    """A condition on ``m.uid`` selecting ``uids``: a range when dense, else ANY."""
    if isinstance(uids, range) and uids.step == 1:
        return f"m.uid BETWEEN ${first_param} AND ${first_param + 1}", [uids[0], uids[-1]]
    return f"m.uid = ANY(${first_param}::bigint[])", [sorted(set(uids))]


async def select_messages(
    conn: asyncpg.Connection, columns: str, mailbox_id: int, uids: Sequence[int], joins: str = ""
) -> list[asyncpg.Record]:
    if not uids:
        return []
    condition, params = uid_condition(uids, 2)
    return list(
        await conn.fetch(
            f"SELECT {columns} FROM messages m {joins}"
            f" WHERE m.mailbox_id = $1 AND {condition} ORDER BY m.uid",
            mailbox_id,
            *params,
        )
    )


FIRST_MESSAGE_COLUMN = 5  # of a row of ``mailbox_messages``


class MailboxTop(NamedTuple):
    highestmodseq: int
    uidnext: int


async def mailbox_messages(
    conn: asyncpg.Connection, account_id: int, mailbox_id: int, columns: str, uids: Sequence[int]
) -> tuple[Keywords, int, MailboxTop, list[asyncpg.Record]]:
    """The mailbox's keywords, the account's modseq now, the mailbox's HIGHESTMODSEQ
    and UIDNEXT, and the rows of ``uids`` in the mailbox (from column
    ``FIRST_MESSAGE_COLUMN``), in one round trip; NoSuchMailbox as ``mailbox`` raises
    it. The mailbox comes first in a LEFT JOIN, so it answers even when none of
    ``uids`` is there (one row of NULL columns, dropped)."""
    condition, params = uid_condition(uids, 3) if uids else ("false", [])
    rows = await conn.fetch(
        "SELECT b.noselect,"
        " (SELECT coalesce(array_agg(name), '{}') FROM keywords WHERE mailbox_id = $1),"
        " (SELECT modseq FROM mail_counters WHERE account_id = $2),"
        " b.highestmodseq, b.uidnext,"
        f" {columns} FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id AND {condition}"
        " WHERE b.id = $1 AND b.account_id = $2 ORDER BY m.uid",
        mailbox_id,
        account_id,
        *params,
    )
    if not rows or rows[0][0]:
        raise NoSuchMailbox(f"no mailbox with id {mailbox_id}")
    found = [row for row in rows if row[FIRST_MESSAGE_COLUMN] is not None]
    top = MailboxTop(int(rows[0][3]), int(rows[0][4]))
    return Keywords(rows[0][1]), int(rows[0][2]), top, found


async def store_flags(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    uids: Sequence[int],
    op: FlagOp,
    flags: frozenset[str],
    unchangedsince: int | None,
    turn: Turn,
) -> tuple[StoreFlagsResult, list[ChangeEvent]]:
    """One statement reads the mailbox, its keywords, the account's modseq and the
    messages; the change — the next modseq, the rows, keywords and HIGHESTMODSEQ — is
    deferred to the COMMIT's round trip (pool.py): the turn keeps the modseq read, so
    the next is known without asking. Run in the write turn, or before it with
    ``turn.expect`` checked under it (``Database.run_optimistic``)."""
    decode = CODEC.decode
    updates: list[tuple[int, int, str]] = []
    previous: dict[int, int] = {}
    unchanged: list[FlagState] = []
    failed: list[int] = []
    keywords, account_modseq, before, rows = await mailbox_messages(
        conn, account_id, mailbox_id, "m.uid, m.flags, m.keywords, m.modseq", uids
    )
    wanted_bits, wanted = encode(flags, keywords, define=op is not FlagOp.REMOVE)
    for uid, bits, text, modseq in (row[FIRST_MESSAGE_COLUMN:] for row in rows):
        # RFC 7162 §3.1.3: changed since the client looked: leave it, report it.
        if unchangedsince is not None and modseq > unchangedsince:
            failed.append(uid)
            continue
        current = set(text.split())
        match op:
            case FlagOp.REPLACE:
                new_bits, new = wanted_bits, wanted
            case FlagOp.ADD:
                new_bits, new = bits | wanted_bits, current | wanted
            case FlagOp.REMOVE:
                new_bits, new = bits & ~wanted_bits, current - wanted
        if new_bits == bits and new == current:
            unchanged.append(FlagState(uid, decode(bits, text), modseq))
        else:
            updates.append((uid, new_bits, keyword_text(new)))
            previous[uid] = modseq
    events: list[ChangeEvent] = []
    new_modseq = 0
    if updates:
        new_modseq = account_modseq + 1
        turn.deferred.append(
            f"WITH s AS (UPDATE mail_counters SET modseq = {new_modseq}"
            f"  WHERE account_id = {int(account_id)}),"
            f" f AS (UPDATE messages m SET flags = u.flags, keywords = u.keywords,"
            f"  modseq = {new_modseq} FROM unnest({sql_ints([u[0] for u in updates])},"
            f"  {sql_ints([u[1] for u in updates])}, {sql_texts([u[2] for u in updates])})"
            "  AS u(uid, flags, keywords)"
            f"  WHERE m.mailbox_id = {int(mailbox_id)} AND m.uid = u.uid),"
            " k AS (INSERT INTO keywords (mailbox_id, name_key, name)"
            f"  SELECT {int(mailbox_id)}, lower(k), k FROM unnest({sql_texts(keywords.added)})"
            "  AS k ON CONFLICT DO NOTHING)"
            f" UPDATE mailboxes SET highestmodseq = {new_modseq} WHERE id = {int(mailbox_id)}"
        )
        keywords.added.clear()
        events.append(MailboxChanged(mailbox_id, new_modseq))
        turn.expect = unchanged_since_read(account_id, account_modseq, mailbox_id)
    updated = [FlagState(uid, decode(bits, text), new_modseq) for uid, bits, text in updates]
    if updated:
        changes = MailboxChanges(new_modseq, before.uidnext, updated, [], keywords.all())
        turn.answer = Answer(mailbox_id, before.highestmodseq, changes)
    return StoreFlagsResult(updated, unchanged, failed, previous), events


async def expunge(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    uids: Sequence[int] | None,
    turn: Turn,
) -> tuple[list[int], list[ChangeEvent]]:
    """One statement finds the \\Deleted messages; if there are any, the change — a
    modseq, their deletion, the expunge log, HIGHESTMODSEQ, then forgetting what
    nothing refers to any more (it must see the deletion) — is deferred to the
    COMMIT's round trip (pool.py). Run in the write turn, or before it with
    ``turn.expect`` checked under it (``Database.run_optimistic``)."""
    condition, params = "true", list[object]()
    if uids is not None:
        if not uids:
            await mailbox(conn, account_id, mailbox_id)
            return [], []
        condition, params = uid_condition(uids, 4)
    row = await conn.fetchrow(
        "WITH b AS (SELECT id, highestmodseq, uidnext FROM mailboxes WHERE id = $1"
        "  AND account_id = $2 AND NOT noselect),"
        " gone AS (SELECT m.uid, m.blob_id FROM messages m JOIN b ON m.mailbox_id = b.id"
        f"  WHERE m.flags & $3 != 0 AND {condition})"
        " SELECT (SELECT count(*) FROM b),"
        " (SELECT modseq FROM mail_counters WHERE account_id = $2),"
        " array(SELECT uid FROM gone ORDER BY uid), array(SELECT blob_id FROM gone),"
        " (SELECT highestmodseq FROM b), (SELECT uidnext FROM b),"
        " (SELECT coalesce(array_agg(name), '{}') FROM keywords WHERE mailbox_id = $1)",
        mailbox_id,
        account_id,
        DELETED_BIT,
        *params,
    )
    found, account_modseq, removed, blob_ids, before, uidnext, keyword_names = row
    if not found:
        raise NoSuchMailbox(f"no mailbox with id {mailbox_id}")
    if not removed:
        return [], []
    modseq = int(account_modseq) + 1
    listed = sql_ints(removed)
    turn.deferred.append(
        f"WITH s AS (UPDATE mail_counters SET modseq = {modseq}"
        f"  WHERE account_id = {int(account_id)}),"
        f" d AS (DELETE FROM messages WHERE mailbox_id = {int(mailbox_id)}"
        f"  AND uid = ANY({listed})),"
        " e AS (INSERT INTO expunged (mailbox_id, uid, modseq)"
        f"  SELECT {int(mailbox_id)}, u, {modseq} FROM unnest({listed}) AS u"
        "  ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq)"
        f" UPDATE mailboxes SET highestmodseq = {modseq} WHERE id = {int(mailbox_id)}"
    )
    turn.deferred.append(forget_sql(account_id, blob_ids))
    turn.expect = unchanged_since_read(account_id, int(account_modseq), mailbox_id)
    changes = MailboxChanges(modseq, uidnext, [], list(removed), frozenset(keyword_names))
    turn.answer = Answer(mailbox_id, before, changes)
    return list(removed), [MailboxChanged(mailbox_id, modseq)]


def unchanged_since_read(account_id: int, account_modseq: int, mailbox_id: int) -> str:
    """``Turn.expect`` of a write to one mailbox: every change of the account's mail
    takes its modseq, so if it is still the one read, so is everything read — and
    the mailbox must still be there to hold the change."""
    return (
        f"(SELECT modseq FROM mail_counters WHERE account_id = {int(account_id)})"
        f" = {int(account_modseq)} AND EXISTS (SELECT 1 FROM mailboxes"
        f" WHERE id = {int(mailbox_id)} AND account_id = {int(account_id)} AND NOT noselect)"
    )


async def transfer(
    conn: asyncpg.Connection,
    account_id: int,
    source_id: int,
    uids: Sequence[int],
    dest_id: int,
    *,
    move: bool,
    default_quota: QuotaLimits,
) -> tuple[CopyResult, list[ChangeEvent]]:
    """COPY (RFC 9051 §6.4.7) or MOVE (RFC 6851), as sqlite/messages.py transfer."""
    await mailbox(conn, account_id, source_id)
    dest = await mailbox(conn, account_id, dest_id)
    rows = await select_messages(
        conn,
        "m.uid, m.flags, m.keywords, m.internaldate, m.tzoffset, m.size, m.header_size, m.blob_id",
        source_id,
        uids,
    )
    if not rows:
        return CopyResult(dest.uidvalidity, [], []), []
    keywords = await load_keywords(conn, dest_id)
    modseq = await next_modseq(conn, account_id)
    source_uids = [row[0] for row in rows]
    dest_uids = list(range(dest.uidnext, dest.uidnext + len(rows)))
    respelled: dict[str, str] = {"": ""}
    columns: list[list[object]] = [[] for _ in range(8)]
    for new_uid, (_, bits, text, *rest) in zip(dest_uids, rows, strict=True):
        spelling = respelled.get(text)
        if spelling is None:
            spelling = respelled[text] = keyword_text(
                keywords.spell(name, define=True) for name in text.split()
            )
        for column, value in zip(columns, (new_uid, bits, spelling, *rest), strict=True):
            column.append(value)
    await conn.execute(_INSERT, dest_id, account_id, modseq, _now(), *columns)
    if not move:
        await check_quota(conn, account_id, default_quota)
    await save_keywords(conn, dest_id, keywords)
    await conn.execute(
        "UPDATE mailboxes SET highestmodseq = $1, uidnext = $2 WHERE id = $3",
        modseq,
        dest_uids[-1] + 1,
        dest_id,
    )
    events: list[ChangeEvent] = [MailboxChanged(dest_id, modseq)]
    if move:
        await remove(conn, account_id, source_id, source_uids, modseq)
        if source_id != dest_id:
            events.append(MailboxChanged(source_id, modseq))
    return CopyResult(dest.uidvalidity, source_uids, dest_uids), events


async def remove(
    conn: asyncpg.Connection, account_id: int, mailbox_id: int, uids: list[int], modseq: int
) -> None:
    """Delete messages and log their expunge."""
    await conn.execute(
        "DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2::bigint[])", mailbox_id, uids
    )
    await conn.execute(
        "INSERT INTO expunged (mailbox_id, uid, modseq)"
        " SELECT $1, u, $2 FROM unnest($3::bigint[]) u"
        " ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq",
        mailbox_id,
        modseq,
        uids,
    )
    await conn.execute("UPDATE mailboxes SET highestmodseq = $1 WHERE id = $2", modseq, mailbox_id)


async def forget(conn: asyncpg.Connection, account_id: int, blob_ids: Sequence[str]) -> None:
    """After messages were removed (in an earlier statement, whose deletion this one
    sees): drop the account's analyses and the blobs nothing refers to any more, in
    one round trip."""
    if blob_ids:
        await conn.execute(forget_sql(account_id, blob_ids))


def forget_sql(account_id: int, blob_ids: Sequence[str]) -> str:
    """``forget`` as one literal statement, to run later in the transaction."""
    listed = sql_texts(sorted(set(blob_ids)))
    return (
        f"WITH a AS (DELETE FROM analyses a WHERE a.account_id = {int(account_id)}"
        f"  AND a.blob_id = ANY({listed})"
        "  AND NOT EXISTS (SELECT 1 FROM messages m"
        f"  WHERE m.blob_id = a.blob_id AND m.account_id = {int(account_id)}))"
        f" DELETE FROM blobs b WHERE b.blob_id = ANY({listed})"
        " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.blob_id)"
    )


# ---- REPLACE and PREVIEW ----------------------------------------------------------


async def replace(
    conn: asyncpg.Connection,
    account_id: int,
    source_id: int,
    uid: int,
    target_mailbox: int | str,
    prepared: Prepared,
    default_quota: QuotaLimits,
    turn: Turn,
) -> tuple[AppendResult, list[ChangeEvent]]:
    """REPLACE (RFC 8508), as sqlite/replace.py: the old message is removed first, in
    the same transaction, so the quota check of the new one counts the space it frees;
    its expunge has its own modseq, below the append's."""
    await mailbox(conn, account_id, source_id)
    old_blob = await conn.fetchval(
        "SELECT blob_id FROM messages WHERE mailbox_id = $1 AND uid = $2", source_id, uid
    )
    if old_blob is None:
        raise CannotDoThat("the message to replace is gone")
    removed_at = await next_modseq(conn, account_id)
    await remove(conn, account_id, source_id, [uid], removed_at)
    result, events = await append(conn, account_id, target_mailbox, [prepared], default_quota, turn)
    turn.answer = None  # two changes, maybe to two mailboxes: ask the database
    # After the new row's insert (deferred too): the new message may be the old bytes.
    turn.deferred.append(forget_sql(account_id, [old_blob]))
    if result.mailbox.id != source_id:
        events.append(MailboxChanged(source_id, removed_at))
    return result, events
