"""What delivery computes about a message file, kept in mail.db (run on the worker).

A message is analysed once (``roost.mime.analyze``), before the transaction that
stores it, and the result is keyed by its blob: every message with the same content —
copies, moves, the same mail delivered twice — shares one ``analyses`` row and one
``message_text`` row (the FTS5 index), so COPY and MOVE never parse again.

Invariants:

* ``analyses.id`` equals the ``message_text`` rowid of the same blob — or, until it
  is indexed, the ``text_pending`` id: delivery queues the text there, because FTS5
  writes a fresh index segment per transaction (about three quarters of a small
  APPEND's database work). Queued texts enter the index ``INDEX_BATCH`` at a time,
  and always before a search reads (``indexed_read``), so no search misses one.
* An analysis and its text are written and removed together, inside write
  transactions.
* A blob's rows are removed where the blob file is (``MailDB.release_blobs``,
  mail_db.py), under the same write lock, but at most ``FORGET_BATCH`` at a time:
  taking a document out of the trigram index costs about half a millisecond, and
  emptying a 100,000-message Trash must not hold up its EXPUNGE for a minute. The
  rest stay behind unreachable (search starts from messages, so they never match; an
  APPEND of the same content reuses them) until the sweep at the next open,
  ``ORPHANS_PER_SWEEP`` at a time.
* Messages stored before analyses existed are analysed from their files by
  ``backfill`` before the first search; ``counters.unanalyzed`` says one is due.
* When what goes into the search text or the address sort keys changes, a migration
  sets ``counters.reindex_below`` to just past the newest analysis; ``reindex_text``
  remakes the text and those keys of every older one from its file (keeping its id,
  so thread ids and the index stay consistent) before the next search, newest first,
  and lowers the mark as it goes; 0 means every analysis is current.
* The indexed text of one message is bounded (``MAX_*_CHARS``): a huge text part
  cannot stall the account's worker, at the price of not finding words past the bound.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from roost.mime.analysis import Analysis
from roost.mime.analyze import analyze
from roost.mime.casemap import casemap
from roost.mime.limits import MessageBytes
from roost.mime.model import MessageModel
from roost.mime.parse import DEFAULT_LIMITS as DEFAULT_MIME_LIMITS
from roost.mime.parse import MimeLimits
from roost.store.values import MessageSource

if TYPE_CHECKING:
    from roost.store.sqlite.db import Database

log = logging.getLogger(__name__)
_T = TypeVar("_T")

MAX_BODY_CHARS = 1 << 20  # decoded body text indexed per message
MAX_HEADER_CHARS = 1 << 18  # decoded header text indexed per message
BACKFILL_BATCH = 200  # messages analysed per write transaction while backfilling
FORGET_BATCH = 500  # analyses removed with their blobs in one release
ORPHANS_PER_SWEEP = 5_000  # leftover analyses removed at one open
INDEX_BATCH = 64  # queued texts that make a delivery index them (per connection)
INDEX_CHUNK = 1_000  # queued texts indexed per write transaction
_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()

_INSERT_ANALYSIS = (
    "INSERT INTO analyses (blob_id, model, sent_date, sent_day, message_id, in_reply_to,"
    " refs, sort_subject, sort_from, sort_to, sort_cc, display_from, display_to, preview)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (blob_id) DO NOTHING RETURNING id"
)
_STILL_THERE = "SELECT 1 FROM analyses WHERE id = ? AND blob_id = ?"
_UPDATE_SORT_KEYS = (
    "UPDATE analyses SET sort_subject = ?, sort_from = ?, sort_to = ?, sort_cc = ?,"
    " display_from = ?, display_to = ?, preview = ? WHERE id = ?"
)
_TEXT_COLUMNS = "header, body, subject, addr_from, addr_to, addr_cc, addr_bcc"
_QUEUE_TEXT = f"INSERT INTO text_pending (id, {_TEXT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INDEX_QUEUED = (
    f"INSERT INTO message_text (rowid, {_TEXT_COLUMNS})"
    f" SELECT id, {_TEXT_COLUMNS} FROM text_pending WHERE id <= ?"
)


@dataclass(frozen=True, slots=True)
class AnalysisRow:
    """One analysis as the two tables store it."""

    columns: tuple[object, ...]  # analyses, after blob_id
    texts: tuple[str, ...]  # message_text, after rowid


EMPTY_ROW = AnalysisRow((None, None, None, "", "", "", "", "", "", "", "", "", ""), ("",) * 7)


def row_of(analysis: Analysis) -> AnalysisRow:
    sent = analysis.sent_date
    sent_date: int | None = None
    sent_day: int | None = None
    if sent is not None:
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
        sent_date = int(sent.timestamp())
        sent_day = sent.date().toordinal() - _EPOCH_ORDINAL  # the header's own day
    columns = (
        analysis.model,
        sent_date,
        sent_day,
        _clean(analysis.message_id),
        _clean(analysis.in_reply_to),
        _clean("\n".join(analysis.references)),
        # SORT keys and search text in i;unicode-casemap form (RFC 5255 I18NLEVEL=1):
        # ordered by their octets, matched against needles mapped alike.
        casemap(_clean(analysis.sort_subject)),
        casemap(_clean(analysis.sort_from)),
        casemap(_clean(analysis.sort_to)),
        casemap(_clean(analysis.sort_cc)),
        casemap(_clean(analysis.display_from)),
        casemap(_clean(analysis.display_to)),
        _clean(analysis.preview),
    )
    texts = (
        casemap(_clean(analysis.header_text, MAX_HEADER_CHARS)),
        casemap(_clean(analysis.body_text, MAX_BODY_CHARS)),
        casemap(_clean(analysis.subject)),
        casemap(_clean(analysis.from_addresses)),
        casemap(_clean(analysis.to_addresses)),
        casemap(_clean(analysis.cc_addresses)),
        casemap(_clean(analysis.bcc_addresses)),
    )
    return AnalysisRow(columns, texts)


def _clean(text: str, limit: int = MAX_HEADER_CHARS) -> str:
    """Bounded, and encodable: lone surrogates (undecodable bytes) become U+FFFD."""
    if len(text) > limit:
        text = text[:limit]
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def compute(source: MessageSource, limits: MimeLimits = DEFAULT_MIME_LIMITS) -> AnalysisRow:
    """Analyse a message about to be stored. Never raises for the message's content:
    a failure is logged (it is a bug) and the message is stored without analysis."""
    try:
        if source.data is not None:
            return row_of(analyze(source.data, limits))
        assert source.path is not None
        return compute_file(source.path, limits)
    except Exception:
        log.exception("message analysis failed; stored without it")
        return EMPTY_ROW


def compute_file(path: Path, limits: MimeLimits = DEFAULT_MIME_LIMITS) -> AnalysisRow:
    """Analyse a message file through a read-only mapping (never read whole into memory)."""
    return with_mapping(path, lambda data: row_of(analyze(data, limits)))


def with_mapping(path: Path, use: Callable[[MessageBytes], _T]) -> _T:
    """``use`` applied to the file's bytes through a read-only mapping: the mapping
    itself, not a copy, since analysis reads only what it keeps (roost.mime.limits),
    so a 50 MB message costs its limits, not 50 MB."""
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return use(b"")
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return use(mapped)
        finally:
            with contextlib.suppress(BufferError):  # a view still held: freed with it
                mapped.close()


def model_of(db: Database, blob_id: str) -> bytes | None:
    """On the worker: the MIME model of a stored message that has none (stored before
    analyses existed, or its analysis failed), so that FETCH never parses on the event
    loop. None when the file is gone or parsing fails (logged: a bug)."""
    try:
        source = db.blob_source(blob_id)
        if source.data is not None:
            return MessageModel.from_message(source.data).to_blob()
        assert source.path is not None
        return with_mapping(source.path, lambda data: MessageModel.from_message(data).to_blob())
    except FileNotFoundError:
        return None
    except Exception:
        log.exception("MIME model of stored message %s failed", blob_id)
        return None


def insert(db: Database, blob_id: str, row: AnalysisRow) -> int:
    """Inside a write transaction: record ``row`` for ``blob_id`` unless it has one;
    its text waits in ``text_pending`` (see ``index_queued``). Returns the id of the
    blob's analysis (``messages.analysis_id``)."""
    inserted = db.conn.execute(_INSERT_ANALYSIS, (blob_id, *row.columns)).fetchall()
    if not inserted:
        found = db.conn.execute("SELECT id FROM analyses WHERE blob_id = ?", (blob_id,))
        return int(found.fetchone()[0])
    analysis_id = int(inserted[0][0])
    db.conn.execute(_QUEUE_TEXT, (analysis_id, *row.texts))
    db.queued_texts += 1
    db.conn.execute(
        "UPDATE analyses SET thread_id = ? WHERE id = ?",
        (_thread_of(db, row) or analysis_id, analysis_id),
    )
    return analysis_id


