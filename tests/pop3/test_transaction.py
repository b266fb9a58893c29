"""The TRANSACTION state (RFC 1939 §5, §7): STAT, LIST, UIDL, RETR, TOP, DELE, RSET,
NOOP — their answers, their errors, and what a message looks like on the wire."""

from __future__ import annotations

import re

from roost.store.base import DELETED
from tests.conftest import PASSWORD
from tests.pop3.conftest import Pop3Server
from tests.support.imap_client import message
from tests.support.pop3_client import Pop3Client

SIMPLE = b"Subject: one\r\n\r\nBody.\r\n"  # 23 octets, already CRLF


async def three(pop3: Pop3Server) -> tuple[Pop3Client, list[int]]:
    uids = await pop3.deliver(SIMPLE, message("two"), message("three"))
    return await pop3.login(), uids


async def test_stat_and_list(pop3: Pop3Server) -> None:
    client, _ = await three(pop3)
    sizes = [23, len(message("two")), len(message("three"))]
    assert await client.ok("STAT") == f"+OK 3 {sum(sizes)}".encode()
    status, lines = await client.multi("LIST")
    assert status == f"+OK 3 messages ({sum(sizes)} octets)".encode()
    assert lines == [f"{n} {size}".encode() for n, size in enumerate(sizes, 1)]
    assert await client.ok("LIST 2") == f"+OK 2 {sizes[1]}".encode()


async def test_empty_maildrop(pop3: Pop3Server) -> None:
    client = await pop3.login()
    assert await client.ok("STAT") == b"+OK 0 0"
    assert await client.multi("LIST") == (b"+OK 0 messages (0 octets)", [])
    assert await client.multi("UIDL") == (b"+OK Unique-id listing follows", [])
    assert await client.err("RETR 1") == b"-ERR No message 1"


async def test_message_numbers_out_of_range(pop3: Pop3Server) -> None:
    client, _ = await three(pop3)
    for command in ("LIST 0", "LIST 4", "RETR 0", "RETR 99", "TOP 4 0", "DELE 4", "UIDL 4"):
        number = command.split()[1]
        assert await client.err(command) == f"-ERR No message {number}".encode()
    assert await client.err("RETR 99999999999") == b"-ERR RETR: invalid number"
    assert await client.err("RETR one") == b"-ERR RETR: invalid number"
    assert await client.err("LIST 1 2") == b"-ERR LIST: wrong number of arguments"
    assert await client.err("TOP 1") == b"-ERR TOP: wrong number of arguments"
    assert await client.err("STAT now") == b"-ERR STAT: takes no arguments"
    await client.ok("NOOP")  # still fine


async def test_uidl_is_derived_from_uidvalidity_and_uid(pop3: Pop3Server) -> None:
    client, uids = await three(pop3)
    account = await pop3.store.open_account("alice")
    uidvalidity = (await account.get_mailbox("INBOX")).uidvalidity
    await account.close()
    expected = [f"{uid:08X}{uidvalidity:08X}".encode() for uid in uids]
    _, lines = await client.multi("UIDL")
    assert lines == [b"%d %s" % (n, uid) for n, uid in enumerate(expected, 1)]
    assert await client.ok("UIDL 2") == b"+OK 2 " + expected[1]
    assert all(re.fullmatch(rb"[\x21-\x7e]{1,70}", uid) for uid in expected)  # RFC 1939 §7


async def test_uidl_stable_across_sessions_and_never_reused(pop3: Pop3Server) -> None:
    client, _ = await three(pop3)
    _, first = await client.multi("UIDL")
    await client.ok("DELE 2")
    await client.ok("QUIT")
    await pop3.deliver(message("four"))
    client = await pop3.login()
    _, second = await client.multi("UIDL")
    ids_first = [line.split()[1] for line in first]
    ids_second = [line.split()[1] for line in second]
    assert ids_second[:2] == [ids_first[0], ids_first[2]]  # same messages, same UIDLs
    assert ids_second[2] not in ids_first  # the new one never reuses the deleted one's


async def test_retr_sends_the_message_with_its_size(pop3: Pop3Server) -> None:
    client, _ = await three(pop3)
    status, lines = await client.multi("RETR 1")
    assert status == b"+OK 23 octets"
    assert lines == [b"Subject: one", b"", b"Body."]


async def test_retr_normalises_line_ends_stuffs_dots_and_strips_nul(pop3: Pop3Server) -> None:
    """RFC 1939 §3 byte-stuffing; CRLF line ends; CLIENTS.md: no NUL for Outlook. The
    size counts the CRLFs as sent and the CRLF added at the end, not the stuffing."""
    raw = b"Subject: odd\n\n.leading dot\n..two\nNUL\0here\r\n.\nlast line without end"
    await pop3.deliver(raw)
    client = await pop3.login()
    expected = (
        b"Subject: odd\r\n\r\n.leading dot\r\n..two\r\nNUL\x80here\r\n.\r\n"
        b"last line without end\r\n"
    )
    assert await client.ok("LIST 1") == f"+OK 1 {len(expected)}".encode()
    await client.send("RETR 1\r\n")
    assert await client.read_line() == f"+OK {len(expected)} octets".encode()
    lines = await client.read_multiline()
    assert lines == [
        b"Subject: odd",
        b"",
        b"..leading dot",
        b"...two",
        b"NUL\x80here",
        b"..",
        b"last line without end",
    ]
    assert b"".join((line[1:] if line[:1] == b"." else line) + b"\r\n" for line in lines) == (
        expected
    )


