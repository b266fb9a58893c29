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
from roost.store.postgres.mailboxes import MAILBOX_COLUMNS, MailboxRow, mailbox
from roost.store.postgres.messages import (
    CODEC,
    FIRST_MESSAGE_COLUMN,
    clean_text,
    mailbox_messages,
    select_messages,
    uid_condition,
)
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
    """One statement: the mailbox (NoSuchMailbox as ``mailbox`` raises it), the rows,
    and with ``with_content`` the bytes of one-chunk messages inlined in UID order
    while their running total stays within ``INLINE_CONTENT_BUDGET``."""
    if with_model:
        columns = f"{META_COLUMNS}, a.model, coalesce(a.thread_id, a.id)"
        joins = "LEFT JOIN analyses a ON a.account_id = m.account_id AND a.blob_id = m.blob_id"
    else:
        columns, joins = f"{META_COLUMNS}, NULL::bytea, NULL::bigint", ""
    condition, params = uid_condition(uids, 6) if uids else ("false", [])
    rows = await conn.fetch(
        "SELECT b.noselect, t.* FROM mailboxes b LEFT JOIN LATERAL"
        f" (SELECT {columns}, CASE WHEN $3 AND m.size <= $4"
        "  AND sum(CASE WHEN m.size <= $4 THEN m.size ELSE 0 END) OVER (ORDER BY m.uid) <= $5"
        "  THEN (SELECT data FROM blob_chunks c WHERE c.blob_id = m.blob_id AND c.seq = 0) END"
        f"  FROM messages m {joins} WHERE m.mailbox_id = b.id AND {condition}) t ON true"
        " WHERE b.id = $1 AND b.account_id = $2 ORDER BY 2",
        mailbox_id,
        account_id,
        with_content,
        min(INLINE_CONTENT_MAX, blobs.CHUNK),
        INLINE_CONTENT_BUDGET,
        *params,
    )
    if not rows or rows[0][0]:
        raise NoSuchMailbox(f"no mailbox with id {mailbox_id}")
    decode, from_timestamp = CODEC.decode, datetime.fromtimestamp
    return [
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
            None if content is None else bytes(content),
        )
        for (
            _,
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
            content,
        ) in rows
        if uid is not None
    ]


async def fetch_flags(
    conn: asyncpg.Connection,
    account_id: int,
    mailbox_id: int,
    uids: Sequence[int],
    with_modseq: bool,
) -> FlagRows:
    _, _, _, found_rows = await mailbox_messages(
        conn, account_id, mailbox_id, "m.uid, m.flags, m.keywords, m.modseq", uids
    )
    rows = [row[FIRST_MESSAGE_COLUMN:] for row in found_rows]
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
    """SELECT's view, in one statement (one instant, one round trip). With
    ``claim_recent``, the claim in the same statement: the view is the statement's
    snapshot, and the floor is raised to that view's UIDNEXT under the row lock, from
    the floor the lock shows (which another session may have raised meanwhile). So
    this session gets the UIDs of its view at or above the locked floor, the next one
    gets the rest: each recent message is recent for exactly one session."""
    row = await conn.fetchrow(
        f"WITH b AS (SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = $1 AND account_id = $2),"
        " old AS (SELECT recent_floor FROM mailboxes WHERE id = $1 AND $3 FOR UPDATE),"
        " claimed AS (UPDATE mailboxes m SET recent_floor = b.uidnext FROM b, old"
        "  WHERE m.id = b.id AND old.recent_floor < b.uidnext AND NOT b.noselect)"
        " SELECT b.*, (SELECT recent_floor FROM old),"
        " (SELECT coalesce(array_agg(uid ORDER BY uid), '{}') FROM messages"
        "  WHERE mailbox_id = $1),"
        " (SELECT uid FROM messages WHERE mailbox_id = $1 AND flags & 1 = 0"
        "  ORDER BY uid LIMIT 1),"
        " (SELECT coalesce(array_agg(name), '{}') FROM keywords WHERE mailbox_id = $1)"
        " FROM b",
        mailbox_id,
        account_id,
        claim_recent,
    )
    if row is None or row["noselect"]:
        raise NoSuchMailbox(f"no mailbox with id {mailbox_id}")
    *columns, locked_floor, uids, first_unseen, keywords = row.values()
    mailbox_row = MailboxRow(*columns)
    recent_floor = None
    if claim_recent:
        recent_floor = locked_floor
    elif peek_recent:
        recent_floor = mailbox_row.recent_floor
    return MailboxSnapshot(
        info=mailbox_row.info(),
        uids=list(uids),
        keywords=frozenset(keywords),
        first_unseen=first_unseen,
        recent_floor=recent_floor,
    )


