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
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime

import asyncpg

from roost.mime.parse import MimeLimits
from roost.store.blobs import StoredBlob
from roost.store.errors import CannotDoThat, NoSuchMailbox, QuotaExceeded
from roost.store.events import ChangeEvent, MailboxChanged
from roost.store.postgres import blobs
from roost.store.postgres.mailboxes import MailboxRow, mailbox, mailbox_by_name
from roost.store.postgres.pool import next_modseq
from roost.store.sqlite.analyses import AnalysisRow, compute
from roost.store.sqlite.db import encode_date, zone_of
from roost.store.sqlite.flags import (
    DELETED_BIT,
    SEEN_BIT,
    FlagCodec,
    Keywords,
    encode,
    keyword_text,
)
from roost.store.values import (
    AppendResult,
    CopyResult,
    FlagOp,
    FlagRows,
    FlagState,
    MailboxChanges,
    MailboxSnapshot,
    MailboxStatus,
    MessageMeta,
    NewMessage,
    QuotaLimits,
    QuotaOverride,
    QuotaUsage,
    StoreFlagsResult,
)

log = logging.getLogger(__name__)

ANALYSE_IN_THREAD = 32 * 1024  # analyse larger messages off the event loop
INLINE_CONTENT_MAX = 256 * 1024  # with_content: messages up to this size
INLINE_CONTENT_BUDGET = 8 * 1024 * 1024  # … up to this much per call
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
_INSERT_ANALYSIS = (
    "INSERT INTO analyses (account_id, blob_id, model, sent_date, sent_day, message_id,"
    " in_reply_to, refs, sort_subject, sort_from, sort_to, sort_cc, display_from,"
    " display_to, preview, subject, t_header, t_body, t_subject, t_from, t_to, t_cc, t_bcc,"
    " thread_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
    " $16, $17, $18, $19, $20, $21, $22, $23, $24)"
    " ON CONFLICT (account_id, blob_id) DO NOTHING"
)
_META_COLUMNS = (
    "m.uid, m.flags, m.keywords, m.modseq, m.internaldate, m.tzoffset, m.size,"
    " m.header_size, m.blob_id, m.savedate"
)


# ---- APPEND -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    """A message ready to store: its blob described and its analysis computed, both
    before the transaction, so neither holds the account's write turn."""

    message: NewMessage
    blob: StoredBlob
    analysis: AnalysisRow


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
) -> tuple[AppendResult, list[ChangeEvent]]:
    """Inside the account's write turn: store all of ``prepared`` or none."""
    row = await target(conn, account_id, name_or_id)
    if not prepared:
        return AppendResult(row.uidvalidity, [], row.info()), []
    for item in prepared:
        await blobs.store(conn, item.blob, item.message.source)
        await insert_analysis(conn, account_id, item.blob.blob_id, item.analysis)
    wants_keywords = any(not f.startswith("\\") for p in prepared for f in p.message.flags)
    keywords = await load_keywords(conn, row.id) if wants_keywords else Keywords(())
    modseq = await next_modseq(conn, account_id)
    uids = list(range(row.uidnext, row.uidnext + len(prepared)))
    columns: list[list[object]] = [[] for _ in range(8)]
    for uid, item in zip(uids, prepared, strict=True):
        bits, names = encode(item.message.flags, keywords, define=True)
        seconds, offset = encode_date(item.message.internaldate)
        blob = item.blob
        values = (uid, bits, keyword_text(names), seconds, offset, blob.size)
        for column, value in zip(columns, (*values, blob.header_size, blob.blob_id), strict=True):
            column.append(value)
    await conn.execute(_INSERT, row.id, account_id, modseq, _now(), *columns)
    await check_quota(conn, account_id, default_quota)
    await save_keywords(conn, row.id, keywords)
    await conn.execute(
        "UPDATE mailboxes SET highestmodseq = $1, uidnext = $2 WHERE id = $3",
        modseq,
        uids[-1] + 1,
        row.id,
    )
    info = dataclasses.replace(row.info(), uidnext=uids[-1] + 1, highestmodseq=modseq)
    return AppendResult(row.uidvalidity, uids, info), [MailboxChanged(row.id, modseq)]


