"""The cross-process event bus: events published in one worker's hub reach the other
workers' listeners, never echo back, and a lost bus connection wakes every session."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.store.base import MailboxChanged, MailboxListChanged
from roost.store.event_bus import EventBus, EventBusClient, decode, encode
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
