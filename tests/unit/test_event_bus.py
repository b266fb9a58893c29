"""The cross-process event bus: events published in one worker's hub reach the other
workers' listeners, never echo back, and a lost bus connection wakes every session."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from roost.store.base import MailboxChanged, MailboxListChanged
from roost.store.event_bus import MAX_BACKLOG, EventBus, EventBusClient, decode, encode
from roost.store.events import EventHub


def test_frames_round_trip() -> None:
    events = [MailboxChanged(3, 42), MailboxListChanged()]
    assert decode(encode("alice", events)) == ("alice", events)
    for bad in (b"{}", b"[]", b'{"a": 1, "e": []}', b'{"a": "x", "e": [[1]]}', b"nonsense"):
        with pytest.raises((ValueError, KeyError, TypeError)):
            decode(bad)


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