async def insert_analysis(
    conn: asyncpg.Connection, account_id: int, blob_id: str, row: AnalysisRow
) -> None:
    """Record ``row`` for the account's ``blob_id`` unless it has one, with its thread
    (RFC 8474 THREADID: the nearest ancestor's, else its own id)."""
    texts = tuple(_text(text) for text in row.texts)
    columns = tuple(_text(c) if isinstance(c, str) else c for c in row.columns)
    message_id, in_reply_to, refs = columns[3], columns[4], columns[5]
    assert isinstance(in_reply_to, str) and isinstance(refs, str)
    thread: int | None = None  # NULL: a thread of its own, named by its own id
    for parent in [in_reply_to, *reversed(refs.split("\n"))]:
        if parent and parent != message_id:
            thread = await conn.fetchval(
                "SELECT coalesce(thread_id, id) FROM analyses WHERE account_id = $1"
                " AND message_id = $2 AND message_id != '' LIMIT 1",
                account_id,
                parent,
            )
            if thread is not None:
                break
    await conn.execute(_INSERT_ANALYSIS, account_id, blob_id, *columns, texts[2], *texts, thread)


def _text(text: str) -> str:
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


async def check_quota(conn: asyncpg.Connection, account_id: int, default: QuotaLimits) -> None:
    """After an insert, inside the write turn: QuotaExceeded (so it all rolls back)
    when usage now passes a limit."""
    now = await usage(conn, account_id, default)
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


async def fetch_meta(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    uids: Sequence[int],
    with_model: bool,
    with_content: bool,
) -> list[MessageMeta]:
    await mailbox(conn, account_id, mailbox_id)
    if with_model:
        columns = f"{_META_COLUMNS}, a.model, coalesce(a.thread_id, a.id)"
        joins = "LEFT JOIN analyses a ON a.account_id = m.account_id AND a.blob_id = m.blob_id"
    else:
        columns, joins = f"{_META_COLUMNS}, NULL AS model, NULL AS thread_id", ""
    rows = await select_messages(conn, columns, mailbox_id, uids, joins)
    decode, from_timestamp = CODEC.decode, datetime.fromtimestamp
    metas = [
        MessageMeta(
            uid,
            decode(bits, keywords),
            modseq,
            from_timestamp(seconds, zone_of(offset)),
            size,
            header_size,
            blob_id,
            None if model is None else bytes(model),
            None if saved is None else from_timestamp(saved, UTC),
            thread,
        )
        for (
            uid,
            bits,
            keywords,
            modseq,
            seconds,
            offset,
            size,
            header_size,
            blob_id,
            saved,
            model,
            thread,
        ) in rows
    ]
    if with_content:
        metas = await _with_content(conn, metas)
    return metas


async def _with_content(conn: asyncpg.Connection, metas: list[MessageMeta]) -> list[MessageMeta]:
    budget = INLINE_CONTENT_BUDGET
    wanted: list[str] = []
    for meta in metas:
        if meta.size <= min(INLINE_CONTENT_MAX, blobs.CHUNK) and meta.size <= budget:
            budget -= meta.size
            wanted.append(meta.blob_id)
    if not wanted:
        return metas
    contents = await blobs.small_contents(conn, wanted)
    return [
        dataclasses.replace(meta, content=contents[meta.blob_id])
        if meta.blob_id in contents and meta.blob_id in wanted
        else meta
        for meta in metas
    ]


async def fetch_flags(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    uids: Sequence[int],
    with_modseq: bool,
) -> FlagRows:
    await mailbox(conn, account_id, mailbox_id)
    rows = await select_messages(conn, "m.uid, m.flags, m.keywords, m.modseq", mailbox_id, uids)
    found = [row[0] for row in rows]
    pairs: list[tuple[int, str]] = [(row[1], row[2]) for row in rows]
    modseqs = [row[3] for row in rows] if with_modseq else None
    flags: dict[Hashable, frozenset[str]] = {pair: CODEC.decode(*pair) for pair in set(pairs)}
    keys: list[Hashable] = list(pairs)
    return FlagRows(found, keys, modseqs, flags)


async def snapshot(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    claim_recent: bool,
    peek_recent: bool = False,
) -> MailboxSnapshot:
    """SELECT's view; with ``claim_recent``, the claim at the same instant: the
    mailbox row is locked first, so no APPEND commits between claim and view."""
    row = await mailbox(conn, account_id, mailbox_id, lock=claim_recent)
    recent_floor = row.recent_floor if claim_recent or peek_recent else None
    if claim_recent and row.recent_floor < row.uidnext:
        await conn.execute("UPDATE mailboxes SET recent_floor = uidnext WHERE id = $1", mailbox_id)
    uids, first_unseen, keywords = await conn.fetchrow(
        "SELECT (SELECT coalesce(array_agg(uid ORDER BY uid), '{}') FROM messages"
        "  WHERE mailbox_id = $1),"
        " (SELECT uid FROM messages WHERE mailbox_id = $1 AND flags & 1 = 0"
        "  ORDER BY uid LIMIT 1),"
        " (SELECT coalesce(array_agg(name), '{}') FROM keywords WHERE mailbox_id = $1)",
        mailbox_id,
    )
    return MailboxSnapshot(
        info=row.info(),
        uids=list(uids),
        keywords=frozenset(keywords),
        first_unseen=first_unseen,
        recent_floor=recent_floor,
    )


