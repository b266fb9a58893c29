"""QUOTA (RFC 9208): the exchanges of its examples against an account whose quota
root is "" (every mailbox of the account), NO [OVERQUOTA] on APPEND and COPY, MOVE
allowed, EXPUNGE freeing space at once, STATUS DELETED-STORAGE."""

from __future__ import annotations

import pytest

from roost.store.base import QuotaOverride
from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)

BIG = message("big", body="x" * 3000 + "\r\n")  # 3 KiB and a little: 4 STORAGE units


def units(*messages: bytes) -> int:
    return -(-sum(len(m) for m in messages) // 1024)


async def limited(imap: ImapServer, *, storage: int | None, messages: int | None) -> ImapClient:
    await imap.store.set_quota_override("alice", QuotaOverride(storage, messages))
    return await imap.login()


async def test_capabilities(imap: ImapServer) -> None:
    client = await imap.login()
    caps = (await client.ok("CAPABILITY")).untagged[0].split()
    assert {b"QUOTA", b"QUOTA=RES-STORAGE", b"QUOTA=RES-MESSAGE"} <= set(caps)
    assert b"QUOTASET" not in caps  # SETQUOTA is refused (RFC 9208 §4.1.3)


async def test_getquotaroot_lists_the_account_root(imap: ImapServer) -> None:
    """RFC 9208 §4.1.2's example: ``* QUOTAROOT INBOX ""`` then ``* QUOTA "" (...)``."""
    client = await limited(imap, storage=512 * 1024, messages=None)
    await client.append("INBOX", BIG)
    await client.append("Archive", BIG)
    reply = await client.ok("GETQUOTAROOT INBOX")
    assert reply.untagged == [
        b'* QUOTAROOT INBOX ""',
        b'* QUOTA "" (STORAGE %d 512)' % units(BIG, BIG),
    ]
    reply = await client.ok("GETQUOTAROOT Archive")  # the same root for every mailbox
    assert reply.untagged[0] == b'* QUOTAROOT Archive ""'
    await client.no("GETQUOTAROOT Nowhere")


async def test_getquota_reports_both_resources(imap: ImapServer) -> None:
    client = await limited(imap, storage=10 * 1024 * 1024, messages=1000)
    await client.append("INBOX", BIG)
    reply = await client.ok('GETQUOTA ""')
    assert reply.untagged == [b'* QUOTA "" (STORAGE %d 10240 MESSAGE 1 1000)' % units(BIG)]
    reply = await client.no('GETQUOTA "#user/bob"')
    assert b"[NONEXISTENT]" in reply.line


async def test_without_limits_there_is_no_root(imap: ImapServer) -> None:
    """A QUOTA response needs at least one resource (RFC 9208 §9): unlimited, the
    mailbox has no quota root."""
    client = await imap.login()
    assert (await client.ok("GETQUOTAROOT INBOX")).untagged == [b"* QUOTAROOT INBOX"]
    assert b"[NONEXISTENT]" in (await client.no('GETQUOTA ""')).line


async def test_setquota_is_refused(imap: ImapServer) -> None:
    """RFC 9208 §4.1.3's example command; limits are the administrator's."""
    client = await limited(imap, storage=111 * 1024, messages=1000)
    reply = await client.no('SETQUOTA "" (STORAGE 510)')
    assert b"[NOPERM]" in reply.line
    await client.no('SETQUOTA "" ()')
    await client.bad('SETQUOTA "" STORAGE 510')
    await client.bad('SETQUOTA "" (STORAGE)')
    await client.bad("GETQUOTA")
    limits = (await client.ok('GETQUOTA ""')).untagged[0]
    assert limits.endswith(b" 111 MESSAGE 0 1000)")


async def test_append_over_quota_stores_nothing(imap: ImapServer) -> None:
    """RFC 9208 §4.3's example: ``NO [OVERQUOTA]`` and no message."""
    client = await limited(imap, storage=len(BIG) + 200, messages=None)
    await client.append("INBOX", BIG)
    literal = f"APPEND INBOX (\\Seen) {{{len(BIG)}}}\r\n".encode() + BIG
    reply = await client.no(literal)
    assert b"[OVERQUOTA]" in reply.line
    small = message("small")
    multi = (
        f"APPEND INBOX {{{len(small)}+}}\r\n".encode()
        + small
        + f" {{{len(BIG)}+}}\r\n".encode()
        + BIG
    )
    assert b"[OVERQUOTA]" in (await client.no(multi)).line  # MULTIAPPEND: all or none
    status = await client.ok("STATUS INBOX (MESSAGES)")
    assert status.untagged == [b"* STATUS INBOX (MESSAGES 1)"]
    await client.append("INBOX", small)  # what fits is still stored


async def test_copy_refused_move_allowed_expunge_frees(imap: ImapServer) -> None:
    client = await limited(imap, storage=None, messages=2)
    await client.append("INBOX", BIG)
    await client.append("INBOX", message("second"))
    await client.ok("SELECT INBOX")
    assert b"[OVERQUOTA]" in (await client.no("COPY 1 Archive")).line
    await client.ok("MOVE 2 Archive")  # within the root: usage unchanged
    quota = await client.ok('GETQUOTA ""')
    assert quota.untagged == [b'* QUOTA "" (MESSAGE 2 2)']
    await client.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    status = await client.ok("STATUS Archive (MESSAGES DELETED DELETED-STORAGE)")
    assert status.untagged == [b"* STATUS Archive (MESSAGES 1 DELETED 0 DELETED-STORAGE 0)"]
    await client.ok("EXPUNGE")
    assert (await client.ok('GETQUOTA ""')).untagged == [b'* QUOTA "" (MESSAGE 1 2)']
    await client.ok("SELECT Archive")
    await client.ok("COPY 1 INBOX")  # room again


@pytest.mark.parametrize("flagged", [1, 2])
async def test_status_deleted_storage(imap: ImapServer, flagged: int) -> None:
    """RFC 9208 §4.2.2: what EXPUNGE would free in the mailbox, in units of 1024."""
    client = await imap.login()
    await client.append("INBOX", BIG)
    await client.append("INBOX", BIG, flags="\\Deleted" if flagged == 2 else "")
    await client.append("INBOX", message("kept"), flags="\\Deleted")
    reply = await client.ok("STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)")
    deleted = [message("kept")] + ([BIG] if flagged == 2 else [])
    expected = b"* STATUS INBOX (MESSAGES 3 DELETED %d DELETED-STORAGE %d)" % (
        len(deleted),
        units(*deleted),
    )
    assert reply.untagged == [expected]
    listed = await client.ok('LIST "" INBOX RETURN (STATUS (DELETED-STORAGE))')
    assert listed.untagged[-1] == b"* STATUS INBOX (DELETED-STORAGE %d)" % units(*deleted)
