"""Issue 13, item 1: a COMPRESS=DEFLATE bomb and floods of pipelined commands.

A few KiB of deflated input inflate to megabytes, and 24 KiB of deflated NOOPs are two
million commands. The connection inflates a piece at a time, only as the receiver
consumes it, so its buffers stay within the line limit; it yields to the loop every few
commands, so another connection is answered in the middle of a flood; and past
``max_commands_per_second`` it is slowed. The checks are on buffer sizes and on the
order in which the server ran commands, never on wall-clock times."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from roost.imap import connection
from roost.imap.connection import INFLATE_CHUNK
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.receiver import Receiver
from roost.imap.wire.responses import Response
from tests.abuse.conftest import StartServer
from tests.support.deflate import DeflatedStream

LINE_LIMIT = 4096


async def test_deflate_bomb_is_inflated_only_as_it_is_consumed(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 MB of one line deflate to ~20 KB, one read for the server. The receiver never
    holds more than a line's worth plus one inflated piece (before: all 20 MB)."""
    peak = 0
    feed = Receiver.feed

    def measured_feed(self: Receiver, data: bytes) -> None:
        nonlocal peak
        feed(self, data)
        peak = max(peak, self.buffered)

    monkeypatch.setattr(Receiver, "feed", measured_feed)
    handle = await start_server(max_line_length=LINE_LIMIT)
    client = await handle.login()
    await client.ok("COMPRESS DEFLATE")
    stream = DeflatedStream(client)
    await stream.send(b"b1 NOOP " + b"x" * 20_000_000 + b"\r\nb2 NOOP\r\n")
    lines = await stream.read_until_tagged(b"b2")
    assert lines[0].startswith(b"b1 BAD") and b"too long" in lines[0], lines[0]
    assert lines[-1].startswith(b"b2 OK"), lines
    assert peak <= LINE_LIMIT + INFLATE_CHUNK, peak
    # Commands pipelined behind a bomb of NOOPs are all answered, in order.
    count = 50_000
    await stream.send(b"".join(b"n%d NOOP\r\n" % n for n in range(count)))
    for n in range(count):
        line = await stream.read_line()
        assert line.startswith(b"n%d OK" % n), line
    assert peak <= LINE_LIMIT + INFLATE_CHUNK, peak


async def test_a_flood_of_commands_does_not_starve_another_connection(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one connection works through 20,000 compressed NOOPs, another's NOOP is
    run among them, not after them: the flooding connection yields to the loop."""
    ran: list[str] = []
    flood_started = asyncio.Event()
    run_command = connection.run_command

    def recording(session: Session, command: c.Command) -> AsyncIterator[Response]:
        ran.append(command.tag)
        if command.tag == "f0":
            flood_started.set()
        return run_command(session, command)

    monkeypatch.setattr(connection, "run_command", recording)
    handle = await start_server(max_commands_per_second=10_000_000)
    flooder = await handle.login("alice")
    other = await handle.login("bob")
    await flooder.ok("COMPRESS DEFLATE")
    stream = DeflatedStream(flooder)
    count = 20_000
    await stream.send(b"".join(b"f%d NOOP\r\n" % n for n in range(count)))
    await flood_started.wait()  # the server is running the flood now
    await other.send(b"other NOOP\r\n")
    assert (await other.read_until_tagged("other")).status == "OK"
    position = ran.index("other")
    flood_before = sum(1 for tag in ran[:position] if tag.startswith("f"))
    assert flood_before < count, "the other connection waited for the whole flood"
    for n in range(count):
        assert (await stream.read_line()).startswith(b"f%d OK" % n)


async def test_commands_past_the_rate_are_slowed_not_refused(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Past max_commands_per_second (after a burst of as many) a connection's commands
    wait for their turn: all are answered, in order, and the slowing is logged."""
    handle = await start_server(max_commands_per_second=50)
    client = await handle.login()
    count = 75  # the sign-in took one of the 50; 26 wait 1/50 s each
    with caplog.at_level(logging.INFO, logger="roost.imap"):
        await client.send(b"".join(b"r%d NOOP\r\n" % n for n in range(count)))
        for n in range(count):
            assert (await client.read_until_tagged(f"r{n}")).status == "OK"
    assert any("commands slowed" in record.getMessage() for record in caplog.records)
