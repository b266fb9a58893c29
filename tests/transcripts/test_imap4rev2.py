"""IMAP4rev2 (RFC 9051) after ENABLE IMAP4rev2: UTF-8 mailbox names, ESEARCH answers to
SEARCH, no \\Recent, RECENT or [UNSEEN], and [CLOSED] when a SELECT replaces another.
IMAP4rev1 sessions on the same server keep the old behaviour."""

from __future__ import annotations

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def rev2_client(imap: ImapServer) -> ImapClient:
    client = await imap.login()
    reply = await client.ok("ENABLE IMAP4rev2")
    assert reply.untagged == [b"* ENABLED IMAP4rev2"]
    return client


async def test_advertised_everywhere(imap: ImapServer) -> None:
    client = await imap.connect()
    assert b"IMAP4rev1 IMAP4rev2 " in client.greeting
    reply = await client.login("alice", "secret pass")
    for cap in (b"IMAP4rev2", b"ESEARCH", b"SEARCHRES", b"BINARY", b"LIST-STATUS", b"MOVE"):
        assert cap in reply.line


async def test_select_without_recent_and_unseen(imap: ImapServer) -> None:
    client = await rev2_client(imap)
    await client.append("INBOX", message())
    reply = await client.ok("SELECT INBOX")
    assert not [line for line in reply.untagged if b"RECENT" in line or b"[UNSEEN" in line]
    reply = await client.ok("FETCH 1 FLAGS")
    assert reply.untagged == [b"* 1 FETCH (FLAGS ())"]
    reply = await client.append("INBOX", message("second"))
    assert reply.untagged == [b"* 2 EXISTS"]
    reply = await client.ok("EXAMINE INBOX")
    assert b"* OK [CLOSED] Previous mailbox is now closed" in reply.untagged
    # A rev1 session still gets \Recent: the rev2 one never claimed it.
    old = await imap.login()
    reply = await old.ok("SELECT INBOX")
    assert b"* 2 RECENT" in reply.untagged


async def test_search_answers_esearch(imap: ImapServer) -> None:
    client = await rev2_client(imap)
    for i in range(3):
        await client.append("INBOX", message(f"m{i}"), flags="\\Seen" if i else "")
    await client.ok("SELECT INBOX")
    reply = await client.command("SEARCH SEEN")
    assert reply.untagged == [f'* ESEARCH (TAG "{reply.tag}") ALL 2:3'.encode()]
    reply = await client.command("UID SEARCH DRAFT")
    assert reply.untagged == [f'* ESEARCH (TAG "{reply.tag}") UID'.encode()]


async def test_mailbox_names_in_utf8(imap: ImapServer) -> None:
    client = await rev2_client(imap)
    await client.ok('CREATE "Entwürfe/Ü&A"'.encode())
    reply = await client.ok('LIST "" "Entw*"')
    assert '"Entwürfe/Ü&A"'.encode() in reply.untagged[-1]
