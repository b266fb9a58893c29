"""CONTEXT=SEARCH / CONTEXT=SORT (RFC 5267 §4) and PARTIAL (RFC 9394)."""

from __future__ import annotations

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


def esearch(lines: list[bytes]) -> list[bytes]:
    """The ESEARCH lines, without their correlator."""
    return [line.split(b") ", 1)[1] for line in lines if line.startswith(b"* ESEARCH")]


async def ten_messages(imap: ImapServer) -> ImapClient:
    client = await imap.login()
    for n in range(10):
        await client.append("INBOX", message(f"subject {n:02d}"))
    await client.ok("SELECT INBOX")
    return client


async def test_partial_search_sort_and_fetch(imap: ImapServer) -> None:
    """RFC 9394 §3.1: ``RETURN (PARTIAL 1:3)`` pages from the first, ``-1:-3`` from
    the last, a page past the end is NIL; §3.2: UID FETCH's PARTIAL modifier."""
    client = await ten_messages(imap)
    caps = await client.ok("CAPABILITY")
    for name in (b" PARTIAL", b" CONTEXT=SEARCH", b" CONTEXT=SORT"):
        assert name in caps.untagged[0]
    reply = await client.ok("UID SEARCH RETURN (PARTIAL 1:3) ALL")
    assert esearch(reply.untagged) == [b"UID PARTIAL (1:3 1:3)"]
    reply = await client.ok("UID SEARCH RETURN (PARTIAL -1:-3 COUNT) ALL")
    assert esearch(reply.untagged) == [b"UID PARTIAL (-1:-3 8:10) COUNT 10"]
    reply = await client.ok("SEARCH RETURN (PARTIAL 20:30) ALL")
    assert esearch(reply.untagged) == [b"PARTIAL (20:30 NIL)"]
    reply = await client.ok("UID SORT RETURN (PARTIAL 1:2) (REVERSE SUBJECT) UTF-8 ALL")
    assert esearch(reply.untagged) == [b"UID PARTIAL (1:2 10,9)"]
    reply = await client.ok("UID FETCH 1:* (FLAGS) (PARTIAL -1:-2)")
    assert [line.split(b" (")[0] for line in reply.untagged] == [b"* 9 FETCH", b"* 10 FETCH"]
    await client.bad("UID FETCH 1:* (FLAGS) (PARTIAL 0:2)")


async def test_search_update_addto_removeto_and_cancel(imap: ImapServer) -> None:
    """RFC 5267 §4.3: after ``UID SEARCH RETURN (COUNT UPDATE) UNSEEN`` the result is
    kept: a new unseen message is ``ADDTO (0 uid)``, one that gets \\Seen is
    ``REMOVETO (0 uid)``; CANCELUPDATE ends it (§4.3.1)."""
    client = await ten_messages(imap)
    await client.ok("UID STORE 1:9 +FLAGS.SILENT (\\Seen)")
    reply = await client.ok("UID SEARCH RETURN (COUNT UPDATE) UNSEEN")
    tag = reply.tag
    assert esearch(reply.untagged) == [b"UID COUNT 1"]
    other = await imap.login()
    await other.append("INBOX", message("new"))
    reply = await client.ok("NOOP")
    updates = [line for line in reply.untagged if line.startswith(b"* ESEARCH")]
    assert updates == [b'* ESEARCH (TAG "%s") UID ADDTO (0 11)' % tag.encode()]
    reply = await client.ok("UID STORE 10 +FLAGS (\\Seen)")
    assert esearch(reply.untagged) == [b"UID REMOVETO (0 10)"]
    await client.ok(f'CANCELUPDATE "{tag}"')
    await client.ok("UID STORE 11 +FLAGS (\\Seen)")
    reply = await client.ok("NOOP")
    assert esearch(reply.untagged) == []
    await client.no(f'CANCELUPDATE "{tag}"')


async def test_sort_update_places_additions(imap: ImapServer) -> None:
    """RFC 5267 §4.3 for SORT: ADDTO names the place in the sorted result; a message
    whose place changes is removed and added again."""
    client = await imap.login()
    for subject in ("b", "d"):
        await client.append("INBOX", message(subject))
    await client.ok("SELECT INBOX")
    reply = await client.ok("UID SORT RETURN (ALL UPDATE) (SUBJECT) UTF-8 ALL")
    assert esearch(reply.untagged) == [b"UID ALL 1:2"]
    other = await imap.login()
    await other.append("INBOX", message("a"))
    await other.append("INBOX", message("c"))
    reply = await client.ok("NOOP")
    assert esearch(reply.untagged) == [b"UID ADDTO (1 3 3 4)"]
    await other.ok("SELECT INBOX")
    await other.ok("UID STORE 2 +FLAGS (\\Deleted)")
    await other.ok("EXPUNGE")
    reply = await client.ok("NOOP")
    assert esearch(reply.untagged) == [b"UID REMOVETO (0 2)"]


async def test_update_by_message_number_is_declined(imap: ImapServer) -> None:
    """RFC 5267 §4.3: a server may decline to keep a result: the answer comes, then
    ``* NO [NOUPDATE "tag"]``. Roost keeps UID searches only."""
    client = await ten_messages(imap)
    reply = await client.ok("SEARCH RETURN (MIN UPDATE) ALL")
    assert esearch(reply.untagged) == [b"MIN 1"]
    assert reply.untagged[-1].startswith(b'* NO [NOUPDATE "%s"]' % reply.tag.encode())
