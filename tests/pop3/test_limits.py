"""Limits, time-outs, pipelining and failures: each gives a clear ``-ERR`` and a log
line, or closes the connection as RFC 1939 says — and never loses or deletes mail that
was not meant to go (ARCHITECTURE.md, decision 8)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from roost.pop3.context import Pop3Limits
from roost.store.base import DELETED, StorageFull
from roost.store.sqlite.account import SqliteAccount
from tests.conftest import PASSWORD
from tests.pop3.conftest import Pop3Server, pop3_server
from tests.support.imap_client import message


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def pop3_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Records]:
    """The roost.pop3 log, kept from the guard that fails tests on logged errors: for
    the tests that expect one."""
    logger = logging.getLogger("roost.pop3")
    records = _Records()
    logger.addHandler(records)
    monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr(logger, "level", logging.DEBUG)
    yield records
    logger.removeHandler(records)


async def test_line_too_long_gets_err_and_the_session_goes_on(pop3: Pop3Server) -> None:
    """RFC 2449 §4: commands are at most 255 octets; more is accepted up to the limit."""
    client = await pop3.connect()
    await client.ok("USER " + "a" * 1000)  # over 255, under the limit: fine
    reply = await client.err("NOOP " + "x" * 10_000)
    assert reply == b"-ERR Line too long (10005 octets; the limit is 8192)"
    await client.login("alice", PASSWORD)
    await client.ok("NOOP")


async def test_too_many_invalid_commands_close_the_connection(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, limits=Pop3Limits(max_bad_commands=3)) as server:
        client = await server.connect()
        await client.err("FOO")
        await client.err("BAR")
        await client.ok("CAPA")  # a valid command resets the count
        await client.read_multiline()
        await client.err("FOO")
        await client.err("STAT")  # wrong state counts too
        assert await client.command("BAZ") == (
            b"-ERR Unknown command; too many invalid commands, closing the connection"
        )
        assert await client.expect_eof() == b""


async def test_failed_sign_ins_count_as_invalid(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, limits=Pop3Limits(max_bad_commands=2)) as server:
        client = await server.connect()
        await client.ok("USER alice")
        await client.err("PASS wrong")
        reply = await client.auth_plain("alice", "wrong")
        assert reply.endswith(b"closing the connection")
        assert await client.expect_eof() == b""


async def test_sasl_challenges_do_not_reset_the_count(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, limits=Pop3Limits(max_bad_commands=3)) as server:
        client = await server.connect()
        for _ in range(2):
            await client.send("AUTH PLAIN\r\n")
            assert await client.read_line() == b"+ "
            await client.err("not base64")
        await client.send("AUTH PLAIN\r\n")
        await client.read_line()
        assert (await client.command("*!")).endswith(b"closing the connection")
        assert await client.expect_eof() == b""


async def test_silence_before_sign_in_closes_without_a_word(tmp_path: Path) -> None:
    """RFC 1939 §3: on the autologout timer the server closes without a response."""
    async with pop3_server(tmp_path, limits=Pop3Limits(preauth_timeout=0.05)) as server:
        client = await server.connect()
        assert await client.expect_eof() == b""


async def test_autologout_after_sign_in_deletes_nothing(tmp_path: Path) -> None:
    """RFC 1939 §3: the autologout timer does not enter UPDATE."""
    limits = Pop3Limits(auth_timeout=0.05)
    async with pop3_server(tmp_path, limits=limits) as server:
        uids = await server.deliver(message("a"))
        client = await server.connect()
        # Pipelined, so DELE is already there when the short timer starts.
        await client.send(f"USER alice\r\nPASS {PASSWORD}\r\nDELE 1\r\n")
        for _ in range(3):
            assert (await client.read_line()).startswith(b"+OK")
        assert await client.expect_eof() == b""
        assert list(await server.inbox()) == uids


async def test_pipelined_commands_are_answered_in_order(pop3: Pop3Server) -> None:
    """RFC 2449 §6.6 PIPELINING: a whole session in one write."""
    uids = await pop3.deliver(b"Subject: a\r\n\r\n.dot\r\n", message("b"))
    client = await pop3.connect()
    await client.send(
        f"CAPA\r\nUSER alice\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST\r\nUIDL 1\r\nRETR 1\r\n"
        "TOP 2 0\r\nDELE 1\r\nRETR 1\r\nNOOP\r\nQUIT\r\nNOOP\r\n"
    )
    assert await client.read_line() == b"+OK Capability list follows"
    assert b"PIPELINING" in await client.read_multiline()
    assert await client.read_line() == b"+OK Send your password"
    assert await client.read_line() == b"+OK Signed in; 2 messages"
    assert (await client.read_line()).startswith(b"+OK 2 ")
    assert (await client.read_line()).startswith(b"+OK 2 messages")
    assert len(await client.read_multiline()) == 2
    assert (await client.read_line()).startswith(b"+OK 1 ")
    assert await client.read_line() == b"+OK 20 octets"
    assert await client.read_multiline() == [b"Subject: a", b"", b"..dot"]
    assert await client.read_line() == b"+OK Top of message follows"
    assert (await client.read_multiline())[-1] == b""
    assert await client.read_line() == b"+OK Message 1 deleted"
    assert await client.read_line() == b"-ERR Message 1 is deleted"
    assert await client.read_line() == b"+OK"
    assert await client.read_line() == b"+OK Roost POP3 server signing off (1 deleted)"
    assert await client.expect_eof() == b""  # nothing after QUIT is answered
    assert list(await pop3.inbox()) == uids[1:]


async def test_shutdown_says_so_and_deletes_nothing(pop3: Pop3Server) -> None:
    uids = await pop3.deliver(message("a"))
    client = await pop3.login()
    await client.ok("DELE 1")
    await pop3.server.shutdown()
    assert await client.read_line() == b"-ERR [SYS/TEMP] Server shutting down"
    assert await client.expect_eof() == b""
    assert list(await pop3.inbox()) == uids


async def test_too_many_connections_from_one_address(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, max_connections_per_ip=1) as server:
        await server.connect()
        reader, writer = await asyncio.open_connection(server.host, server.pop3_port)
        assert await reader.readline() == (
            b"-ERR [SYS/TEMP] Too many connections from your address (max_connections_per_ip)\r\n"
        )
        assert await reader.read() == b""
        writer.close()


async def test_store_failure_at_quit_is_reported(
    pop3: Pop3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 1939 §6: "-ERR some deleted messages not removed"."""
    uids = await pop3.deliver(message("a"))
    client = await pop3.login()
    await client.ok("DELE 1")

    async def full(self: SqliteAccount, *args: object, **kwargs: object) -> list[int]:
        raise StorageFull("disk full")

    monkeypatch.setattr(SqliteAccount, "expunge", full)
    assert await client.command("QUIT") == (
        b"-ERR [SYS/TEMP] Some deleted messages were not removed"
    )
    assert await client.expect_eof() == b""
    monkeypatch.undo()
    # Flagged \Deleted before the expunge failed: still there, and on its way out —
    # an IMAP EXPUNGE removes it; POP3 no longer offers it. Nothing else was touched.
    assert await pop3.inbox() == {uids[0]: frozenset({DELETED})}
    client = await pop3.login()  # the lock was released
    assert await client.ok("STAT") == b"+OK 0 0"


