"""NOTIFY (RFC 5465): a client hears about every folder it asks for, not only the
selected one, and between commands as well as in IDLE."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def watcher(imap: ImapServer, spec: str) -> ImapClient:
    client = await imap.login()
    await client.ok(f"NOTIFY SET {spec}")
    return client


async def test_capability_and_none(imap: ImapServer) -> None:
    client = await imap.login()
    caps = await client.ok("CAPABILITY")
    assert b" NOTIFY" in caps.untagged[0]
    await client.ok("NOTIFY NONE")


async def test_new_message_in_other_mailbox_gives_status(imap: ImapServer) -> None:
    """RFC 5465 §5.1: MessageNew outside the selected mailbox comes as STATUS."""
    client = await watcher(imap, "(personal (MessageNew MessageExpunge))")
    writer = await imap.login()
    await writer.append("Archive", message())
    line = await client.read_response()
    assert re.fullmatch(
        rb"\* STATUS Archive \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)", line
    )
    # An expunge changes the counts again.
    await writer.ok("SELECT Archive")
    await writer.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    await writer.ok("EXPUNGE")
    line = await client.read_response()
    assert line.startswith(b"* STATUS Archive (MESSAGES 0 UIDNEXT 2 ")


async def test_status_indicator_reports_now(imap: ImapServer) -> None:
    client = await imap.login()
    await client.append("INBOX", message())
    reply = await client.ok("NOTIFY SET STATUS (inboxes (MessageNew MessageExpunge))")
    assert len(reply.untagged) == 1
    assert reply.untagged[0].startswith(b"* STATUS INBOX (MESSAGES 1 UIDNEXT 2 ")


async def test_filters_limit_what_is_heard(imap: ImapServer) -> None:
    client = await watcher(imap, "(subtree Work (MessageNew MessageExpunge))")
    writer = await imap.login()
    await writer.ok("CREATE Work/Reports")
    await writer.append("Archive", message("not watched"))
    await writer.append("Work/Reports", message("watched"))
    line = await client.read_response()
    assert line.startswith(b"* STATUS Work/Reports (MESSAGES 1 ")


async def test_mailbox_name_events(imap: ImapServer) -> None:
    """RFC 5465 §5.4: created, renamed (with OLDNAME) and deleted mailboxes."""
    client = await watcher(imap, "(personal (MailboxName SubscriptionChange))")
    writer = await imap.login()
    await writer.ok("CREATE Projects")
    assert await client.read_response() == b'* LIST () "/" Projects'
    await writer.ok("RENAME Projects Done")
    assert await client.read_response() == b'* LIST () "/" Done ("OLDNAME" (Projects))'
    await writer.ok("SUBSCRIBE Done")
    assert await client.read_response() == b'* LIST (\\Subscribed) "/" Done'
    await writer.ok("DELETE Done")
    assert await client.read_response() == b'* LIST (\\NonExistent) "/" Done'


async def test_selected_mailbox_events_between_commands(imap: ImapServer) -> None:
    """With a SELECTED group, the selected mailbox's changes arrive without NOOP,
    new messages with the fetch attributes asked for."""
    client = await imap.login()
    await client.ok("SELECT INBOX")
    await client.ok("NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge FlagChange))")
    writer = await imap.login()
    await writer.append("INBOX", message("first"))
    assert await client.read_response() == b"* 1 EXISTS"
    assert await client.read_response() == b"* 1 RECENT"
    assert await client.read_response() == b"* 1 FETCH (UID 1 FLAGS (\\Recent))"
    await writer.ok("SELECT INBOX")
    await writer.ok("STORE 1 +FLAGS (\\Flagged)")
    assert await client.read_response() == b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))"
    await writer.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert await client.read_response() == b"* 1 FETCH (UID 1 FLAGS (\\Deleted \\Flagged \\Recent))"
    await writer.ok("EXPUNGE")
    assert await client.read_response() == b"* 1 EXPUNGE"
    await client.ok("NOOP")


async def test_notify_during_idle(imap: ImapServer) -> None:
    client = await watcher(imap, "(personal (MessageNew MessageExpunge))")
    await client.ok("SELECT INBOX")
    tag = await client.idle()
    writer = await imap.login()
    await writer.append("Junk", message())
    line = await client.read_response()
    assert line.startswith(b"* STATUS Junk (MESSAGES 1 ")
    await writer.append("INBOX", message())
    assert await client.read_response() == b"* 1 EXISTS"
    assert (await client.done(tag)).status == "OK"


async def test_unsupported_event_is_badevent(imap: ImapServer) -> None:
    client = await imap.login()
    reply = await client.no("NOTIFY SET (personal (AnnotationChange))")
    assert b"[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]" in (
        reply.line
    )
    await client.bad("NOTIFY SET (personal (MessageNew))")  # needs MessageExpunge too
    await client.bad("NOTIFY SET (nowhere (MessageNew MessageExpunge))")