def _thread_of(db: Database, row: AnalysisRow) -> int | None:
    """The thread of the nearest ancestor already stored (RFC 8474 THREADID): the
    In-Reply-To parent first, then References from the newest back to the root."""
    message_id, in_reply_to, refs = row.columns[3], row.columns[4], row.columns[5]
    assert isinstance(in_reply_to, str) and isinstance(refs, str)
    ancestors = [in_reply_to, *reversed(refs.split("\n"))]
    for parent in ancestors:
        if parent and parent != message_id:
            found = db.conn.execute(
                # "!= ''" lets SQLite use the partial index analyses_by_message_id.
                "SELECT thread_id FROM analyses WHERE message_id = ? AND message_id != ''"
                " AND thread_id IS NOT NULL LIMIT 1",
                (parent,),
            ).fetchone()
            if found is not None:
                return int(found[0])
    return None


def forget(db: Database, blob_ids: Sequence[str]) -> None:
    """Inside a write transaction: remove the rows of ``blob_ids``."""
    if not blob_ids:
        return
    listed = json.dumps(list(blob_ids))
    for table, key in (("message_text", "rowid"), ("text_pending", "id")):
        db.conn.execute(
            f"DELETE FROM {table} WHERE {key} IN"
            " (SELECT id FROM analyses WHERE blob_id IN (SELECT value FROM json_each(?)))",
            (listed,),
        )
    db.conn.execute(
        "DELETE FROM analyses WHERE blob_id IN (SELECT value FROM json_each(?))", (listed,)
    )


