"""Drive a Connection over a transcript, feeding input whole, bytewise or split."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from roost.smtp import (
    Bdat,
    Connection,
    Content,
    MessageEnd,
    MessageRejected,
    NeedData,
    ServerConfig,
    replies,
)
from roost.smtp.connection import Event
from roost.smtp.replies import Reply

Answer = Callable[[Event], Reply | list[Reply] | None]


def default_answer(event: Event) -> Reply | list[Reply] | None:
    """Accept everything; 354 to DATA; one 250 per recipient."""
    match event:
        case MessageEnd(recipients):
            return [Reply(250, "2.0.0", f"<{r.command.recipient}> delivered") for r in recipients]
        case _ if type(event).__name__ == "Data":
            return replies.START_MAIL_INPUT
        case _ if hasattr(event, "reply"):
            return event.reply  # type: ignore[no-any-return, attr-defined]
        case _:
            return replies.OK


def splits(data: bytes) -> Iterator[list[bytes]]:
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for size in (2, 3, 7):
        yield [data[i : i + size] for i in range(0, len(data), size)]


def run(
    pieces: list[bytes],
    config: ServerConfig | None = None,
    answer: Answer = default_answer,
) -> tuple[list[Event], bytes, bytes]:
    """Returns (events without NeedData, merged Content, bytes written)."""
    conn = Connection(config)
    events: list[Event] = []
    content = bytearray()
    out = bytearray()
    feed = iter(pieces)
    while True:
        event = conn.next_event()
        if isinstance(event, NeedData):
            piece = next(feed, None)
            if piece is None:
                break
            conn.feed(piece)
            continue
        if isinstance(event, Content):
            content += event.data
            if events and isinstance(events[-1], Content):
                continue
        events.append(event)
        if isinstance(event, (Content, Bdat)):
            continue
        reply = answer(event)
        if isinstance(event, MessageEnd):
            assert isinstance(reply, list)
            out += conn.answer_message(reply)
        else:
            assert isinstance(reply, Reply)
            out += conn.answer(reply)
    return events, bytes(content), bytes(out)


def run_all_ways(
    data: bytes, config: ServerConfig | None = None, answer: Answer = default_answer
) -> tuple[list[Event], bytes, bytes]:
    """Run every split; all must agree; returns the result."""
    results = [run(pieces, config, answer) for pieces in splits(data)]
    first = results[0]
    for result in results[1:]:
        assert _normal(result) == _normal(first)
    return first


def _normal(result: tuple[list[Event], bytes, bytes]) -> tuple[list[Event], bytes, bytes]:
    events, content, out = result
    if any(isinstance(e, MessageRejected) for e in events):
        content = b""  # how much came before the failure depends on the split
    return [e for e in events if not isinstance(e, Content)], content, out
