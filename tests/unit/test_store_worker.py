"""The store's worker thread (store/sqlite/worker.py): jobs run one at a time in order,
off the event loop; errors reach the caller; a job cancelled before it starts never
runs, one already running finishes."""

from __future__ import annotations

import asyncio
import threading

import pytest

from roost.store.sqlite.worker import Worker


async def test_jobs_run_in_order_on_one_thread_that_is_not_the_loop() -> None:
    worker = Worker("test-worker")
    try:
        seen: list[tuple[int, str]] = []

        def job(n: int) -> int:
            seen.append((n, threading.current_thread().name))
            return n * 2

        results = await asyncio.gather(*(worker.run(job, n) for n in range(50)))
        assert results == [n * 2 for n in range(50)]
        assert [n for n, _ in seen] == list(range(50))
        assert {name for _, name in seen} == {"test-worker"}
    finally:
        worker.shutdown()


async def test_an_error_reaches_the_caller_and_the_worker_goes_on() -> None:
    worker = Worker("test-worker")
    try:

        def fail() -> None:
            raise KeyError("missing")

        with pytest.raises(KeyError):
            await worker.run(fail)
        assert await worker.run(len, "abc") == 3
    finally:
        worker.shutdown()


async def test_a_cancelled_job_that_has_not_started_never_runs() -> None:
    worker = Worker("test-worker")
    try:
        started = threading.Event()
        release = threading.Event()
        ran: list[str] = []

        def blocking() -> str:
            started.set()
            release.wait(timeout=30)
            ran.append("first")
            return "first"

        first = asyncio.ensure_future(worker.run(blocking))
        second = asyncio.ensure_future(worker.run(ran.append, "second"))
        await asyncio.to_thread(started.wait, 30)
        first.cancel()  # already running: it finishes anyway
        second.cancel()  # still queued: skipped
        release.set()
        assert await worker.run(ran.append, "third") is None
        assert ran == ["first", "third"]
        assert first.cancelled() and second.cancelled()
    finally:
        worker.shutdown()


async def test_after_shutdown_new_jobs_are_refused() -> None:
    worker = Worker("test-worker")
    assert await worker.run(sum, [1, 2]) == 3
    worker.shutdown()
    worker.shutdown()  # twice is harmless
    with pytest.raises(RuntimeError):
        await worker.run(sum, [1])
