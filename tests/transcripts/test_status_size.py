"""STATUS=SIZE (RFC 8438): SIZE is exact, from per-mailbox counters the store keeps."""

from __future__ import annotations

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def test_status_size_follows_every_change(imap: ImapServer) -> None:
    """RFC 8438 §3 example: ``STATUS INBOX (MESSAGES SIZE)``; the figure is the sum of
    RFC822.SIZE of the messages now there, after APPEND, COPY, MOVE and EXPUNGE."""
    client = await imap.login()
    caps = await client.ok("CAPABILITY")
    assert b" STATUS=SIZE" in caps.untagged[0]
    first, second = message("a", body="x" * 100 + "\r\n"), message("b", body="y\r\n")
    await client.append("INBOX", first)
    await client.append("INBOX", second)
    reply = await client.ok("STATUS INBOX (MESSAGES SIZE)")
    assert reply.untagged == [
        f"* STATUS INBOX (MESSAGES 2 SIZE {len(first) + len(second)})".encode()
    ]
    await client.ok("SELECT INBOX")
    await client.ok("COPY 1 Archive")
    await client.ok("MOVE 2 Trash")
    await client.ok("STORE 1 +FLAGS (\\Deleted)")
    await client.ok("EXPUNGE")
    other = await imap.login()
    for name, count, size in (
        ("INBOX", 0, 0),
        ("Archive", 1, len(first)),
        ("Trash", 1, len(second)),
    ):
        reply = await other.ok(f"STATUS {name} (MESSAGES SIZE)")
        assert reply.untagged == [f"* STATUS {name} (MESSAGES {count} SIZE {size})".encode()]
