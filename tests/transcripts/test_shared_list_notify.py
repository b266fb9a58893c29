"""Shared mailboxes (RFC 4314) in LSUB (RFC 3501 §6.3.9), in LIST's METADATA return
option (RFC 9590) and in NOTIFY's mailbox filters (RFC 5465 §6): a mailbox alice
shares with bob behaves there as bob's own do, as far as his rights go."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message

pytestmark = pytest.mark.both_backends

TEAM = '"Other Users/alice/Team"'


async def share(imap: ImapServer, rights: str) -> tuple[ImapClient, ImapClient]:
    return await imap.share_team(rights, message("plan"))


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


async def test_notify_subtree_of_a_sharer(imap: ImapServer) -> None:
    """RFC 5465 §6 "subtree" naming Other Users/alice: alice's changes to Team reach
    bob as STATUS (§5.1, §5.2); her mailboxes not shared with him stay silent, and
    "personal" (his own namespace) does not take hers."""
    alice, bob = await share(imap, "lr")
    await bob.ok(
        'NOTIFY SET (personal (MessageNew MessageExpunge)) (subtree "Other Users/alice"'
        " (MessageNew MessageExpunge))"
    )
    await alice.append("Archive", message("not shared"))
    await alice.append("Team", message("news"))
    assert re.fullmatch(
        rb'\* STATUS "Other Users/alice/Team" \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 2\)',
        await bob.read_response(),
    )
    await alice.ok("SELECT Team")
    await alice.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await alice.ok("EXPUNGE")
    line = await bob.read_response()
    assert line.startswith(b'* STATUS "Other Users/alice/Team" (MESSAGES 1 UIDNEXT 3 ')
    await bob.append("INBOX", message("his own"))
    assert (await bob.read_response()).startswith(b"* STATUS INBOX (MESSAGES 1 ")


async def test_notify_subscribed_and_mailboxes(imap: ImapServer) -> None:
    """§6 "subscribed" takes bob's subscription to the shared Team (NOTIFY SET STATUS
    reports it at once, §3); "mailboxes" names it directly."""
    alice, bob = await share(imap, "lr")
    await bob.ok(f"SUBSCRIBE {TEAM}")
    reply = await bob.ok("NOTIFY SET STATUS (subscribed (MessageNew MessageExpunge))")
    # bob's own subscribed mailboxes first (the default ones), then the shared one.
    assert reply.untagged[-1].startswith(b'* STATUS "Other Users/alice/Team" (MESSAGES 1 ')
    assert not any(b"Other Users" in line for line in reply.untagged[:-1])
    await alice.append("Team", message("news"))
    assert (await bob.read_response()).startswith(b'* STATUS "Other Users/alice/Team" (MESSAGES 2 ')
    await bob.ok(f"NOTIFY SET (mailboxes {TEAM} (MessageNew MessageExpunge))")
    await alice.append("Team", message("more"))
    assert (await bob.read_response()).startswith(b'* STATUS "Other Users/alice/Team" (MESSAGES 3 ')


async def test_notify_mailbox_names_and_revoked_rights(imap: ImapServer) -> None:
    """§5.4 MailboxName for a sharer's mailboxes bob may list ("l"): renamed (with
    OLDNAME) and, once the grant is gone, \\NonExistent; a mailbox without "r" gives
    no STATUS (RFC 4314 §4), and one no longer shared falls silent."""
    alice, bob = await share(imap, "lr")
    await alice.ok("CREATE Notes")
    await alice.ok("SETACL Notes bob l")
    await bob.ok('NOTIFY SET (subtree "Other Users/alice" (MessageNew MessageExpunge MailboxName))')
    await alice.ok("RENAME Team Crew")
    assert await bob.read_response() == (
        b'* LIST () "/" "Other Users/alice/Crew" ("OLDNAME" ("Other Users/alice/Team"))'
    )
    await alice.append("Notes", message("bob may not read this"))
    await alice.append("Crew", message("news"))
    assert (await bob.read_response()).startswith(b'* STATUS "Other Users/alice/Crew" (MESSAGES 2 ')
    await alice.ok("DELETEACL Crew bob")
    await alice.append("Crew", message("secret"))
    assert await bob.read_response() == b'* LIST (\\NonExistent) "/" "Other Users/alice/Crew"'
    await bob.ok("NOOP")
    await alice.ok('SETACL Notes bob "+r"')
    await alice.append("Notes", message("now he may"))
    assert (await bob.read_response()).startswith(
        b'* STATUS "Other Users/alice/Notes" (MESSAGES 2 '
    )


async def test_notify_status_leaves_out_the_selected_shared_mailbox(imap: ImapServer) -> None:
    """RFC 5465 §3: NOTIFY SET STATUS reports the watched mailboxes but the selected
    one, here alice's Team; a second shared mailbox is reported."""
    alice, bob = await share(imap, "lr")
    await alice.ok("CREATE Notes")
    await alice.ok("SETACL Notes bob lr")
    await bob.ok(f"SELECT {TEAM}")
    reply = await bob.ok(
        'NOTIFY SET STATUS (subtree "Other Users/alice" (MessageNew MessageExpunge))'
    )
    assert [line[:35] for line in reply.untagged] == [b'* STATUS "Other Users/alice/Notes" ']


async def test_esearch_over_shared_mailboxes(imap: ImapServer) -> None:
    """RFC 7377 §2 with RFC 5465 §6 filters: "subtree" naming Other Users/alice and
    "subscribed" take the mailboxes bob may read ("r"), after his own, searched in
    alice's account; "personal" does not; one he may only list ("l") is left out."""
    alice, bob = await share(imap, "lr")
    await alice.ok("CREATE Notes")
    await alice.append("Notes", message("plan B"))
    await alice.ok("SETACL Notes bob l")
    await bob.append("INBOX", message("plan C"))
    reply = await bob.ok('ESEARCH IN (personal subtree "Other Users/alice") SUBJECT plan')
    assert [re.sub(rb'TAG "\w+"|UIDVALIDITY \d+', b"_", line) for line in reply.untagged] == [
        b"* ESEARCH (_ MAILBOX INBOX _) UID ALL 1",
        b'* ESEARCH (_ MAILBOX "Other Users/alice/Team" _) UID ALL 1',
    ]
    assert (await bob.ok("ESEARCH IN (personal) SUBJECT plan")).untagged[1:] == []
    await bob.ok(f"SUBSCRIBE {TEAM}")
    reply = await bob.ok("ESEARCH IN (subscribed) SUBJECT plan")
    assert [line.split(b"MAILBOX ")[1][:7] for line in reply.untagged] == [b"INBOX U", b'"Other ']
