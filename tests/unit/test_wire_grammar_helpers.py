"""Shared helpers for the wire parser tests (STYLE.md §12: split-anywhere).

``parse_all_ways`` feeds one command whole, one byte at a time, and followed by the
bytes of further commands, and insists on the same result every way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roost.imap.wire.commands import (
    Append,
    AppendMessage,
    BadCommand,
    Command,
    Literal,
    Noop,
)
from roost.imap.wire.receiver import Event, NeedData, NeedLiteral, Receiver

TRAILER = b"zz9 NOOP\r\nzz10 NO"  # one more command, then part of another


def collect(receiver: Receiver, chunks: list[bytes]) -> list[Event]:
    """Feed ``chunks`` one by one, gathering every event except NeedData."""
    events: list[Event] = []
    for chunk in chunks:
        receiver.feed(chunk)
        while not isinstance(event := receiver.next_event(), NeedData):
            events.append(event)
    return events


def _materialize(event: Event) -> Any:
    """Spooled literals compare by content: their paths differ from run to run."""
    if isinstance(event, Append):
        messages = tuple(
            AppendMessage(
                m.flags,
                m.internaldate,
                ("spooled", Path(m.data.path).read_bytes(), m.data.size, m.data.binary)
                if isinstance(m.data, Literal)
                else m.data,  # type: ignore[arg-type]
                m.binary,
            )
            for m in event.messages
        )
        return Append(event.tag, event.mailbox, messages)
    return event


def events_all_ways(data: bytes, **options: Any) -> list[Any]:
    """The events for ``data`` (NeedLiteral included), the same fed every way."""
    ways = {
        "whole": [data],
        "bytewise": [data[i : i + 1] for i in range(len(data))],
        "split in half": [data[: len(data) // 2], data[len(data) // 2 :]],
    }
    results = {}
    for name, chunks in ways.items():
        receiver = Receiver(**options)
        results[name] = [_materialize(e) for e in collect(receiver, chunks)]
        receiver.close()
    receiver = Receiver(**options)
    trailing = [_materialize(e) for e in collect(receiver, [data + TRAILER])]
    receiver.close()
    assert trailing[-1] == Noop("zz9"), trailing
    results["with trailing bytes"] = trailing[:-1]
    first = results["whole"]
    for name, result in results.items():
        assert result == first, f"{name}: {result!r} != {first!r}"
    return first


def parse_all_ways(data: bytes, **options: Any) -> Command:
    """The one command that ``data`` holds, checked fed every way."""
    events = [e for e in events_all_ways(data, **options) if not isinstance(e, NeedLiteral)]
    assert len(events) == 1, events
    command = events[0]
    assert isinstance(command, Command)
    return command


def bad(data: bytes, **options: Any) -> BadCommand:
    command = parse_all_ways(data, **options)
    assert isinstance(command, BadCommand), command
    return command
