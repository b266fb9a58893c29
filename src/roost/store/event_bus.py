"""Change events across the worker processes of one server.

Every worker publishes its store's events to the supervisor's bus over a Unix socket,
and the bus sends each one on to every other worker, whose hub hands it to the local
listeners (IDLE, NOTIFY, the next sync point). Events are hints — "ask the store what
changed" — so the bus never needs to be durable: a worker that was cut off reconnects
and wakes all its sessions once, and their sync points ask the store, which is the
truth. One frame is one line of JSON: ``{"a": account_key, "e": [[mailbox_id,
modseq], null, ...]}`` where null stands for MailboxListChanged.

Memory is bounded: a peer that stops reading (a worker whose loop is stuck) is cut off
once ``MAX_BACKLOG`` bytes wait for it, on either side; it reconnects when it reads
again, and its sessions re-sync as after any lost connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

from roost.store.base import ChangeEvent, MailboxChanged, MailboxListChanged
from roost.store.events import EventHub

log = logging.getLogger("roost.events")

MAX_FRAME = 64 * 1024
MAX_BACKLOG = 1024 * 1024  # bytes waiting for one peer before it is cut off
RECONNECT_DELAY = 0.2


def encode(account: str, events: list[ChangeEvent]) -> bytes:
    items = [[e.mailbox_id, e.modseq] if isinstance(e, MailboxChanged) else None for e in events]
    return json.dumps({"a": account, "e": items}, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> tuple[str, list[ChangeEvent]]:
    """Raise ValueError on anything that is not a well-formed frame."""
    frame = json.loads(line)
    account = frame["a"]
    if not isinstance(account, str):
        raise ValueError("account is not a string")
    events: list[ChangeEvent] = []
    for item in frame["e"]:
        if item is None:
            events.append(MailboxListChanged())
        else:
            mailbox_id, modseq = item
            events.append(MailboxChanged(int(mailbox_id), int(modseq)))
    return account, events


class EventBus:
    """The supervisor's relay: whatever one worker sends, every other worker gets."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._server: asyncio.Server | None = None
        self._peers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        self.path.chmod(0o600)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:  # accepted just before close(): hang up, the worker reconnects
            writer.close()
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._peers.add(writer)
        try:
            while line := await reader.readuntil(b"\n"):
                for peer in list(self._peers):
                    if peer is not writer and not peer.is_closing():
                        _write_or_cut(peer, line)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._peers.discard(writer)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for peer in list(self._peers):
            peer.close()  # each relay loop ends on the lost connection
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.path.unlink(missing_ok=True)


class EventBusClient:
    """A worker's link to the bus: relays its hub's events out, delivers others' in."""

    def __init__(self, hub: EventHub, path: Path) -> None:
        self.hub = hub
        self.path = path
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self.hub.relay = self._send
        self._task = asyncio.create_task(self._run())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await self.connected.wait()

    def _send(self, account: str, events: list[ChangeEvent]) -> None:
        writer = self._writer
        if writer is not None and not writer.is_closing():
            _write_or_cut(writer, encode(account, events))

    async def _run(self) -> None:
        first = True
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self.path), limit=MAX_FRAME)
            except OSError:
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            self._writer = writer
            self.connected.set()
            if not first:
                # Events may have passed while we were cut off: every session re-syncs.
                self.hub.deliver_everywhere([MailboxListChanged()])
            first = False
            try:
                while line := await reader.readuntil(b"\n"):
                    try:
                        account, events = decode(line)
                    except (ValueError, KeyError, TypeError) as error:
                        log.warning("bad event frame dropped: %s", error)
                        continue
                    self.hub.deliver(account, events)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                log.info("event bus connection lost; reconnecting")
            finally:
                self._writer = None
                self.connected.clear()
                writer.close()
            await asyncio.sleep(RECONNECT_DELAY)

    async def close(self) -> None:
        self.hub.relay = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()


def _write_or_cut(writer: asyncio.StreamWriter, frame: bytes) -> None:
    if writer.transport.get_write_buffer_size() > MAX_BACKLOG:
        log.warning("event bus peer is not reading; cutting it off")
        writer.transport.abort()  # drops what waits, at once
        return
    writer.write(frame)
