"""OBJECTID (RFC 8474): MAILBOXID stable across RENAME, EMAILID stable across COPY and
MOVE, THREADID shared by a message and its replies; SAVEDATE (RFC 8514) in FETCH."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


def object_id(line: bytes, item: bytes) -> bytes:
    match = re.search(item + rb" \(([A-Za-z0-9_-]+)\)", line)
    assert match, line
    return match.group(1)


async def test_mailboxid_survives_rename(imap: ImapServer) -> None:
    client = await imap.login()
    created = await client.ok("CREATE Projects")
    first = object_id(created.line, rb"\[MAILBOXID")
    status = await client.ok("STATUS Projects (MAILBOXID)")
    assert object_id(status.untagged[0], b"MAILBOXID") == first
    await client.ok("RENAME Projects Done")
    reply = await client.ok("SELECT Done")
    assert object_id(b" ".join(reply.untagged), rb"\[MAILBOXID") == first
    await client.ok("CLOSE")
    await client.ok("DELETE Done")
    again = await client.ok("CREATE Done")
    assert object_id(again.line, rb"\[MAILBOXID") != first
    caps = await client.ok("CAPABILITY")
    assert b" OBJECTID" in caps.untagged[0]


async def test_emailid_survives_move_and_threadid_groups_replies(imap: ImapServer) -> None:
    client = await imap.login()
    await client.append("INBOX", message("question", extra_headers="Message-ID: <q@x>\r\n"))
    await client.append(
        "INBOX",
        message("Re: question", extra_headers="In-Reply-To: <q@x>\r\nReferences: <q@x>\r\n"),
    )
    await client.append("INBOX", message("unrelated"))
    await client.ok("SELECT INBOX")
    reply = await client.ok("FETCH 1:3 (EMAILID THREADID SAVEDATE)")
    emails = [object_id(line, b"EMAILID") for line in reply.untagged]
    threads = [object_id(line, b"THREADID") for line in reply.untagged]
    assert len(set(emails)) == 3
    assert threads[0] == threads[1] != threads[2]
    assert all(re.search(rb'SAVEDATE "[ 0-9]\d-\w{3}-\d{4} ', line) for line in reply.untagged)
    await client.ok("MOVE 1 Archive")
    await client.ok("SELECT Archive")
    reply = await client.ok("FETCH 1 (EMAILID THREADID)")
    assert object_id(reply.untagged[0], b"EMAILID") == emails[0]
    assert object_id(reply.untagged[0], b"THREADID") == threads[0]


async def test_savedate_search_keys(imap: ImapServer) -> None:
    """RFC 8514 §4.2: SAVEDBEFORE, SAVEDON, SAVEDSINCE and SAVEDATESUPPORTED."""
    from datetime import UTC, datetime, timedelta

    client = await imap.login()
    await client.append("INBOX", message("saved today"))
    await client.ok("SELECT INBOX")
    today = datetime.now(UTC)
    day = f"{today.day}-{today:%b-%Y}"
    tomorrow = today + timedelta(days=1)
    later = f"{tomorrow.day}-{tomorrow:%b-%Y}"
    assert (await client.ok(f"SEARCH SAVEDON {day}")).untagged == [b"* SEARCH 1"]
    assert (await client.ok(f"SEARCH SAVEDSINCE {day}")).untagged == [b"* SEARCH 1"]
    assert (await client.ok(f"SEARCH SAVEDBEFORE {day}")).untagged == [b"* SEARCH"]
    assert (await client.ok(f"SEARCH SAVEDBEFORE {later}")).untagged == [b"* SEARCH 1"]
    assert (await client.ok("SEARCH SAVEDATESUPPORTED")).untagged == [b"* SEARCH 1"]
    caps = await client.ok("CAPABILITY")
    assert b" SAVEDATE" in caps.untagged[0]
