"""The cross-process event bus: events published in one worker's hub reach the other
workers' listeners of that account and no other worker, never echo back, and a lost bus
connection wakes every session. Interest (which worker listens to which account) follows
the hubs' listeners, and no event is lost to a worker whose interest is not yet known."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from roost.runtime import event_bus
from roost.runtime.event_bus import (
    MAX_ACCOUNT,
    MAX_BACKLOG,
    EventBus,
    EventBusClient,
    Events,
    Frame,
    Notice,
    Ready,
    decode,
    encode,
    encode_notice,
)
from roost.store.base import ChangeEvent, MailboxChanged, MailboxListChanged
from roost.store.events import EventHub, Listener


def test_frames_round_trip() -> None:
    events = [MailboxChanged(3, 42), MailboxListChanged()]
    assert decode(encode("alice", events)) == Events("alice", events)
    sent = decode(encode("alice", events))
    assert isinstance(sent, Events) and sent.sent is not None
    assert abs(sent.sent - time.time()) < 60  # stamped for the lag metric
    assert decode(b'{"a":"alice","e":[]}') == Events("alice", [])  # an older peer's frame
    for kind in "suhink":
        assert decode(encode_notice(kind, "alice")) == Notice(kind, "alice")  # type: ignore[arg-type]
    assert decode(b'{"r":1}') == Ready()


@pytest.mark.parametrize(
    "bad",
    [
        b"{}",
        b"[]",
        b"nonsense",
        b"\xff",
        b'{"a": 1, "e": []}',
        b'{"a": "x", "e": [[1]]}',
        b'{"a": "x", "e": [[1, true]]}',
        b'{"a": "x", "e": [["1", 2]]}',
        b'{"a": "x", "e": {}}',
        b'{"a": "x", "e": [], "s": "x"}',
        b'{"s": 5}',
        b'{"s": ""}',
        b'{"s": null}',
        b'{"s": ["x"]}',
        b'{"s": "x", "u": "y"}',
        b'{"q": "x"}',
        b'{"r": 2}',
        b'{"s": "' + b"x" * (MAX_ACCOUNT + 1) + b'"}',
    ],
)
def test_malformed_frames_are_refused(bad: bytes) -> None:
    with pytest.raises(ValueError):
        decode(bad)


class RawPeer:
    """A worker's end of the bus, spoken frame by frame (to hold back an answer)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.greeting: list[Frame] = []  # the notices before {"r": 1}

    @classmethod
    async def connect(cls, path: Path) -> RawPeer:
        peer = cls(*await asyncio.open_unix_connection(str(path)))
        peer.greeting = await peer.read_until(Ready())
        return peer

    def send(self, frame: bytes) -> None:
        self.writer.write(frame)

    async def read(self) -> Frame:
        return decode(await self.reader.readuntil(b"\n"))

    async def read_until(self, wanted: Frame) -> list[Frame]:
        """The frames read before ``wanted`` (which is read too)."""
        frames = []
        while (frame := await self.read()) != wanted:
            frames.append(frame)
        return frames

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def running_bus(
    tmp_path: Path,
) -> AsyncIterator[tuple[EventBus, Callable[[], Awaitable[EventHub]]]]:
    """A bus, and a way to start workers' hubs linked to it (informed of the interest)."""
    bus = EventBus(tmp_path / "events.sock")
    await bus.start()
    clients: list[EventBusClient] = []

    async def start_hub() -> EventHub:
        hub = EventHub()
        client = EventBusClient(hub, bus.path)
        clients.append(client)
        await client.start()
        await client.informed.wait()
        return hub

    try:
        yield bus, start_hub
    finally:
        for client in clients:
            await client.close()
        await bus.close()


async def wait_for(listener: Listener, event: ChangeEvent) -> list[ChangeEvent]:
    """Everything ``listener`` is given up to and including ``event``."""
    received: list[ChangeEvent] = []
    while event not in received:
        received += await listener.wait()
    return received