async def claim_recent(conn: asyncpg.Connection, account_id: int, mailbox_id: int) -> int:
    """RFC 9051 §2.3.2 \\Recent: messages at or above the floor are recent for exactly
    the one session that claims them next (the row lock makes it one, on any node)."""
    row = await mailbox(conn, account_id, mailbox_id, lock=True)
    if row.recent_floor < row.uidnext:
        await conn.execute("UPDATE mailboxes SET recent_floor = uidnext WHERE id = $1", mailbox_id)
    return row.recent_floor


async def status(conn: asyncpg.Connection, account_id: int, mailbox_id: int) -> MailboxStatus:
    row = await mailbox(conn, account_id, mailbox_id)
    counts = await conn.fetchrow(
        "SELECT count(*), coalesce(sum(size), 0), count(*) FILTER (WHERE uid >= $2),"
        " count(*) FILTER (WHERE flags & $3 = 0), count(*) FILTER (WHERE flags & $4 != 0),"
        " coalesce(sum(size) FILTER (WHERE flags & $4 != 0), 0)"
        " FROM messages WHERE mailbox_id = $1",
        mailbox_id,
        row.recent_floor,
        SEEN_BIT,
        DELETED_BIT,
    )
    messages, size, recent, unseen, deleted, deleted_size = counts.values()
    return MailboxStatus(
        messages=messages,
        recent=recent,
        uidnext=row.uidnext,
        uidvalidity=row.uidvalidity,
        unseen=unseen,
        deleted=deleted,
        size=int(size),
        highestmodseq=row.highestmodseq,
        deleted_size=int(deleted_size),
    )


async def unchanged_since(
    conn: asyncpg.Connection, account_id: int, mailbox_id: int, modseq: int
) -> MailboxChanges | None:
    """The answer of ``changes_since`` when nothing changed after ``modseq`` (IDLE's and
    NOOP's usual one), in one statement; None when something did."""
    row = await conn.fetchrow(
        "SELECT highestmodseq, uidnext, noselect,"
        " (SELECT coalesce(array_agg(name), '{}') FROM keywords WHERE mailbox_id = $1)"
        " FROM mailboxes WHERE id = $1 AND account_id = $2",
        mailbox_id,
        account_id,
    )
    if row is None or row[2]:
        raise NoSuchMailbox(f"no mailbox with id {mailbox_id}")
    if modseq < row[0]:
        return None
    return MailboxChanges(row[0], row[1], [], [], frozenset(row[3]))


async def changes_since(
    conn: asyncpg.Connection, account_id: int, mailbox_id: int, modseq: int
) -> MailboxChanges:
    row = await mailbox(conn, account_id, mailbox_id)
    keywords = (await load_keywords(conn, mailbox_id)).all()
    if modseq >= row.highestmodseq:  # the common IDLE/NOOP answer: nothing
        return MailboxChanges(row.highestmodseq, row.uidnext, [], [], keywords)
    changed = await conn.fetch(
        "SELECT uid, flags, keywords, modseq FROM messages"
        " WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
        mailbox_id,
        modseq,
    )
    expunged = await conn.fetch(
        "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
        mailbox_id,
        modseq,
    )
    decode = CODEC.decode
    return MailboxChanges(
        highestmodseq=row.highestmodseq,
        uidnext=row.uidnext,
        changed=[FlagState(uid, decode(bits, text), m) for uid, bits, text, m in changed],
        expunged=[r[0] for r in expunged],
        keywords=keywords,
    )


# ---- changing ---------------------------------------------------------------------


async def store_flags(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    uids: Sequence[int],
    op: FlagOp,
    flags: frozenset[str],
    unchangedsince: int | None,
) -> tuple[StoreFlagsResult, list[ChangeEvent]]:
    decode = CODEC.decode
    updates: list[tuple[int, int, str]] = []
    previous: dict[int, int] = {}
    unchanged: list[FlagState] = []
    failed: list[int] = []
    await mailbox(conn, account_id, mailbox_id)
    keywords = await load_keywords(conn, mailbox_id)
    wanted_bits, wanted = encode(flags, keywords, define=op is not FlagOp.REMOVE)
    rows = await select_messages(conn, "m.uid, m.flags, m.keywords, m.modseq", mailbox_id, uids)
    for uid, bits, text, modseq in rows:
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
        new_modseq = await next_modseq(conn, account_id)
        await conn.execute(
            "UPDATE messages m SET flags = u.flags, keywords = u.keywords, modseq = $1"
            " FROM unnest($2::bigint[], $3::int[], $4::text[]) AS u(uid, flags, keywords)"
            " WHERE m.mailbox_id = $5 AND m.uid = u.uid",
            new_modseq,
            [u[0] for u in updates],
            [u[1] for u in updates],
            [u[2] for u in updates],
            mailbox_id,
        )
        await save_keywords(conn, mailbox_id, keywords)
        await conn.execute(
            "UPDATE mailboxes SET highestmodseq = $1 WHERE id = $2", new_modseq, mailbox_id
        )
        events.append(MailboxChanged(mailbox_id, new_modseq))
    updated = [FlagState(uid, decode(bits, text), new_modseq) for uid, bits, text in updates]
    return StoreFlagsResult(updated, unchanged, failed, previous), events


