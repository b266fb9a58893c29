"""Two sessions on one mailbox: what one does, the other hears — at the points RFC 9051
§7.5.1 allows, with sequence numbers kept consistent — and IDLE (RFC 2177)."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.imap.context import ImapLimits
from tests.conftest import ImapServer, start_imap_server, stop_imap_server
from tests.support.imap_client import ImapClient, message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def two_sessions(imap: ImapServer, count: int = 3) -> tuple[ImapClient, ImapClient]:
    a = await imap.login()
    for i in range(count):
        await a.append("INBOX", message(f"m{i}"))
    await a.ok("SELECT INBOX")
    b = await imap.login()
    await b.ok("SELECT INBOX")
    return a, b


async def test_new_message_reaches_other_session_on_noop(imap: ImapServer) -> None:
    a, b = await two_sessions(imap, 1)
    reply = await a.append("INBOX", message("new"))
    # The appender has INBOX selected and sees it first: \Recent is a's (RFC 3501 §2.3.2).
    assert reply.untagged == [b"* 2 EXISTS", b"* 2 RECENT"]
    reply = await b.ok("NOOP")
    assert reply.untagged == [b"* 2 EXISTS", b"* 0 RECENT"]
    reply = await a.ok("NOOP")
    assert reply.untagged == []


async def test_flag_change_reaches_other_session(imap: ImapServer) -> None:
    a, b = await two_sessions(imap, 2)
    await a.ok("STORE 2 +FLAGS (\\Flagged)")
    reply = await b.ok("NOOP")
    assert reply.untagged == [b"* 2 FETCH (UID 2 FLAGS (\\Flagged))"]


async def test_store_silent_reports_nothing_to_self(imap: ImapServer) -> None:
    a, b = await two_sessions(imap, 1)
    await a.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    reply = await a.ok("NOOP")
    assert reply.untagged == []
    reply = await b.ok("NOOP")
    assert reply.untagged == [b"* 1 FETCH (UID 1 FLAGS (\\Seen))"]


async def test_expunge_reaches_other_session_via_noop(imap: ImapServer) -> None:
    a, b = await two_sessions(imap, 3)
    await a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    await a.ok("EXPUNGE")
    reply = await b.ok("NOOP")
    # The flag change of a message already gone is not worth telling.
    assert reply.untagged == [b"* 2 EXPUNGE"]
    reply = await b.ok("FETCH 1:* UID")
    assert reply.untagged == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)"]


async def test_no_expunge_during_fetch_store_by_number(imap: ImapServer) -> None:
    """RFC 9051 §7.5.1: FETCH, STORE and SEARCH by number must not renumber."""
    a, b = await two_sessions(imap, 3)
    await a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await a.ok("EXPUNGE")
    reply = await b.ok("FETCH 3 UID")
    assert not any(line.endswith(b"EXPUNGE") for line in reply.untagged)
    assert b"* 3 FETCH (UID 3)" in reply.untagged
    reply = await b.ok("STORE 3 +FLAGS (\\Seen)")
    assert not any(line.endswith(b"EXPUNGE") for line in reply.untagged)
    # Message 1 is gone but still numbered: fetching it yields nothing for it.
    reply = await b.command("FETCH 1 UID")
    assert reply.untagged == []
    # NOOP (and UID commands) may announce it.
    reply = await b.ok("NOOP")
    assert reply.untagged == [b"* 1 EXPUNGE"]
    reply = await b.ok("FETCH 2 UID")
    assert reply.untagged == [b"* 2 FETCH (UID 3)"]


async def test_uid_fetch_may_announce_expunge(imap: ImapServer) -> None:
    a, b = await two_sessions(imap, 2)
    await a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await a.ok("EXPUNGE")
    reply = await b.ok("UID FETCH 2 UID")
    assert reply.untagged[-1] == b"* 1 EXPUNGE"


async def test_idle_hears_new_message_flags_and_expunge(imap: ImapServer) -> None:
    a, b = await two_sessions(imap, 2)
    tag = await b.idle()
    await a.append("INBOX", message("pushed"))
    assert await b.read_response() == b"* 3 EXISTS"
    # \Recent goes to whichever session sees the message first (RFC 3501 §2.3.2): the
    # appender a, or b, which may wake on the commit before a's own sync point.
    assert await b.read_response() in (b"* 0 RECENT", b"* 1 RECENT")
    await a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert await b.read_response() == b"* 1 FETCH (UID 1 FLAGS (\\Deleted))"
    await a.ok("EXPUNGE")
    assert await b.read_response() == b"* 1 EXPUNGE"
    reply = await b.done(tag)
    assert reply.status == "OK" and reply.untagged == []
    reply = await b.ok("FETCH 1:* UID")
    assert reply.untagged == [b"* 1 FETCH (UID 2)", b"* 2 FETCH (UID 3)"]


async def test_pipelined_idle_after_select(imap: ImapServer) -> None:
    """iOS pipelines IDLE right behind other commands (CLIENTS.md)."""
    a = await imap.login()
    b = await imap.login()
    await b.send("x1 SELECT INBOX\r\nx2 IDLE\r\n")
    assert (await b.read_until_tagged("x1")).status == "OK"
    assert (await b.read_response()).startswith(b"+ ")
    await a.append("INBOX", message())
    assert await b.read_response() == b"* 1 EXISTS"
    assert (await b.done("x2")).status == "OK"


async def test_idle_done_pipelined_with_next_command(imap: ImapServer) -> None:
    _a, b = await two_sessions(imap, 1)
    tag = await b.idle()
    await b.send(b"DONE\r\nn1 NOOP\r\n")
    assert (await b.read_until_tagged(tag)).status == "OK"
    assert (await b.read_until_tagged("n1")).status == "OK"


async def test_idle_in_authenticated_state(imap: ImapServer) -> None:
    client = await imap.login()
    tag = await client.idle()
    assert (await client.done(tag)).status == "OK"


async def test_idle_wrong_terminator_is_bad(imap: ImapServer) -> None:
    client = await imap.login()
    tag = await client.idle()
    await client.send(b"NOPE\r\n")
    assert (await client.read_until_tagged(tag)).status == "BAD"
    await client.ok("NOOP")


async def test_idle_keepalive(tmp_path: Path) -> None:
    """CLIENTS.md: "* OK Still here" keeps NAT boxes from dropping an idle flow."""
    handle, server = await start_imap_server(
        tmp_path, limits=ImapLimits(idle_keepalive_interval=0.05)
    )
    await handle.add_user("alice")
    try:
        client = await handle.login()
        tag = await client.idle()
        assert await client.read_response() == b"* OK Still here"
        assert (await client.done(tag)).status == "OK"
    finally:
        await stop_imap_server(handle, server)


async def test_selected_mailbox_deleted_elsewhere(imap: ImapServer) -> None:
    a = await imap.login()
    await a.ok("CREATE Doomed")
    await a.append("Doomed", message())
    await a.ok("SELECT Doomed")
    b = await imap.login()
    await b.ok("DELETE Doomed")
    await a.send("z1 NOOP\r\n")
    assert (await a.read_response()).startswith(b"* BYE")


async def test_several_connections_per_account(imap: ImapServer) -> None:
    """Android clients keep one IDLE per folder: at least 10 per account (CLIENTS.md)."""
    clients = [await imap.login() for _ in range(12)]
    tags = []
    for client in clients:
        await client.ok("SELECT INBOX")
        tags.append(await client.idle())
    writer = await imap.login()
    await writer.append("INBOX", message())
    for client in clients:
        assert await client.read_response() == b"* 1 EXISTS"
    for client, tag in zip(clients, tags, strict=True):
        assert (await client.done(tag)).status == "OK"
