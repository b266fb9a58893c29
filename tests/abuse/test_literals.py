"""Literals a stranger can abuse (RFC 9051 §4.3, RFC 7888): too large, announced and
never sent, cut off by a disconnect. Each ends in a clear reply or a clean close, keeps
nothing half-stored, leaves no spool file, and the server goes on serving others."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.abuse.conftest import StartServer, connections_finished, spool_files
from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message

LIMIT = 64 * 1024
SPOOL = 1024  # literals above this go to a spool file


async def inbox_count(handle: ImapServer, user: str = "alice") -> int:
    client = await handle.login(user)
    reply = await client.ok("STATUS INBOX (MESSAGES)")
    await client.close()
    return int(reply.untagged[0].rsplit(b" ", 1)[1].rstrip(b")"))


async def still_serving(handle: ImapServer) -> None:
    client = await handle.login("bob")
    await client.ok("SELECT INBOX")
    await client.ok("LOGOUT")


async def test_synchronizing_literal_over_limit_is_refused_and_session_goes_on(
    start_server: StartServer,
) -> None:
    handle = await start_server(max_literal_size=LIMIT, spool_threshold=SPOOL)
    client = await handle.login()
    await client.send(b"t1 APPEND INBOX {%d}\r\n" % (LIMIT + 1))
    reply = await client.read_until_tagged("t1")
    assert reply.status == "NO" and b"[TOOBIG]" in reply.line
    # Absurd sizes too: thousands of digits, more than any integer type holds.
    await client.send(b"t2 APPEND INBOX {" + b"9" * 5000 + b"}\r\n")
    reply = await client.read_until_tagged("t2")
    assert reply.status in ("NO", "BAD")
    # The client sent no data, so the session is in step and goes on.
    await client.ok("NOOP")
    exact = b"Subject: x\r\n\r\n" + b"y" * (LIMIT - 14)
    await client.append("INBOX", exact)
    assert spool_files(handle) == []
    assert await inbox_count(handle) == 1


async def test_non_synchronizing_literal_over_limit_says_bye_and_closes(
    start_server: StartServer,
) -> None:
    handle = await start_server(max_literal_size=LIMIT, spool_threshold=SPOOL)
    client = await handle.login()
    # RFC 7888 §4: the data is on its way and cannot be refused; the server hangs up.
    await client.send(b"t1 APPEND INBOX {%d+}\r\n" % (LIMIT + 1) + b"x" * 4096)
    line = await client.read_response()
    assert line.startswith(b"* BYE [TOOBIG]"), line
    assert await client.expect_eof() == b""
    await connections_finished(handle)
    assert spool_files(handle) == []
    assert await inbox_count(handle) == 0
    await still_serving(handle)


async def test_literal_announced_and_never_sent_times_out(start_server: StartServer) -> None:
    handle = await start_server(auth_timeout=0.5, spool_threshold=SPOOL)
    client = await handle.login()
    await client.send(b"t1 APPEND INBOX {5000}\r\n")
    assert (await client.read_response()).startswith(b"+ ")
    await client.send(b"Subject: half\r\n\r\n" + b"z" * 2000)  # over SPOOL: spooled
    # Another client is served while this one stalls.
    await still_serving(handle)
    line = await client.read_response()  # waits for the server's timeout, no sleep
    assert line.startswith(b"* BYE"), line
    assert await client.expect_eof() == b""
    await connections_finished(handle)
    assert spool_files(handle) == []
    assert await inbox_count(handle) == 0


async def test_non_synchronizing_literal_never_finished_times_out(
    start_server: StartServer,
) -> None:
    handle = await start_server(auth_timeout=0.5, spool_threshold=SPOOL)
    client = await handle.login()
    await client.send(b"t1 APPEND INBOX {5000+}\r\nSubject: half\r\n\r\n" + b"z" * 2000)
    line = await client.read_response()
    assert line.startswith(b"* BYE"), line
    assert await client.expect_eof() == b""
    await connections_finished(handle)
    assert spool_files(handle) == []
    assert await inbox_count(handle) == 0


async def test_literal_never_sent_before_sign_in_times_out(start_server: StartServer) -> None:
    handle = await start_server(preauth_timeout=0.3)
    client = await handle.connect()
    await client.send(b"t1 LOGIN {5}\r\n")
    assert (await client.read_response()).startswith(b"+ ")
    line = await client.read_response()
    assert line.startswith(b"* BYE"), line
    assert await client.expect_eof() == b""


async def until(condition: Callable[[], object]) -> None:
    """Let the event loop (which runs the server too) turn until ``condition`` holds."""
    for _ in range(100_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def _disconnect_during_append(
    handle: ImapServer, command: bytes, partial: bytes, *, reset: bool, spooled: bool
) -> None:
    client = await handle.login()
    await client.send(command)
    if command.endswith(b"}\r\n") and not command.endswith(b"+}\r\n"):
        assert (await client.read_response()).startswith(b"+ ")
    await client.send(partial)
    if spooled:
        await until(lambda: spool_files(handle))  # the server is writing the literal
    if reset:
        client.writer.transport.abort()  # RST, as a dropped phone connection
    else:
        await client.close()
    await connections_finished(handle)


async def test_disconnect_in_the_middle_of_a_small_append_literal(
    start_server: StartServer,
) -> None:
    handle = await start_server(spool_threshold=SPOOL)
    await _disconnect_during_append(
        handle, b"t1 APPEND INBOX {500}\r\n", message()[:40], reset=True, spooled=False
    )
    assert spool_files(handle) == []
    assert await inbox_count(handle) == 0
    await still_serving(handle)


async def test_disconnect_in_the_middle_of_a_spooled_append_literal(
    start_server: StartServer,
) -> None:
    handle = await start_server(spool_threshold=SPOOL)
    await _disconnect_during_append(
        handle,
        b"t1 APPEND INBOX {50000}\r\n",
        b"Subject: big\r\n\r\n" + b"b" * 20000,
        reset=False,
        spooled=True,
    )
    assert spool_files(handle) == []
    assert await inbox_count(handle) == 0
    await still_serving(handle)


async def test_disconnect_in_the_second_message_of_a_multiappend(
    start_server: StartServer,
) -> None:
    """RFC 3502: MULTIAPPEND is all or nothing; the first message, complete and
    spooled, must not appear when the second never arrives."""
    handle = await start_server(spool_threshold=SPOOL)
    first = b"Subject: first\r\n\r\n" + b"1" * 3000
    await _disconnect_during_append(
        handle,
        b"t1 APPEND INBOX {%d+}\r\n" % len(first) + first + b" {3000+}\r\n",
        b"Subject: second\r\n\r\n" + b"2" * 100,
        reset=False,
        spooled=True,
    )
    assert spool_files(handle) == []
    assert await inbox_count(handle) == 0
    await still_serving(handle)


async def test_literal_smaller_than_announced_then_next_command_is_data(
    start_server: StartServer,
) -> None:
    """A client that sends fewer bytes than it announced has its next command eaten
    as literal data; the server must neither hang nor store a mangled message."""
    handle = await start_server()
    client = await handle.login()
    await client.send(b"t1 APPEND INBOX {30+}\r\nSubject: short\r\n\r\nx\r\nt2 NOOP\r\n")
    await client.send(b"\r\nt3 NOOP\r\n")
    reply = await client.read_until_tagged("t3")
    assert reply.status == "OK"
    assert not any(line.startswith(b"t2 ") for line in reply.untagged)
    # What arrived was 30 bytes of "message": it is stored exactly as sent, or refused.
    client2 = await handle.login()
    await client2.ok("SELECT INBOX")
    fetched = await client2.ok("FETCH 1:* (BODY.PEEK[])")
    for line in fetched.untagged:
        assert b"Subject: short\r\n\r\nx\r\nt2 NOOP\r\n" in line
    assert spool_files(handle) == []


async def test_many_clients_abandoning_literals_at_once(start_server: StartServer) -> None:
    handle = await start_server(spool_threshold=SPOOL)
    clients: list[ImapClient] = [await handle.login() for _ in range(8)]
    for number, client in enumerate(clients):
        await client.send(b"t1 APPEND INBOX {20000+}\r\n" + b"c" * (1000 * number + 10))
    await asyncio.gather(*(c.close() for c in clients))
    await connections_finished(handle)
    assert spool_files(handle) == []
    assert await inbox_count(handle) == 0


async def test_nul_in_a_plain_literal_is_refused_and_literal8_keeps_it(
    start_server: StartServer,
) -> None:
    """RFC 9051 §4.3: a {n} literal never holds NUL; only literal8 (~{n}, RFC 3516) may.
    APPEND refuses a NUL in {n} (in memory or spooled) instead of storing bytes the
    client could not have meant, and stores a literal8 message byte for byte."""
    handle = await start_server(spool_threshold=SPOOL)
    client = await handle.login()
    small = b"Subject: nul\r\n\r\na\x00b\r\n"
    spooled = small + b"p" * (2 * SPOOL) + b"\x00\r\n"
    for number, body in enumerate((small, spooled)):
        for synchronizing in (False, True):
            tag = f"n{number}{int(synchronizing)}"
            marker = b"{%d}" if synchronizing else b"{%d+}"
            await client.send(tag.encode() + b" APPEND INBOX " + marker % len(body) + b"\r\n")
            if synchronizing:
                assert (await client.read_response()).startswith(b"+ ")
            await client.send(body + b"\r\n")
            reply = await client.read_until_tagged(tag)
            assert reply.status == "NO" and b"[CANNOT]" in reply.line, reply.line
    assert spool_files(handle) == []
    assert await inbox_count(handle) == 0
    for tag, body in (("b1", small), ("b2", spooled)):
        await client.send(tag.encode() + b" APPEND INBOX ~{%d+}\r\n" % len(body) + body + b"\r\n")
        assert (await client.read_until_tagged(tag)).status == "OK"
    await client.ok("SELECT INBOX")
    for number, body in ((1, small), (2, spooled)):
        fetched = await client.ok(f"FETCH {number} (BINARY.PEEK[])")
        assert fetched.untagged[0].endswith(b"~{%d}\r\n" % len(body) + body + b")")
        # BODY[] cannot carry NUL in its {n} literal: shown as 0x80, stored unchanged.
        fetched = await client.ok(f"FETCH {number} (BODY.PEEK[])")
        assert fetched.untagged[0].endswith(body.replace(b"\x00", b"\x80") + b")")


async def test_an_absurd_literal_size_is_reported_as_too_large_with_the_limit(
    start_server: StartServer,
) -> None:
    """A 400-digit size is not repeated back (it once came out as 10^30 bytes): the
    reply says "too large" and names the limit (issue 13, item 15)."""
    handle = await start_server(max_literal_size=LIMIT)
    client = await handle.login()
    await client.send(b"t1 APPEND INBOX {" + b"9" * 400 + b"}\r\n")
    reply = await client.read_until_tagged("t1")
    assert reply.line == b"t1 NO [TOOBIG] Literal too large: the limit is %d bytes" % LIMIT
    await client.ok("NOOP")
