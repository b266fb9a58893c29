"""CONDSTORE and QRESYNC (RFC 7162): per-message MODSEQ, HIGHESTMODSEQ, CHANGEDSINCE,
UNCHANGEDSINCE/MODIFIED, ENABLE, QRESYNC SELECT with VANISHED (EARLIER), and VANISHED
for expunges seen while selected."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


def modseq_of(line: bytes) -> int:
    match = re.search(rb"MODSEQ \((\d+)\)", line)
    assert match, line
    return int(match.group(1))


def highestmodseq(lines: list[bytes]) -> int:
    for line in lines:
        match = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", line)
        if match:
            return int(match.group(1))
    raise AssertionError(f"no HIGHESTMODSEQ in {lines!r}")


def uidvalidity(lines: list[bytes]) -> int:
    for line in lines:
        match = re.search(rb"\[UIDVALIDITY (\d+)\]", line)
        if match:
            return int(match.group(1))
    raise AssertionError("no UIDVALIDITY")


async def filled(imap: ImapServer, count: int = 5) -> ImapClient:
    client = await imap.login()
    for i in range(count):
        await client.append("INBOX", message(f"m{i}"))
    return client


async def test_capabilities_and_enable(imap: ImapServer) -> None:
    client = await imap.login()
    caps = await client.ok("CAPABILITY")
    assert b" CONDSTORE" in caps.untagged[0] and b" QRESYNC" in caps.untagged[0]
    reply = await client.ok("ENABLE QRESYNC")
    assert reply.untagged == [b"* ENABLED QRESYNC"]


async def test_select_reports_highestmodseq_and_status(imap: ImapServer) -> None:
    """RFC 7162 §3.1.2.1 and §3.1.6."""
    client = await filled(imap, 2)
    reply = await client.ok("SELECT INBOX")
    selected = highestmodseq(reply.untagged)
    status = await client.ok("STATUS INBOX (HIGHESTMODSEQ)")
    assert status.untagged == [f"* STATUS INBOX (HIGHESTMODSEQ {selected})".encode()]


async def test_fetch_modseq_and_changedsince(imap: ImapServer) -> None:
    """RFC 7162 §3.1.4: CHANGEDSINCE returns only what changed, with MODSEQ."""
    client = await filled(imap, 4)
    reply = await client.ok("SELECT INBOX (CONDSTORE)")
    base = highestmodseq(reply.untagged)
    reply = await client.ok("FETCH 1:* (MODSEQ)")
    assert all(modseq_of(line) <= base for line in reply.untagged)
    reply = await client.ok("STORE 2 +FLAGS (\\Flagged)")
    # A CONDSTORE client hears the new MODSEQ with the flags.
    assert re.fullmatch(
        rb"\* 2 FETCH \(FLAGS \(\\Flagged \\Recent\) MODSEQ \(\d+\)\)", reply.untagged[0]
    )
    changed = modseq_of(reply.untagged[0])
    assert changed > base
    reply = await client.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {base})")
    assert reply.untagged == [f"* 2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ ({changed}))".encode()]
    reply = await client.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {changed})")
    assert reply.untagged == []
    # iOS sends CHANGEDSINCE 0 (CLIENTS.md).
    reply = await client.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")
    assert len(reply.untagged) == 4


async def test_store_unchangedsince_modified(imap: ImapServer) -> None:
    """RFC 7162 §3.1.3: a conditional STORE fails for messages changed since."""
    client = await filled(imap, 3)
    reply = await client.ok("SELECT INBOX")
    base = highestmodseq(reply.untagged)
    other = await imap.login()
    await other.ok("SELECT INBOX")
    await other.ok("STORE 2 +FLAGS (\\Seen)")
    reply = await client.ok(f"STORE 1:3 (UNCHANGEDSINCE {base}) +FLAGS (\\Answered)")
    assert b"[MODIFIED 2]" in reply.line
    flagged = [
        line
        for line in reply.untagged
        if line.startswith(b"* 1 FETCH") or line.startswith(b"* 3 FETCH")
    ]
    assert len(flagged) == 2 and all(b"\\Answered" in line for line in flagged)
    reply = await client.ok("FETCH 2 (FLAGS)")
    assert b"\\Answered" not in reply.untagged[-1]
    reply = await client.ok("UID STORE 1 (UNCHANGEDSINCE 1) -FLAGS (\\Answered)")
    assert b"[MODIFIED 1]" in reply.line


async def test_store_silent_with_condstore_reports_modseq(imap: ImapServer) -> None:
    client = await filled(imap, 1)
    await client.ok("SELECT INBOX (CONDSTORE)")
    reply = await client.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    assert re.fullmatch(rb"\* 1 FETCH \(MODSEQ \(\d+\)\)", reply.untagged[0])


async def test_other_session_flag_update_carries_modseq(imap: ImapServer) -> None:
    a = await filled(imap, 2)
    await a.ok("SELECT INBOX")
    b = await imap.login()
    await b.ok("ENABLE CONDSTORE")
    await b.ok("SELECT INBOX")
    await a.ok("STORE 1 +FLAGS (\\Seen)")
    reply = await b.ok("NOOP")
    assert re.fullmatch(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", reply.untagged[0])


async def test_qresync_needs_enable(imap: ImapServer) -> None:
    client = await filled(imap, 1)
    await client.bad("SELECT INBOX (QRESYNC (1 1))")


async def test_qresync_select_reports_vanished_and_changes(imap: ImapServer) -> None:
    """RFC 7162 §3.2.5: one round trip catches a client up."""
    client = await filled(imap, 6)
    reply = await client.ok("SELECT INBOX")
    validity, base = uidvalidity(reply.untagged), highestmodseq(reply.untagged)
    await client.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    await client.ok("EXPUNGE")
    await client.ok("UID STORE 5 +FLAGS.SILENT (\\Flagged)")
    await client.ok("LOGOUT")

    phone = await imap.login()
    await phone.ok("ENABLE QRESYNC")
    reply = await phone.ok(f"SELECT INBOX (QRESYNC ({validity} {base} 1:6))")
    assert b"* VANISHED (EARLIER) 2,4" in reply.untagged
    changed = [line for line in reply.untagged if b" FETCH " in line]
    assert len(changed) == 1
    assert re.fullmatch(rb"\* 3 FETCH \(UID 5 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)", changed[0])
    # Known UIDs limit what is reported.
    await phone.ok("UNSELECT")
    reply = await phone.ok(f"SELECT INBOX (QRESYNC ({validity} {base} 3:4))")
    assert b"* VANISHED (EARLIER) 4" in reply.untagged
    assert not [line for line in reply.untagged if b" FETCH " in line]
    # A wrong UIDVALIDITY: a plain SELECT, no VANISHED.
    reply = await phone.ok(f"SELECT INBOX (QRESYNC ({validity + 1} {base}))")
    assert b"* OK [CLOSED] Previous mailbox is now closed" in reply.untagged
    assert not [line for line in reply.untagged if b"VANISHED" in line]


async def test_qresync_expunge_is_vanished(imap: ImapServer) -> None:
    """RFC 7162 §3.2.10: with QRESYNC, expunges are announced as VANISHED."""
    a = await filled(imap, 3)
    await a.ok("SELECT INBOX")
    b = await imap.login()
    await b.ok("ENABLE QRESYNC")
    await b.ok("SELECT INBOX")
    await a.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    await a.ok("EXPUNGE")
    reply = await b.ok("NOOP")
    assert reply.untagged[-1] == b"* VANISHED 1,3"
    await b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    reply = await b.ok("EXPUNGE")
    assert reply.untagged[-1] == b"* VANISHED 2"


async def test_uid_fetch_vanished(imap: ImapServer) -> None:
    """RFC 7162 §3.2.6: UID FETCH (CHANGEDSINCE n VANISHED)."""
    client = await filled(imap, 4)
    await client.ok("ENABLE QRESYNC")
    reply = await client.ok("SELECT INBOX")
    base = highestmodseq(reply.untagged)
    await client.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await client.ok("EXPUNGE")
    await client.ok("UID STORE 2 +FLAGS.SILENT (\\Seen)")
    reply = await client.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {base} VANISHED)")
    assert reply.untagged[0] == b"* VANISHED (EARLIER) 1"
    assert re.fullmatch(
        rb"\* 1 FETCH \(UID 2 FLAGS \(\\Seen \\Recent\) MODSEQ \(\d+\)\)", reply.untagged[1]
    )
    await client.bad(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {base} VANISHED)")
