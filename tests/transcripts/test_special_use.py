"""SPECIAL-USE (RFC 6154) folder names: the names clients create for their own sent,
deleted and junk folders get that special use (CLIENTS.md), so other clients find them."""

from __future__ import annotations

import pytest

from tests.conftest import ImapServer

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def test_sent_messages_is_marked_sent(imap: ImapServer) -> None:
    """Apple Mail creates "Sent Messages" when it finds no folder it likes; RFC 6154 §2
    allows two mailboxes with \\Sent, and marking it lets every other client file sent
    mail there as well. A USE given explicitly wins (RFC 6154 §3)."""
    client = await imap.login()
    await client.ok('CREATE "Sent Messages"')
    await client.ok('CREATE "Deleted Items"')
    await client.ok('CREATE "Junk E-mail" (USE (\\Archive))')
    await client.ok('CREATE "Projects/Sent Messages"')  # only at the top level
    reply = await client.ok('LIST (SPECIAL-USE) "" "*"')
    assert b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Messages"' in reply.untagged
    assert b'* LIST (\\HasNoChildren \\Trash) "/" "Deleted Items"' in reply.untagged
    assert b'* LIST (\\HasNoChildren \\Archive) "/" "Junk E-mail"' in reply.untagged
    assert not any(b"Projects" in line for line in reply.untagged)
    assert (await client.ok('LSUB "" "Sent*"')).untagged == [
        b'* LSUB (\\HasNoChildren \\Sent) "/" Sent'
    ]  # created, not subscribed: the client subscribes what it wants
