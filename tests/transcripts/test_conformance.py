"""Conformance defects found by an outside IMAP test suite and a messy corpus (issue 17),
each pinned to its RFC section. Where Roost and Dovecot 2.3 answer differently and the
RFC allows both, the test says which Roost chose and why."""

from __future__ import annotations

import re

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message


def _highest(line: bytes) -> int | None:
    match = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", line)
    return int(match.group(1)) if match else None


async def _selected(imap: ImapServer, count: int = 2) -> ImapClient:
    client = await imap.login()
    for i in range(count):
        await client.append("INBOX", message(f"m{i}"))
    await client.ok("SELECT INBOX")
    return client


async def _highest_now(imap: ImapServer) -> int:
    """The INBOX's HIGHESTMODSEQ as another session sees it."""
    other = await imap.login()
    status = await other.ok("STATUS INBOX (HIGHESTMODSEQ)")
    await other.close()
    return int(status.untagged[0].split(b"HIGHESTMODSEQ ")[1].rstrip(b")"))


# ---- 5. RFC 7162 §3.1: implicit CONDSTORE enabling reports HIGHESTMODSEQ -------------


async def test_fetch_modseq_enabling_condstore_reports_highestmodseq(imap: ImapServer) -> None:
    """RFC 7162 §3.1: the first CONDSTORE-enabling command issued while a mailbox is
    selected reports that mailbox's HIGHESTMODSEQ. Roost puts it in the tagged OK;
    Dovecot sends an untagged ``OK [HIGHESTMODSEQ n]`` before the FETCH data — both
    carry the same value. Later commands do not repeat it."""
    client = await _selected(imap)
    expected = await _highest_now(imap)
    reply = await client.ok("FETCH 1 (MODSEQ)")
    assert _highest(reply.line) == expected
    again = await client.ok("FETCH 1 (MODSEQ)")
    assert _highest(again.line) is None


async def test_search_modseq_enabling_condstore_reports_highestmodseq(
    imap: ImapServer,
) -> None:
    """RFC 7162 §3.1 (SEARCH MODSEQ is a CONDSTORE-enabling command, §3.1.5)."""
    client = await _selected(imap)
    reply = await client.ok("SEARCH MODSEQ 1")
    assert _highest(reply.line) == await _highest_now(imap)


async def test_store_unchangedsince_enabling_condstore_reports_highestmodseq(
    imap: ImapServer,
) -> None:
    """RFC 7162 §3.1 (STORE UNCHANGEDSINCE, §3.1.3): after the change, so the value
    is the modseq the STORE itself took."""
    client = await _selected(imap)
    reply = await client.ok("STORE 1 (UNCHANGEDSINCE 100) +FLAGS (\\Seen)")
    assert _highest(reply.line) == await _highest_now(imap)
