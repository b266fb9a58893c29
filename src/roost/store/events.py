"""Change events of accounts, fanned out to the sessions listening in this process.

A backend publishes after commit, on the event loop thread, and only events whose
change is durable. Events are hints: each says "ask the store what changed", so a
listener coalesces them — one ``MailboxChanged`` per mailbox (the highest modseq) and one
``MailboxListChanged`` — and no burst of changes can make its queue grow without bound.

The hub's surface is ``subscribe`` and ``publish``. A cross-process transport
(``runtime.event_bus.EventBusClient``) plugs in as the hub's ``relay``, which sees every event
published here, and hands events from other processes to ``deliver``, which reaches the
local listeners only (so nothing echoes back). It also plugs in as ``interest``, told
when an account gets its first listener here and when its last one goes, so that other
processes send this one only the events of accounts it listens to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

# ---- the events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MailboxChanged:
    """Messages in a mailbox changed; ask ``changes_since`` what exactly."""

    mailbox_id: int
    modseq: int


@dataclass(frozen=True, slots=True)
class MailboxListChanged:
    """A mailbox was created, deleted, renamed, or a subscription changed."""


ChangeEvent = MailboxChanged | MailboxListChanged


class ChangeListener(Protocol):
    """One session's subscription to an account's change events."""

    async def wait(self) -> list[ChangeEvent]:
        """Return pending events, waiting for the first one (wrap in asyncio.timeout)."""
        ...

    def pending(self) -> list[ChangeEvent]:
        """Return and clear pending events without waiting."""
        ...

    def close(self) -> None: ...


# ---- the hub ------------------------------------------------------------------------


class Listener:
    """One session's queue of an account's events (implements ChangeListener)."""

    def __init__(self, hub: EventHub, account: str) -> None:
        self._hub = hub
        self._account = account
        self._pending: dict[int | None, ChangeEvent] = {}  # mailbox id, None for the list
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def push(self, events: Iterable[ChangeEvent]) -> None:
        for event in events:
            match event:
                case MailboxChanged(mailbox_id=mailbox_id, modseq=modseq):
                    seen = self._pending.get(mailbox_id)
                    if not isinstance(seen, MailboxChanged) or seen.modseq < modseq:
                        self._pending[mailbox_id] = event
                case MailboxListChanged():
                    self._pending[None] = event
        if self._pending:
            self._ready.set()

    async def wait(self) -> list[ChangeEvent]:
        while not self._pending and not self._closed:
            await self._ready.wait()
            self._ready.clear()
        return self.pending()

    def pending(self) -> list[ChangeEvent]:
        events = list(self._pending.values())
        self._pending.clear()
        self._ready.clear()
        return events

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._hub.unsubscribe(self._account, self)
            self._ready.set()  # a waiter returns what is left, or nothing


class EventHub:
    """Routes events by account key (the case-folded account name)."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = {}
        # Called with every locally published event (e.g. to send it to other workers).
        self.relay: Callable[[str, list[ChangeEvent]], None] | None = None
        # Called with (account, True) when the account gets its first listener here and
        # with (account, False) when its last one goes.
        self.interest: Callable[[str, bool], None] | None = None

    def subscribe(self, account: str) -> Listener:
        listener = Listener(self, account)
        listeners = self._listeners.get(account)
        if listeners is None:
            self._listeners[account] = {listener}
            if self.interest is not None:
                self.interest(account, True)
        else:
            listeners.add(listener)
        return listener

    def unsubscribe(self, account: str, listener: Listener) -> None:
        listeners = self._listeners.get(account)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[account]
                if self.interest is not None:
                    self.interest(account, False)

    def listened_accounts(self) -> list[str]:
        """The accounts that have a listener in this process."""
        return list(self._listeners)

    def publish(self, account: str, events: list[ChangeEvent]) -> None:
        self.deliver(account, events)
        if self.relay is not None:
            self.relay(account, events)

    def deliver(self, account: str, events: list[ChangeEvent]) -> None:
        """Hand ``events`` to this process's listeners only."""
        for listener in list(self._listeners.get(account, ())):
            listener.push(events)

    def deliver_everywhere(self, events: list[ChangeEvent]) -> None:
        """Wake every listener of every account (after events may have been missed)."""
        for listeners in list(self._listeners.values()):
            for listener in list(listeners):
                listener.push(events)