async def expunge(
    conn: asyncpg.Connection, account_id: int, mailbox_id: int, uids: Sequence[int] | None
) -> tuple[list[int], list[ChangeEvent]]:
    await mailbox(conn, account_id, mailbox_id)
    if uids is None:
        rows = await conn.fetch(
            "SELECT uid, blob_id FROM messages WHERE mailbox_id = $1 AND flags & $2 != 0"
            " ORDER BY uid",
            mailbox_id,
            DELETED_BIT,
        )
    else:
        rows = [
            row
            for row in await select_messages(conn, "m.uid, m.blob_id, m.flags", mailbox_id, uids)
            if row[2] & DELETED_BIT
        ]
    if not rows:
        return [], []
    modseq = await next_modseq(conn, account_id)
    removed = [row[0] for row in rows]
    await remove(conn, account_id, mailbox_id, removed, modseq)
    await forget(conn, account_id, [row[1] for row in rows])
    return removed, [MailboxChanged(mailbox_id, modseq)]


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
    """After messages were removed: drop the account's analyses and the blobs nothing
    refers to any more."""
    if not blob_ids:
        return
    listed = sorted(set(blob_ids))
    await conn.execute(
        "DELETE FROM analyses a WHERE a.account_id = $1 AND a.blob_id = ANY($2::text[])"
        " AND NOT EXISTS (SELECT 1 FROM messages m"
        " WHERE m.blob_id = a.blob_id AND m.account_id = $1)",
        account_id,
        listed,
    )
    await blobs.release(conn, listed)


# ---- REPLACE and PREVIEW ----------------------------------------------------------


async def replace(
    conn: asyncpg.Connection,
    account_id: int,
    source_id: int,
    uid: int,
    target_mailbox: int | str,
    prepared: Prepared,
    default_quota: QuotaLimits,
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
    result, events = await append(conn, account_id, target_mailbox, [prepared], default_quota)
    await forget(conn, account_id, [old_blob])
    if result.mailbox.id != source_id:
        events.append(MailboxChanged(source_id, removed_at))
    return result, events


async def previews(
    conn: asyncpg.Connection, account_id: int, mailbox_id: int, uids: Sequence[int], compute: bool
) -> dict[int, str | None]:
    """RFC 8970 PREVIEW texts; with ``compute``, those not kept yet are made from the
    message and kept (derived data: made again if lost)."""
    await mailbox(conn, account_id, mailbox_id)
    rows = await select_messages(
        conn,
        "m.uid, m.blob_id, a.preview",
        mailbox_id,
        uids,
        "LEFT JOIN analyses a ON a.account_id = m.account_id AND a.blob_id = m.blob_id",
    )
    found: dict[int, str | None] = {row[0]: row[2] for row in rows}
    if not compute:
        return found
    made: dict[str, str] = {}
    for uid, blob_id, preview in rows:
        if preview is None:
            if blob_id not in made:
                made[blob_id] = await _make_preview(conn, blob_id)
            found[uid] = made[blob_id]
    if made:
        await conn.execute(
            "UPDATE analyses a SET preview = p.text FROM unnest($2::text[], $3::text[])"
            " AS p(blob_id, text) WHERE a.account_id = $1 AND a.blob_id = p.blob_id"
            " AND a.preview IS NULL",
            account_id,
            list(made),
            list(made.values()),
        )
    return found


async def _make_preview(conn: asyncpg.Connection, blob_id: str) -> str:
    from roost.mime.preview import message_preview

    chunks = await conn.fetch(
        "SELECT data FROM blob_chunks WHERE blob_id = $1 ORDER BY seq", blob_id
    )
    try:
        return _text(message_preview(b"".join(bytes(row[0]) for row in chunks)))
    except Exception:
        log.exception("preview of stored message %s failed", blob_id)
        return ""
