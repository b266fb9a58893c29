"""Shared folders (ACL, RFC 4314; LIST-MYRIGHTS, RFC 8440): alice grants bob rights on
a mailbox; bob finds it under "Other Users/alice/" (RFC 2342 NAMESPACE), uses it as
far as his rights go (RFC 4314 §4), and each hears of the other's changes."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)

TEAM = '"Other Users/alice/Team"'


async def share(imap: ImapServer, rights: str) -> tuple[ImapClient, ImapClient]:
    """alice (with Team holding one message) and bob, Team granted to bob."""
    return await imap.share_team(rights, message("plan", body="the plan\r\n"))


async def test_bob_lists_what_alice_shares(imap: ImapServer) -> None:
    alice, bob = await share(imap, "lr")
    await alice.ok("CREATE Private")
    reply = await bob.ok('LIST "" "Other Users*"')
    assert reply.untagged == [
        b'* LIST (\\HasChildren \\Noselect) "/" "Other Users"',
        b'* LIST (\\HasChildren \\Noselect) "/" "Other Users/alice"',
        b'* LIST (\\HasNoChildren) "/" "Other Users/alice/Team"',
    ]
    # RFC 8440: RETURN (MYRIGHTS) follows each mailbox with the user's rights.
    reply = await bob.ok('LIST "" "*" RETURN (MYRIGHTS)')
    assert b'* MYRIGHTS "Other Users/alice/Team" lr' in reply.untagged
    assert b"* MYRIGHTS INBOX lrswipkxtea" in reply.untagged
    assert (await bob.ok(f"MYRIGHTS {TEAM}")).untagged == [
        b'* MYRIGHTS "Other Users/alice/Team" lr'
    ]
    reply = await bob.ok(f"STATUS {TEAM} (MESSAGES)")
    assert reply.untagged == [b'* STATUS "Other Users/alice/Team" (MESSAGES 1)']
    reply = await bob.ok('LIST "" "Other Users/alice/*" RETURN (STATUS (MESSAGES))')  # RFC 5819
    assert reply.untagged == [
        b'* LIST (\\HasNoChildren) "/" "Other Users/alice/Team"',
        b'* STATUS "Other Users/alice/Team" (MESSAGES 1)',
    ]
    # What is not granted does not exist for bob (RFC 4314 §4: no "l", no "r").
    for command in (
        'SELECT "Other Users/alice/Private"',
        'STATUS "Other Users/alice/INBOX" (MESSAGES)',
    ):
        assert b"[NONEXISTENT]" in (await bob.no(command)).line
    assert b"[NOPERM]" in (await bob.no('CREATE "Other Users/alice/Team/x"')).line
    assert b"[NOPERM]" in (await bob.no(f"DELETE {TEAM}")).line
    assert b"[NOPERM]" in (await bob.no(f"GETACL {TEAM}")).line  # needs "a"
    # Revoked: gone from bob's view at his next command.
    await alice.ok("DELETEACL Team bob")
    assert (await bob.ok('LIST "" "Other Users/*"')).untagged == []
    assert b"[NONEXISTENT]" in (await bob.no(f"SELECT {TEAM}")).line


async def test_read_only_sharer(imap: ImapServer) -> None:
    """With "lr": SELECT is READ-ONLY, reading does not set \\Seen, STORE is NO [NOPERM]."""
    _, bob = await share(imap, "lr")
    reply = await bob.ok(f"SELECT {TEAM}")
    assert b"[READ-ONLY]" in reply.line
    assert b"* 1 EXISTS" in reply.untagged
    reply = await bob.ok("FETCH 1 (BODY[TEXT])")
    assert reply.untagged[0].endswith(b"the plan\r\n)")
    assert b"\\Seen" not in (await bob.ok("FETCH 1 FLAGS")).untagged[0]
    assert b"[NOPERM]" in (await bob.no("STORE 1 +FLAGS (\\Seen)")).line
    assert b"[NOPERM]" in (await bob.no("EXPUNGE")).line
    assert b"[NOPERM]" in (await bob.no(f"APPEND {TEAM} {{5+}}\r\nhello")).line
    assert b"[NOPERM]" in (await bob.no("MOVE 1 INBOX")).line


async def test_seen_right_and_events_both_ways(imap: ImapServer) -> None:
    """ "lrs": bob may mark messages seen — flags are the mailbox's, shared by both —
    but not flag them. alice's session hears of bob's change, bob's of alice's."""
    alice, bob = await share(imap, "lrs")
    await alice.ok("SELECT Team")
    reply = await bob.ok(f"SELECT {TEAM}")
    assert b"[READ-WRITE]" in reply.line
    assert b"* OK [PERMANENTFLAGS (\\Seen)] Flags permitted" in reply.untagged
    await bob.ok("STORE 1 +FLAGS (\\Seen)")
    assert b"[NOPERM]" in (await bob.no("STORE 1 +FLAGS (\\Flagged)")).line
    reply = await alice.ok("NOOP")
    assert any(b"FETCH (UID 1 FLAGS (\\Seen" in line for line in reply.untagged), reply.untagged
    await alice.append("Team", message("second"))
    reply = await bob.ok("NOOP")
    assert b"* 2 EXISTS" in reply.untagged


async def test_idle_hears_the_owner(imap: ImapServer) -> None:
    """An IDLE in a shared mailbox wakes on the owner's change (RFC 2177)."""
    alice, bob = await share(imap, "lr")
    await bob.ok(f"SELECT {TEAM}")
    await bob.send("I1 IDLE\r\n")
    assert (await bob.read_response()).startswith(b"+")
    await alice.append("Team", message("news"))
    assert await bob.read_response() == b"* 2 EXISTS"
    await bob.send("DONE\r\n")
    assert (await bob.read_until_tagged("I1")).status == "OK"


