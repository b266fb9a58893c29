"""Issue 13, item 9: a byte now and then must not hold a connection open (slowloris).

Before sign-in the whole phase has ``preauth_timeout``; after it, a command must be
complete within ``command_timeout`` of its first byte, plus a second per
``min_literal_rate`` bytes of its literals. Silence alone is no longer the measure.
The limits are set to fractions of a second; a trickler sends a byte every 20 ms
(well inside any silence time-out) until the server says BYE or closes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from roost.pop3.context import Pop3Limits
from tests.abuse.conftest import StartServer
from tests.pop3.conftest import pop3_server

TRICKLE_PAUSE = 0.02


async def closed_by_server(expect_eof: Callable[[], Awaitable[bytes]]) -> None:
    """The server closes: EOF, or a reset when a trickled byte reached the closed socket."""
    with contextlib.suppress(ConnectionResetError):
        assert await expect_eof() == b""


@contextlib.asynccontextmanager
async def trickling(send: Callable[[bytes], Awaitable[None]], data: bytes) -> AsyncIterator[None]:
    """Send ``data`` over and over, one byte every TRICKLE_PAUSE, while the body runs."""

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in itertools.cycle(data):
                await send(bytes([byte]))
                await asyncio.sleep(TRICKLE_PAUSE)

    task = asyncio.create_task(trickle())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_trickled_commands_before_sign_in_end_at_the_preauth_deadline(
    start_server: StartServer,
) -> None:
    """Complete NOOPs, a byte at a time, never silent for long: answered until the
    pre-auth phase runs out, then BYE."""
    handle = await start_server(preauth_timeout=0.4)
    client = await handle.connect()
    answered = 0
    async with trickling(client.send, b"n NOOP\r\n"):
        # A NOOP takes 0.16 s to trickle: the deadline comes after about three.
        while (line := await client.read_response()).startswith(b"n OK") and answered < 30:
            answered += 1
    assert line == b"* BYE Autologout: no sign-in in time", line
    assert answered >= 1  # trickled commands were served meanwhile
    await closed_by_server(client.expect_eof)


async def test_trickled_line_after_sign_in_ends_at_the_command_deadline(
    start_server: StartServer,
) -> None:
    handle = await start_server(command_timeout=0.3)
    client = await handle.login()
    async with trickling(client.send, b"x"):  # a line that never ends
        line = await client.read_response()
    assert line == b"* BYE Autologout: command not completed in time", line
    await closed_by_server(client.expect_eof)


async def test_literals_get_time_in_proportion_to_their_size(start_server: StartServer) -> None:
    """At 100 bytes a second, a 100-byte literal adds a second to the 0.3 s a command
    has: a pause of 0.6 s in it is fine. A 10-byte one adds 0.1 s: the same pause
    ends the connection."""
    handle = await start_server(command_timeout=0.3, min_literal_rate=100)
    client = await handle.login()
    body = b"Subject: slow\r\n\r\n" + b"s" * 83
    await client.send(b"a1 APPEND INBOX {%d}\r\n" % len(body))
    assert (await client.read_response()).startswith(b"+ ")
    await client.send(body[:50])
    await asyncio.sleep(0.6)  # the pause under test
    await client.send(body[50:] + b"\r\n")
    assert (await client.read_until_tagged("a1")).status == "OK"
    await client.send(b"a2 APPEND INBOX {10}\r\n")
    assert (await client.read_response()).startswith(b"+ ")
    await client.send(b"Subject: ")
    line = await client.read_response()  # the server gives up, no sleep here
    assert line == b"* BYE Autologout: command not completed in time", line


async def test_pop3_trickled_commands_before_sign_in_end_at_the_deadline(
    tmp_path: Path,
) -> None:
    """POP3 the same (with a line that never ends, well within command_timeout); RFC
    1939 §3: the autologout closes without a response."""
    limits = Pop3Limits(preauth_timeout=0.4)
    async with pop3_server(tmp_path, limits=limits) as server:
        client = await server.connect()
        async with trickling(client.send, b"x"):
            await closed_by_server(client.expect_eof)


async def test_pop3_trickled_line_after_sign_in_ends_at_the_command_deadline(
    tmp_path: Path,
) -> None:
    limits = Pop3Limits(command_timeout=0.3)
    async with pop3_server(tmp_path, limits=limits) as server:
        client = await server.login()
        async with trickling(client.send, b"x"):
            await closed_by_server(client.expect_eof)
