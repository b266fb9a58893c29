"""COMPRESS=DEFLATE (RFC 4978) output as a client sees it: one raw DEFLATE stream that a
standard inflater (zlib) decodes, each response whole as soon as the client has to wait
for it (a sync flush before every wait), large and small writes in order whichever way
they were deflated (``connection.DEFLATE_ON_THREAD_AT``)."""

from __future__ import annotations

import base64
import random
import re

from roost.imap.connection import DEFLATE_ON_THREAD_AT, FLUSH_AT
from tests.conftest import ImapServer
from tests.support.deflate import DeflatedStream
from tests.support.imap_client import message

_LITERAL = re.compile(rb"\{(\d+)\}$")


def bodies() -> list[bytes]:
    """Messages of every size around the deflate thresholds: plain text (compresses
    well) and base64 of random bytes (barely), from a few bytes to past FLUSH_AT."""
    rng = random.Random(4978)
    sizes = [10, 700, 5_000, DEFLATE_ON_THREAD_AT - 300, DEFLATE_ON_THREAD_AT + 10]
    sizes += [FLUSH_AT + 1_000, 30_000, 3]
    made = []
    for n, size in enumerate(sizes):
        if n % 2:
            payload = base64.encodebytes(rng.randbytes(size * 3 // 4)).replace(b"\n", b"\r\n")
        else:
            payload = b"".join(b"line %d of message %d\r\n" % (i, n) for i in range(size // 20))
        made.append(message(f"size {size}", payload.decode()))
    return made


async def read_fetch_burst(stream: DeflatedStream, last_tag: bytes) -> list[bytes]:
    """Untagged FETCH literals and tagged lines, in the order received, up to the line
    tagged ``last_tag``."""
    received: list[bytes] = []
    while True:
        line = await stream.read_line()
        literal = _LITERAL.search(line)
        if literal is not None:
            received.append(await stream.read_exactly(int(literal.group(1))))
            assert (await stream.read_line()) == b")"
            continue
        received.append(line.split(b" ", 2)[0] + b" " + line.split(b" ", 2)[1])
        if line.startswith(last_tag + b" "):
            return received


async def test_pipelined_fetch_burst_inflates_whole_and_in_order(imap: ImapServer) -> None:
    """mbsync's cold sync in small: one UID FETCH per message pipelined, then one FETCH
    of all; every body comes back byte for byte, in order, and the last tagged line is
    decodable without any further byte from the server."""
    client = await imap.login()
    messages = bodies()
    for body in messages:
        await client.append("INBOX", body)
    await client.ok("SELECT INBOX")
    await client.ok("COMPRESS DEFLATE")
    stream = DeflatedStream(client)
    count = len(messages)
    burst = b"".join(
        b"f%d UID FETCH %d (BODY.PEEK[])\r\n" % (uid, uid) for uid in range(1, count + 1)
    )
    await stream.send(burst + b"all FETCH 1:* (BODY.PEEK[])\r\nn1 NOOP\r\n")
    received = await read_fetch_burst(stream, b"n1")
    expected: list[bytes] = []
    for uid, body in enumerate(messages, start=1):
        expected += [body, b"f%d OK" % uid]
    expected += [*messages, b"all OK", b"n1 OK"]
    assert received == expected
    assert stream.buffer == b""  # nothing after the tagged line
    # The stream goes on after the burst: the same inflater, a new command.
    await stream.send(b"n2 NOOP\r\n")
    assert (await stream.read_line()).startswith(b"n2 OK")


async def test_continuation_and_idle_are_flushed(imap: ImapServer) -> None:
    """A client waits on a continuation request before sending a literal, and in IDLE
    for untagged updates: each must reach it whole while the server waits too."""
    client = await imap.login()
    await client.ok("SELECT INBOX")
    await client.ok("COMPRESS DEFLATE")
    stream = DeflatedStream(client)
    body = message("appended over COMPRESS", "hello\r\n")
    await stream.send(b"a1 APPEND INBOX {%d}\r\n" % len(body))
    assert (await stream.read_line()).startswith(b"+ ")
    await stream.send(body + b"\r\n")
    lines = await stream.read_until_tagged(b"a1")
    assert lines[-1].startswith(b"a1 OK [APPENDUID "), lines
    await stream.send(b"i1 IDLE\r\n")
    assert (await stream.read_line()).startswith(b"+ ")
    other = await imap.login()
    await other.append("INBOX", message("while idling", "hi\r\n"))
    assert (await stream.read_line()) == b"* 2 EXISTS"
    await stream.send(b"DONE\r\n")
    assert (await stream.read_until_tagged(b"i1"))[-1].startswith(b"i1 OK")
    await stream.send(b"f1 UID FETCH 1 (BODY.PEEK[])\r\n")
    assert await read_fetch_burst(stream, b"f1") == [body, b"f1 OK"]
