"""A single thread that runs one database's blocking work, so the event loop never waits.

All work for one SQLite connection goes through its own Worker, one job at a time, in
submission order; that serialises an account's operations within this process without
locks. Make each public store call one job: every job is a loop round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Worker:
    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.closed = False

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.closed:
            raise RuntimeError("worker is shut down")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def run_soon(self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Queue housekeeping that nobody waits for, after the jobs queued so far; ``fn``
        must handle its own errors. Dropped once the worker is shut down."""
        if not self.closed:
            with contextlib.suppress(RuntimeError):  # shut down meanwhile
                self._executor.submit(fn, *args, **kwargs)

    def shutdown(self) -> None:
        """Refuse new jobs; queued ones still run, and the thread then exits."""
        self.closed = True
        self._executor.shutdown(wait=False)
