"""The listener of a session that looks into other accounts (imap/shared.py): the
selected shared mailbox's owner, and the accounts NOTIFY watches."""

from __future__ import annotations

import asyncio

from roost.imap.shared import MergedListener
from roost.store.events import EventHub, MailboxChanged, MailboxListChanged


def selecting(hub: EventHub) -> MergedListener:
    merged = MergedListener(hub.subscribe("bob"))
    merged.select(hub.subscribe("alice"), mailbox_id=7)
    return merged


async def test_own_events_and_the_owners_for_the_mailbox() -> None:
    hub = EventHub()
    merged = selecting(hub)
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
    merged.unselect()
    assert hub.listened_accounts() == ["bob"]


async def test_watched_accounts_wake_a_wait_and_are_kept_apart() -> None:
    """NOTIFY's accounts: their events wake the wait, which answers with none of
    them; ``take_watched`` has them by account, coalesced per mailbox."""
    hub = EventHub()
    merged = MergedListener(hub.subscribe("bob"))
    merged.watch({"alice": hub.subscribe("alice"), "carol": hub.subscribe("carol")})
    waiting = asyncio.ensure_future(merged.wait())
    await asyncio.sleep(0)
    hub.publish("carol", [MailboxChanged(3, 10), MailboxChanged(3, 12), MailboxChanged(3, 11)])
    assert await waiting == []
    hub.publish("alice", [MailboxListChanged()])
    assert merged.pending() == []
    assert merged.take_watched() == {
        "carol": [MailboxChanged(3, 12)],
        "alice": [MailboxListChanged()],
    }
    assert merged.take_watched() == {}
    merged.watch({})
    assert hub.listened_accounts() == ["bob"]


async def test_closing_ends_a_wait() -> None:
    hub = EventHub()
    merged = selecting(hub)
    merged.watch({"carol": hub.subscribe("carol")})
    waiting = asyncio.ensure_future(merged.wait())
    await asyncio.sleep(0)
    merged.close()
    assert await asyncio.wait_for(waiting, 5) == []
    assert hub.listened_accounts() == []
