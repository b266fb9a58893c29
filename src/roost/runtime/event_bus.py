"""Change events across the worker processes of one server.

Every worker publishes its store's events to the supervisor's bus over a Unix socket,
and the bus sends each one on to the other workers that listen to that account, whose
hub hands it to the local listeners (IDLE, NOTIFY, the next sync point). Events are
hints — "ask the store what changed" — so the bus never needs to be durable: a worker
that was cut off reconnects and wakes all its sessions once, and their sync points ask
the store, which is the truth.

One frame is one line of JSON:

    worker → bus   {"a": account, "e": [[mailbox_id, modseq], null, ...]}   events
                   (null stands for MailboxListChanged)
                   {"s": account}   this worker's first listener of the account came
                   {"u": account}   its last listener of the account went
                   {"h": account}   "heard": it has read an {"i": ...} notice
    bus → worker   {"a": ..., "e": ...}   another worker's events, for an account that
                                          this worker listens to
                   {"i": account}   some other worker listens to the account now
                   {"n": account}   no other worker listens to it any more
                   {"k": account}   this worker's {"s": account} is in effect: wake the
                                    account's listeners once
                   {"r": 1}         the {"i": ...} notices of the connection's start are
                                    all sent

Interest. The bus keeps, per worker, the accounts it listens to, and relays an events
frame only to the other workers that listen to its account. A worker keeps the accounts
that some other worker listens to ("interest elsewhere", from the i/n notices) and does
not even encode an event of any other account: with every account on one worker, no
event crosses the bus. Until a connection's {"r": 1} a worker does not know that set
and sends everything.

The race, and why no event is lost. Worker A's session subscribes to account X (the
first listener of X in A, so A sends {"s": X}), then reads the store (SELECT). Worker B
commits a change to X and publishes it; if B has not yet heard that A listens, it skips
the event, and A's session must still learn of the change. The rule: the bus answers A's
{"s": X} with {"k": X} only once every other worker has acknowledged ({"h"}) every
{"i"} notice the bus had sent it when it registered A's interest, and A wakes its
listeners of X when it reads {"k": X}. Now take any event of X that B skipped: B made
that decision on its event loop after the commit, and before it read the bus's {"i": X}
(or any later {"i": X}; as long as one is in force, B sends X's events). B reads
notices in order and answers each with {"h"} at once, so the commit precedes B's {"h"},
which precedes the bus's {"k": X} to A, which precedes A's wake-up: the woken sessions
ask the store and see the change. An event B sent instead reaches the bus either after
it registered A's interest (relayed to A) or before (its commit precedes the
registration, hence the wake-up). The same holds for a worker that just connected:
it sends everything until it has read the bus's {"i"} notices of its start, and those
count among the notices it acknowledges. A worker that loses its connection forgets the
interest it learnt; the bus forgets the interest of a worker it lost (and tells the
others {"n"} where no one else listens), and the worker, on reconnecting, sends its
whole interest again ({"s"} for every account it listens to) and wakes its sessions.

Interest lingers. A worker whose last listener of an account goes keeps its interest
at the bus for ``INTEREST_LINGER`` seconds before it sends {"u"}; a listener that comes
back meanwhile finds it still in force and sends nothing. A client that signs in again
and again (webmail, phones: a connection per request) would otherwise cost an s/i/h/k
and a u/n exchange through the supervisor per session. The interest was in force all
along, so no other worker skipped an event of the account and the new listener needs no
{"k"} wake-up; events that arrive meanwhile meet an account with no listener and are
dropped. At most ``MAX_LINGERING`` accounts linger (the oldest goes first); a lost
connection ends every lingering interest (the bus forgot it, and the worker sends its
listened accounts only on reconnecting).

Memory is bounded: a peer that stops reading (a worker whose loop is stuck) is cut off
once ``MAX_BACKLOG`` bytes wait for it, on either side (plus what a connection starts
with: the bus's notices, the worker's interest); it reconnects when it reads again, and
its sessions re-sync as after any lost connection. A peer may name at most
``MAX_INTEREST`` accounts, of at most ``MAX_ACCOUNT`` characters each; the bus cuts off a
peer that sends more, or anything malformed, with a log line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from roost.observability import metrics
from roost.store.base import ChangeEvent, MailboxChanged, MailboxListChanged
from roost.store.events import EventHub

log = logging.getLogger("roost.events")

MAX_FRAME = 64 * 1024
MAX_BACKLOG = 1024 * 1024  # bytes waiting for one peer before it is cut off
MAX_ACCOUNT = 1024  # characters of an account key in a frame
MAX_INTEREST = 100_000  # accounts one worker may listen to
RECONNECT_DELAY = 0.2
INTEREST_LINGER = 30.0  # seconds an interest outlives the worker's last listener
MAX_LINGERING = 10_000  # accounts whose interest lingers at once, per worker

NoticeKind = Literal["s", "u", "h", "i", "n", "k"]
NOTICE_KINDS: frozenset[str] = frozenset("suhink")
READY_FRAME = b'{"r":1}\n'


@dataclass(frozen=True, slots=True)
class Events:
    """An events frame: ``events`` of ``account``, published at ``sent`` (the
    publisher's clock, epoch seconds; frames from before it was sent have none)."""

    account: str
    events: list[ChangeEvent]
    sent: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Notice:
    """An interest frame (see the module docstring for the kinds)."""

    kind: str  # one of NOTICE_KINDS
    account: str


@dataclass(frozen=True, slots=True)
class Ready:
    """The bus has sent a new connection every {"i"} notice it had for it."""


Frame = Events | Notice | Ready


def encode(account: str, events: list[ChangeEvent]) -> bytes:
    items = [[e.mailbox_id, e.modseq] if isinstance(e, MailboxChanged) else None for e in events]
    frame = {"a": account, "e": items, "t": round(time.time(), 6)}
    return json.dumps(frame, separators=(",", ":")).encode() + b"\n"


def encode_notice(kind: NoticeKind, account: str) -> bytes:
    return json.dumps({kind: account}, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> Frame:
    """Raise ValueError on anything that is not a well-formed frame."""
    frame: Any = json.loads(line)  # JSONDecodeError and UnicodeDecodeError are ValueErrors
    if not isinstance(frame, dict):
        raise ValueError("a frame is not an object")
    if frame.keys() in ({"a", "e"}, {"a", "e", "t"}):
        items = frame["e"]
        if not isinstance(items, list):
            raise ValueError("events are not a list")
        sent = frame.get("t")
        if sent is not None and type(sent) not in (int, float):
            raise ValueError("the sending time is not a number")
        return Events(_account(frame["a"]), [_event(item) for item in items], sent)
    if frame == {"r": 1}:
        return Ready()
    if len(frame) == 1:
        ((kind, account),) = frame.items()
        if kind in NOTICE_KINDS:
            return Notice(kind, _account(account))
    raise ValueError(f"unknown frame with keys {sorted(frame)[:4]}")


def _account(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ACCOUNT:
        raise ValueError("account is not a string of 1 to MAX_ACCOUNT characters")
    return value


def _event(item: object) -> ChangeEvent:
    if item is None:
        return MailboxListChanged()
    if (
        isinstance(item, list)
        and len(item) == 2
        and all(type(number) is int for number in item)  # not bool, not float
    ):
        return MailboxChanged(item[0], item[1])
    raise ValueError("an event is neither null nor [mailbox_id, modseq]")


@dataclass(eq=False)
class _Peer:
    """The bus's side of one worker's connection."""

    writer: asyncio.StreamWriter
    interest: set[str] = field(default_factory=set)  # accounts it listens to
    told: int = 0  # {"i"} notices sent to it
    heard: int = 0  # {"h"} answers read from it
    # Acknowledgments to other peers that wait for this one's {"h"} up to a count.
    owed: collections.deque[tuple[int, _PendingAck]] = field(default_factory=collections.deque)
    gone: bool = False
    backlog_limit: int = MAX_BACKLOG  # raised by the size of its greeting

    def send(self, frame: bytes) -> None:
        if not self.gone and not self.writer.is_closing():
            _write_or_cut(self.writer, frame, self.backlog_limit)

    def tell(self, kind: Literal["i", "n"], account: str) -> None:
        if kind == "i":
            self.told += 1
        self.send(encode_notice(kind, account))


@dataclass(eq=False)
class _PendingAck:
    """A {"k": account} for ``peer``, sent when ``waiting`` reaches zero."""

    peer: _Peer
    account: str
    waiting: int = 0

    def release(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.peer.send(encode_notice("k", self.account))


class EventBus:
    """The supervisor's relay: what one worker publishes reaches the other workers that
    listen to the account, and no other."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._server: asyncio.Server | None = None
        self._peers: set[_Peer] = set()
        self._listeners: dict[str, set[_Peer]] = {}  # account → the peers listening
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_FRAME
        )
        self.path.chmod(0o600)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:  # accepted just before close(): hang up, the worker reconnects
            writer.close()
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        # The greeting: an {"i"} for every account listened to (none by this peer yet),
        # written whole however long (the listened accounts are bounded), then {"r"}.
        greeting = b"".join(encode_notice("i", account) for account in self._listeners)
        peer = _Peer(writer, told=len(self._listeners))
        peer.backlog_limit += len(greeting)
        writer.write(greeting + READY_FRAME)
        self._peers.add(peer)
        try:
            while line := await reader.readuntil(b"\n"):
                try:
                    self._handle(peer, line, decode(line))
                except ValueError as error:
                    log.warning("bad frame from an event bus peer; cutting it off: %s", error)
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._forget(peer)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    def _handle(self, peer: _Peer, line: bytes, frame: Frame) -> None:
        match frame:
            case Events(account=account):
                for listener in self._listeners.get(account, ()):
                    if listener is not peer:
                        listener.send(line)
            case Notice(kind="s", account=account):
                self._listen(peer, account)
            case Notice(kind="u", account=account):
                self._unlisten(peer, account)
            case Notice(kind="h"):
                peer.heard += 1
                if peer.heard > peer.told:
                    raise ValueError("more answers than notices")
                while peer.owed and peer.owed[0][0] <= peer.heard:
                    peer.owed.popleft()[1].release()
            case _:
                raise ValueError(f"a worker does not send {frame}")

    def _listen(self, peer: _Peer, account: str) -> None:
        if account not in peer.interest:
            if len(peer.interest) >= MAX_INTEREST:
                raise ValueError(f"more than {MAX_INTEREST} accounts listened to")
            listeners = self._listeners.setdefault(account, set())
            for other in self._peers:
                if other is not peer and _others(listeners, other) == 0:
                    other.tell("i", account)
            listeners.add(peer)
            peer.interest.add(account)
        # The acknowledgment waits for every notice sent so far to be heard (the race in
        # the module docstring): a peer that has heard them all sends this account's
        # events, and one that has not yet may have skipped some.
        ack = _PendingAck(peer, account, waiting=1)
        for other in self._peers:
            if other is not peer and other.heard < other.told:
                other.owed.append((other.told, ack))
                ack.waiting += 1
        ack.release()

    def _unlisten(self, peer: _Peer, account: str) -> None:
        if account not in peer.interest:
            return
        peer.interest.discard(account)
        listeners = self._listeners[account]
        listeners.discard(peer)
        for other in self._peers:
            if other is not peer and _others(listeners, other) == 0:
                other.tell("n", account)
        if not listeners:
            del self._listeners[account]

    def _forget(self, peer: _Peer) -> None:
        peer.gone = True
        self._peers.discard(peer)
        for account in list(peer.interest):
            self._unlisten(peer, account)
        # It sends nothing any more: whoever waited for it waits no longer (it sends
        # every event after it reconnects until it knows the interest again).
        while peer.owed:
            peer.owed.popleft()[1].release()

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for peer in list(self._peers):
            peer.writer.close()  # each relay loop ends on the lost connection
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.path.unlink(missing_ok=True)


def _others(listeners: set[_Peer], peer: _Peer) -> int:
    """How many of ``listeners`` are not ``peer``."""
    return len(listeners) - (peer in listeners)


class EventBusClient:
    """A worker's link to the bus: relays its hub's events out (those of accounts that
    another worker listens to), delivers others' in, and tells the bus which accounts
    this worker listens to."""

    def __init__(self, hub: EventHub, path: Path, *, linger: float = INTEREST_LINGER) -> None:
        self.hub = hub
        self.path = path
        self.linger = linger
        # Accounts with no listener here whose interest the bus still has, in the order
        # they lost their last listener, with the timer that ends it.
        self._lingering: dict[str, asyncio.TimerHandle] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._backlog_limit = MAX_BACKLOG
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        # The accounts some other worker listens to; meaningful once ``informed`` is set
        # (this connection's {"r": 1} read).
        self.interest_elsewhere: set[str] = set()
        self.informed = asyncio.Event()

    async def start(self) -> None:
        self.hub.relay = self._send
        self.hub.interest = self._interest
        self._task = asyncio.create_task(self._run())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await self.connected.wait()

    def _send(self, account: str, events: list[ChangeEvent]) -> None:
        if account not in self.interest_elsewhere and self.informed.is_set():
            return  # no other worker listens: not even worth encoding
        self._write(encode(account, events))

    def _interest(self, account: str, listening: bool) -> None:
        # Unsent while disconnected: the whole interest goes out on reconnecting.
        if listening:
            lingering = self._lingering.pop(account, None)
            if lingering is not None:
                lingering.cancel()  # still in force at the bus: nothing to say
                return
            self._write(encode_notice("s", account))
            return
        if self.linger <= 0 or self._writer is None:
            self._write(encode_notice("u", account))
            return
        while len(self._lingering) >= MAX_LINGERING:
            self._end_lingering(next(iter(self._lingering)))
        loop = asyncio.get_running_loop()
        self._lingering[account] = loop.call_later(self.linger, self._end_lingering, account)

    def _end_lingering(self, account: str) -> None:
        handle = self._lingering.pop(account, None)
        if handle is not None:
            handle.cancel()
            self._write(encode_notice("u", account))

    def _forget_lingering(self) -> None:
        """Drop every lingering interest without a word (the bus has forgotten it)."""
        for handle in self._lingering.values():
            handle.cancel()
        self._lingering.clear()

    def _write(self, frame: bytes) -> None:
        writer = self._writer
        if writer is not None and not writer.is_closing():
            _write_or_cut(writer, frame, self._backlog_limit)

    async def _run(self) -> None:
        first = True
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self.path), limit=MAX_FRAME)
            except OSError:
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            # Our whole interest, written however long (it is bounded), before any event.
            interest = [encode_notice("s", account) for account in self.hub.listened_accounts()]
            writer.write(b"".join(interest))
            self._backlog_limit = MAX_BACKLOG + sum(map(len, interest))
            self._writer = writer
            self.connected.set()
            if not first:
                # Events may have passed while we were cut off: every session re-syncs.
                self.hub.deliver_everywhere([MailboxListChanged()])
            first = False
            try:
                while line := await reader.readuntil(b"\n"):
                    try:
                        frame = decode(line)
                    except ValueError as error:
                        log.warning("bad event frame dropped: %s", error)
                        continue
                    self._receive(frame)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                log.info("event bus connection lost; reconnecting")
            finally:
                self._writer = None
                self._forget_lingering()
                self.informed.clear()
                self.interest_elsewhere.clear()
                self.connected.clear()
                writer.close()
            await asyncio.sleep(RECONNECT_DELAY)

    def _receive(self, frame: Frame) -> None:
        match frame:
            case Events(account=account, events=events, sent=sent):
                if sent is not None:  # the clocks are this machine's, or NTP-close
                    metrics.EVENT_BUS_LAG.observe(max(0.0, time.time() - sent))
                self.hub.deliver(account, events)
            case Notice(kind="i", account=account):
                self.interest_elsewhere.add(account)
                self._write(encode_notice("h", account))
            case Notice(kind="n", account=account):
                self.interest_elsewhere.discard(account)
            case Notice(kind="k", account=account):
                # Our interest is in effect everywhere: whatever another worker did not
                # send before, the store has; the listeners ask it.
                self.hub.deliver(account, [MailboxListChanged()])
            case Ready():
                self.informed.set()
            case _:
                log.warning("unexpected event bus frame dropped: %s", frame)

    async def close(self) -> None:
        self.hub.relay = None
        self.hub.interest = None
        self._forget_lingering()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()


def _write_or_cut(writer: asyncio.StreamWriter, frame: bytes, limit: int) -> None:
    if writer.transport.get_write_buffer_size() > limit:
        log.warning("event bus peer is not reading; cutting it off")
        writer.transport.abort()  # drops what waits, at once
        return
    writer.write(frame)