async def test_events_cross_between_hubs(tmp_path: Path) -> None:
    bus = EventBus(tmp_path / "events.sock")
    await bus.start()
    first, second = EventHub(), EventHub()
    clients = [EventBusClient(first, bus.path), EventBusClient(second, bus.path)]
    for client in clients:
        await client.start()
    try:
        here = first.subscribe("alice")
        there = second.subscribe("alice")
        other_account = second.subscribe("bob")
        for listener in (here, there, other_account):  # the bus acknowledged the interest
            assert await listener.wait() == [MailboxListChanged()]
        first.publish("alice", [MailboxChanged(1, 7)])
        assert await there.wait() == [MailboxChanged(1, 7)]
        assert here.pending() == [MailboxChanged(1, 7)]  # delivered locally, once
        assert other_account.pending() == []
        second.publish("alice", [MailboxListChanged()])
        assert await here.wait() == [MailboxListChanged()]
        assert there.pending() == [MailboxListChanged()]
    finally:
        for client in clients:
            await client.close()
        await bus.close()


async def test_reconnect_wakes_every_listener(tmp_path: Path) -> None:
    path = tmp_path / "events.sock"
    bus = EventBus(path)
    await bus.start()
    hub = EventHub()
    client = EventBusClient(hub, path)
    await client.start()
    listener = hub.subscribe("alice")
    try:
        await bus.close()
        bus = EventBus(path)
        await bus.start()
        assert await listener.wait() == [MailboxListChanged()]
    finally:
        await client.close()
        await bus.close()


async def test_a_peer_that_does_not_read_is_cut_off(tmp_path: Path) -> None:
    """The bus's memory stays bounded: a worker that stops reading loses its link (and
    would re-sync its sessions on reconnecting); the others keep theirs."""
    bus = EventBus(tmp_path / "events.sock")
    await bus.start()
    hub = EventHub()
    client = EventBusClient(hub, bus.path)
    await client.start()
    listener = hub.subscribe("alice")
    stuck_reader, stuck = await asyncio.open_unix_connection(str(bus.path))  # reads later
    stuck.write(encode_notice("s", "alice"))  # it listens to alice too
    while decode(await stuck_reader.readuntil(b"\n")) != Notice("k", "alice"):
        pass
    sender_hub = EventHub()
    sender = EventBusClient(sender_hub, bus.path)
    await sender.start()
    try:
        frame_size = len(encode("alice", [MailboxChanged(1, 1)]))
        last = 3 * MAX_BACKLOG // frame_size
        for modseq in range(1, last + 1):
            sender_hub.publish("alice", [MailboxChanged(1, modseq)])
            if modseq % 1000 == 0:
                await asyncio.sleep(0)  # let the bus relay what it has
        async with asyncio.timeout(30):
            # The reading worker gets everything, in order...
            while MailboxChanged(1, last) not in await listener.wait():
                pass
            # ...while the other was cut off: what it reads now ends, long before 3 MiB.
            received = 0
            with contextlib.suppress(ConnectionError):
                while chunk := await stuck_reader.read(65536):
                    received += len(chunk)
        assert received < 2 * MAX_BACKLOG
        assert client.connected.is_set()
    finally:
        stuck.close()
        for link in (client, sender):
            await link.close()
        await bus.close()


# ---- interest ------------------------------------------------------------------------


