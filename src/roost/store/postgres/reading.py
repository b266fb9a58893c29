"""Reading messages of an account from PostgreSQL: their metadata (with small bodies
inlined), flags, snapshots for SELECT, STATUS, what changed since a modseq, and
previews. Split from messages.py, which writes; both keep the SQLite backend's
semantics (store/sqlite) so the one contract suite holds for both."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime

import asyncpg

from roost.store.errors import NoSuchMailbox
from roost.store.postgres import blobs
from roost.store.postgres.mailboxes import mailbox
from roost.store.postgres.messages import CODEC, clean_text, load_keywords, select_messages
from roost.store.sqlite.db import zone_of
from roost.store.sqlite.flags import (
    DELETED_BIT,
    SEEN_BIT,
)
from roost.store.values import (
    FlagRows,
    FlagState,
    MailboxChanges,
    MailboxSnapshot,
    MailboxStatus,
    MessageMeta,
)

log = logging.getLogger(__name__)

META_COLUMNS = (
    "m.uid, m.flags, m.keywords, m.modseq, m.internaldate, m.tzoffset, m.size,"
    " m.header_size, m.blob_id, m.savedate"
)
INLINE_CONTENT_MAX = 256 * 1024  # with_content: messages up to this size
INLINE_CONTENT_BUDGET = 8 * 1024 * 1024  # … up to this much per call


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
        columns = f"{META_COLUMNS}, a.model, coalesce(a.thread_id, a.id)"
        joins = "LEFT JOIN analyses a ON a.account_id = m.account_id AND a.blob_id = m.blob_id"
    else:
        columns, joins = f"{META_COLUMNS}, NULL AS model, NULL AS thread_id", ""
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
        meta._replace(content=contents[meta.blob_id])
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
        return clean_text(message_preview(b"".join(bytes(row[0]) for row in chunks)))
    except Exception:
        log.exception("preview of stored message %s failed", blob_id)
        return ""
