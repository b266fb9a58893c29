"""REPLACE (RFC 8508): append and expunge as one, from the RFC's examples."""

from __future__ import annotations

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def test_replace_a_draft_in_place(imap: ImapServer) -> None:
    """RFC 8508 §3.4 example: a draft saved again with REPLACE in the same mailbox:
    ``* OK [APPENDUID ...]`` first, then the old one's EXPUNGE and the new EXISTS (the
    example sends EXISTS first; either order describes the same mailbox, RFC 9051
    §7.5.1), then the tagged OK. The new message keeps the given flags."""
    client = await imap.login()
    caps = await client.ok("CAPABILITY")
    assert b" REPLACE" in caps.untagged[0]
    await client.append("Drafts", message("draft one"), flags="\\Seen \\Draft")
    await client.ok("SELECT Drafts")
    uidvalidity = (await client.ok("STATUS Drafts (UIDVALIDITY)")).untagged[0].split()[-1][:-1]
    draft = message("draft two", body="Longer now.\r\n")
    await client.send(
        b"R1 REPLACE 1 Drafts (\\Seen \\Draft) {%d+}\r\n" % len(draft) + draft + b"\r\n"
    )
    reply = await client.read_until_tagged("R1")
    assert reply.untagged == [
        b"* OK [APPENDUID %s 2] Replacement message stored" % uidvalidity,
        b"* 1 EXPUNGE",
        b"* 1 EXISTS",
        b"* 1 RECENT",
    ]
    assert reply.line.startswith(b"R1 OK")
    fetched = await client.ok("UID FETCH 1:* (FLAGS RFC822.SIZE)")
    assert fetched.untagged == [
        b"* 1 FETCH (UID 2 FLAGS (\\Draft \\Seen \\Recent) RFC822.SIZE %d)" % len(draft)
    ]


async def test_uid_replace_into_another_mailbox(imap: ImapServer) -> None:
    """RFC 8508 §3.2: UID REPLACE may store into another mailbox; the old message is
    expunged from the selected one. A missing target is NO [TRYCREATE] with nothing
    changed; a message number out of range is BAD, an unknown UID NO."""
    client = await imap.login()
    await client.append("INBOX", message("old"))
    await client.ok("ENABLE QRESYNC")
    await client.ok("SELECT INBOX")
    new = message("new")
    literal = b"{%d+}\r\n" % len(new) + new
    await client.send(b"R2 UID REPLACE 1 Nowhere " + literal + b"\r\n")
    reply = await client.read_until_tagged("R2")
    assert reply.line.startswith(b"R2 NO [TRYCREATE]")
    await client.send(b"R3 UID REPLACE 1 Archive " + literal + b"\r\n")
    reply = await client.read_until_tagged("R3")
    assert reply.untagged[0].startswith(b"* OK [APPENDUID ")
    assert reply.untagged[1:] == [b"* VANISHED 1"]
    status = await client.ok("STATUS Archive (MESSAGES)")
    assert status.untagged == [b"* STATUS Archive (MESSAGES 1)"]
    await client.send(b"R4 REPLACE 5 INBOX " + literal + b"\r\n")
    assert (await client.read_until_tagged("R4")).line.startswith(b"R4 BAD")
    await client.send(b"R5 UID REPLACE 9 INBOX " + literal + b"\r\n")
    assert (await client.read_until_tagged("R5")).line.startswith(b"R5 NO")
    status = await client.ok("STATUS Archive (MESSAGES)")
    assert status.untagged == [b"* STATUS Archive (MESSAGES 1)"]