async def test_empty_message(pop3: Pop3Server) -> None:
    await pop3.deliver(b"")
    client = await pop3.login()
    assert await client.ok("LIST 1") == b"+OK 1 0"
    assert await client.multi("RETR 1") == (b"+OK 0 octets", [])


async def test_top(pop3: Pop3Server) -> None:
    await pop3.deliver(b"A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n")
    client = await pop3.login()
    assert await client.multi("TOP 1 0") == (b"+OK Top of message follows", [b"A: 1", b"B: 2", b""])
    _, lines = await client.multi("TOP 1 2")
    assert lines == [b"A: 1", b"B: 2", b"", b"l1", b"..l2"]
    _, lines = await client.multi("TOP 1 100")
    assert lines == [b"A: 1", b"B: 2", b"", b"l1", b"..l2", b"l3"]


async def test_top_does_not_set_seen_but_retr_does_at_quit(pop3: Pop3Server) -> None:
    uids = await pop3.deliver(SIMPLE, SIMPLE + b"x")
    client = await pop3.login()
    await client.multi("TOP 1 0")
    await client.multi("RETR 2")
    assert await pop3.inbox() == {uids[0]: frozenset(), uids[1]: frozenset()}  # not yet
    await client.ok("QUIT")
    assert await pop3.inbox() == {uids[0]: frozenset(), uids[1]: frozenset({"\\Seen"})}


async def test_dele_and_access_to_a_deleted_message(pop3: Pop3Server) -> None:
    client, _ = await three(pop3)
    assert await client.ok("DELE 2") == b"+OK Message 2 deleted"
    for command in ("RETR 2", "TOP 2 0", "LIST 2", "UIDL 2", "DELE 2"):
        assert await client.err(command) == b"-ERR Message 2 is deleted"
    # Numbers do not shift; listings skip the deleted message (RFC 1939 §5).
    assert (await client.ok("STAT")).startswith(b"+OK 2 ")
    _, lines = await client.multi("LIST")
    assert [line.split()[0] for line in lines] == [b"1", b"3"]
    _, lines = await client.multi("UIDL")
    assert [line.split()[0] for line in lines] == [b"1", b"3"]


async def test_rset_unmarks(pop3: Pop3Server) -> None:
    client, _ = await three(pop3)
    await client.ok("DELE 1")
    await client.ok("DELE 3")
    assert await client.ok("RSET") == b"+OK 3 messages"
    assert (await client.ok("STAT")).startswith(b"+OK 3 ")
    await client.ok("QUIT")
    assert len(await pop3.inbox()) == 3


async def test_noop(pop3: Pop3Server) -> None:
    client = await pop3.login()
    assert await client.ok("NOOP") == b"+OK"


async def test_commands_are_case_insensitive(pop3: Pop3Server) -> None:
    await pop3.deliver(SIMPLE)
    client = await pop3.connect()
    await client.ok("user alice")
    await client.ok(f"pass {PASSWORD}")
    assert await client.ok("stat") == b"+OK 1 23"
    assert await client.ok("list 1") == b"+OK 1 23"


async def test_snapshot_excludes_messages_flagged_deleted(pop3: Pop3Server) -> None:
    """A message flagged \\Deleted (over IMAP, or kept by delete_mode "flag") is on its
    way out: POP3 does not offer it."""
    uids = await pop3.deliver(SIMPLE, message("kept"))
    await pop3.flag([uids[0]], DELETED)
    client = await pop3.login()
    assert (await client.ok("STAT")).startswith(b"+OK 1 ")
    assert b"Subject: kept" in await client.retr(1)


async def test_message_arriving_during_session_is_not_seen_and_not_lost(
    pop3: Pop3Server,
) -> None:
    """RFC 1939 §8: the maildrop is fixed for the session."""
    await pop3.deliver(SIMPLE)
    client = await pop3.login()
    new_uid = (await pop3.deliver(message("late")))[0]
    assert await client.ok("STAT") == b"+OK 1 23"
    assert await client.err("RETR 2") == b"-ERR No message 2"
    await client.ok("DELE 1")
    await client.ok("QUIT")
    assert list(await pop3.inbox()) == [new_uid]
    client = await pop3.login()
    assert b"Subject: late" in await client.retr(1)


async def test_message_expunged_over_imap_during_session(pop3: Pop3Server) -> None:
    await pop3.deliver(SIMPLE, message("two"))
    client = await pop3.login()
    imap = await pop3.imap()
    await imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await imap.ok("EXPUNGE")
    # Numbers stay as they were; the gone message cannot be read.
    assert await client.err("RETR 1") == b"-ERR Message 1 was removed by another session"
    assert await client.ok("LIST 1") == b"+OK 1 0"
    assert b"Subject: two" in await client.retr(2)
    await client.ok("DELE 1")
    assert await client.ok("QUIT") == b"+OK Roost POP3 server signing off (0 deleted)"


async def test_big_message_streams_intact(pop3: Pop3Server) -> None:
    """A message over many store chunks and output flushes arrives whole."""
    body = b"".join(b"%07d .line with a dot after a space\n" % n for n in range(150_000))
    body += b".starts with a dot\n"
    raw = b"Subject: big\n\n" + body
    await pop3.deliver(raw)
    client = await pop3.login()
    expected = raw.replace(b"\n", b"\r\n")
    assert await client.ok("LIST 1") == f"+OK 1 {len(expected)}".encode()
    assert await client.retr(1) == expected
    await client.ok("NOOP")
