"""Issue 13, item 3: a stranger must not write to disk, and uploads share a cap.

Before sign-in a command's literals total at most ``max_preauth_literal`` bytes: LOGIN
fits, ``x LOGIN {67108864+}`` does not, and nothing is spooled. After it, spooled
literals of every connection together stay within ``max_spool_bytes``: one that does
not fit is refused with ``NO [LIMIT]`` before a byte of it is written."""

from __future__ import annotations

from tests.abuse.conftest import StartServer, connections_finished, spool_files
from tests.conftest import PASSWORD

SPOOL = 1024  # literals above this go to a spool file


async def test_big_synchronizing_literal_before_sign_in_is_refused_unasked(
    start_server: StartServer,
) -> None:
    handle = await start_server(spool_threshold=SPOOL)
    client = await handle.connect()
    await client.send(b"t1 LOGIN {67108864}\r\n")
    line = await client.read_response()  # no "+ Ready": the client sends nothing more
    assert line.startswith(b"t1 NO [TOOBIG]"), line
    assert b"8192" in line and b"before sign-in" in line, line
    assert spool_files(handle) == []
    # Over the per-command total, not the per-literal size: refused as well.
    await client.send(b"t2 LOGIN {5000}\r\n")
    assert (await client.read_response()).startswith(b"+ ")
    await client.send(b"u" * 5000 + b" {5000}\r\n")
    line = await client.read_response()
    assert line.startswith(b"t2 NO [TOOBIG]"), line
    # A LOGIN with literals of ordinary size works, and after it big literals do.
    await client.send(b"t3 LOGIN {5}\r\n")
    assert (await client.read_response()).startswith(b"+ ")
    await client.send(b"alice {%d}\r\n" % len(PASSWORD))
    assert (await client.read_response()).startswith(b"+ ")
    await client.send(PASSWORD.encode() + b"\r\n")
    assert (await client.read_until_tagged("t3")).status == "OK"
    body = b"Subject: big\r\n\r\n" + b"b" * 20_000
    await client.append("INBOX", body)


async def test_big_non_synchronizing_literal_before_sign_in_closes_the_connection(
    start_server: StartServer,
) -> None:
    """RFC 7888 §4: the bytes of a {N+} literal are coming anyway; say BYE, close, and
    write none of them anywhere."""
    handle = await start_server(spool_threshold=SPOOL)
    client = await handle.connect()
    await client.send(b"t1 LOGIN {67108864+}\r\n" + b"x" * 100_000)
    line = await client.read_response()
    assert line.startswith(b"* BYE [TOOBIG]"), line
    await client.expect_eof()
    await connections_finished(handle)
    assert spool_files(handle) == []
    # Many small literals that add up are refused the same way.
    client = await handle.connect()
    await client.send(b"t2 LOGIN {4000+}\r\n" + b"a" * 4000 + b" {4000+}\r\n" + b"b" * 4000)
    await client.send(b" {4000+}\r\n" + b"c" * 4000 + b"\r\n")
    line = await client.read_response()
    assert line.startswith(b"* BYE [TOOBIG]"), line
    await client.expect_eof()
    await connections_finished(handle)
    assert spool_files(handle) == []


async def test_spooled_literals_share_one_cap(start_server: StartServer) -> None:
    """With 10,000 bytes of spool, an 8,000-byte upload in progress leaves no room for
    another: that one is refused (NO [LIMIT]) without a file, synchronizing or not, and
    accepted once the first is done."""
    handle = await start_server(spool_threshold=SPOOL, max_spool_bytes=10_000)
    body = b"Subject: spooled\r\n\r\n" + b"s" * (8000 - 20)
    first = await handle.login("alice")
    second = await handle.login("bob")
    await first.send(b"a1 APPEND INBOX {%d}\r\n" % len(body))
    assert (await first.read_response()).startswith(b"+ ")
    await first.send(body[:100])  # in progress: its 8,000 bytes are reserved
    await second.send(b"b1 APPEND INBOX {%d}\r\n" % len(body))
    line = await second.read_response()  # no "+ Ready"
    assert line == b"b1 NO [LIMIT] Too much is being uploaded at once; try again later", line
    await second.send(b"b2 APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
    reply = await second.read_until_tagged("b2")
    assert reply.status == "NO" and b"[LIMIT]" in reply.line, reply.line
    assert len(spool_files(handle)) == 1  # the first upload's only
    await first.send(body[100:] + b"\r\n")
    assert (await first.read_until_tagged("a1")).status == "OK"
    assert spool_files(handle) == []
    await second.append("INBOX", body)  # room again
    assert handle.context.spool_budget is not None
    assert handle.context.spool_budget.used == 0
