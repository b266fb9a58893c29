"""RFC 4314 §2: the identifier "anyone" (every signed-in user) and negative rights
("-bob"): a user's rights are the union of the positive entries for them and for
"anyone", less the union of the negative ones. GETACL, LISTRIGHTS and MYRIGHTS (§3)
answer accordingly, and an "anyone" grant puts the mailbox under "Other Users" for all."""

from __future__ import annotations

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import message

pytestmark = pytest.mark.both_backends

TEAM = '"Other Users/alice/Team"'


async def test_anyone_shows_the_mailbox_to_every_user(imap: ImapServer) -> None:
    """RFC 4314 §2 "anyone": carol, granted nothing herself, finds and reads Team."""
    await imap.add_user("carol")
    alice = await imap.login()
    await alice.ok("CREATE Team")
    await alice.append("Team", message("plan"))
    await alice.ok("SETACL Team anyone lr")
    assert (await alice.ok("GETACL Team")).untagged == [b"* ACL Team alice lrswipkxtea anyone lr"]
    carol = await imap.login("carol")
    assert (await carol.ok('LIST "" "Other Users/*"')).untagged == [
        b'* LIST (\\HasChildren \\Noselect) "/" "Other Users/alice"',
        b'* LIST (\\HasNoChildren) "/" "Other Users/alice/Team"',
    ]
    assert (await carol.ok(f"MYRIGHTS {TEAM}")).untagged == [
        b'* MYRIGHTS "Other Users/alice/Team" lr'
    ]
    reply = await carol.ok(f"EXAMINE {TEAM}")
    assert b"* 1 EXISTS" in reply.untagged
    # §3.4: "anyone" may be given each right on its own.
    assert (await alice.ok("LISTRIGHTS Team anyone")).untagged == [
        b'* LISTRIGHTS Team anyone "" l r s w i p k x t e a'
    ]
    await alice.ok("DELETEACL Team anyone")
    assert (await carol.ok('LIST "" "Other Users/*"')).untagged == []
    assert b"[NONEXISTENT]" in (await carol.no(f"EXAMINE {TEAM}")).line


async def test_negative_rights_take_away(imap: ImapServer) -> None:
    """RFC 4314 §2: "-bob" takes rights from what bob and "anyone" have; §3.1: SETACL
    "-bob" keeps a negative entry, shown by GETACL as such (§3.3)."""
    await imap.add_user("bob")
    await imap.add_user("carol")
    alice = await imap.login()
    await alice.ok("CREATE Team")
    await alice.ok("SETACL Team anyone lrs")
    await alice.ok("SETACL Team Bob lrw")
    await alice.ok("SETACL Team -BOB sw")
    assert (await alice.ok("GETACL Team")).untagged == [
        b"* ACL Team alice lrswipkxtea -bob sw anyone lrs bob lrw"
    ]
    bob = await imap.login("bob")
    carol = await imap.login("carol")
    assert (await bob.ok(f"MYRIGHTS {TEAM}")).untagged == [
        b'* MYRIGHTS "Other Users/alice/Team" lr'
    ]
    assert (await carol.ok(f"MYRIGHTS {TEAM}")).untagged == [
        b'* MYRIGHTS "Other Users/alice/Team" lrs'
    ]
    reply = await bob.ok(f"SELECT {TEAM}")
    assert b"[READ-ONLY]" in reply.line  # neither "s" nor "w" is left him
    # "-anyone" takes from everyone (but the owner, who keeps every right).
    await alice.ok("SETACL Team -anyone r")
    reply = await carol.ok('LIST "" "Other Users/alice/*" RETURN (MYRIGHTS)')
    assert reply.untagged == [
        b'* LIST (\\HasNoChildren) "/" "Other Users/alice/Team"',
        b'* MYRIGHTS "Other Users/alice/Team" ls',
    ]
    assert b"[NOPERM]" in (await carol.no(f"SELECT {TEAM}")).line
    assert (await alice.ok("MYRIGHTS Team")).untagged == [b"* MYRIGHTS Team lrswipkxtea"]
    # Taking "l" and "r" away hides the mailbox (§4), as if it did not exist.
    await alice.ok('SETACL Team -bob "+lr"')
    assert (await bob.ok('LIST "" "Other Users/*"')).untagged == []
    assert b"[NONEXISTENT]" in (await bob.no(f"MYRIGHTS {TEAM}")).line
    # §3.2: DELETEACL of the negative entry gives the rights back.
    await alice.ok("DELETEACL Team -bob")
    await alice.ok("DELETEACL Team -anyone")
    assert (await bob.ok(f"MYRIGHTS {TEAM}")).untagged == [
        b'* MYRIGHTS "Other Users/alice/Team" lrsw'
    ]
    assert (await alice.ok("LISTRIGHTS Team -bob")).untagged == [
        b'* LISTRIGHTS Team -bob "" l r s w i p k x t e a'
    ]


async def test_identifier_refusals(imap: ImapServer) -> None:
    """The owner cannot be given entries, positive or negative; unknown accounts are
    NO [NONEXISTENT] with or without "-"."""
    alice = await imap.login()
    assert b"[CANNOT]" in (await alice.no("SETACL INBOX -alice lr")).line
    assert b"[NONEXISTENT]" in (await alice.no("SETACL INBOX -nobody lr")).line
    assert b"[NONEXISTENT]" in (await alice.no('SETACL INBOX "-" lr')).line