async def test_full_rights(imap: ImapServer) -> None:
    """Every right ("lrswipkxtecda", RFC 2086's c and d included): APPEND, COPY from
    bob's INBOX into alice's mailbox, MOVE back, EXPUNGE, and the ACL itself ("a")."""
    alice, bob = await share(imap, "lrswipkxtecda")
    await bob.append("INBOX", message("from bob"))
    await bob.ok(f"APPEND {TEAM} (\\Flagged) {{5+}}\r\nhello")
    await bob.ok("SELECT INBOX")
    reply = await bob.ok(f"COPY 1 {TEAM}")
    assert b"[COPYUID " in reply.line
    reply = await bob.ok(f"SELECT {TEAM}")
    assert b"* 3 EXISTS" in reply.untagged
    reply = await bob.ok("MOVE 1 INBOX")  # alice's first message into bob's INBOX
    assert any(b"[COPYUID " in line for line in reply.untagged)
    assert b"* 1 EXPUNGE" in reply.untagged
    await bob.ok("STORE 1 +FLAGS (\\Deleted)")
    await bob.ok("EXPUNGE")
    assert (await alice.ok("STATUS Team (MESSAGES)")).untagged == [b"* STATUS Team (MESSAGES 1)"]
    assert (await bob.ok("STATUS INBOX (MESSAGES)")).untagged == [b"* STATUS INBOX (MESSAGES 2)"]
    reply = await bob.ok(f"GETACL {TEAM}")
    assert reply.untagged == [b'* ACL "Other Users/alice/Team" alice lrswipkxtea bob lrswipkxtea']


async def test_metadata_of_a_shared_mailbox(imap: ImapServer) -> None:
    """RFC 5464 §3.3: the sharer sees the mailbox's /shared entries ("r") and sets
    them with "w"; its /private ones are the owner's and not shown; the sharer's own
    private entries are not kept there: NO [METADATA NOPRIVATE]."""
    alice, bob = await share(imap, "lrw")
    await alice.ok('SETMETADATA Team (/shared/comment "team plans" /private/comment "mine")')
    reply = await bob.ok(f"GETMETADATA {TEAM} (/shared/comment /private/comment)")
    assert reply.untagged == [
        b'* METADATA "Other Users/alice/Team" (/shared/comment "team plans" /private/comment NIL)'
    ]
    await bob.ok(f'SETMETADATA {TEAM} (/shared/comment "changed by bob")')
    reply = await bob.no(f'SETMETADATA {TEAM} (/private/comment "bob\'s")')
    assert b"NO [METADATA NOPRIVATE]" in reply.line
    assert (await alice.ok("GETMETADATA Team /shared/comment")).untagged == [
        b'* METADATA Team (/shared/comment "changed by bob")'
    ]


