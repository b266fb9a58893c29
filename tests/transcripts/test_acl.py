"""ACL commands (RFC 4314 §3) on one's own mailboxes, after the RFC's examples; what
the grantee sees and may do is in test_shared_folders.py."""

from __future__ import annotations

import pytest

from tests.conftest import ImapServer

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def test_capabilities(imap: ImapServer) -> None:
    """RFC 4314 §2.1.1: RIGHTS=texk says the RFC 4314 rights replace "c" and "d";
    RFC 8440: LIST-MYRIGHTS."""
    client = await imap.login()
    caps = (await client.ok("CAPABILITY")).untagged[0].split()
    assert {b"ACL", b"RIGHTS=texk", b"LIST-MYRIGHTS"} <= set(caps)


async def test_setacl_getacl_deleteacl(imap: ImapServer) -> None:
    """RFC 4314 §3.1-§3.3: SETACL replaces, "+" adds, "-" removes; GETACL lists the
    owner (every right, implicit) and each grant; DELETEACL removes an entry. RFC
    2086's "c" and "d" are taken as "k" and "xte" (§2.1.1)."""
    await imap.add_user("Fred")
    client = await imap.login()
    await client.ok("SETACL INBOX fred lr")  # any case: the account's own spelling kept
    assert (await client.ok("GETACL INBOX")).untagged == [b"* ACL INBOX alice lrswipkxtea Fred lr"]
    await client.ok('SETACL INBOX Fred "+swd"')
    assert (await client.ok("GETACL INBOX")).untagged[0].endswith(b"Fred lrswxte")
    await client.ok("SETACL INBOX Fred -xe")
    assert (await client.ok("GETACL INBOX")).untagged[0].endswith(b"Fred lrswt")
    await client.ok("DELETEACL INBOX Fred")
    assert (await client.ok("GETACL INBOX")).untagged == [b"* ACL INBOX alice lrswipkxtea"]
    await client.ok('SETACL INBOX Fred ""')  # no rights: no entry
    assert (await client.ok("GETACL INBOX")).untagged == [b"* ACL INBOX alice lrswipkxtea"]


async def test_refusals(imap: ImapServer) -> None:
    client = await imap.login()
    await client.bad("SETACL INBOX alice")  # missing rights
    assert b"[CANNOT]" in (await client.no("SETACL INBOX alice lr")).line  # the owner
    assert b"[CANNOT]" in (await client.no("SETACL INBOX -alice lr")).line
    assert b"[NONEXISTENT]" in (await client.no("SETACL INBOX nobody lr")).line
    assert b"[NONEXISTENT]" in (await client.no("GETACL Nowhere")).line
    await imap.add_user("bob")
    await client.bad("SETACL INBOX bob lrz")  # not a right


async def test_listrights_and_myrights(imap: ImapServer) -> None:
    """RFC 4314 §3.4, §3.5: the owner holds every right and needs all of them; any
    other account may be given each right on its own."""
    await imap.add_user("smith")
    client = await imap.login()
    assert (await client.ok("LISTRIGHTS Archive smith")).untagged == [
        b'* LISTRIGHTS Archive smith "" l r s w i p k x t e a'
    ]
    assert (await client.ok("LISTRIGHTS Archive alice")).untagged == [
        b"* LISTRIGHTS Archive alice lrswipkxtea"
    ]
    assert (await client.ok("MYRIGHTS INBOX")).untagged == [b"* MYRIGHTS INBOX lrswipkxtea"]


async def test_grants_go_with_the_mailbox(imap: ImapServer) -> None:
    await imap.add_user("bob")
    client = await imap.login()
    await client.ok("CREATE Team")
    await client.ok("SETACL Team bob lrs")
    await client.ok("RENAME Team Crew")
    assert (await client.ok("GETACL Crew")).untagged == [b"* ACL Crew alice lrswipkxtea bob lrs"]
    await client.ok("DELETE Crew")
    await client.ok("CREATE Crew")
    assert (await client.ok("GETACL Crew")).untagged == [b"* ACL Crew alice lrswipkxtea"]
