"""A single thread that runs one database's blocking work, so the event loop never waits.

All work for one SQLite connection goes through its own Worker, one job at a time, in
submission order; that serialises an account's operations within this process without
locks. Make each public store call one job: every job is a loop round trip.

Why not ``loop.run_in_executor`` with a one-thread ThreadPoolExecutor: every store call
pays for the hop, and the executor's (two locks, a concurrent Future chained to an
asyncio one, a semaphore, thread-count bookkeeping) was ~15% of the server's Python time
in the mixed benchmark. Here a job is a tuple on a SimpleQueue and its answer one
``call_soon_threadsafe``. Same semantics: a job whose caller was cancelled before it
started is skipped; one already started runs to its end (a write is never half done).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from roost.observability import metrics

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)

_Job = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any] | None",
    Callable[..., Any],
    tuple[Any, ...],
    dict[str, Any],
]


class Worker:
    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # A daemon thread: a process that exits without shutting a worker down does not
        # hang on it; a commit cut short that way is no worse than a crash, which the
        # store survives (tests/crash).
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self.closed = False

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self.closed:
            raise RuntimeError("worker is shut down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        started = time.perf_counter()
        self._jobs.put((loop, future, fn, args, kwargs))
        try:
            return await future
        finally:
            _timer(fn).observe(time.perf_counter() - started)

    def run_soon(self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Queue ``fn`` behind the jobs already queued, without waiting for it: nobody
        hears its outcome, so it reports its own; an exception it lets out is logged.
        RuntimeError once the worker is shut down."""
        if self.closed:
            raise RuntimeError("worker is shut down")
        self._jobs.put((asyncio.get_running_loop(), None, fn, args, kwargs))

    def shutdown(self) -> None:
        """Refuse new jobs; queued ones still run, and the thread then exits."""
        if not self.closed:
            self.closed = True
            self._jobs.put(None)

    def _serve(self) -> None:
        jobs = self._jobs
        while (job := jobs.get()) is not None:
            _run_one(*job)
            del job  # hold nothing (a result, an error) while waiting for the next


def _run_one(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any] | None,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    if future is None:  # run_soon: nobody waits for it
        try:
            fn(*args, **kwargs)
        except Exception:
            log.exception("background store job %s failed", getattr(fn, "__qualname__", fn))
        return
    if future.cancelled():  # its caller gave up before it started
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as error:  # handed to the caller, as an executor does
        _answer(loop, _set_exception, future, error)
    else:
        _answer(loop, _set_result, future, result)


def _answer(
    loop: asyncio.AbstractEventLoop,
    setter: Callable[[asyncio.Future[Any], Any], None],
    future: asyncio.Future[Any],
    value: Any,
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
        loop.call_soon_threadsafe(setter, future, value)


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


# The STORE_SECONDS series of each store function, labelled by its name: a bounded set,
# fixed by the code. Looked up once per name, not per job (``labels`` takes a lock and
# builds a key on every call, and a delivery or APPEND makes several jobs).
_TIMERS: dict[str, Any] = {}


def _timer(fn: Callable[..., Any]) -> Any:
    operation = getattr(fn, "__name__", "other")
    timer = _TIMERS.get(operation)
    if timer is None:
        timer = _TIMERS[operation] = metrics.STORE_SECONDS.labels(operation)
    return timer
