"""Too slow, too much, too deep: a client that trickles, one that pipelines 10,000
commands, deeply nested lists, huge ID lists. Each gets correct answers or a clean
BAD, and the server keeps serving everyone else meanwhile."""

from __future__ import annotations

import asyncio
import time

from tests.abuse.conftest import StartServer
from tests.support.imap_client import message


async def test_slow_sender_one_byte_at_a_time(start_server: StartServer) -> None:
    """A command that arrives a byte at a time is answered as if sent at once, and the
    server serves others between the bytes. The pauses are the point of the test."""
    handle = await start_server()
    slow = await handle.connect()
    other = await handle.login("bob")
    command = b"s1 LOGIN {5}\r\nalice {11}\r\nsecret pass\r\n"
    started = time.monotonic()
    for position in range(len(command)):
        await slow.send(command[position : position + 1])
        if command[: position + 1].endswith(b"}\r\n"):
            assert (await slow.read_response()).startswith(b"+ ")
        if position % 8 == 0:
            await other.ok("NOOP")  # not held up by the trickle
        await asyncio.sleep(0.01)
    reply = await slow.read_until_tagged("s1")
    assert reply.status == "OK", reply.line
    assert time.monotonic() - started < 10
    for byte in b"s2 NOOP\r\n":
        await slow.send(bytes([byte]))
        await asyncio.sleep(0.01)
    assert (await slow.read_until_tagged("s2")).status == "OK"


async def test_slow_sender_is_served_until_the_preauth_time_runs_out(
    start_server: StartServer,
) -> None:
    """A command trickled within the pre-auth time is answered; when that time runs
    out (silence or not, tests/abuse/test_slowloris.py) the connection ends with BYE."""
    handle = await start_server(preauth_timeout=0.5)
    client = await handle.connect()
    for byte in b"t1 NOOP\r\n":  # about 0.5 s in all
        await client.send(bytes([byte]))
        await asyncio.sleep(0.04)
    assert (await client.read_until_tagged("t1")).status == "OK"
    await client.send(b"t2 NO")
    line = await client.read_response()  # then silence: the server's timeout
    assert line.startswith(b"* BYE"), line
    assert await client.expect_eof() == b""


async def test_ten_thousand_pipelined_commands_in_one_write(start_server: StartServer) -> None:
    handle = await start_server()
    client = await handle.login()
    await client.append("INBOX", message())
    await client.ok("SELECT INBOX")
    kinds = [b"NOOP", b"FETCH 1 (FLAGS)", b"UID FETCH 1 (UID)", b"STATUS Trash (MESSAGES)"]
    count = 10_000
    batch = b"".join(b"p%d %s\r\n" % (n, kinds[n % len(kinds)]) for n in range(count))
    await client.send(batch)
    seen_tags: list[bytes] = []
    while len(seen_tags) < count:
        line = await client.read_response()
        if line.startswith(b"* "):
            continue
        tag, status, _ = line.split(b" ", 2)
        assert status == b"OK", line
        seen_tags.append(tag)
    assert seen_tags == [b"p%d" % n for n in range(count)]
    await client.ok("NOOP")


async def test_pipelined_commands_after_a_bad_one_are_still_answered(
    start_server: StartServer,
) -> None:
    handle = await start_server()
    client = await handle.login()
    await client.send(b"a1 NOOP\r\na2 FETCH (((\r\na3 BOGUS\r\n\r\na4 NOOP\r\n")
    statuses = {}
    for tag in ("a1", "a2", "a3", "a4"):
        statuses[tag] = (await client.read_until_tagged(tag)).status
    assert statuses == {"a1": "OK", "a2": "BAD", "a3": "BAD", "a4": "OK"}


async def test_deeply_nested_lists_are_bad_everywhere(start_server: StartServer) -> None:
    handle = await start_server(max_nesting_depth=32)
    client = await handle.login()
    await client.append("INBOX", message())
    await client.ok("SELECT INBOX")
    deep = b"(" * 10_000 + b")" * 10_000
    for command in [
        b"FETCH 1 " + deep,
        b"FETCH 1 (FLAGS) " + deep,
        b"STORE 1 FLAGS " + deep,
        b"ID " + deep,
        b"SELECT INBOX " + deep,
        b"LIST " + deep + b' "" *',
        b"STATUS INBOX " + deep,
        b"APPEND INBOX " + deep + b" {1+}\r\nx",
        b"SEARCH " + deep,
        b"FETCH 1 " + b"(" * 50_000,  # never closed
        b"FETCH 1 " + b")" * 50_000,  # never opened
        b"ENABLE " + deep,
    ]:
        reply = await client.command(command)
        assert reply.status == "BAD", (command[:40], reply.line)
    # Just inside the limit: parsed, then refused for what it means, not for depth.
    reply = await client.command(b"ID " + b"(" * 32 + b")" * 32)
    assert reply.status in ("OK", "BAD")
    await client.ok("NOOP")
    await client.ok("FETCH 1 (FLAGS)")


async def test_huge_id_lists(start_server: StartServer) -> None:
    handle = await start_server()
    client = await handle.connect()
    many = b" ".join(b'"k%d" "v%d"' % (n, n) for n in range(20_000))
    assert (await client.command(b"ID (" + many + b")")).status == "BAD"
    long_values = b" ".join(b'"k%d" "%s"' % (n, b"v" * 4000) for n in range(30))
    assert (await client.command(b"ID (" + long_values + b")")).status == "OK"
    # Literal values, each a round trip: a bounded count, answered.
    literal_pairs = b" ".join(b"{2}\r\nk%d {2}\r\nv%d" % (n, n) for n in range(10))
    assert (await client.command(b"ID (" + literal_pairs + b")")).status == "OK"
    assert (await client.command(b"ID (" + b'"k" ' * 31 + b")")).status == "BAD"
    assert (await client.command(b'ID ("k" ("nested" "list"))')).status == "BAD"
    assert (await client.command(b"ID " + b"NIL " * 10_000)).status == "BAD"
    await client.ok("NOOP")
    await client.login("alice", "secret pass")
