"""INPROGRESS (RFC 9585): ``* OK [INPROGRESS ("tag" count total)]`` while a command
runs long, so that a client can show progress and knows the server is alive.

Two shapes, both cheap on the hot path:

* ``Progress.tick(count, total)`` in a loop over batches (FETCH): one clock read per
  batch, and a response at most every ``interval`` seconds.
* ``heartbeat(task, ...)`` around one long store call (SEARCH, COPY, MOVE, STORE,
  EXPUNGE) whose progress cannot be counted: while it runs, a response with NIL count
  and total every ``interval`` seconds (RFC 9585 §3 allows NIL for both).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from roost.imap.wire.responses import ProgressCode, Response, Status, Untagged

_MIN_INTERVAL = 0.01  # seconds: however configured, never a flood


def progress_response(tag: str, count: int | None, total: int | None) -> Untagged:
    return Untagged(Status.OK, "Still working", ProgressCode(tag, count, total))


def is_progress(response: Response) -> bool:
    """Whether the connection should send ``response`` at once, not buffered."""
    return type(response) is Untagged and type(response.code) is ProgressCode


class Progress:
    """Counted progress of one command."""

    def __init__(self, tag: str, interval: float) -> None:
        self.tag = tag
        self.interval = interval
        self._next = time.monotonic() + interval

    def tick(self, count: int, total: int) -> Untagged | None:
        """The response to send now, if one is due (call once per batch)."""
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.interval
        return progress_response(self.tag, count, total)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """A task nobody awaits any more (the client went away): see its outcome."""
    if not task.cancelled():
        with contextlib.suppress(Exception):
            task.exception()


async def heartbeat(
    task: asyncio.Future[Any], tag: str, interval: float
) -> AsyncIterator[Untagged]:
    """Until ``task`` is done, an uncounted progress response every ``interval``
    seconds; the caller then takes ``task.result()``."""
    task.add_done_callback(_retrieve)
    interval = max(interval, _MIN_INTERVAL)
    while not task.done():
        done, _ = await asyncio.wait({task}, timeout=interval)
        if not done:
            yield progress_response(tag, None, None)
