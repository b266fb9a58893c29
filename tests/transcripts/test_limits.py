"""Limits on what a stranger can send: each gives a clear protocol error and the server
goes on (ARCHITECTURE.md, decision 8)."""

from __future__ import annotations

from pathlib import Path

from roost.imap.context import ImapLimits
from tests.conftest import start_imap_server, stop_imap_server
from tests.support.imap_client import message


async def test_long_uid_set_accepted(tmp_path: Path) -> None:
    """CLIENTS.md: UID sets get huge; at least 64 KiB lines are accepted."""
    handle, server = await start_imap_server(tmp_path)
    await handle.add_user("alice")
    try:
        client = await handle.login()
        await client.append("INBOX", message())
        await client.ok("SELECT INBOX")
        uid_set = ",".join(str(n) for n in range(1, 40000, 3))
        assert len(uid_set) > 64 * 1024
        reply = await client.ok(f"UID FETCH {uid_set} (FLAGS)")
        assert reply.untagged == [b"* 1 FETCH (UID 1 FLAGS (\\Recent))"]
    finally:
        await stop_imap_server(handle, server)


async def test_line_too_long_is_bad_and_connection_survives(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path, limits=ImapLimits(max_line_length=1024))
    try:
        client = await handle.connect()
        await client.send(b"t1 NOOP " + b"x" * 5000 + b"\r\n")
        reply = await client.read_until_tagged("t1")
        assert reply.status == "BAD"
        await client.ok("NOOP")
    finally:
        await stop_imap_server(handle, server)


async def test_synchronizing_literal_over_limit_is_toobig(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path, limits=ImapLimits(max_literal_size=1000))
    await handle.add_user("alice")
    try:
        client = await handle.login()
        await client.send(b"t1 APPEND INBOX {5000}\r\n")
        reply = await client.read_until_tagged("t1")
        assert reply.status == "NO" and b"[TOOBIG]" in reply.line
        await client.ok("NOOP")
        caps = await client.ok("CAPABILITY")
        assert b"APPENDLIMIT=1000" in caps.untagged[0]
    finally:
        await stop_imap_server(handle, server)


async def test_non_synchronizing_literal_over_limit_closes(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path, limits=ImapLimits(max_literal_size=1000))
    await handle.add_user("alice")
    try:
        client = await handle.login()
        await client.send(b"t1 APPEND INBOX {5000+}\r\n" + b"x" * 100)
        line = await client.read_response()
        assert line.startswith(b"* BYE [TOOBIG]")
        assert await client.expect_eof() == b""
    finally:
        await stop_imap_server(handle, server)


async def test_deep_nesting_is_bad(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path)
    await handle.add_user("alice")
    try:
        client = await handle.login()
        await client.bad("ID " + "(" * 100 + ")" * 100)
        await client.ok("NOOP")
    finally:
        await stop_imap_server(handle, server)


async def test_preauth_timeout_says_bye(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path, limits=ImapLimits(preauth_timeout=0.1))
    try:
        client = await handle.connect()
        line = await client.read_response()
        assert line.startswith(b"* BYE")
        assert await client.expect_eof() == b""
    finally:
        await stop_imap_server(handle, server)


async def test_too_many_bad_commands_disconnects(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path, limits=ImapLimits(max_bad_commands=3))
    try:
        client = await handle.connect()
        await client.send(b"a BLAH\r\nb BLAH\r\nc BLAH\r\n")
        for tag in ("a", "b", "c"):
            assert (await client.read_until_tagged(tag)).status == "BAD"
        assert (await client.read_response()).startswith(b"* BYE")
    finally:
        await stop_imap_server(handle, server)


async def test_garbage_without_tag(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path)
    try:
        client = await handle.connect()
        await client.send(b"\x00\xff\r\n")
        line = await client.read_response()
        assert line.startswith(b"* BAD") or b" BAD " in line
        await client.ok("NOOP")
    finally:
        await stop_imap_server(handle, server)


async def test_connections_per_account_limit(tmp_path: Path) -> None:
    from roost.runtime.account_limits import AccountConnections

    handle, server = await start_imap_server(tmp_path)
    handle.context.account_connections = AccountConnections(limit=2)
    await handle.add_user("alice")
    try:
        first = await handle.login()
        await handle.login()
        third = await handle.connect()
        reply = await third.no('LOGIN alice "secret pass"')
        assert b"[LIMIT]" in reply.line
        await first.ok("LOGOUT")
        await first.expect_eof()
        await third.login("alice", "secret pass")
    finally:
        await stop_imap_server(handle, server)
