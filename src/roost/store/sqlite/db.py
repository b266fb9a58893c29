"""One account's open database and message files, used only on its worker thread.

The low level: connection, transactions, counters, rows and blob bytes. It knows nothing
of analyses, search or the UID cache; ``mail_db.MailDB`` adds those on top.

Invariants:

* Every change runs in ``write()``: BEGIN IMMEDIATE … COMMIT, rolled back on any error.
  Reads that need a consistent view across statements run in ``read()``.
* Blob lifetime: a message of up to ``INLINE_MAX`` bytes that arrived in memory is kept
  in ``blob_data``, written in the transaction that references it. Any other blob is
  a file, written (durably) before that transaction and re-checked inside it. A blob
  is removed (mail_db.py) only inside a write transaction that finds no message
  referring to it, after the commit that removed the last reference. Holding the write lock for both
  makes that safe against other processes.
* A full disk (ENOSPC, SQLITE_FULL) surfaces as StorageFull after rollback.
* Writers of one account take turns on ``writers.lock`` (flock) before SQLite's own
  write lock. Only for speed: SQLite's busy handler retries after 1, 2, 5, 10 … 100 ms
  and is not fair, so with the sessions of one account spread over several worker
  processes a writer could sleep through many others' commits (the mixed benchmark with
  100 clients had 0.3-0.5 s per command and idle CPUs); a kernel lock wakes the next
  writer as soon as the last one is done. Correctness never rests on it: a process
  that does not take it (a migration, a tool) is still serialised by SQLite.
* Waiting for another process's turn (the flock, then SQLite's lock) ends after
  ``busy_timeout`` seconds with StoreBusy and nothing changed: a process that holds the
  lock and stops (SIGSTOP, a stuck loop) makes the account's writes elsewhere fail with
  ``NO [UNAVAILABLE]``, not hang, until the supervisor replaces it. The flock is polled
  (non-blocking, every 0.5 ms growing to 5 ms): a blocking flock cannot time out.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Self

from roost.mime.parse import DEFAULT_LIMITS as DEFAULT_MIME_LIMITS
from roost.mime.parse import MimeLimits
from roost.store.blobs import NO_SPACE_ERRNOS, BlobStore, StoredBlob, describe
from roost.store.errors import NoSuchMailbox, StorageFull, StoreBusy
from roost.store.sqlite.flags import FlagCodec, Keywords
from roost.store.sqlite.schema import (
    ACCOUNT_MIGRATIONS,
    DEFAULT_BUSY_TIMEOUT,
    connect,
    migrate,
)
from roost.store.values import MailboxInfo, MessageSource

WRITERS_LOCK = "writers.lock"
UIDVALIDITY_MAX = 0xFFFFFFFF
# Messages up to this size that arrive in memory are stored in the database (blob_data):
# most mail, durable with the one WAL fsync of its transaction instead of three (file,
# directory, WAL). Larger ones arrive spooled to a file and are kept as files.
INLINE_MAX = 64 * 1024
# Up to this many values an IN list takes one parameter each (SQLite allows 32,766).
_IN_PARAMETERS = 500

MAILBOX_COLUMNS = (
    "id, name, uidvalidity, uidnext, highestmodseq, special_use, noselect, recent_floor"
)


class MailboxRow(NamedTuple):
    id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    noselect: int
    recent_floor: int

    def info(self) -> MailboxInfo:
        return MailboxInfo(
            id=self.id,
            name=self.name,
            uidvalidity=self.uidvalidity,
            uidnext=self.uidnext,
            highestmodseq=self.highestmodseq,
            special_use=self.special_use,
            noselect=bool(self.noselect),
        )


class Database:
    def __init__(
        self,
        conn: sqlite3.Connection,
        blobs: BlobStore,
        writers: int | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        mime_limits: MimeLimits = DEFAULT_MIME_LIMITS,
    ) -> None:
        self.conn = conn
        self.busy_timeout = busy_timeout
        self.mime_limits = mime_limits  # how deep analysis parses a message
        self.blobs = blobs
        self._writers = writers  # descriptor of the writers' turn lock (see ``write``)
        self.codec = FlagCodec()
        self.analyzed = False  # backfill of analyses found nothing left to do
        self.reindexed = False  # reindex_text of search texts found nothing left to do
        self.queued_texts = 0  # texts queued for the index here since it last indexed
        # [store] fsync = "optimized": flag changes and expunges commit without an
        # fsync (``write(sync=self.sync_flag_changes)``); see ``write``.
        self.sync_flag_changes = True

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        durable: bool,
        create: bool = False,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        mime_limits: MimeLimits = DEFAULT_MIME_LIMITS,
    ) -> Self:
        """Open (or with ``create``, create) the account stored in ``directory``."""
        if create:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            for sub in ("blobs", "tmp"):
                (directory / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = connect(
            directory / "mail.db", durable=durable, create=create, busy_timeout=busy_timeout
        )
        writers: int | None = None
        try:
            migrate(conn, ACCOUNT_MIGRATIONS)
            writers = os.open(
                directory / WRITERS_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
        except BaseException:
            conn.close()
            raise
        blobs = BlobStore(directory / "blobs", directory / "tmp", durable=durable)
        return cls(conn, blobs, writers, busy_timeout, mime_limits)

    def close(self) -> None:
        self.conn.close()
        if self._writers is not None:
            os.close(self._writers)
            self._writers = None

    # ---- transactions --------------------------------------------------------------

    @contextlib.contextmanager
    def write(self, *, sync: bool = True, wait: bool = True) -> Iterator[None]:
        """A write transaction. ``sync=False`` commits without waiting for the disk, for
        bookkeeping a power cut may undo harmlessly (\\Recent claims, forgetting what was
        already unreferenced) and, with ``[store] fsync = "optimized"``, flag changes and
        expunges: the write-ahead log keeps commits in order, so a power cut can undo it
        only together with every commit after it, and the next synced commit makes it
        durable too. A crash of the process alone loses no commit either way (the WAL is
        written before COMMIT returns; only the fsync is skipped). ``wait=False``:
        BlockingIOError at once when another process is writing, instead of waiting for
        its turn."""
        unsynced = not sync and self.blobs.durable
        if unsynced:  # SQLite refuses to change this inside a transaction
            self.conn.execute("PRAGMA synchronous = NORMAL")
        writers = self._writers
        locked = False
        try:
            if writers is not None:
                if wait:
                    self._take_turn(writers)
                else:
                    fcntl.flock(writers, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if wait and exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                    raise StoreBusy(
                        "the account is being written by a process that does not finish"
                    ) from exc
                raise
            try:
                yield
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        finally:
            if locked:
                assert writers is not None
                fcntl.flock(writers, fcntl.LOCK_UN)
            if unsynced:
                self.conn.execute("PRAGMA synchronous = FULL")

    def _take_turn(self, writers: int) -> None:
        """The writers' flock, waiting at most ``busy_timeout`` seconds (StoreBusy)."""
        delay = 0.0005
        deadline: float | None = None
        while True:
            try:
                fcntl.flock(writers, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.busy_timeout
            elif now >= deadline:
                raise StoreBusy("another process holds the account's write lock")
            time.sleep(delay)
            delay = min(delay * 2, 0.005)

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    # ---- counters and rows ---------------------------------------------------------

    def next_modseq(self) -> int:
        modseq: int = self.conn.execute(
            "UPDATE counters SET modseq = modseq + 1 WHERE id = 0 RETURNING modseq"
        ).fetchall()[0][0]
        return modseq

    def current_modseq(self) -> int:
        return self.scalar("SELECT modseq FROM counters WHERE id = 0")

    def next_uidvalidity(self) -> int:
        """A fresh UIDVALIDITY: above every earlier one and at least the current time, so
        a mailbox deleted and created again never gets its old value back."""
        last = self.last_uidvalidity()
        value = max(last + 1, int(time.time()))
        if value > UIDVALIDITY_MAX:  # after 2106: wrap; uniqueness then rests on time
            value = 1 + value % UIDVALIDITY_MAX
        self.conn.execute("UPDATE counters SET uidvalidity = ? WHERE id = 0", (value,))
        return value

    def seed_uidvalidity(self, floor: int) -> None:
        self.conn.execute(
            "UPDATE counters SET uidvalidity = max(uidvalidity, ?) WHERE id = 0", (floor,)
        )

    def last_uidvalidity(self) -> int:
        return self.scalar("SELECT uidvalidity FROM counters WHERE id = 0")

    def scalar(self, sql: str, params: tuple[object, ...] = ()) -> int:
        value: int = self.conn.execute(sql, params).fetchone()[0]
        return value

    def mailbox(self, mailbox_id: int, *, selectable: bool = True) -> MailboxRow:
        """The mailbox's row; NoSuchMailbox if absent (or a placeholder, when
        ``selectable``: no message lives in a \\Noselect mailbox)."""
        row = self.conn.execute(
            f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?", (mailbox_id,)
        ).fetchone()
        if row is None or (selectable and row[6]):
            raise NoSuchMailbox(f"no mailbox with id {mailbox_id}")
        return MailboxRow(*row)

    def mailbox_by_name(self, name: str) -> MailboxRow | None:
        row = self.conn.execute(
            f"SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else MailboxRow(*row)

    def set_mailbox_state(
        self, mailbox_id: int, *, highestmodseq: int, uidnext: int | None = None
    ) -> None:
        if uidnext is None:
            self.conn.execute(
                "UPDATE mailboxes SET highestmodseq = ? WHERE id = ?",
                (highestmodseq, mailbox_id),
            )
        else:
            self.conn.execute(
                "UPDATE mailboxes SET highestmodseq = ?, uidnext = ? WHERE id = ?",
                (highestmodseq, uidnext, mailbox_id),
            )

    def keywords(self, mailbox_id: int) -> Keywords:
        rows = self.conn.execute("SELECT name FROM keywords WHERE mailbox_id = ?", (mailbox_id,))
        return Keywords(name for (name,) in rows)

    def save_keywords(self, mailbox_id: int, keywords: Keywords) -> None:
        if keywords.added:
            self.conn.executemany(
                "INSERT OR IGNORE INTO keywords (mailbox_id, name) VALUES (?, ?)",
                [(mailbox_id, name) for name in keywords.added],
            )
            keywords.added.clear()

    def select_messages(
        self, columns: str, mailbox_id: int, uids: Sequence[int], *, source: str = "messages"
    ) -> list[tuple[Any, ...]]:
        """Rows of those ``uids`` that exist, ascending UID; ``columns`` starts with uid.
        ``source``: the messages table, or a join of it that adds columns.

        Dense UID sets are one range scan filtered here; sparse ones one IN over a JSON
        array, so even 100,000 UIDs are a single query either way.
        """
        if not uids:
            return []
        base = f"SELECT {columns} FROM {source} WHERE mailbox_id = ?"
        if isinstance(uids, range) and uids.step == 1:
            return self.conn.execute(
                f"{base} AND uid BETWEEN ? AND ? ORDER BY uid", (mailbox_id, uids[0], uids[-1])
            ).fetchall()
        wanted = sorted(set(uids))
        low, high = wanted[0], wanted[-1]
        span = high - low + 1
        if span <= 2 * len(wanted) + 64:
            rows = self.conn.execute(
                f"{base} AND uid BETWEEN ? AND ? ORDER BY uid", (mailbox_id, low, high)
            ).fetchall()
            if span == len(wanted):
                return rows
            members = set(wanted)
            return [row for row in rows if row[0] in members]
        return self.conn.execute(
            f"{base} AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid",
            (mailbox_id, json.dumps(wanted)),
        ).fetchall()

    # ---- blobs -------------------------------------------------------------------

    def put_blobs(self, sources: Sequence[MessageSource]) -> list[StoredBlob]:
        """Before the transaction that refers to them: write the blobs that are files
        (durably); the others are only described, and ``ensure_blob`` stores them."""
        stored: list[StoredBlob | None] = [
            None if (data := _inline_data(source)) is None else describe(data) for source in sources
        ]
        if files := [source for source, blob in zip(sources, stored, strict=True) if blob is None]:
            written = iter(self.blobs.put_many(files))
            stored = [next(written) if blob is None else blob for blob in stored]
        return [blob for blob in stored if blob is not None]

    def ensure_blob(self, blob: StoredBlob, source: MessageSource) -> None:
        """Inside a write transaction: store a small blob, or make sure a blob file
        written before it still exists (another process may have collected it as an
        orphan in between)."""
        if (data := _inline_data(source)) is not None:
            self.conn.execute(
                "INSERT OR IGNORE INTO blob_data (blob_id, data) VALUES (?, ?)",
                (blob.blob_id, data),
            )
        elif not self.blobs.exists(blob.blob_id):
            self.blobs.put(source)

    def open_blob(self, blob_id: str) -> BinaryIO:
        """A blob's bytes from the start; FileNotFoundError if it is in neither place."""
        data = self._small_blob(blob_id)
        return self.blobs.open(blob_id) if data is None else io.BytesIO(data)

    def read_blob(self, blob_id: str, start: int, length: int) -> bytes:
        """``length`` bytes of a blob from ``start`` (fewer at its end)."""
        if start < 0 or length < 0:
            raise ValueError("negative offset or length")
        row = self.conn.execute(
            "SELECT substr(data, ?, ?) FROM blob_data WHERE blob_id = ?",
            (start + 1, length, blob_id),
        ).fetchone()
        if row is not None:
            return bytes(row[0])
        return self.blobs.read_range(blob_id, start, length)

    def small_blobs(self, blob_ids: Sequence[str]) -> dict[str, bytes]:
        """The bytes of those of ``blob_ids`` kept in the database, in one query: one
        parameter each for a batch (cheaper than a JSON array to take apart), the JSON
        array beyond that."""
        if len(blob_ids) <= _IN_PARAMETERS:
            marks = ",".join("?" * len(blob_ids))
            query = f"SELECT blob_id, data FROM blob_data WHERE blob_id IN ({marks})"
            return dict(self.conn.execute(query, tuple(blob_ids)).fetchall())
        return dict(
            self.conn.execute(
                "SELECT blob_id, data FROM blob_data"
                " WHERE blob_id IN (SELECT value FROM json_each(?))",
                (json.dumps(list(blob_ids)),),
            ).fetchall()
        )

    def blob_source(self, blob_id: str) -> MessageSource:
        """A stored blob to read again whole (analysis of messages stored before it)."""
        data = self._small_blob(blob_id)
        if data is None:
            return MessageSource(path=self.blobs.path(blob_id))
        return MessageSource(data=data)

    def _small_blob(self, blob_id: str) -> bytes | None:
        row = self.conn.execute(
            "SELECT data FROM blob_data WHERE blob_id = ?", (blob_id,)
        ).fetchone()
        return None if row is None else bytes(row[0])


def _inline_data(source: MessageSource) -> bytes | None:
    """A message's bytes if they are kept in ``blob_data``; None if they go to a file."""
    if source.data is not None and len(source.data) <= INLINE_MAX:
        return source.data
    return None


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Turn a full disk into StorageFull (the transaction is already rolled back)."""
    try:
        yield
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL:
            raise StorageFull(str(exc)) from exc
        raise
    except OSError as exc:
        if exc.errno in NO_SPACE_ERRNOS:
            raise StorageFull(str(exc)) from exc
        raise


# ---- dates ------------------------------------------------------------------------


def encode_date(value: datetime | None) -> tuple[int, int]:
    """(epoch seconds, minutes east of UTC); None is now. Kept to the second."""
    if value is None:
        value = datetime.now(UTC)
    offset = value.utcoffset()
    if offset is None:  # naive: take it as UTC
        value = value.replace(tzinfo=UTC)
        offset = timedelta(0)
    return int(value.timestamp()), int(offset.total_seconds()) // 60


def zone_of(offset_minutes: int) -> timezone:
    """The timezone of a stored offset (one shared object per offset)."""
    zone = _ZONES.get(offset_minutes)
    if zone is None:
        zone = _ZONES[offset_minutes] = timezone(timedelta(minutes=offset_minutes))
    return zone


_ZONES: dict[int, timezone] = {0: UTC}
