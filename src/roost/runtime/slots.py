"""Counted slots: "may one more be opened for this key, at most ``limit`` at once?"

Connections per client address, sessions per account and the POP3 maildrop lock (a
limit of one) are all slot tables (with the PostgreSQL backend, counted across nodes
in the database instead: node_limits.py). ``LocalSlots`` counts in this process: enough for
one worker. ``FileSlots`` counts across every process that opens the same file, which is
how the workers of one server (``roost serve --workers N``) share their limits exactly:

* Slot ``n`` of a key is one byte of the file, at ``hash(key) * limit + n``, held with a
  POSIX record lock (``fcntl`` F_SETLK, never waiting). A byte is locked by at most one
  process at a time, so the slots held for a key, summed over every process, never
  exceed the limit.
* The kernel drops the locks of a process that ends, even by SIGKILL: a crashed worker
  never leaks a slot, and there is nothing to clean up.
* Nothing is ever written. The file stays empty; its byte ranges are sparse. A hash
  collision of two keys (64-bit hashes) would make them share one budget, never exceed it.

POSIX record locks belong to the process, not to the descriptor: a process may lock a
byte it already holds again, and closing *any* descriptor of the file drops all its
locks. So each process opens the file once and keeps that descriptor, and remembers
which slots of each key it holds itself; those are skipped when acquiring.

Acquiring probes from a random slot onwards (wrapping), not from slot 0: with a large
limit and thousands of slots held by other workers, probing from 0 tried every held
slot first, so each sign-in cost grew with the connections already open (the 10,000-IDLE
benchmark spent 86% of its time there). From a random start, a table that is mostly free
answers in one or two non-blocking system calls, made on the event loop thread; a table
near its limit still tries every slot, so the answer stays exact.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import random
from pathlib import Path
from typing import Protocol

# Offsets stay below 2**62, well inside a 64-bit off_t.
_OFFSET_SPACE = 1 << 62
_BUSY = (errno.EACCES, errno.EAGAIN)


class SlotTable(Protocol):
    @property
    def limit(self) -> int: ...

    def acquire(self, key: str) -> bool:
        """Take one slot of ``key``; False (and nothing taken) when all are taken."""
        ...

    def release(self, key: str) -> None:
        """Give back one slot of ``key`` that this process took; else do nothing."""
        ...

    def held(self, key: str) -> int:
        """How many slots of ``key`` this process holds."""
        ...


class AddressSlots(Protocol):
    """The connections per client address as the listeners count them: taking a slot
    may wait for a round trip (with PostgreSQL, node_limits.py); giving one back never
    waits."""

    @property
    def limit(self) -> int: ...

    async def acquire(self, key: str) -> bool: ...

    def release(self, key: str) -> None: ...


class InstantSlots:
    """A ``SlotTable`` of this host as ``AddressSlots``: it answers at once."""

    def __init__(self, table: SlotTable) -> None:
        self.table = table

    @property
    def limit(self) -> int:
        return self.table.limit

    async def acquire(self, key: str) -> bool:
        return self.table.acquire(key)

    def release(self, key: str) -> None:
        self.table.release(key)


class LocalSlots:
    """Slots counted in this process only."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held: dict[str, int] = {}

    @property
    def limit(self) -> int:
        return self._limit

    def acquire(self, key: str) -> bool:
        count = self._held.get(key, 0)
        if count >= self._limit:
            return False
        self._held[key] = count + 1
        return True

    def release(self, key: str) -> None:
        count = self._held.get(key, 0) - 1
        if count > 0:
            self._held[key] = count
        else:
            self._held.pop(key, None)

    def held(self, key: str) -> int:
        return self._held.get(key, 0)


class FileSlots:
    """Slots shared by every process that uses the same ``path`` with the same
    ``limit`` (see the module docstring). ``close`` drops every slot this process holds."""

    def __init__(self, path: Path, limit: int) -> None:
        if limit < 1:
            raise ValueError("a slot table needs a limit of at least 1")
        self.path = path
        self._limit = limit
        self._keys = _OFFSET_SPACE // limit
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._held: dict[str, set[int]] = {}
        self._random = random.Random()

    @property
    def limit(self) -> int:
        return self._limit

    def acquire(self, key: str) -> bool:
        fd = self._descriptor()
        mine = self._held.get(key, set())
        limit = self._limit
        if len(mine) >= limit:
            return False
        base = self._base(key)
        start = self._random.randrange(limit)
        for step in range(limit):
            slot = (start + step) % limit
            if slot in mine:
                continue
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, base + slot, os.SEEK_SET)
            except OSError as error:
                if error.errno in _BUSY:
                    continue  # another process holds this one
                raise
            self._held.setdefault(key, set()).add(slot)
            return True
        return False

    def release(self, key: str) -> None:
        mine = self._held.get(key)
        if not mine:
            return
        slot = mine.pop()
        if not mine:
            del self._held[key]
        fcntl.lockf(self._descriptor(), fcntl.LOCK_UN, 1, self._base(key) + slot, os.SEEK_SET)

    def held(self, key: str) -> int:
        return len(self._held.get(key, ()))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._held.clear()

    def _descriptor(self) -> int:
        if self._fd is None:
            raise ValueError(f"slot table {self.path} is closed")
        return self._fd

    def _base(self, key: str) -> int:
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        return (int.from_bytes(digest, "big") % self._keys) * self._limit