async def test_events_go_only_to_workers_that_listen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bus relays an account's events to the workers listening to it only, and a
    worker does not even encode the events of an account no other worker listens to."""
    encoded: list[str] = []
    real_encode = event_bus.encode

    def counting_encode(account: str, events: list[ChangeEvent]) -> bytes:
        encoded.append(account)
        return real_encode(account, events)

    monkeypatch.setattr(event_bus, "encode", counting_encode)
    async with running_bus(tmp_path) as (bus, start_hub):
        listening, publishing = await start_hub(), await start_hub()
        idle = await RawPeer.connect(bus.path)
        listener = listening.subscribe("alice")
        assert await idle.read_until(Notice("i", "alice")) == []
        idle.send(encode_notice("h", "alice"))
        assert await listener.wait() == [MailboxListChanged()]  # in effect everywhere

        publishing.publish("bob", [MailboxChanged(2, 1)])  # nobody else listens to bob
        publishing.publish("alice", [MailboxChanged(1, 1)])
        assert await listener.wait() == [MailboxChanged(1, 1)]
        assert encoded == ["alice"]
        # The worker without listeners got none of it: its own interest, acknowledged
        # after the bus relayed alice's event, comes with no events frame before it.
        idle.send(encode_notice("s", "zed"))
        assert await idle.read_until(Notice("k", "zed")) == []
        await idle.close()


async def test_interest_notices(tmp_path: Path) -> None:
    """A worker is told when some other worker starts listening to an account and when
    none does any more (because it stopped, or because the bus lost it); a listener's
    acknowledgment waits for the others to have heard."""
    async with running_bus(tmp_path) as (bus, _):
        first = await RawPeer.connect(bus.path)
        second = await RawPeer.connect(bus.path)
        first.send(encode_notice("s", "alice"))
        assert await second.read() == Notice("i", "alice")
        second.send(encode_notice("h", "alice"))
        assert await first.read() == Notice("k", "alice")
        second.send(encode_notice("s", "alice"))
        assert await first.read() == Notice("i", "alice")  # second listens elsewhere
        first.send(encode_notice("h", "alice"))
        assert await second.read() == Notice("k", "alice")

        third = await RawPeer.connect(bus.path)  # told what is listened to, at once
        assert third.greeting == [Notice("i", "alice")]
        third.send(encode_notice("h", "alice"))
        third.send(encode_notice("s", "zed"))
        for peer in (first, second):
            assert await peer.read() == Notice("i", "zed")
            peer.send(encode_notice("h", "zed"))
        assert await third.read() == Notice("k", "zed")  # only now

        first.send(encode_notice("u", "alice"))
        assert await second.read() == Notice("n", "alice")  # no one else listens now
        await second.close()  # the bus forgets its interest
        assert await first.read() == Notice("n", "alice")
        assert await third.read() == Notice("n", "alice")
        for peer in (first, third):
            await peer.close()


async def test_no_event_is_lost_before_the_interest_is_known(tmp_path: Path) -> None:
    """Worker A's first listener of an account subscribes; worker B changes the account
    before it has heard of A's interest, so it does not send the event. A's listener is
    woken all the same, once the bus has told B, and then hears B's events."""
    async with running_bus(tmp_path) as (_, start_hub):
        a, b = await start_hub(), await start_hub()
        listener = a.subscribe("alice")
        b.publish("alice", [MailboxChanged(1, 5)])  # B has not heard yet: not sent
        assert await listener.wait() == [MailboxListChanged()]  # A asks the store
        b.publish("alice", [MailboxChanged(1, 6)])
        assert await listener.wait() == [MailboxChanged(1, 6)]


async def test_the_acknowledgment_waits_for_the_others_to_hear(tmp_path: Path) -> None:
    """Until a worker has answered the notice of a new interest, it may skip events of
    that account, so the new listener is woken only after that answer."""
    async with running_bus(tmp_path) as (bus, start_hub):
        a = await start_hub()
        b = await RawPeer.connect(bus.path)
        listener = a.subscribe("alice")
        assert await b.read() == Notice("i", "alice")
        b.send(encode("alice", [MailboxChanged(1, 5)]))  # relayed to A: it listens
        assert await wait_for(listener, MailboxChanged(1, 5)) == [MailboxChanged(1, 5)]
        b.send(encode_notice("h", "alice"))
        assert await listener.wait() == [MailboxListChanged()]
        await b.close()