async def claim_recent(conn: asyncpg.Connection, account_id: int, mailbox_id: int) -> int:
    """RFC 9051 §2.3.2 \\Recent: messages at or above the floor are recent for exactly
    the one session that claims them next (the row lock makes it one, on any node).
    One statement, so no transaction of its own: the lock is taken and the floor
    raised to the locked row's UIDNEXT at one instant; a row left as it was is not
    written."""
    row = await conn.fetchrow(
        "WITH old AS (SELECT id, recent_floor, uidnext, noselect FROM mailboxes"
        "  WHERE id = $1 AND account_id = $2 FOR UPDATE),"
        " claimed AS (UPDATE mailboxes m SET recent_floor = old.uidnext FROM old"
        "  WHERE m.id = old.id AND old.recent_floor < old.uidnext AND NOT old.noselect)"
        " SELECT recent_floor, noselect FROM old",
        mailbox_id,
        account_id,
    )
    if row is None or row[1]:
        raise NoSuchMailbox(f"no mailbox with id {mailbox_id}")
    return int(row[0])


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


async def changes_since(
    conn: asyncpg.Connection, account_id: int, mailbox_id: int, modseq: int
) -> MailboxChanges:
    """What changed in the mailbox after ``modseq``, in one statement (so one instant,
    and one round trip: after every write of its own a session asks this, and IDLE
    and NOOP ask it all the time). The changed and expunged rows come as arrays; the
    index on (mailbox_id, modseq) finds them, and nothing is read when nothing changed."""
    row = await conn.fetchrow(
        "SELECT b.highestmodseq, b.uidnext, b.noselect,"
        " (SELECT coalesce(array_agg(name), '{}') FROM keywords WHERE mailbox_id = $1),"
        " c.uids, c.flags, c.keywords, c.modseqs, e.uids"
        " FROM mailboxes b"
        " LEFT JOIN LATERAL (SELECT array_agg(uid ORDER BY uid) AS uids,"
        "  array_agg(flags ORDER BY uid) AS flags, array_agg(keywords ORDER BY uid) AS keywords,"
        "  array_agg(modseq ORDER BY uid) AS modseqs FROM messages"
        "  WHERE mailbox_id = $1 AND modseq > $3 AND $3 < b.highestmodseq) c ON true"
        " LEFT JOIN LATERAL (SELECT array_agg(uid ORDER BY uid) AS uids FROM expunged"
        "  WHERE mailbox_id = $1 AND modseq > $3 AND $3 < b.highestmodseq) e ON true"
        " WHERE b.id = $1 AND b.account_id = $2",
        mailbox_id,
        account_id,
        modseq,
    )
    if row is None or row[2]:
        raise NoSuchMailbox(f"no mailbox with id {mailbox_id}")
    highestmodseq, uidnext, _, keywords, uids, bits, texts, modseqs, expunged = row
    decode = CODEC.decode
    changed = (
        [
            FlagState(uid, decode(flags, text), changed_at)
            for uid, flags, text, changed_at in zip(uids, bits, texts, modseqs, strict=True)
        ]
        if uids
        else []
    )
    return MailboxChanges(
        highestmodseq=highestmodseq,
        uidnext=uidnext,
        changed=changed,
        expunged=list(expunged or ()),
        keywords=frozenset(keywords),
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