async def test_store_failure_before_a_response_is_sys_temp(
    pop3: Pop3Server, monkeypatch: pytest.MonkeyPatch, pop3_log: _Records
) -> None:
    await pop3.deliver(message("a"))
    client = await pop3.login()

    async def failing(self: SqliteAccount, *args: object, **options: object) -> list[object]:
        raise StorageFull("disk full")

    monkeypatch.setattr(SqliteAccount, "fetch_meta", failing)
    assert await client.err("RETR 1") == b"-ERR [SYS/TEMP] Server storage is full"
    assert await client.err("STAT") == b"-ERR [SYS/TEMP] Server storage is full"
    monkeypatch.undo()
    assert (await client.ok("STAT")).startswith(b"+OK 1 ")
    assert any("store error" in r.getMessage() for r in pop3_log.records)


async def test_failure_in_the_middle_of_retr_closes_the_connection(
    pop3: Pop3Server, monkeypatch: pytest.MonkeyPatch, pop3_log: _Records
) -> None:
    """Once "+OK" and part of the message are out, an -ERR would be read as message
    text: the only honest signal is to close (and, without QUIT, delete nothing)."""
    uids = await pop3.deliver(message("a"))
    client = await pop3.login()
    await client.ok("LIST 1")  # size known, so RETR reads the message only once
    await client.ok("DELE 1")

    async def broken(self: SqliteAccount, meta: object) -> AsyncIterator[bytes]:
        yield b"Subject: a\r\n"
        raise StorageFull("the disk went away")

    monkeypatch.setattr(SqliteAccount, "read_message", broken)
    await client.send("RETR 1\r\n")
    assert await client.read_line() == b"-ERR Message 1 is deleted"
    await client.send("RSET\r\nRETR 1\r\n")
    assert await client.read_line() == b"+OK 1 messages"
    assert (await client.read_line()).endswith(b"octets")
    assert await client.expect_eof() == b"Subject: a\r\n"
    monkeypatch.undo()
    assert list(await pop3.inbox()) == uids
    assert any("failed midway" in r.getMessage() for r in pop3_log.records)


async def test_internal_error_is_logged_and_answered(
    pop3: Pop3Server, monkeypatch: pytest.MonkeyPatch, pop3_log: _Records
) -> None:
    client = await pop3.login()

    async def bug(self: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr("roost.pop3.maildrop.Maildrop.total_size", bug)
    assert await client.err("STAT") == b"-ERR [SYS/TEMP] Internal server error, logged"
    await client.ok("NOOP")
    errors = [r for r in pop3_log.records if r.levelno >= logging.ERROR]
    assert errors and errors[0].exc_info is not None
