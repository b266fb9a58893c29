"""The listener a session uses while a shared mailbox is selected (imap/shared.py)."""

from __future__ import annotations

import asyncio

from roost.imap.shared import MergedListener
from roost.store.events import EventHub, MailboxChanged, MailboxListChanged


async def test_own_events_and_the_owners_for_the_mailbox() -> None:
    hub = EventHub()
    merged = MergedListener(hub.subscribe("bob"), hub.subscribe("alice"), mailbox_id=7)
    waiting = asyncio.ensure_future(merged.wait())
    await asyncio.sleep(0)
    hub.publish("alice", [MailboxChanged(3, 10)])  # another of alice's mailboxes
    await asyncio.sleep(0)
    assert not waiting.done()
    hub.publish("alice", [MailboxChanged(7, 11), MailboxListChanged()])
    assert set(await waiting) == {MailboxChanged(7, 11), MailboxListChanged()}
    hub.publish("bob", [MailboxChanged(3, 5)])
    assert await merged.wait() == [MailboxChanged(3, 5)]
    assert merged.pending() == []


async def test_closing_ends_a_wait() -> None:
    hub = EventHub()
    merged = MergedListener(hub.subscribe("bob"), hub.subscribe("alice"), mailbox_id=7)
    waiting = asyncio.ensure_future(merged.wait())
    await asyncio.sleep(0)
    merged.close()
    assert await asyncio.wait_for(waiting, 5) == []
    assert hub.listened_accounts() == []
