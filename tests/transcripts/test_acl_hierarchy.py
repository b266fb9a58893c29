"""RFC 4314 §4: CREATE, DELETE and RENAME in another user's mailboxes. CREATE needs
"k" on the parent, DELETE "x" on the mailbox, RENAME "x" on the old name and "k" on
the new name's parent; they act in the owner's account. A new mailbox takes its
parent's ACL (as Cyrus and Dovecot do)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient

pytestmark = pytest.mark.both_backends

TEAM = '"Other Users/alice/Team"'


async def share(imap: ImapServer, rights: str) -> tuple[ImapClient, ImapClient]:
    return await imap.share_team(rights)


async def test_create_needs_k_on_the_parent(imap: ImapServer) -> None:
    """§4 CREATE: "k" on the parent. The child is alice's, with Team's ACL, so bob
    finds it under Other Users; without "k", or above Team, NO [NOPERM]."""
    alice, bob = await share(imap, "lr")
    assert b"[NOPERM]" in (await bob.no('CREATE "Other Users/alice/Team/Plans"')).line
    assert b"[NOPERM]" in (await bob.no('CREATE "Other Users/alice/Elsewhere"')).line
    assert b"[NOPERM]" in (await bob.no('CREATE "Other Users/alice"')).line
    await alice.ok('SETACL Team bob "+k"')
    reply = await bob.ok('CREATE "Other Users/alice/Team/Plans/2027"')
    assert b"[MAILBOXID (" in reply.line
    assert (await alice.ok('LIST "" "Team/*"')).untagged == [
        b'* LIST (\\HasChildren) "/" Team/Plans',
        b'* LIST (\\HasNoChildren) "/" Team/Plans/2027',
    ]
    assert (await alice.ok("GETACL Team/Plans/2027")).untagged == [
        b"* ACL Team/Plans/2027 alice lrswipkxtea bob lrk"
    ]
    reply = await bob.ok('LIST "" "Other Users/alice/Team/*"')
    assert reply.untagged == [
        b'* LIST (\\HasChildren) "/" "Other Users/alice/Team/Plans"',
        b'* LIST (\\HasNoChildren) "/" "Other Users/alice/Team/Plans/2027"',
    ]
    reply = await bob.no('CREATE "Other Users/alice/Team/Plans"')
    assert b"[ALREADYEXISTS]" in reply.line
    # In one's own account a child takes its parent's entries too.
    await alice.ok("CREATE Team/Own")
    assert (await alice.ok("GETACL Team/Own")).untagged == [
        b"* ACL Team/Own alice lrswipkxtea bob lrk"
    ]


async def test_delete_needs_x(imap: ImapServer) -> None:
    """§4 DELETE: "x" on the mailbox; alice's session, with it selected, is told."""
    alice, bob = await share(imap, "lr")
    assert b"[NOPERM]" in (await bob.no(f"DELETE {TEAM}")).line
    assert b"[NONEXISTENT]" in (await bob.no('DELETE "Other Users/alice/Trash"')).line
    await alice.ok('SETACL Team bob "+x"')
    await bob.ok(f"SELECT {TEAM}")
    await bob.ok(f"DELETE {TEAM}")
    await bob.bad("FETCH 1 FLAGS")  # no longer selected
    assert (await alice.ok('LIST "" Team')).untagged == []
    assert (await bob.ok('LIST "" "Other Users/*"')).untagged == []
    await alice.ok("CREATE Shared")
    await alice.ok("SETACL Shared bob lrx")
    assert b"[CANNOT]" in (await alice.no("DELETE INBOX")).line
    await alice.ok("SETACL INBOX bob lrx")
    assert b"[CANNOT]" in (await bob.no('DELETE "Other Users/alice/INBOX"')).line


async def test_rename_needs_x_and_k(imap: ImapServer) -> None:
    """§4 RENAME: "x" on the old name, "k" on the new name's parent, one account."""
    alice, bob = await share(imap, "lrkx")
    await alice.ok("CREATE Team/Old")
    await alice.ok("CREATE Archive/2026")
    await alice.ok("SETACL Archive bob lr")
    await bob.ok('RENAME "Other Users/alice/Team/Old" "Other Users/alice/Team/New"')
    assert (await alice.ok('LIST "" "Team/*"')).untagged == [
        b'* LIST (\\HasNoChildren) "/" Team/New'
    ]
    # No "k" on Archive, no "x" on Archive/2026 (which bob cannot see: NONEXISTENT).
    reply = await bob.no('RENAME "Other Users/alice/Team/New" "Other Users/alice/Archive/New"')
    assert b"[NOPERM]" in reply.line
    reply = await bob.no('RENAME "Other Users/alice/Archive" "Other Users/alice/Team/Archive"')
    assert b"[NOPERM]" in reply.line
    reply = await bob.no('RENAME "Other Users/alice/Archive/2026" "Other Users/alice/Team/2026"')
    assert b"[NONEXISTENT]" in reply.line
    # Never from one account to another.
    await bob.ok("CREATE Mine")
    assert b"[CANNOT]" in (await bob.no('RENAME Mine "Other Users/alice/Team/Mine"')).line
    assert b"[CANNOT]" in (await bob.no('RENAME "Other Users/alice/Team/New" Mine2')).line
    assert (await bob.ok('LIST "" "Other Users/alice/Team/*"')).untagged == [
        b'* LIST (\\HasNoChildren) "/" "Other Users/alice/Team/New"'
    ]


async def test_the_owners_mailbox_limit_counts(imap: ImapServer) -> None:
    """A mailbox bob creates is alice's: her max_mailboxes counts (NO [LIMIT])."""
    alice, bob = await share(imap, "lrk")
    count = len((await alice.ok('LIST "" "*"')).untagged)
    imap.context.limits = dataclasses.replace(imap.context.limits, max_mailboxes=count)
    assert b"[LIMIT]" in (await bob.no('CREATE "Other Users/alice/Team/More"')).line
    await bob.ok("CREATE Mine")  # bob's own count is another matter