async def test_reconnecting_worker_sends_its_interest_again(tmp_path: Path) -> None:
    path = tmp_path / "events.sock"
    bus = EventBus(path)
    await bus.start()
    hub = EventHub()
    client = EventBusClient(hub, path)
    await client.start()
    listeners = [hub.subscribe("alice"), hub.subscribe("bob"), hub.subscribe("bob")]
    listeners[2].close()  # bob still has a listener
    try:
        await bus.close()
        bus = EventBus(path)
        await bus.start()
        other = await asyncio.open_unix_connection(str(path))
        peer = RawPeer(*other)
        told: set[Frame] = set()
        while not told >= {Notice("i", "alice"), Notice("i", "bob")}:
            frame = await peer.read()
            told.add(frame)
            if isinstance(frame, Notice) and frame.kind == "i":
                peer.send(encode_notice("h", frame.account))
        for listener in listeners[:2]:
            assert await listener.wait() == [MailboxListChanged()]
        await peer.close()
    finally:
        await client.close()
        await bus.close()


@pytest.mark.parametrize(
    "frames",
    [
        [b'{"s": 5}'],
        [b'{"s": ""}'],
        [b'{"u": ["alice"]}'],
        [b'{"s": "alice", "u": "alice"}'],
        [b'{"i": "alice"}'],  # a notice only the bus sends
        [b'{"k": "alice"}'],
        [b'{"r": 1}'],
        [b'{"h": "alice"}'],  # an answer to no notice
    ],
)
async def test_a_peer_sending_a_bad_frame_is_cut_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, frames: list[bytes]
) -> None:
    async with running_bus(tmp_path) as (bus, _):
        peer = await RawPeer.connect(bus.path)
        with caplog.at_level(logging.WARNING, logger="roost.events"):
            for frame in frames:
                peer.send(frame + b"\n")
            assert await peer.reader.read() == b""  # the bus hung up
        assert "bad frame from an event bus peer" in caplog.text
        await peer.close()


async def test_the_interest_of_a_peer_is_bounded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_bus, "MAX_INTEREST", 2)
    async with running_bus(tmp_path) as (bus, _):
        peer = await RawPeer.connect(bus.path)
        with caplog.at_level(logging.WARNING, logger="roost.events"):
            for account in ("a", "b", "c"):
                peer.send(encode_notice("s", account))
            rest = await peer.reader.read()
        assert [json.loads(line) for line in rest.splitlines()] == [{"k": "a"}, {"k": "b"}]
        assert "more than 2 accounts" in caplog.text
        await peer.close()


