"""Shared mailboxes (RFC 4314) in LSUB (RFC 3501 §6.3.9), in LIST's METADATA return
option (RFC 9590) and in NOTIFY's mailbox filters (RFC 5465 §6): a mailbox alice
shares with bob behaves there as bob's own do, as far as his rights go."""

from __future__ import annotations

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message

TEAM = '"Other Users/alice/Team"'


async def share(imap: ImapServer, rights: str) -> tuple[ImapClient, ImapClient]:
    await imap.add_user("bob")
    alice = await imap.login()
    await alice.ok("CREATE Team")
    await alice.append("Team", message("plan"))
    await alice.ok(f'SETACL Team bob "{rights}"')
    return alice, await imap.login("bob")


async def test_list_metadata_of_a_shared_mailbox(imap: ImapServer) -> None:
    """RFC 9590 §3: with "r", RETURN (METADATA ...) gives a shared mailbox's /shared
    entries, as GETMETADATA would (its /private ones are alice's: NIL); without
    "r" (only "l") no METADATA response, as no GETMETADATA would be allowed."""
    alice, bob = await share(imap, "lr")
    await alice.ok('SETMETADATA Team (/shared/comment "team plans" /private/comment "mine")')
    reply = await bob.ok(
        'LIST "" "Other Users/alice/*" RETURN (METADATA (/shared/comment /private/comment))'
    )
    assert reply.untagged == [
        b'* LIST (\\HasNoChildren) "/" "Other Users/alice/Team"',
        b'* METADATA "Other Users/alice/Team" (/shared/comment "team plans" /private/comment NIL)',
    ]
    await alice.ok("SETACL Team bob l")
    reply = await bob.ok('LIST "" "Other Users/alice/*" RETURN (METADATA (/shared/comment))')
    assert reply.untagged == [b'* LIST (\\HasNoChildren) "/" "Other Users/alice/Team"']


async def test_lsub_of_shared_mailboxes(imap: ImapServer) -> None:
    """RFC 3501 §6.3.9: LSUB "%" shows the unsubscribed parent "Other Users" as
    \\Noselect; "*" the subscribed shared mailbox with its attributes; a subscription
    to a mailbox no longer shared stays (a name), \\Noselect."""
    alice, bob = await share(imap, "lr")
    await bob.ok(f"SUBSCRIBE {TEAM}")
    assert (await bob.ok('LSUB "" "Other Users/%"')).untagged == [
        b'* LSUB (\\Noselect) "/" "Other Users/alice"'
    ]
    assert (await bob.ok('LSUB "" "Other Users/*"')).untagged == [
        b'* LSUB (\\HasNoChildren) "/" "Other Users/alice/Team"'
    ]
    await alice.ok("SETACL Team bob -lr")
    assert (await bob.ok('LSUB "" "Other Users/*"')).untagged == [
        b'* LSUB (\\Noselect) "/" "Other Users/alice/Team"'
    ]
