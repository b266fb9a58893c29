"""Failed sign-ins shared by the worker processes of one server (``throttle.SharedFailures``).

One small SQLite file in the run directory, ``data_dir/run/sign-in-failures.db``, that
every worker opens: a failure counted by one worker counts in all, so ``roost serve
--workers N`` allows a guesser the same number of attempts as one process. Times are
wall-clock epoch seconds, so a failure keeps counting across a restart of the server
for the rest of its window. Rows are dropped once their window has passed. A crash may
lose the last failures (``synchronous = OFF``): the throttle slows guessing, it is not
a record. With the PostgreSQL backend the same interface goes to a table there.

The queries run in a thread: the event loop never waits on the file's lock.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

# Rows older than this are deleted as failures are added (the longest window one
# would configure; a row past its own window no longer counts anyway).
_KEEP = 86400.0


class SqliteSharedFailures:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        # 0600 whatever the umask; SQLite gives its -wal and -shm files the same mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        conn = self._connect()
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS failures (ip TEXT NOT NULL, account TEXT NOT NULL,"
                " at REAL NOT NULL)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS failures_ip ON failures (ip, at)")
            conn.execute("CREATE INDEX IF NOT EXISTS failures_account ON failures (account, at)")
        finally:
            conn.close()

    async def counts(self, ip_key: str, account_key: str, window: float) -> tuple[int, int]:
        return await asyncio.to_thread(self._counts, ip_key, account_key, self._clock() - window)

    async def add(self, ip_key: str, account_key: str) -> None:
        await asyncio.to_thread(self._add, ip_key, account_key, self._clock())

    async def forget(self, ip_key: str, account_key: str) -> None:
        await asyncio.to_thread(self._forget, ip_key, account_key)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = OFF")
        return conn

    def _counts(self, ip_key: str, account_key: str, since: float) -> tuple[int, int]:
        conn = self._connect()
        try:
            by_ip = conn.execute(
                "SELECT count(*) FROM failures WHERE ip = ? AND at > ?", (ip_key, since)
            ).fetchone()[0]
            by_account = conn.execute(
                "SELECT count(*) FROM failures WHERE account = ? AND at > ?", (account_key, since)
            ).fetchone()[0]
        finally:
            conn.close()
        return int(by_ip), int(by_account)

    def _add(self, ip_key: str, account_key: str, now: float) -> None:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM failures WHERE at < ?", (now - _KEEP,))
            conn.execute(
                "INSERT INTO failures (ip, account, at) VALUES (?, ?, ?)",
                (ip_key, account_key, now),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _forget(self, ip_key: str, account_key: str) -> None:
        conn = self._connect()
        try:
            conn.execute("DELETE FROM failures WHERE ip = ? AND account = ?", (ip_key, account_key))
        finally:
            conn.close()
