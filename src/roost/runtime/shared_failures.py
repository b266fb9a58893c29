"""Failed sign-ins shared by the worker processes of one server (``throttle.SharedFailures``).

One small SQLite file in the run directory, ``data_dir/run/sign-in-failures.db``, that
every worker opens: a failure counted by one worker counts in all, so ``roost serve
--workers N`` allows a guesser the same number of attempts as one process. Times are
wall-clock epoch seconds, so a failure keeps counting across a restart of the server
for the rest of its window. Rows are dropped once their window has passed. A crash may
lose the last failures (``synchronous = OFF``): the throttle slows guessing, it is not
a record. With the PostgreSQL backend the same interface goes to a table there.

Writes run in a thread: the event loop never waits on the file's lock. Each process
keeps one connection for them (used by one thread at a time, under a lock): a new
connection per sign-in cost a file open and a journal-mode query each time. The count
that every sign-in asks for is read on the event loop, through a second, read-only
connection that never waits (busy timeout 0): in WAL mode a reader is not blocked by
writers, the file is small and hot, and the read costs ~10 µs where a trip through a
thread cost ~50 µs of CPU. In the rare case SQLite answers "busy" (another process
recovering the WAL index), that one count is read in a thread instead, waiting as the
writes do.

Workers start together and may find the file new at the same instant: setting WAL and
creating the table are retried while another process holds the lock (SQLite answers a
journal mode change with "database is locked" at once, without waiting).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")

# Rows older than this are deleted as failures are added (the longest window one
# would configure; a row past its own window no longer counts anyway).
_KEEP = 86400.0
_LOCKED_FOR = 10.0  # seconds to go on retrying a "database is locked" set-up step


def _when_unlocked(step: Callable[[], _T]) -> _T:
    """``step``, retried while another process holds the lock (set-up only)."""
    deadline = time.monotonic() + _LOCKED_FOR
    while True:
        try:
            return step()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SqliteSharedFailures:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        # 0600 whatever the umask; SQLite gives its -wal and -shm files the same mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None  # the event loop's, read-only
        with self._lock:
            conn = self._connection()
            _when_unlocked(lambda: conn.executescript(_SCHEMA))

    async def counts(self, ip_key: str, account_key: str, window: float) -> tuple[int, int]:
        since = self._clock() - window
        try:
            return _count(self._read_connection(), ip_key, account_key, since)
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
        return await asyncio.to_thread(self._counts, ip_key, account_key, since)

    async def add(self, ip_key: str, account_key: str) -> None:
        await asyncio.to_thread(self._add, ip_key, account_key, self._clock())

    async def forget(self, ip_key: str, account_key: str) -> None:
        await asyncio.to_thread(self._forget, ip_key, account_key)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> sqlite3.Connection:
        """This process's connection (the caller holds ``_lock``)."""
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous = OFF")
            _when_unlocked(lambda: _use_wal(conn))
            self._conn = conn
        return self._conn

    def _read_connection(self) -> sqlite3.Connection:
        if self._reader is None:
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            reader = sqlite3.connect(
                uri, uri=True, timeout=0.0, isolation_level=None, check_same_thread=False
            )
            reader.execute("PRAGMA busy_timeout = 0")
            self._reader = reader
        return self._reader

    def _counts(self, ip_key: str, account_key: str, since: float) -> tuple[int, int]:
        with self._lock:
            return _count(self._connection(), ip_key, account_key, since)

    def _add(self, ip_key: str, account_key: str, now: float) -> None:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM failures WHERE at < ?", (now - _KEEP,))
                conn.execute(
                    "INSERT INTO failures (ip, account, at) VALUES (?, ?, ?)",
                    (ip_key, account_key, now),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _forget(self, ip_key: str, account_key: str) -> None:
        with self._lock:
            conn = self._connection()
            conn.execute("DELETE FROM failures WHERE ip = ? AND account = ?", (ip_key, account_key))


def _count(
    conn: sqlite3.Connection, ip_key: str, account_key: str, since: float
) -> tuple[int, int]:
    by_ip = conn.execute(
        "SELECT count(*) FROM failures WHERE ip = ? AND at > ?", (ip_key, since)
    ).fetchone()[0]
    by_account = conn.execute(
        "SELECT count(*) FROM failures WHERE account = ? AND at > ?", (account_key, since)
    ).fetchone()[0]
    return int(by_ip), int(by_account)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS failures (ip TEXT NOT NULL, account TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS failures_ip ON failures (ip, at);
CREATE INDEX IF NOT EXISTS failures_account ON failures (account, at);
"""


def _use_wal(conn: sqlite3.Connection) -> None:
    """WAL is a property of the file: set it only when not set (a change of journal
    mode needs the file to itself)."""
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    if str(mode).lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
