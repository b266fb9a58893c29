"""METADATA and METADATA-SERVER (RFC 5464) and LIST-METADATA (RFC 9590): the
exchanges of the RFCs' examples, the size and count limits with their response codes,
/private/specialuse mirroring SPECIAL-USE, and entries going with their mailbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.imap.context import ImapLimits
from tests.conftest import ImapServer, start_imap_server, stop_imap_server

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def test_capabilities(imap: ImapServer) -> None:
    client = await imap.login()
    caps = (await client.ok("CAPABILITY")).untagged[0].split()
    assert {b"METADATA", b"METADATA-SERVER", b"LIST-METADATA"} <= set(caps)


async def test_server_entries(imap: ImapServer) -> None:
    """RFC 5464 §4.2 and §4.3 with mailbox "" (the server); the entry is removed with
    NIL. An entry without a value is answered NIL (Dovecot does; the RFC allows it)."""
    client = await imap.login()
    assert (await client.ok('GETMETADATA "" /shared/comment')).untagged == [
        b'* METADATA "" (/shared/comment NIL)'
    ]
    await client.ok('SETMETADATA "" (/shared/comment "Shared comment")')
    assert (await client.ok('GETMETADATA "" /shared/comment')).untagged == [
        b'* METADATA "" (/shared/comment "Shared comment")'
    ]
    await client.ok('SETMETADATA "" (/shared/comment NIL)')
    assert (await client.ok('GETMETADATA "" /shared/comment')).untagged == [
        b'* METADATA "" (/shared/comment NIL)'
    ]


async def test_mailbox_entries_from_the_rfc(imap: ImapServer) -> None:
    """RFC 5464 §4.3's literal value across two lines, then §4.2's examples: one
    entry, two entries, names in any case."""
    client = await imap.login()
    value = b"My new comment across\r\ntwo lines."
    await client.ok(b"SETMETADATA INBOX (/private/comment {%d}\r\n%s)" % (len(value), value))
    await client.ok('SETMETADATA INBOX (/shared/comment "Shared comment")')
    assert (await client.ok("GETMETADATA INBOX /private/comment")).untagged == [
        b"* METADATA INBOX (/private/comment {%d}\r\n%s)" % (len(value), value)
    ]
    await client.ok('SETMETADATA INBOX (/PRIVATE/Comment "My own comment")')
    reply = await client.ok("GETMETADATA INBOX (/shared/comment /private/comment)")
    assert reply.untagged == [
        b'* METADATA INBOX (/shared/comment "Shared comment" /private/comment "My own comment")'
    ]


async def test_maxsize_reports_longentries(imap: ImapServer) -> None:
    """RFC 5464 §4.2.1: entries over MAXSIZE are left out and the tagged OK says how
    large the largest of them is."""
    client = await imap.login()
    await client.ok('SETMETADATA INBOX (/private/comment "My own comment")')
    await client.ok(b'SETMETADATA INBOX (/shared/comment "%s")' % (b"x" * 2199))
    reply = await client.ok(
        'GETMETADATA "INBOX" (MAXSIZE 1024) ("/shared/comment" "/private/comment")'
    )
    assert reply.untagged == [b'* METADATA INBOX (/private/comment "My own comment")']
    assert b"OK [METADATA LONGENTRIES 2199]" in reply.line


async def test_depth(imap: ImapServer) -> None:
    """RFC 5464 §4.2.2's example: DEPTH 1 gives the children, not the grandchildren;
    DEPTH infinity gives every level."""
    client = await imap.login()
    await client.ok(
        'SETMETADATA INBOX (/private/filters/values/small "SMALLER than 5KB"'
        ' /private/filters/values/boss "from:boss@example.com"'
        ' /private/filters/values/boss/deep "x")'
    )
    reply = await client.ok('GETMETADATA "INBOX" (DEPTH 1) ("/private/filters/values")')
    assert reply.untagged == [
        b"* METADATA INBOX (/private/filters/values/boss"
        b' "from:boss@example.com" /private/filters/values/small "SMALLER than 5KB")'
    ]
    reply = await client.ok("GETMETADATA (DEPTH infinity) INBOX /private")
    assert b"/private/filters/values/boss/deep" in reply.untagged[0]
    reply = await client.ok("GETMETADATA INBOX /private/filters/values")  # DEPTH 0
    assert reply.untagged == [b"* METADATA INBOX (/private/filters/values NIL)"]


async def test_binary_values_go_as_literal8(imap: ImapServer) -> None:
    """RFC 5464 §5: ``value = nstring / literal8``; a NUL can only travel in literal8."""
    client = await imap.login()
    await client.ok(b"SETMETADATA INBOX (/private/vendor/roost/bin ~{3}\r\na\x00b)")
    assert (await client.ok("GETMETADATA INBOX /private/vendor/roost/bin")).untagged == [
        b"* METADATA INBOX (/private/vendor/roost/bin ~{3}\r\na\x00b)"
    ]


async def test_bad_entry_names(imap: ImapServer) -> None:
    """RFC 5464 §3.2: under /private or /shared, no empty component, no wildcards."""
    client = await imap.login()
    for entry in ("/foo/bar", "/shared//comment", "/shared/comment/", "/shared/co*", "comment"):
        await client.bad(f'GETMETADATA INBOX "{entry}"')
    await client.bad('SETMETADATA INBOX (/shared "a value for the root")')
    await client.bad("GETMETADATA (DEPTH 2) INBOX /shared")
    await client.no("GETMETADATA Nowhere /shared/comment")


async def test_specialuse_mirrors_the_attribute(imap: ImapServer) -> None:
    """RFC 6154 §4: /private/specialuse holds the mailbox's special-use attribute; it
    follows CREATE-SPECIAL-USE and cannot be set with SETMETADATA here."""
    client = await imap.login()
    assert (await client.ok("GETMETADATA Sent /private/specialuse")).untagged == [
        b'* METADATA Sent (/private/specialuse "\\\\Sent")'
    ]
    await client.ok("CREATE Receipts (USE (\\Archive))")
    reply = await client.ok("GETMETADATA (DEPTH infinity) Receipts /private")
    assert reply.untagged == [b'* METADATA Receipts (/private/specialuse "\\\\Archive")']
    await client.no('SETMETADATA Sent (/private/specialuse "\\\\Junk")')
    assert (await client.ok("GETMETADATA INBOX /private/specialuse")).untagged == [
        b"* METADATA INBOX (/private/specialuse NIL)"
    ]


async def test_entries_go_with_their_mailbox(imap: ImapServer) -> None:
    """RFC 5464 §3.2: deleting a mailbox deletes its annotations; a new mailbox of the
    same name starts without any. RENAME keeps them."""
    client = await imap.login()
    await client.ok("CREATE Projects")
    await client.ok('SETMETADATA Projects (/shared/comment "work")')
    await client.ok("RENAME Projects Work")
    assert (await client.ok("GETMETADATA Work /shared/comment")).untagged == [
        b'* METADATA Work (/shared/comment "work")'
    ]
    await client.ok("DELETE Work")
    await client.no("GETMETADATA Work /shared/comment")
    await client.ok("CREATE Work")
    assert (await client.ok("GETMETADATA Work /shared/comment")).untagged == [
        b"* METADATA Work (/shared/comment NIL)"
    ]


async def test_list_metadata(imap: ImapServer) -> None:
    """RFC 9590 §4's example: each LIST response is followed by the mailbox's
    METADATA, NIL for an entry it does not have."""
    client = await imap.login()
    await client.ok('SETMETADATA INBOX (/private/comment "My own comment")')
    await client.ok('SETMETADATA Drafts (/shared/comment "Shared comment")')
    reply = await client.ok('LIST "" "%" RETURN (METADATA (/shared/comment /private/comment))')
    assert reply.untagged[:2] == [
        b'* LIST (\\HasNoChildren) "/" INBOX',
        b'* METADATA INBOX (/shared/comment NIL /private/comment "My own comment")',
    ]
    drafts = reply.untagged.index(b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts')
    assert reply.untagged[drafts + 1] == (
        b'* METADATA Drafts (/shared/comment "Shared comment" /private/comment NIL)'
    )
    assert len(reply.untagged) == 12  # six mailboxes, each LIST then METADATA
    await client.bad('LIST "" "%" RETURN (METADATA ())')


async def test_limits(tmp_path: Path, store_url: str | None) -> None:
    """RFC 5464 §4.3: a value over the size limit is NO [METADATA MAXSIZE n], one entry
    too many NO [METADATA TOOMANY]; either way nothing of the command is set."""
    limits = ImapLimits(max_metadata_size=16, max_metadata_entries=2)
    handle, server = await start_imap_server(tmp_path, limits=limits, store_url=store_url)
    try:
        await handle.add_user("alice")
        client = await handle.login()
        reply = await client.no(
            'SETMETADATA INBOX (/private/comment "a" /shared/comment "more than sixteen")'
        )
        assert b"NO [METADATA MAXSIZE 16]" in reply.line
        assert (await client.ok("GETMETADATA INBOX /private/comment")).untagged == [
            b"* METADATA INBOX (/private/comment NIL)"
        ]
        await client.ok('SETMETADATA INBOX (/private/comment "a" /shared/comment "b")')
        reply = await client.no(
            'SETMETADATA INBOX (/shared/comment NIL /shared/vendor/x "c" /shared/vendor/y "d")'
        )
        assert b"NO [METADATA TOOMANY]" in reply.line
        assert (await client.ok("GETMETADATA INBOX /shared/comment")).untagged == [
            b'* METADATA INBOX (/shared/comment "b")'
        ]
        # Removing one while adding one stays within the limit; the server's own
        # entries are counted apart from any mailbox's.
        await client.ok('SETMETADATA INBOX (/shared/comment NIL /shared/vendor/x "c")')
        await client.ok('SETMETADATA "" (/shared/comment "a" /private/comment "b")')
        reply = await client.no('SETMETADATA "" (/shared/vendor/z "c")')
        assert b"NO [METADATA TOOMANY]" in reply.line
    finally:
        await stop_imap_server(handle, server)
