"""Message operations of one account (run on its worker thread).

Invariants:

* A changing operation takes one modseq for all it changes, from the account counter,
  and sets it as HIGHESTMODSEQ of every mailbox it touched; an operation that changes
  nothing takes none and publishes nothing.
* UIDs are given from UIDNEXT in order and never reused; every removed message is
  logged in ``expunged`` with the modseq that removed it.
* APPEND writes its blob files durably before the transaction that references them,
  and small messages' bytes in it (db.py, ``INLINE_MAX``); blobs that end up
  unreferenced (failure, expunge) are released after the transaction.
* APPEND analyses each message (sqlite/analyses.py) before its transaction, so parsing
  never holds the write lock; COPY, MOVE and RENAME share the source's analysis.
* APPEND and COPY check the quota (sqlite/quota.py) in their write transaction, after
  the insert. MOVE is never refused: usage counts every mailbox of the quota root
  (RFC 9208 §5), here the whole account, so moving within it changes no usage.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import json
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from typing import Any

from roost.store import line_endings
from roost.store.blobs import StoredBlob
from roost.store.errors import CannotDoThat, NoSuchMailbox, StoreError
from roost.store.events import ChangeEvent, MailboxChanged
from roost.store.sqlite import analyses, quota
from roost.store.sqlite.db import INLINE_MAX, MailboxRow, encode_date, zone_of
from roost.store.sqlite.flags import DELETED_BIT, Keywords, encode, keyword_text
from roost.store.sqlite.mail_db import MailDB
from roost.store.values import (
    AppendResult,
    CopyResult,
    FlagOp,
    FlagRows,
    FlagState,
    MailboxChanges,
    MailboxSnapshot,
    MessageMeta,
    MessageSource,
    NewMessage,
    QuotaLimits,
    StoreFlagsResult,
)

_INSERT = (
    "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, internaldate, tzoffset,"
    " size, header_size, blob_id, analysis_id, savedate)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(strftime('%s', 'now') AS INTEGER))"
)
_META_COLUMNS = (
    "uid, flags, keywords, modseq, internaldate, tzoffset, size, header_size,"
    " messages.blob_id, savedate"
)
# Where _META_COLUMNS puts what ``_contents`` reads of a row.
_UID_AT, _SIZE_AT, _BLOB_ID_AT = 0, 6, 8
# The model and thread joined through analysis_id (an integer key); by blob_id only
# for a message whose analysis_id is not set yet.
_WITH_ANALYSIS = "messages LEFT JOIN analyses a ON a.id = messages.analysis_id"
_MODEL_COLUMNS = (
    "CASE WHEN messages.analysis_id IS NULL"
    " THEN (SELECT model FROM analyses WHERE analyses.blob_id = messages.blob_id)"
    " ELSE a.model END,"
    " CASE WHEN messages.analysis_id IS NULL"
    " THEN (SELECT thread_id FROM analyses WHERE analyses.blob_id = messages.blob_id)"
    " ELSE a.thread_id END"
)
_COPY_COLUMNS = (
    "uid, flags, keywords, internaldate, tzoffset, size, header_size, blob_id, analysis_id"
)


def append(
    db: MailDB,
    mailbox: int | str,
    messages: Sequence[NewMessage],
    limits: QuotaLimits = quota.UNLIMITED,
) -> tuple[AppendResult, list[ChangeEvent]]:
    if not messages:
        with db.read():
            row = _target(db, mailbox)
        return AppendResult(row.uidvalidity, [], row.info()), []
    [outcome], events = append_batch(db, [(mailbox, messages)], limits=limits)
    analyses.index_if_due(db)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome, events


def append_batch(
    db: MailDB,
    batch: Sequence[tuple[int | str, Sequence[NewMessage]]],
    *,
    limits: QuotaLimits = quota.UNLIMITED,
) -> tuple[list[AppendResult | StoreError], list[ChangeEvent]]:
    """Several APPENDs, each with at least one message, in one transaction: one commit
    (one WAL fsync) and one round of blob writes for all (group commit). The caller
    indexes the queued texts when due (``analyses.index_if_due``), after answering.

    Each APPEND is still all-or-nothing: one refused by the store (its mailbox is gone,
    a bad keyword, over ``limits``) is rolled back to its savepoint and gets its
    StoreError; the others are stored. Each is checked against the quota with the ones
    before it in the batch counted, as if they had come one by one. Any other failure
    fails them all: nothing is stored, and it is raised.

    Every message is stored with CRLF line endings (``line_endings``), so that sizes,
    sections and analysis all see the bytes that FETCH serves.
    """
    with line_endings.normalized_batch(batch, db.blobs.tmp) as normalized:
        return _append_batch(db, normalized, limits)


def _append_batch(
    db: MailDB, batch: Sequence[tuple[int | str, Sequence[NewMessage]]], limits: QuotaLimits
) -> tuple[list[AppendResult | StoreError], list[ChangeEvent]]:
    messages = [message for _, group in batch for message in group]
    stored: list[StoredBlob] = []
    outcomes: list[AppendResult | StoreError] = []
    events: list[ChangeEvent] = []
    try:
        stored = db.put_blobs([message.source for message in messages])
        analysed = [
            _analyse(db, m.source, b.blob_id) for m, b in zip(messages, stored, strict=True)
        ]
        with db.write():
            first = 0
            for mailbox, group in batch:
                end = first + len(group)
                parts = (group, stored[first:end], analysed[first:end])
                first = end
                if len(batch) == 1:
                    outcomes.append(_store(db, mailbox, *parts, limits))
                    continue
                db.conn.execute("SAVEPOINT append")
                try:
                    outcomes.append(_store(db, mailbox, *parts, limits))
                except StoreError as error:
                    db.conn.execute("ROLLBACK TO append")
                    outcomes.append(error)
                db.conn.execute("RELEASE append")
    except BaseException:
        db.release_blobs(blob.blob_id for blob in stored)
        raise
    if refused := [
        blob.blob_id
        for blob, outcome in zip(stored, _per_message(batch, outcomes), strict=True)
        if isinstance(outcome, StoreError)
    ]:
        db.release_blobs(refused)
    for outcome in outcomes:
        if isinstance(outcome, AppendResult):
            events.append(MailboxChanged(outcome.mailbox.id, outcome.mailbox.highestmodseq))
    return outcomes, events


def _analyse(db: MailDB, source: MessageSource, blob_id: str) -> analyses.AnalysisRow:
    """The analysis of a message about to be stored: the store's other accounts may
    have just made it (one message, many recipients: analysis_cache.py)."""
    cache = db.analysis_cache
    if cache is None:
        return analyses.compute(source, db.mime_limits)
    return cache.get(blob_id, lambda: analyses.compute(source, db.mime_limits))


def _per_message(
    batch: Sequence[tuple[int | str, Sequence[NewMessage]]],
    outcomes: list[AppendResult | StoreError],
) -> list[AppendResult | StoreError]:
    return [outcome for (_, group), outcome in zip(batch, outcomes, strict=True) for _ in group]


def _target(db: MailDB, mailbox: int | str) -> MailboxRow:
    """The mailbox an APPEND goes to, by id or by name (see ``Account.append``)."""
    if isinstance(mailbox, int):
        return db.mailbox(mailbox)
    row = db.mailbox_by_name(mailbox)
    if row is None:
        raise NoSuchMailbox(f"no mailbox named {mailbox}")
    if row.noselect:
        raise CannotDoThat(f"{mailbox} cannot hold messages")
    return row


def _store(
    db: MailDB,
    mailbox: int | str,
    messages: Sequence[NewMessage],
    stored: Sequence[StoredBlob],
    analysed: Sequence[analyses.AnalysisRow],
    limits: QuotaLimits,
) -> AppendResult:
    """Inside a write transaction: one APPEND, its blobs already written."""
    row = _target(db, mailbox)
    mailbox_id = row.id
    analysis_ids = []
    for message, blob, analysis in zip(messages, stored, analysed, strict=True):
        db.ensure_blob(blob, message.source)
        analysis_ids.append(analyses.insert(db, blob.blob_id, analysis))
    keywords = db.keywords(mailbox_id)
    modseq = db.next_modseq()
    uids = list(range(row.uidnext, row.uidnext + len(messages)))
    values = []
    for uid, message, blob, analysis_id in zip(uids, messages, stored, analysis_ids, strict=True):
        bits, names = encode(message.flags, keywords, define=True)
        seconds, offset = encode_date(message.internaldate)
        text = keyword_text(names)
        size, header_size, blob_id = blob.size, blob.header_size, blob.blob_id
        values.append(
            (
                *(mailbox_id, uid, modseq, bits, text, seconds, offset),
                *(size, header_size, blob_id, analysis_id),
            )
        )
    db.conn.executemany(_INSERT, values)
    quota.check(db, limits)
    db.save_keywords(mailbox_id, keywords)
    db.set_mailbox_state(mailbox_id, highestmodseq=modseq, uidnext=uids[-1] + 1)
    info = dataclasses.replace(row.info(), uidnext=uids[-1] + 1, highestmodseq=modseq)
    return AppendResult(row.uidvalidity, uids, info)


# with_content: messages up to this size come with their bytes, up to the budget per call.
INLINE_CONTENT_MAX = 256 * 1024
INLINE_CONTENT_BUDGET = 8 * 1024 * 1024


def fetch_meta(
    db: MailDB,
    mailbox_id: int,
    uids: Sequence[int],
    with_model: bool = True,
    with_content: bool = False,
) -> list[MessageMeta]:
    columns = f"{_META_COLUMNS}, {_MODEL_COLUMNS if with_model else 'NULL, NULL'}"
    contents: dict[int, bytes] = {}
    with db.read():
        db.mailbox(mailbox_id)
        source = _WITH_ANALYSIS if with_model else "messages"
        rows = db.select_messages(columns, mailbox_id, uids, source=source)
        if with_content:
            contents = _contents(db, rows)
    decode, zone, from_timestamp = db.codec.decode, zone_of, datetime.fromtimestamp
    content_of = contents.get
    # Positional and with locals bound: this loop is most of a 100,000-message FETCH.
    # The bytes go in as the tuple is made (a ``_replace`` each cost as much again).
    metas = [
        MessageMeta(
            uid,
            decode(bits, keywords),
            modseq,
            from_timestamp(seconds, zone(offset)),
            size,
            header_size,
            blob_id,
            model,
            None if saved is None else from_timestamp(saved, UTC),
            thread,
            content_of(uid),
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
    if with_model:
        metas = _with_models(db, metas)
    return metas


def _with_models(db: MailDB, metas: list[MessageMeta]) -> list[MessageMeta]:
    """A model for each message stored without one, parsed here on the worker (not
    kept: ``analyses.backfill`` stores them before the first search)."""
    if all(meta.model is not None for meta in metas):
        return metas
    return [
        meta if meta.model is not None else meta._replace(model=analyses.model_of(db, meta.blob_id))
        for meta in metas
    ]


def _contents(db: MailDB, rows: Sequence[tuple[Any, ...]]) -> dict[int, bytes]:
    """The bytes of the small ones of ``fetch_meta``'s rows by UID, read here on the
    worker in the same job, up to ``INLINE_CONTENT_BUDGET`` in all."""
    budget = INLINE_CONTENT_BUDGET
    wanted: list[tuple[int, int, str]] = []  # uid, size, blob_id
    for row in rows:
        size = row[_SIZE_AT]
        if size <= INLINE_CONTENT_MAX and size <= budget:
            budget -= size
            wanted.append((row[_UID_AT], size, row[_BLOB_ID_AT]))
    if not wanted:
        return {}
    small = db.small_blobs([blob_id for _, size, blob_id in wanted if size <= INLINE_MAX])
    contents: dict[int, bytes] = {}
    for uid, size, blob_id in wanted:
        content = small.get(blob_id)
        if content is None:
            try:
                content = db.blobs.read_range(blob_id, 0, size)
            except FileNotFoundError:
                continue  # the reader's own read reports it
        contents[uid] = content
    return contents


def snapshot(
    db: MailDB, mailbox_id: int, claim_recent: bool, peek_recent: bool = False
) -> MailboxSnapshot:
    """SELECT's view. A write transaction only when there is \\Recent to claim (new mail
    since the last claim): then the claim and the view are one instant, so no message is
    claimed that the view does not hold. ``peek_recent`` reports the floor unclaimed."""
    with db.read():
        row = db.mailbox(mailbox_id)
        claimed = claim_recent and row.recent_floor < row.uidnext
        if not claimed:
            floor = row.recent_floor if claim_recent or peek_recent else None
            result = _snapshot(db, row, floor)
    if claimed:
        with db.write(sync=False):  # see claim_recent: a claim needs no fsync
            row = db.mailbox(mailbox_id)
            if row.recent_floor < row.uidnext:
                db.conn.execute(
                    "UPDATE mailboxes SET recent_floor = uidnext WHERE id = ?", (mailbox_id,)
                )
            result = _snapshot(db, row, row.recent_floor)
    return result


def _snapshot(db: MailDB, row: MailboxRow, recent_floor: int | None) -> MailboxSnapshot:
    first_unseen = db.conn.execute(
        # "flags & 1 = 0" exactly as in the messages_unseen index (schema.py).
        "SELECT uid FROM messages WHERE mailbox_id = ? AND flags & 1 = 0 ORDER BY uid LIMIT 1",
        (row.id,),
    ).fetchone()
    return MailboxSnapshot(
        info=row.info(),
        uids=db.uid_cache.uids(db, row),
        keywords=db.keywords(row.id).all(),
        first_unseen=None if first_unseen is None else first_unseen[0],
        recent_floor=recent_floor,
    )


# fetch_flags reads a batch as one row of whole columns: SQLite walks the messages and
# joins each column into one text, which Python splits in C. A row per message cost
# ~0.5 µs of Python each, and the GIL with it (sqlite3 gives it up and takes it back at
# every row) while the event loop serializes the batch before. A message's flags key is
# its flag bits as text ("1") or, with keywords, bits and keywords ("1 $Junk"); the
# keywords are read by a second query only when the batch has any, and the UIDs only
# when not every UID of the range exists. The joined columns are in UID order because
# the rows are read in the order of the primary key (mailbox_id, uid): NOT INDEXED keeps
# SQLite to its range scan (an aggregate has no ORDER BY in SQLite before 3.44, and
# messages_by_modseq alone covers a query of UIDs, in modseq order).
_FLAG_COLUMNS = (
    "SELECT count(*), group_concat(flags), count(nullif(keywords, '')){modseqs}"
    " FROM messages NOT INDEXED WHERE mailbox_id = ? AND uid BETWEEN ? AND ?"
)
_FLAG_UIDS = (
    "SELECT group_concat(uid) FROM messages NOT INDEXED"
    " WHERE mailbox_id = ? AND uid BETWEEN ? AND ?"
)
_FLAG_KEYWORDS = (
    "SELECT uid, keywords FROM messages"
    " WHERE mailbox_id = ? AND uid BETWEEN ? AND ? AND keywords != '' ORDER BY uid"
)
_FLAG_ROWS = "uid, CASE keywords WHEN '' THEN flags ELSE flags || ' ' || keywords END, modseq"


def fetch_flags(
    db: MailDB, mailbox_id: int, uids: Sequence[int], with_modseq: bool = True
) -> FlagRows:
    wanted = uids if isinstance(uids, range) and uids.step == 1 else sorted(set(uids))
    if not wanted or wanted[-1] - wanted[0] + 1 > 2 * len(wanted) + 64:
        # Sparse (as select_messages): a row per message, no range scan.
        with db.read():
            db.mailbox(mailbox_id)
            rows = db.select_messages(_FLAG_ROWS, mailbox_id, wanted)
        found: Sequence[int] = [uid for uid, _, _ in rows]
        keys: list[str] = [str(key) for _, key, _ in rows]
        modseqs: list[int] | None = [modseq for _, _, modseq in rows] if with_modseq else None
    else:
        found, keys, modseqs = _flag_columns(db, mailbox_id, wanted, with_modseq)
    decode = db.codec.decode
    flags: dict[Hashable, frozenset[str]] = {}
    for key in set(keys):
        bits, _, keywords = key.partition(" ")
        flags[key] = decode(int(bits), keywords)
    return FlagRows(found, keys, modseqs, flags)


def _flag_columns(
    db: MailDB, mailbox_id: int, wanted: Sequence[int], with_modseq: bool
) -> tuple[Sequence[int], list[str], list[int] | None]:
    """fetch_flags of a dense, ascending ``wanted``: one range scan."""
    low, high = wanted[0], wanted[-1]
    span = (mailbox_id, low, high)
    columns = _FLAG_COLUMNS.format(modseqs=", group_concat(modseq)" if with_modseq else "")
    with db.read():
        db.mailbox(mailbox_id)
        count, bit_text, keyworded, *modseq_text = db.conn.execute(columns, span).fetchone()
        if not count:
            return [], [], [] if with_modseq else None
        whole = count == high - low + 1
        found: Sequence[int] = (
            range(low, high + 1)
            if whole
            else json.loads(f"[{db.conn.execute(_FLAG_UIDS, span).fetchone()[0]}]")
        )
        keyword_rows = db.conn.execute(_FLAG_KEYWORDS, span).fetchall() if keyworded else []
    keys = bit_text.split(",")
    for uid, keywords in keyword_rows:
        at = uid - low if whole else bisect.bisect_left(found, uid)
        keys[at] += " " + keywords
    modseqs: list[int] | None = json.loads(f"[{modseq_text[0]}]") if with_modseq else None
    if len(wanted) != high - low + 1 and found != wanted:
        # The range scan saw messages between the wanted ones: leave them out.
        members = set(wanted)
        keep = [uid in members for uid in found]
        found = list(itertools.compress(found, keep))
        keys = list(itertools.compress(keys, keep))
        if modseqs is not None:
            modseqs = list(itertools.compress(modseqs, keep))
    return found, keys, modseqs


def claim_recent(db: MailDB, mailbox_id: int) -> int:
    """RFC 9051 §2.3.2 \\Recent: messages at or above the floor are recent for exactly
    the one session that claims them next. Unsynced (MailDB.write): a claim undone by a
    power cut only makes a message recent once more, and it cost an fsync per SELECT."""
    with db.write(sync=False):
        row = db.mailbox(mailbox_id)
        if row.recent_floor < row.uidnext:
            db.conn.execute(
                "UPDATE mailboxes SET recent_floor = uidnext WHERE id = ?", (mailbox_id,)
            )
    return row.recent_floor


def recent_floor(db: MailDB, mailbox_id: int) -> int:
    with db.read():
        return db.mailbox(mailbox_id).recent_floor


def store_flags(
    db: MailDB,
    mailbox_id: int,
    uids: Sequence[int],
    op: FlagOp,
    flags: frozenset[str],
    unchangedsince: int | None,
) -> tuple[StoreFlagsResult, list[ChangeEvent]]:
    decode = db.codec.decode
    updates: list[tuple[int, int, str]] = []
    previous: dict[int, int] = {}
    unchanged: list[FlagState] = []
    failed: list[int] = []
    events: list[ChangeEvent] = []
    with db.write(sync=db.sync_flag_changes):
        db.mailbox(mailbox_id)
        keywords = db.keywords(mailbox_id)
        wanted_bits, wanted = encode(flags, keywords, define=op is not FlagOp.REMOVE)
        rows = db.select_messages("uid, flags, keywords, modseq", mailbox_id, uids)
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
        if updates:
            modseq = db.next_modseq()
            db.conn.executemany(
                "UPDATE messages SET flags = ?, keywords = ?, modseq = ?"
                " WHERE mailbox_id = ? AND uid = ?",
                [(bits, text, modseq, mailbox_id, uid) for uid, bits, text in updates],
            )
            db.save_keywords(mailbox_id, keywords)
            db.set_mailbox_state(mailbox_id, highestmodseq=modseq)
            events.append(MailboxChanged(mailbox_id, modseq))
    updated = [FlagState(uid, decode(bits, text), modseq) for uid, bits, text in updates]
    return StoreFlagsResult(updated, unchanged, failed, previous), events


def expunge(
    db: MailDB, mailbox_id: int, uids: Sequence[int] | None
) -> tuple[list[int], list[ChangeEvent]]:
    with db.write(sync=db.sync_flag_changes):
        db.mailbox(mailbox_id)
        if uids is None:
            rows = db.conn.execute(
                "SELECT uid, blob_id FROM messages WHERE mailbox_id = ? AND flags & ? != 0"
                " ORDER BY uid",
                (mailbox_id, DELETED_BIT),
            ).fetchall()
        else:
            rows = [
                (uid, blob_id)
                for uid, blob_id, bits in db.select_messages(
                    "uid, blob_id, flags", mailbox_id, uids
                )
                if bits & DELETED_BIT
            ]
        if not rows:
            return [], []
        modseq = db.next_modseq()
        removed = [uid for uid, _ in rows]
        _remove(db, mailbox_id, removed, modseq)
    db.release_blobs(blob_id for _, blob_id in rows)
    return removed, [MailboxChanged(mailbox_id, modseq)]


def transfer(
    db: MailDB,
    source_id: int,
    uids: Sequence[int],
    dest_id: int,
    *,
    move: bool,
    limits: QuotaLimits = quota.UNLIMITED,
) -> tuple[CopyResult, list[ChangeEvent]]:
    """COPY (RFC 9051 §6.4.7) or MOVE (RFC 6851): flags and INTERNALDATE travel; UIDs
    vanished from the source are skipped; in the destination the copies are new, and
    so recent for whoever claims them. A COPY over ``limits`` is QuotaExceeded, with
    nothing copied; a MOVE is never checked (see the module docstring)."""
    with db.write():
        db.mailbox(source_id)
        dest = db.mailbox(dest_id)
        rows = db.select_messages(_COPY_COLUMNS, source_id, uids)
        if not rows:
            return CopyResult(dest.uidvalidity, [], []), []
        keywords = db.keywords(dest_id)
        modseq = db.next_modseq()
        source_uids = [row[0] for row in rows]
        dest_uids = list(range(dest.uidnext, dest.uidnext + len(rows)))
        respelled: dict[str, str] = {"": ""}
        values = []
        for new_uid, (_, bits, text, *rest) in zip(dest_uids, rows, strict=True):
            spelling = respelled.get(text)
            if spelling is None:
                spelling = respelled[text] = _respell(text, keywords)
            values.append((dest_id, new_uid, modseq, bits, spelling, *rest))
        db.conn.executemany(_INSERT, values)
        if not move:
            quota.check(db, limits)
        db.save_keywords(dest_id, keywords)
        db.set_mailbox_state(dest_id, highestmodseq=modseq, uidnext=dest_uids[-1] + 1)
        events: list[ChangeEvent] = [MailboxChanged(dest_id, modseq)]
        if move:
            _remove(db, source_id, source_uids, modseq)
            if source_id != dest_id:
                events.append(MailboxChanged(source_id, modseq))
    return CopyResult(dest.uidvalidity, source_uids, dest_uids), events


def changes_since(db: MailDB, mailbox_id: int, modseq: int) -> MailboxChanges:
    decode = db.codec.decode
    with db.read():
        row = db.mailbox(mailbox_id)
        keywords = db.keywords(mailbox_id).all()
        if modseq >= row.highestmodseq:  # the common IDLE/NOOP answer: nothing
            return MailboxChanges(row.highestmodseq, row.uidnext, [], [], keywords)
        changed = db.conn.execute(
            "SELECT uid, flags, keywords, modseq FROM messages"
            " WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
            (mailbox_id, modseq),
        ).fetchall()
        expunged = db.conn.execute(
            "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
            (mailbox_id, modseq),
        ).fetchall()
    return MailboxChanges(
        highestmodseq=row.highestmodseq,
        uidnext=row.uidnext,
        changed=[FlagState(uid, decode(bits, text), m) for uid, bits, text, m in changed],
        expunged=[uid for (uid,) in expunged],
        keywords=keywords,
    )


def _remove(db: MailDB, mailbox_id: int, uids: list[int], modseq: int) -> None:
    """Delete messages and log their expunge; the caller releases their blobs."""
    listed = json.dumps(uids)
    db.conn.execute(
        "DELETE FROM messages WHERE mailbox_id = ? AND uid IN (SELECT value FROM json_each(?))",
        (mailbox_id, listed),
    )
    db.conn.execute(
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
        " SELECT ?, value, ? FROM json_each(?)",
        (mailbox_id, modseq, listed),
    )
    db.set_mailbox_state(mailbox_id, highestmodseq=modseq)


def _respell(text: str, keywords: Keywords) -> str:
    return keyword_text(keywords.spell(name, define=True) for name in text.split())
