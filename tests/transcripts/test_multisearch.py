"""MULTISEARCH (RFC 7377): ESEARCH IN (...) over several mailboxes."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


def uidvalidity(line: bytes) -> int:
    match = re.search(rb"UIDVALIDITY (\d+)", line)
    assert match, line
    return int(match.group(1))


async def test_esearch_in_mailboxes_and_subtree_one(imap: ImapServer) -> None:
    """RFC 7377 §2 example: ``ESEARCH IN (mailboxes "folder1" subtree-one "folder2")
    unseen``: one ESEARCH per mailbox with matches, tagged with MAILBOX and
    UIDVALIDITY, always UIDs; subtree-one takes the children, not the grandchildren;
    a mailbox without matches is not reported."""
    client = await imap.login()
    caps = await client.ok("CAPABILITY")
    assert b" MULTISEARCH" in caps.untagged[0]
    for name in ("folder1", "folder2/salmon", "folder2/salmon/deep", "folder3"):
        await client.ok(f"CREATE {name}")
    for name in ("folder1", "folder1", "folder2/salmon", "folder2/salmon/deep", "folder3"):
        await client.append(name, message(f"in {name}"))
    await client.append("folder2", message("seen one"), flags="\\Seen")
    reply = await client.ok('ESEARCH IN (mailboxes "folder1" subtree-one "folder2") unseen')
    assert [re.sub(rb"UIDVALIDITY \d+", b"UIDVALIDITY v", line) for line in reply.untagged] == [
        b'* ESEARCH (TAG "A3" MAILBOX folder1 UIDVALIDITY v) UID ALL 1:2'.replace(
            b"A3", reply.line.split()[0]
        ),
        b'* ESEARCH (TAG "%s" MAILBOX folder2/salmon UIDVALIDITY v) UID ALL 1'
        % reply.line.split()[0],
    ]
    status = await client.ok("STATUS folder1 (UIDVALIDITY)")
    assert str(uidvalidity(reply.untagged[0])).encode() in status.untagged[0]
    reply = await client.ok("ESEARCH IN (subtree folder2 inboxes) RETURN (COUNT MIN) ALL")
    found = [
        re.sub(rb"^.* MAILBOX (\S+) UIDVALIDITY \d+\)", rb"\1", line) for line in reply.untagged
    ]
    # LIST order; INBOX (empty) is not reported.
    assert found == [
        b"folder2 UID MIN 1 COUNT 1",
        b"folder2/salmon UID MIN 1 COUNT 1",
        b"folder2/salmon/deep UID MIN 1 COUNT 1",
    ]


async def test_esearch_selected_and_refusals(imap: ImapServer) -> None:
    """RFC 7377 §2: without IN the selected mailbox is searched (none selected: an
    error); message numbers and $ have no meaning across mailboxes (BAD), nor has SAVE."""
    client = await imap.login()
    await client.append("INBOX", message("hello"))
    await client.bad("ESEARCH ALL")
    await client.ok("SELECT INBOX")
    reply = await client.ok("ESEARCH ALL")
    tag = reply.line.split()[0]
    assert reply.untagged[-1].startswith(b'* ESEARCH (TAG "%s" MAILBOX INBOX UIDVALIDITY ' % tag)
    assert reply.untagged[-1].endswith(b") UID ALL 1")
    reply = await client.ok("ESEARCH IN (personal) RETURN (COUNT) SUBJECT hello")
    assert [line.rsplit(b") ", 1)[1] for line in reply.untagged] == [b"UID COUNT 1"]
    await client.bad("ESEARCH IN (personal) 1")
    await client.bad("ESEARCH IN (personal) UID $")
    await client.bad("ESEARCH IN (personal) RETURN (SAVE) ALL")
    await client.bad("ESEARCH IN (personal (depth 1)) ALL")
    await client.bad("ESEARCH IN (nowhere) ALL")
