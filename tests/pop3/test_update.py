"""QUIT and the UPDATE state (RFC 1939 §6): deletions happen there and only there, go
through the store so that IMAP sessions on INBOX are told, and follow the configured
delete mode (expunge, flag, move)."""

from __future__ import annotations

from pathlib import Path

from roost.pop3.context import DeleteMode
from roost.store.base import DELETED, SEEN
from tests.conftest import PASSWORD
from tests.pop3.conftest import Pop3Server, pop3_server
from tests.support.imap_client import message


async def test_quit_expunges_and_imap_is_told(pop3: Pop3Server) -> None:
    uids = await pop3.deliver(message("a"), message("b"), message("c"))
    imap = await pop3.imap()
    client = await pop3.login()
    await client.ok("DELE 1")
    await client.ok("DELE 3")
    # Nothing has happened yet: IMAP hears nothing.
    assert (await imap.ok("NOOP")).untagged == []
    assert await client.ok("QUIT") == b"+OK Roost POP3 server signing off (2 deleted)"
    assert await client.expect_eof() == b""
    assert list(await pop3.inbox()) == [uids[1]]
    reply = await imap.ok("NOOP")
    assert reply.untagged == [b"* 1 EXPUNGE", b"* 2 EXPUNGE"]  # messages 1 and 3
    reply = await imap.ok("FETCH 1:* UID")
    assert reply.untagged == [f"* 1 FETCH (UID {uids[1]})".encode()]


async def test_idling_imap_session_is_told_of_the_expunge(pop3: Pop3Server) -> None:
    await pop3.deliver(message("a"), message("b"))
    imap = await pop3.imap()
    tag = await imap.idle()
    client = await pop3.login()
    await client.ok("DELE 2")
    await client.ok("QUIT")
    # The store flags \Deleted, then expunges: two changes; the idler may hear of the
    # flag first, if it woke between them.
    lines = [await imap.read_response()]
    while not lines[-1].endswith(b"EXPUNGE"):
        lines.append(await imap.read_response())
    assert lines[-1] == b"* 2 EXPUNGE"
    assert all(line.startswith(b"* 2 FETCH (UID 2 FLAGS (\\Deleted") for line in lines[:-1])
    reply = await imap.done(tag)
    assert reply.status == "OK"


async def test_dropped_connection_deletes_nothing(pop3: Pop3Server) -> None:
    uids = await pop3.deliver(message("a"), message("b"))
    client = await pop3.login()
    await client.ok("DELE 1")
    await client.multi("RETR 2")
    client.writer.write_eof()
    assert await client.expect_eof() == b""
    # Not deleted, not even marked \Seen: without QUIT nothing changes.
    assert await pop3.inbox() == {uids[0]: frozenset(), uids[1]: frozenset()}


async def test_quit_without_changes(pop3: Pop3Server) -> None:
    uids = await pop3.deliver(message("a"))
    client = await pop3.login()
    assert await client.ok("QUIT") == b"+OK Roost POP3 server signing off (0 deleted)"
    assert list(await pop3.inbox()) == uids


async def test_retrieved_and_deleted_message_is_just_expunged(pop3: Pop3Server) -> None:
    await pop3.deliver(message("a"), message("b"))
    client = await pop3.login()
    await client.multi("RETR 1")
    await client.multi("RETR 2")
    await client.ok("DELE 1")
    await client.ok("QUIT")
    assert list((await pop3.inbox()).values()) == [frozenset({SEEN})]


async def test_mark_seen_off(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, mark_seen=False) as server:
        uids = await server.deliver(message("a"))
        client = await server.login()
        await client.multi("RETR 1")
        await client.ok("QUIT")
        assert await server.inbox() == {uids[0]: frozenset()}


async def test_delete_mode_flag_keeps_the_message_flagged(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, delete_mode=DeleteMode.FLAG) as server:
        uids = await server.deliver(message("a"), message("b"))
        imap = await server.imap()
        client = await server.login()
        await client.multi("RETR 1")
        await client.ok("DELE 1")
        assert await client.ok("QUIT") == b"+OK Roost POP3 server signing off (1 deleted)"
        assert await server.inbox() == {uids[0]: frozenset({SEEN, DELETED}), uids[1]: frozenset()}
        reply = await imap.ok("NOOP")
        flags = b"\\Deleted \\Seen \\Recent"  # \Recent: this IMAP session saw it first
        assert reply.untagged == [b"* 1 FETCH (UID %d FLAGS (%s))" % (uids[0], flags)]
        # The next POP3 session no longer offers it.
        client = await server.login()
        assert (await client.ok("STAT")).startswith(b"+OK 1 ")
        assert b"Subject: b" in await client.retr(1)


async def test_delete_mode_move_puts_messages_in_trash(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, delete_mode=DeleteMode.MOVE) as server:
        uids = await server.deliver(message("a"), message("b"))
        imap = await server.imap()
        client = await server.login()
        await client.ok("DELE 2")
        await client.ok("QUIT")
        assert list(await server.inbox()) == [uids[0]]
        assert await server.mailbox_count("Trash") == 1
        assert (await imap.ok("NOOP")).untagged == [b"* 2 EXPUNGE"]


async def test_delete_mode_move_creates_a_missing_folder(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, delete_mode=DeleteMode.MOVE, move_to="POP3/Deleted") as server:
        await server.deliver(message("a"))
        client = await server.login()
        await client.ok("DELE 1")
        await client.ok("QUIT")
        assert await server.mailbox_count("POP3/Deleted") == 1
        assert await server.inbox() == {}


async def test_quit_releases_the_lock_before_answering(pop3: Pop3Server) -> None:
    """A client that signs in again as soon as it has the +OK gets in."""
    await pop3.deliver(message("a"))
    client = await pop3.login()
    await client.ok("DELE 1")
    await client.ok("QUIT")
    again = await pop3.connect()
    assert await again.auth_plain("alice", PASSWORD) == b"+OK Signed in; 0 messages"


async def test_several_sessions_in_a_row_see_each_others_deletions(pop3: Pop3Server) -> None:
    await pop3.deliver(*(message(f"m{n}") for n in range(5)))
    for remaining in (5, 4, 3):
        client = await pop3.login()
        assert (await client.ok("STAT")).startswith(f"+OK {remaining} ".encode())
        await client.ok("DELE 1")
        await client.ok("QUIT")
    assert len(await pop3.inbox()) == 2