def forget_orphans(db: Database, limit: int = ORPHANS_PER_SWEEP) -> None:
    """Inside a write transaction: remove up to ``limit`` rows no message refers to."""
    orphans = [
        blob_id
        for (blob_id,) in db.conn.execute(
            "SELECT blob_id FROM analyses a WHERE NOT EXISTS"
            " (SELECT 1 FROM messages m WHERE m.blob_id = a.blob_id) LIMIT ?",
            (limit,),
        )
    ]
    forget(db, orphans)


def index_queued(db: Database) -> None:
    """Move the texts waiting in ``text_pending`` into the FTS5 index, oldest first,
    ``INDEX_CHUNK`` per write transaction. Unsynced: the texts were committed durably
    to ``text_pending``, and a move lost to a power cut is undone whole and made again."""
    while True:
        with db.write(sync=False):
            last = db.conn.execute(
                "SELECT max(id) FROM (SELECT id FROM text_pending ORDER BY id LIMIT ?)",
                (INDEX_CHUNK,),
            ).fetchone()[0]
            if last is not None:
                db.conn.execute(_INDEX_QUEUED, (last,))
                db.conn.execute("DELETE FROM text_pending WHERE id <= ?", (last,))
        if last is None:
            break
    db.queued_texts = 0


def index_if_due(db: Database) -> None:
    """After a delivery's commit: index the queued texts once ``INDEX_BATCH`` have
    gathered. Never raises — the delivery is already acknowledged; a failure is logged
    and the texts wait for the next attempt (a search makes one)."""
    if db.queued_texts < INDEX_BATCH:
        return
    try:
        index_queued(db)
    except Exception:
        log.warning("could not index queued message texts; will retry", exc_info=True)


@contextlib.contextmanager
def indexed_read(db: Database) -> Iterator[None]:
    """A read transaction in which every stored analysis is in the FTS5 index.

    Texts queued by this or another process are indexed first; if another process
    queues more before the read begins, index and look again.
    """
    backfill(db)
    reindex_text(db)
    while True:
        with db.read():
            if db.conn.execute("SELECT 1 FROM text_pending LIMIT 1").fetchone() is None:
                yield
                return
        index_queued(db)


def backfill(db: Database) -> None:
    """Analyse messages stored before analyses existed, in batches; then clear
    ``counters.unanalyzed``. Cheap when there is nothing to do (remembered per
    connection)."""
    if db.analyzed:
        return
    if not db.scalar("SELECT unanalyzed FROM counters WHERE id = 0"):
        db.analyzed = True
        return
    while True:
        with db.read():
            missing = [
                blob_id
                for (blob_id,) in db.conn.execute(
                    "SELECT DISTINCT blob_id FROM messages m WHERE NOT EXISTS"
                    " (SELECT 1 FROM analyses a WHERE a.blob_id = m.blob_id) LIMIT ?",
                    (BACKFILL_BATCH,),
                )
            ]
        if not missing:
            break
        rows = list(_analyse_stored(db, missing))
        with db.write():
            for blob_id, row in rows:
                db.conn.execute(
                    "UPDATE messages SET analysis_id = ? WHERE blob_id = ?",
                    (insert(db, blob_id, row), blob_id),
                )
    with db.write():
        db.conn.execute("UPDATE counters SET unanalyzed = 0 WHERE id = 0")
    db.analyzed = True