async def test_subscribing_to_a_shared_mailbox(imap: ImapServer) -> None:
    """A subscription is a name (RFC 9051 §6.3.7): LSUB and LIST (SUBSCRIBED) show the
    shared mailbox once, as it is; once no longer shared, \\NonExistent (RFC 5258 §3.4)."""
    alice, bob = await share(imap, "lr")
    await bob.ok(f"SUBSCRIBE {TEAM}")
    assert (await bob.ok('LSUB "" "Other Users/*"')).untagged == [
        b'* LSUB (\\HasNoChildren) "/" "Other Users/alice/Team"'
    ]
    assert (await bob.ok('LIST (SUBSCRIBED) "" "Other Users/*"')).untagged == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Other Users/alice/Team"'
    ]
    await alice.ok("DELETEACL Team bob")
    assert (await bob.ok('LIST (SUBSCRIBED) "" "Other Users/*"')).untagged == [
        b'* LIST (\\NonExistent \\Subscribed) "/" "Other Users/alice/Team"'
    ]


async def test_a_change_of_rights_applies_at_the_next_command(imap: ImapServer) -> None:
    """RFC 4314 §4 leaves it to the server when a change of rights reaches a session
    that has the mailbox selected. As Dovecot, which checks each change against the
    ACL: what bob may change follows alice's SETACL at his next command (NO [NOPERM]
    once taken away); reading stays as SELECT found it (Dovecot and Cyrus check "r"
    when the mailbox is opened), and neither server tells the session, nor Roost."""
    alice, bob = await share(imap, "lrswte")
    reply = await bob.ok(f"SELECT {TEAM}")
    assert b"[READ-WRITE]" in reply.line
    await bob.ok("STORE 1 +FLAGS (\\Flagged)")
    await alice.ok("SETACL Team bob lr")
    reply = await bob.no("STORE 1 -FLAGS (\\Flagged)")
    assert b"[NOPERM]" in reply.line and reply.untagged == []
    assert b"[NOPERM]" in (await bob.no("STORE 1 +FLAGS (\\Seen)")).line
    assert b"[NOPERM]" in (await bob.no("EXPUNGE")).line
    assert b"[NOPERM]" in (await bob.no("MOVE 1 INBOX")).line
    await bob.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    await alice.ok('SETACL Team bob "+w"')
    await bob.ok("STORE 1 -FLAGS (\\Flagged)")
    await alice.ok("DELETEACL Team bob")
    assert b"[NONEXISTENT]" in (await bob.no(f"SELECT {TEAM}")).line


async def test_replace_and_esearch_in_a_shared_mailbox(imap: ImapServer) -> None:
    """Main's REPLACE (RFC 8508) and MULTISEARCH (RFC 7377) meet shared folders: REPLACE
    acts on alice's Team (never bob's own mailbox of the same id) and needs "t", "e"
    and "i"; ESEARCH IN (SELECTED) searches Team, never bob's mailbox of the same id."""
    alice, bob = await share(imap, "lr")
    await bob.append("INBOX", message("bob's own", body="mine\r\n"))
    await bob.ok(f"SELECT {TEAM}")
    draft = message("plan v2", body="the new plan\r\n")
    literal = f"UID REPLACE 1 {TEAM} {{{len(draft)}+}}\r\n".encode() + draft
    assert b"[NOPERM]" in (await bob.no(literal)).line
    await alice.ok('SETACL Team bob "lrswite"')
    await bob.ok(f"SELECT {TEAM}")
    reply = await bob.ok(literal)
    assert b"[APPENDUID " in reply.untagged[0] and b"* 1 EXPUNGE" in reply.untagged
    await alice.ok("SELECT Team")
    assert (await alice.ok("UID SEARCH ALL")).untagged == [b"* SEARCH 2"]
    await bob.ok("SELECT INBOX")
    assert (await bob.ok("SEARCH ALL")).untagged == [b"* SEARCH 1"]  # untouched
    await bob.ok(f"SELECT {TEAM}")
    # RFC 7377 §2: the selected mailbox, named as bob knows it, searched in alice's
    # account (bob's INBOX has a message of the same UID: not it).
    reply = await bob.ok("ESEARCH IN (SELECTED) ALL")
    assert re.fullmatch(
        rb'\* ESEARCH \(TAG "A\d+" MAILBOX "Other Users/alice/Team" UIDVALIDITY \d+\) UID ALL 2',
        reply.untagged[0],
    ), reply.untagged
    reply = await bob.ok('ESEARCH IN (SELECTED personal) SUBJECT "plan"')
    assert [line.split(b"MAILBOX ")[1][:24] for line in reply.untagged] == [
        b'"Other Users/alice/Team"'
    ]
    reply = await bob.no(f"UID REPLACE 2 INBOX {{{len(draft)}+}}\r\n".encode() + draft)
    assert b"[CANNOT]" in reply.line
