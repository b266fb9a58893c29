"""Message commands: APPEND (LITERAL+, MULTIAPPEND, APPENDUID), FETCH, STORE, COPY, MOVE,
EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT, CHECK (RFC 9051 §6.3.12, §6.4; RFC 4315; RFC
6851; RFC 3502; RFC 7888)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def selected(imap: ImapServer, count: int = 3) -> ImapClient:
    client = await imap.login()
    for i in range(1, count + 1):
        await client.append("INBOX", message(f"Message {i}", f"Body {i}\r\n"))
    await client.ok("SELECT INBOX")
    return client


def uidvalidity(reply_line: bytes) -> int:
    match = re.search(rb"\[APPENDUID (\d+) ", reply_line)
    assert match
    return int(match.group(1))


async def test_append_returns_appenduid(imap: ImapServer) -> None:
    client = await imap.login()
    reply = await client.append("INBOX", message())
    assert re.search(rb"\[APPENDUID \d+ 1\] APPEND completed", reply.line)
    reply = await client.append("INBOX", message())
    assert re.search(rb"\[APPENDUID \d+ 2\]", reply.line)


async def test_append_synchronizing_literal_with_flags_and_date(imap: ImapServer) -> None:
    client = await imap.login()
    body = message()
    reply = await client.ok(
        f'APPEND Drafts (\\Draft $Label1) "05-Jan-2025 10:11:12 +0100" {{{len(body)}}}\r\n'.encode()
        + body
    )
    assert b"[APPENDUID" in reply.line
    await client.ok("SELECT Drafts")
    reply = await client.ok("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE)")
    assert reply.untagged == [
        b'* 1 FETCH (FLAGS (\\Draft \\Recent $Label1) INTERNALDATE " 5-Jan-2025 10:11:12 +0100" '
        + f"RFC822.SIZE {len(body)})".encode()
    ]


async def test_multiappend_is_atomic_and_returns_uid_set(imap: ImapServer) -> None:
    """RFC 3502, with APPENDUID for the set (RFC 4315 §3)."""
    client = await imap.login()
    a, b = message("a"), message("b")
    reply = await client.ok(
        f"APPEND INBOX {{{len(a)}+}}\r\n".encode() + a + f" (\\Seen) {{{len(b)}+}}\r\n".encode() + b
    )
    assert re.search(rb"\[APPENDUID \d+ 1:2\]", reply.line)


async def test_append_to_missing_mailbox_trycreate(imap: ImapServer) -> None:
    client = await imap.login()
    body = message()
    reply = await client.no(f"APPEND Nowhere {{{len(body)}+}}\r\n".encode() + body)
    assert b"[TRYCREATE]" in reply.line
    await client.ok("NOOP")


async def test_append_to_selected_mailbox_announces_exists(imap: ImapServer) -> None:
    client = await selected(imap, 1)
    reply = await client.append("INBOX", message())
    assert b"* 2 EXISTS" in reply.untagged


async def test_fetch_simple_items(imap: ImapServer) -> None:
    client = await selected(imap, 2)
    reply = await client.ok("FETCH 1:2 (UID FLAGS RFC822.SIZE)")
    size = len(message("Message 1", "Body 1\r\n"))
    assert reply.untagged == [
        f"* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE {size})".encode(),
        f"* 2 FETCH (UID 2 FLAGS (\\Recent) RFC822.SIZE {size})".encode(),
    ]


async def test_fetch_macros(imap: ImapServer) -> None:
    """RFC 9051 §6.4.5: ALL, FAST and FULL expand to their items."""
    client = await selected(imap, 1)
    reply = await client.ok("FETCH 1 FAST")
    assert reply.untagged[0].startswith(b"* 1 FETCH (FLAGS (\\Recent) INTERNALDATE ")
    reply = await client.ok("FETCH 1 ALL")
    assert b" RFC822.SIZE " in reply.untagged[0] and b" ENVELOPE (" in reply.untagged[0]
    reply = await client.ok("FETCH 1 FULL")
    assert b" ENVELOPE (" in reply.untagged[0] and b" BODY (" in reply.untagged[0]


async def test_fetch_body_sets_seen_peek_does_not(imap: ImapServer) -> None:
    client = await selected(imap, 2)
    body = message("Message 1", "Body 1\r\n")
    reply = await client.ok("FETCH 1 BODY.PEEK[]")
    assert reply.untagged == [b"* 1 FETCH (BODY[] {%d}\r\n%s)" % (len(body), body)]
    reply = await client.ok("FETCH 1 (FLAGS)")
    assert b"\\Seen" not in reply.untagged[0]
    reply = await client.ok("FETCH 1 BODY[]")
    assert reply.untagged[0].endswith(b" FLAGS (\\Seen \\Recent))")
    reply = await client.ok("FETCH 2 RFC822")
    assert b"RFC822 {" in reply.untagged[0] and b"\\Seen" in reply.untagged[0]


async def test_fetch_header_text_and_fields(imap: ImapServer) -> None:
    client = await selected(imap, 1)
    body = message("Message 1", "Body 1\r\n")
    header, text = body.split(b"\r\n\r\n", 1)
    reply = await client.ok("FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT])")
    assert reply.untagged == [
        b"* 1 FETCH (BODY[HEADER] {%d}\r\n%s\r\n\r\n BODY[TEXT] {%d}\r\n%s)"
        % (len(header) + 4, header, len(text), text)
    ]
    reply = await client.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject FROM)]")
    fields = b"From: alice@example.org\r\nSubject: Message 1\r\n\r\n"
    assert reply.untagged == [
        b"* 1 FETCH (BODY[HEADER.FIELDS (Subject FROM)] {%d}\r\n%s)" % (len(fields), fields)
    ]
    reply = await client.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Subject From To Date)]")
    assert b"Message-ID:" in reply.untagged[0] and b"Subject:" not in reply.untagged[0]
    reply = await client.ok("FETCH 1 (RFC822.HEADER RFC822.TEXT)")
    assert b"RFC822.HEADER {" in reply.untagged[0] and b"RFC822.TEXT {" in reply.untagged[0]


async def test_fetch_partial(imap: ImapServer) -> None:
    client = await selected(imap, 1)
    body = message("Message 1", "Body 1\r\n")
    reply = await client.ok("FETCH 1 BODY.PEEK[]<0.10>")
    assert reply.untagged == [b"* 1 FETCH (BODY[]<0> {10}\r\n%s)" % body[:10]]
    reply = await client.ok("FETCH 1 BODY.PEEK[TEXT]<2.3>")
    assert reply.untagged == [b"* 1 FETCH (BODY[TEXT]<2> {3}\r\ndy )"]
    reply = await client.ok("FETCH 1 BODY.PEEK[]<100000.10>")
    assert reply.untagged == [b"* 1 FETCH (BODY[]<100000> {0}\r\n)"]


async def test_uid_fetch_always_returns_uid(imap: ImapServer) -> None:
    client = await selected(imap, 3)
    reply = await client.ok("UID FETCH 2:* FLAGS")
    assert reply.untagged == [
        b"* 2 FETCH (UID 2 FLAGS (\\Recent))",
        b"* 3 FETCH (UID 3 FLAGS (\\Recent))",
    ]
    # RFC 9051 §6.4.9: "*" is the largest UID, so 10:* still names message 3.
    reply = await client.ok("UID FETCH 10:* FLAGS")
    assert reply.untagged == [b"* 3 FETCH (UID 3 FLAGS (\\Recent))"]


async def test_fetch_out_of_range_is_bad(imap: ImapServer) -> None:
    client = await selected(imap, 2)
    await client.bad("FETCH 3 FLAGS")
    reply = await client.ok("UID FETCH 99 FLAGS")
    assert reply.untagged == []


async def test_fetch_on_empty_mailbox_with_star(imap: ImapServer) -> None:
    client = await selected(imap, 0)
    reply = await client.ok("FETCH 1:* FLAGS")
    assert reply.untagged == []


MULTIPART = (
    b"From: Fred Foobar <foobar@blurdybloop.example>\r\n"
    b"To: mooch@owatagu.siam.edu.example\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?= plans\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"Message-ID: <B27397-0100000@Blurdybloop.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="x.bin"\r\n'
    b"\r\n"
    b"AAEC/w==\r\n"
    b"--XX--\r\n"
)


async def test_fetch_envelope_and_bodystructure(imap: ImapServer) -> None:
    """RFC 9051 §7.5.2: ENVELOPE keeps header values raw; BODYSTRUCTURE has extension
    data, BODY does not."""
    client = await imap.login()
    await client.append("INBOX", MULTIPART)
    await client.ok("SELECT INBOX")
    reply = await client.ok("FETCH 1 (ENVELOPE)")
    assert reply.untagged == [
        b'* 1 FETCH (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" '
        b'"=?utf-8?q?caf=C3=A9?= plans" (("Fred Foobar" NIL "foobar" "blurdybloop.example")) '
        b'(("Fred Foobar" NIL "foobar" "blurdybloop.example")) '
        b'(("Fred Foobar" NIL "foobar" "blurdybloop.example")) '
        b'((NIL NIL "mooch" "owatagu.siam.edu.example")) NIL NIL NIL '
        b'"<B27397-0100000@Blurdybloop.example>"))'
    ]
    reply = await client.ok("FETCH 1 (BODYSTRUCTURE BODY)")
    line = reply.untagged[0]
    assert b'BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 53 0' in line
    assert b'"mixed" ("boundary" "XX")' in line
    assert b'("attachment" ("filename" "x.bin"))' in line
    body = line[line.index(b" BODY (") :]
    assert b"boundary" not in body  # BODY has no extension data


async def test_fetch_mime_part_sections(imap: ImapServer) -> None:
    client = await imap.login()
    await client.append("INBOX", MULTIPART)
    await client.ok("SELECT INBOX")
    reply = await client.ok("FETCH 1 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2]<0.4>)")
    assert reply.untagged == [
        b"* 1 FETCH (BODY[1] {53}\r\nHello Joe, do you think we can meet at 3:30 tomorrow?"
        b" BODY[1.MIME] {46}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        b" BODY[2]<0> {4}\r\nAAEC)"
    ]
    reply = await client.ok("FETCH 1 BODY.PEEK[9]")
    assert reply.untagged == [b"* 1 FETCH (BODY[9] {0}\r\n)"]


async def test_fetch_binary_decodes(imap: ImapServer) -> None:
    """RFC 3516: BINARY undoes base64; NUL bytes go in a literal8."""
    client = await imap.login()
    await client.append("INBOX", MULTIPART)
    await client.ok("SELECT INBOX")
    reply = await client.ok("FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2])")
    assert reply.untagged == [b"* 1 FETCH (BINARY.SIZE[2] 4 BINARY[2] ~{4}\r\n\x00\x01\x02\xff)"]
    reply = await client.ok("FETCH 1 (FLAGS)")
    assert b"\\Seen" not in reply.untagged[0]
    reply = await client.ok("FETCH 1 BINARY[1]")
    assert b"\\Seen" in reply.untagged[0]


async def test_fetch_binary_unknown_encoding(imap: ImapServer) -> None:
    client = await imap.login()
    await client.append(
        "INBOX",
        b"MIME-Version: 1.0\r\nSubject: x\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
        b"begin 644 x\r\n",
    )
    await client.ok("SELECT INBOX")
    reply = await client.no("FETCH 1 BINARY.PEEK[1]")
    assert b"[UNKNOWN-CTE]" in reply.line


async def test_store_flags_variants(imap: ImapServer) -> None:
    client = await selected(imap, 2)
    reply = await client.ok("STORE 1 +FLAGS (\\Flagged)")
    assert reply.untagged == [b"* 1 FETCH (FLAGS (\\Flagged \\Recent))"]
    reply = await client.ok("STORE 1 -FLAGS (\\Flagged)")
    assert reply.untagged == [b"* 1 FETCH (FLAGS (\\Recent))"]
    reply = await client.ok("STORE 1:2 FLAGS (\\Seen \\Answered)")
    assert reply.untagged == [
        b"* 1 FETCH (FLAGS (\\Answered \\Seen \\Recent))",
        b"* 2 FETCH (FLAGS (\\Answered \\Seen \\Recent))",
    ]
    reply = await client.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert reply.untagged == []
    reply = await client.ok("UID STORE 2 +FLAGS (\\Draft)")
    assert reply.untagged == [b"* 2 FETCH (UID 2 FLAGS (\\Answered \\Draft \\Seen \\Recent))"]


async def test_store_keyword_announces_flags(imap: ImapServer) -> None:
    client = await selected(imap, 1)
    reply = await client.ok("STORE 1 +FLAGS ($NotJunk)")
    assert reply.untagged == [
        b"* FLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen $NotJunk)",
        b"* 1 FETCH (FLAGS (\\Recent $NotJunk))",
    ]
    await client.bad("STORE 1 +FLAGS (\\Bogus)")


async def test_store_case_insensitive_system_flags(imap: ImapServer) -> None:
    client = await selected(imap, 1)
    reply = await client.ok("STORE 1 +FLAGS (\\SEEN)")
    assert reply.untagged == [b"* 1 FETCH (FLAGS (\\Seen \\Recent))"]


async def test_copy_with_copyuid(imap: ImapServer) -> None:
    client = await selected(imap, 3)
    reply = await client.ok("COPY 2:3 Archive")
    assert re.search(rb"\[COPYUID \d+ 2:3 1:2\] COPY completed", reply.line)
    reply = await client.ok("STATUS Archive (MESSAGES)")
    assert reply.untagged == [b"* STATUS Archive (MESSAGES 2)"]
    reply = await client.no("COPY 1 Nowhere")
    assert b"[TRYCREATE]" in reply.line


async def test_uid_copy_of_missing_uids_is_ok(imap: ImapServer) -> None:
    """CLIENTS.md: a UID COPY of messages already gone must not fail."""
    client = await selected(imap, 1)
    reply = await client.ok("UID COPY 50:60 Archive")
    assert b"COPYUID" not in reply.line


async def test_move_sends_copyuid_then_expunge(imap: ImapServer) -> None:
    """RFC 6851 §4.3."""
    client = await selected(imap, 3)
    reply = await client.ok("MOVE 2 Trash")
    assert re.fullmatch(rb"\* OK \[COPYUID \d+ 2 1\] Moved", reply.untagged[0])
    assert reply.untagged[1:] == [b"* 2 EXPUNGE"]
    reply = await client.ok("UID MOVE 3 Trash")
    assert reply.untagged[1:] == [b"* 2 EXPUNGE"]
    reply = await client.ok("FETCH 1:* UID")
    assert reply.untagged == [b"* 1 FETCH (UID 1)"]
    reply = await client.ok("UID MOVE 99 Trash")
    assert reply.untagged == []


async def test_expunge_sequence_numbers(imap: ImapServer) -> None:
    """RFC 3501 §7.4.1: each number is valid after the previous expunge."""
    client = await selected(imap, 5)
    await client.ok("STORE 2,3,5 +FLAGS.SILENT (\\Deleted)")
    reply = await client.ok("EXPUNGE")
    assert reply.untagged == [b"* 2 EXPUNGE", b"* 2 EXPUNGE", b"* 3 EXPUNGE"]
    reply = await client.ok("FETCH 1:* UID")
    assert reply.untagged == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 4)"]


async def test_empty_expunge_sends_nothing(imap: ImapServer) -> None:
    """Apple Mail loops on "* 0 EXISTS" after an expunge that removed nothing."""
    client = await selected(imap, 0)
    reply = await client.ok("EXPUNGE")
    assert reply.untagged == []


async def test_uid_expunge_only_named(imap: ImapServer) -> None:
    """RFC 4315 §2.1."""
    client = await selected(imap, 3)
    await client.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    reply = await client.ok("UID EXPUNGE 2")
    assert reply.untagged == [b"* 2 EXPUNGE"]
    reply = await client.ok("FETCH 1:* UID")
    assert len(reply.untagged) == 2


async def test_close_expunges_silently_unselect_does_not(imap: ImapServer) -> None:
    client = await selected(imap, 2)
    await client.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    reply = await client.ok("UNSELECT")
    assert reply.untagged == []
    await client.ok("SELECT INBOX")
    reply = await client.ok("CLOSE")
    assert reply.untagged == []
    reply = await client.ok("STATUS INBOX (MESSAGES)")
    assert reply.untagged == [b"* STATUS INBOX (MESSAGES 1)"]
    await client.bad("FETCH 1 FLAGS")


async def test_close_in_examine_does_not_expunge(imap: ImapServer) -> None:
    client = await selected(imap, 1)
    await client.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await client.ok("EXAMINE INBOX")
    await client.ok("CLOSE")
    reply = await client.ok("STATUS INBOX (MESSAGES)")
    assert reply.untagged == [b"* STATUS INBOX (MESSAGES 1)"]


async def test_check(imap: ImapServer) -> None:
    client = await selected(imap, 0)
    await client.ok("CHECK")


async def test_recent_once_per_session(imap: ImapServer) -> None:
    """RFC 3501 §2.3.2: \\Recent is seen by one session only."""
    first = await selected(imap, 1)
    reply = await first.ok("FETCH 1 FLAGS")
    assert b"\\Recent" in reply.untagged[0]
    second = await imap.login()
    await second.ok("SELECT INBOX")
    reply = await second.ok("FETCH 1 FLAGS")
    assert b"\\Recent" not in reply.untagged[0]


async def test_large_message_spooled_roundtrip(imap: ImapServer) -> None:
    client = await imap.login()
    big = message(body="x" * 76 + "\r\n") * 1  # header
    big += (b"y" * 998 + b"\r\n") * 3000  # ~3 MB, above the spool threshold
    await client.append("INBOX", big)
    await client.ok("SELECT INBOX")
    reply = await client.ok("FETCH 1 (RFC822.SIZE BODY.PEEK[])")
    assert reply.untagged[0] == b"* 1 FETCH (RFC822.SIZE %d BODY[] {%d}\r\n%s)" % (
        len(big),
        len(big),
        big,
    )
