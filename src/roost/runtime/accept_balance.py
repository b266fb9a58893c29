"""Spreading new connections over the workers that share the listening sockets.

Every worker waits on the same listening sockets (``supervisor.py``), and the kernel
wakes them all when a connection arrives. asyncio's and libuv's servers then accept
every pending connection at once, so a burst — Postfix opening its LMTP sessions,
Thunderbird its five IMAP ones, a webmail page load — lands on whichever worker woke
first while the others idle, and that worker's one core caps the throughput (the LMTP
benchmark with 10 connections: 7, 8, even all 10 on one of two workers).

So each worker publishes how many connections it holds, in ``run/connections``: one
8-byte counter per worker number, in a mapping of the file every worker shares. A
worker woken for a new connection while it holds more than the least loaded worker
steps back for ``DEFER_SECONDS`` so that one can take it; if the connection is still
waiting after that (the other is busy, or gone), it takes it after all. No connection
waits longer than that one step, and nothing is ever refused here.

The counters are hints, never limits: a worker that died leaves its last count until
its replacement (which takes its number) starts at zero again.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

CONNECTIONS_FILE = "connections"
DEFER_SECONDS = 0.001
_SLOT = struct.Struct("=q")


class AcceptBalance:
    """This worker's counter and a view of every other worker's."""

    def __init__(self, path: Path, worker: int, workers: int) -> None:
        if not 1 <= worker <= workers:
            raise ValueError(f"worker {worker} is not one of 1 to {workers}")
        size = _SLOT.size * workers
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._offset = _SLOT.size * (worker - 1)
        self._workers = workers
        self.publish(0)

    def publish(self, connections: int) -> None:
        _SLOT.pack_into(self._map, self._offset, connections)

    def should_defer(self) -> bool:
        """Whether another worker holds fewer connections than this one."""
        mine = _SLOT.unpack_from(self._map, self._offset)[0]
        return any(
            _SLOT.unpack_from(self._map, _SLOT.size * n)[0] < mine
            for n in range(self._workers)
            if _SLOT.size * n != self._offset
        )

    def close(self) -> None:
        self._map.close()