def reindex_text(db: Database) -> None:
    """Remake the search text and address sort keys of analyses made before they last
    changed (below ``counters.reindex_below``), ``BACKFILL_BATCH`` per write
    transaction: the new text is queued in ``text_pending`` under the same id and
    indexed like a delivery's. Cheap when there is nothing to do (remembered per
    connection)."""
    if db.reindexed:
        return
    while below := db.scalar("SELECT reindex_below FROM counters WHERE id = 0"):
        with db.read():
            batch = db.conn.execute(
                "SELECT id, blob_id FROM analyses a WHERE id < ? AND EXISTS"
                " (SELECT 1 FROM messages m WHERE m.blob_id = a.blob_id)"
                " ORDER BY id DESC LIMIT ?",
                (below, BACKFILL_BATCH),
            ).fetchall()
        ids = dict((blob_id, analysis_id) for analysis_id, blob_id in batch)
        rows = list(_analyse_stored(db, ids))
        with db.write():
            for blob_id, row in rows:
                analysis_id = ids[blob_id]
                if db.conn.execute(_STILL_THERE, (analysis_id, blob_id)).fetchone() is None:
                    continue  # forgotten with its last message meanwhile
                if row is not EMPTY_ROW:
                    db.conn.execute(_UPDATE_SORT_KEYS, (*row.columns[6:13], analysis_id))
                db.conn.execute("DELETE FROM message_text WHERE rowid = ?", (analysis_id,))
                db.conn.execute(
                    f"INSERT OR REPLACE INTO text_pending (id, {_TEXT_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (analysis_id, *row.texts),
                )
            lowest = min(ids.values(), default=0)
            db.conn.execute(
                "UPDATE counters SET reindex_below = min(reindex_below, ?) WHERE id = 0",
                (lowest,),
            )
    db.reindexed = True


_UPDATE_ANALYSIS = (
    "UPDATE analyses SET model = ?, sent_date = ?, sent_day = ?, message_id = ?,"
    " in_reply_to = ?, refs = ?, sort_subject = ?, sort_from = ?, sort_to = ?, sort_cc = ?,"
    " display_from = ?, display_to = ?, preview = ? WHERE id = ?"
)


def rebuild(db: Database) -> int:
    """``roost index rebuild``: analyse every stored message again from its file and
    put its text in the index afresh; then analyse any message that has none. Ids and
    thread ids stay (RFC 8474: a THREADID does not change). Batches of
    ``BACKFILL_BATCH``, each its own write transaction with the text queued, so a
    search meanwhile finds each message either as before or as rebuilt. Returns the
    number of analyses now stored."""
    last = 0
    while True:
        with db.read():
            batch = db.conn.execute(
                "SELECT id, blob_id FROM analyses WHERE id > ? ORDER BY id LIMIT ?",
                (last, BACKFILL_BATCH),
            ).fetchall()
        if not batch:
            break
        rows = dict(_analyse_stored(db, [blob_id for _, blob_id in batch]))
        with db.write():
            for analysis_id, blob_id in batch:
                row = rows[blob_id]
                db.conn.execute(_UPDATE_ANALYSIS, (*row.columns, analysis_id))
                db.conn.execute("DELETE FROM message_text WHERE rowid = ?", (analysis_id,))
                db.conn.execute("DELETE FROM text_pending WHERE id = ?", (analysis_id,))
                db.conn.execute(_QUEUE_TEXT, (analysis_id, *row.texts))
        last = batch[-1][0]
        index_queued(db)
    with db.write():
        db.conn.execute("UPDATE counters SET unanalyzed = 1 WHERE id = 0")
    db.analyzed = False
    backfill(db)
    index_queued(db)
    return int(db.scalar("SELECT count(*) FROM analyses"))


def _analyse_stored(db: Database, blob_ids: Iterable[str]) -> Iterable[tuple[str, AnalysisRow]]:
    for blob_id in blob_ids:
        try:
            source = db.blob_source(blob_id)
            if source.data is not None:
                yield blob_id, row_of(analyze(source.data, db.mime_limits))
            else:
                assert source.path is not None
                yield blob_id, compute_file(source.path, db.mime_limits)
        except FileNotFoundError:
            log.warning("message file %s is gone; indexed without text", blob_id)
            yield blob_id, EMPTY_ROW
        except Exception:
            log.exception("analysis of stored message %s failed", blob_id)
            yield blob_id, EMPTY_ROW