async def test_a_greeting_longer_than_the_backlog_is_not_cut_off(tmp_path: Path) -> None:
    """What a connection starts with (every account listened to elsewhere) is bounded by
    the interest, not by MAX_BACKLOG: a new worker is not cut off for it."""
    accounts = [f"{n:04d}" + "x" * 1000 for n in range(2 * MAX_BACKLOG // 1000)]
    async with running_bus(tmp_path) as (bus, _):
        listening = await RawPeer.connect(bus.path)
        for start in range(0, len(accounts), 100):
            for account in accounts[start : start + 100]:
                listening.send(encode_notice("s", account))
            for account in accounts[start : start + 100]:
                assert await listening.read() == Notice("k", account)
        reader, writer = await asyncio.open_unix_connection(str(bus.path))
        late = RawPeer(reader, writer)  # greeted, but reads only below
        listening.send(encode_notice("u", accounts[0]))  # notices on top of the greeting
        listening.send(encode_notice("s", accounts[0]))
        assert await late.read_until(Ready()) == [Notice("i", account) for account in accounts]
        assert await late.read() == Notice("n", accounts[0])
        assert await late.read() == Notice("i", accounts[0])
        for account in accounts + accounts[:1]:  # every {"i"} heard: the {"k"} comes
            late.send(encode_notice("h", account))
        assert await listening.read() == Notice("k", accounts[0])
        for peer in (listening, late):
            await peer.close()


# ---- lingering interest --------------------------------------------------------------


@contextlib.asynccontextmanager
async def worker_and_peer(tmp_path: Path, linger: float) -> AsyncIterator[tuple[EventHub, RawPeer]]:
    """A worker's hub on a bus, and a raw peer that answers nothing by itself."""
    bus = EventBus(tmp_path / "events.sock")
    await bus.start()
    hub = EventHub()
    client = EventBusClient(hub, bus.path, linger=linger)
    await client.start()
    await client.informed.wait()
    peer = await RawPeer.connect(bus.path)
    try:
        yield hub, peer
    finally:
        await peer.close()
        await client.close()
        await bus.close()


async def subscribe(hub: EventHub, peer: RawPeer, account: str) -> Listener:
    """A listener of ``account`` whose interest the bus has acknowledged."""
    listener = hub.subscribe(account)
    assert await peer.read() == Notice("i", account)
    peer.send(encode_notice("h", account))
    assert await listener.wait() == [MailboxListChanged()]
    return listener


async def test_interest_lingers_after_the_last_listener(tmp_path: Path) -> None:
    """A session that signs in again soon after the last one of its account left finds
    the interest still in force: no notice crosses the bus, and events still reach it."""
    async with worker_and_peer(tmp_path, linger=3600.0) as (hub, peer):
        (await subscribe(hub, peer, "alice")).close()
        again = hub.subscribe("alice")  # nothing said: the interest never ended
        peer.send(encode("alice", [MailboxChanged(1, 7)]))
        assert await again.wait() == [MailboxChanged(1, 7)]
        again.close()
        await subscribe(hub, peer, "zed")  # the next notice: neither "n alice" nor "i alice"


async def test_lingering_interest_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It ends after the linger, at once without one, and for the oldest account first
    when too many linger."""
    async with worker_and_peer(tmp_path, linger=0.0) as (hub, peer):
        (await subscribe(hub, peer, "alice")).close()
        assert await peer.read() == Notice("n", "alice")
    async with worker_and_peer(tmp_path, linger=0.01) as (hub, peer):
        (await subscribe(hub, peer, "alice")).close()
        assert await peer.read() == Notice("n", "alice")
    monkeypatch.setattr(event_bus, "MAX_LINGERING", 1)
    async with worker_and_peer(tmp_path, linger=3600.0) as (hub, peer):
        (await subscribe(hub, peer, "alice")).close()
        (await subscribe(hub, peer, "bob")).close()
        assert await peer.read() == Notice("n", "alice")


async def test_a_lost_connection_ends_lingering_interest(tmp_path: Path) -> None:
    """The bus forgets a lost worker's interest; on reconnecting, the worker says only
    what it listens to, and a listener of a formerly lingering account asks anew."""
    path = tmp_path / "events.sock"
    bus = EventBus(path)
    await bus.start()
    hub = EventHub()
    client = EventBusClient(hub, path, linger=3600.0)
    await client.start()
    await client.informed.wait()
    bob = hub.subscribe("bob")
    assert await bob.wait() == [MailboxListChanged()]
    hub.subscribe("alice").close()  # lingers
    try:
        await bus.close()
        bus = EventBus(path)
        await bus.start()
        assert await bob.wait() == [MailboxListChanged()]  # reconnected
        peer = await RawPeer.connect(path)
        for notice in peer.greeting:  # the worker reconnected first: "i bob"
            assert notice == Notice("i", "bob")
            peer.send(encode_notice("h", "bob"))
        alice = hub.subscribe("alice")
        while (frame := await peer.read()) != Notice("i", "alice"):
            assert frame == Notice("i", "bob")
            peer.send(encode_notice("h", "bob"))
        peer.send(encode_notice("h", "alice"))
        assert MailboxListChanged() in await alice.wait()
        await peer.close()
    finally:
        await client.close()
        await bus.close()
