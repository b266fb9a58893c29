"""Coordination between the POP3 sessions of one account: the maildrop lock and the
time of the last sign-in.

RFC 1939 §8: a POP3 server locks the maildrop for the length of a session, so that two
sessions never delete under each other; a second sign-in is refused with ``-ERR
[IN-USE]`` (RFC 2449 §8.1.1). IMAP sessions do not take the lock: they coexist with
POP3 through the store, which tells them of POP3's expunges like of any other.

Each has two implementations behind a small async interface: in-process (one worker),
and shared by the worker processes of one server (``roost serve --workers N``): the lock
is a slot of a ``slots.FileSlots`` table, which the kernel releases when its process
dies, and the sign-in times are rows of a small SQLite file in the run directory.
With the PostgreSQL backend the lock is a row in the database, held over every node
(runtime/node_limits.py); the sign-in times stay per node.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Protocol

from roost.runtime.slots import SlotTable


class MaildropLease(Protocol):
    async def release(self) -> None:
        """Give the lock back; calling it again does nothing."""
        ...


class MaildropLocks(Protocol):
    async def try_acquire(self, account: str, mailbox: str) -> MaildropLease | None:
        """The lock on ``mailbox`` of ``account``, or None when another session holds it.
        Never waits for the holder."""
        ...


class _InProcessLease:
    def __init__(self, locks: InProcessLocks, key: tuple[str, str]) -> None:
        self._locks = locks
        self._key: tuple[str, str] | None = key

    async def release(self) -> None:
        if self._key is not None:
            self._locks.held.discard(self._key)
            self._key = None


class InProcessLocks:
    """Locks held in this process; account names match without regard to case, as at
    sign-in."""

    def __init__(self) -> None:
        self.held: set[tuple[str, str]] = set()

    async def try_acquire(self, account: str, mailbox: str) -> MaildropLease | None:
        key = (account.casefold(), mailbox)
        if key in self.held:
            return None
        self.held.add(key)
        return _InProcessLease(self, key)


class _SlotLease:
    def __init__(self, slots: SlotTable, key: str) -> None:
        self._slots = slots
        self._key: str | None = key

    async def release(self) -> None:
        if self._key is not None:
            self._slots.release(self._key)
            self._key = None


class SharedLocks:
    """Locks shared by every process that uses the same slot table (its limit is 1)."""

    def __init__(self, slots: SlotTable) -> None:
        if slots.limit != 1:
            raise ValueError("a maildrop lock table holds one slot per maildrop")
        self._slots = slots

    async def try_acquire(self, account: str, mailbox: str) -> MaildropLease | None:
        key = f"{account.casefold()}\0{mailbox}"
        if not self._slots.acquire(key):
            return None
        return _SlotLease(self._slots, key)


class SignInTimes(Protocol):
    """When each account last signed in over POP3, for LOGIN-DELAY (RFC 2449 §6.8)."""

    async def last(self, account: str) -> float | None: ...

    async def record(self, account: str, when: float) -> None: ...


class InProcessSignInTimes:
    """Remembers up to ``capacity`` accounts; the oldest are forgotten first (which only
    ever lets someone in sooner, never locks anyone out)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._times: dict[str, float] = {}

    async def last(self, account: str) -> float | None:
        return self._times.get(account.casefold())

    async def record(self, account: str, when: float) -> None:
        key = account.casefold()
        self._times.pop(key, None)
        self._times[key] = when
        if len(self._times) > self._capacity:
            del self._times[next(iter(self._times))]


class SharedSignInTimes:
    """Sign-in times in a SQLite file that every worker opens. ``when`` comes from the
    session's clock, ``time.monotonic``, which is one clock for every process of a host
    (the file belongs to one run of the server: the supervisor removes it at start, so
    no time from an earlier boot is ever compared). Rows older than ``keep`` seconds
    (the LOGIN-DELAY) are dropped as others are written."""

    def __init__(self, path: Path, keep: float) -> None:
        self.path = path
        self._keep = keep

    async def last(self, account: str) -> float | None:
        return await asyncio.to_thread(self._last, account.casefold())

    async def record(self, account: str, when: float) -> None:
        await asyncio.to_thread(self._record, account.casefold(), when)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = OFF")  # lost on a crash: harmless
        conn.execute(
            "CREATE TABLE IF NOT EXISTS sign_ins (account TEXT PRIMARY KEY, at REAL NOT NULL)"
            " WITHOUT ROWID"
        )
        return conn

    def _last(self, key: str) -> float | None:
        conn = self._connect()
        try:
            row = conn.execute("SELECT at FROM sign_ins WHERE account = ?", (key,)).fetchone()
        finally:
            conn.close()
        return None if row is None else float(row[0])

    def _record(self, key: str, when: float) -> None:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM sign_ins WHERE at < ?", (when - self._keep,))
            conn.execute("INSERT OR REPLACE INTO sign_ins (account, at) VALUES (?, ?)", (key, when))
            conn.execute("COMMIT")
        finally:
            conn.close()
