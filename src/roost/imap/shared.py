"""Shared folders (ACL, RFC 4314): where a mailbox name lives and what the user may do.

A mailbox another account granted this user rights on appears as
``Other Users/<owner>/<name>`` (the "Other Users" namespace, RFC 2342). The session
opens the owner's Account through the store and works on it directly; while such a
mailbox is selected it also listens to the owner's change events (``MergedListener``),
so both users' sessions hear of every change, from any process.

Rights (RFC 4314 §2.1) are read from the owner's ACL at each use, so a change of rights
applies at the user's next command. The owner has every right on their own mailboxes.
Another user's rights are those of the entries for them and for "anyone" (every
signed-in user), less those of the negative entries ("-name", "-anyone") for them
(RFC 4314 §2: the union of positive rights minus the union of negative ones).
Flags are the mailbox's, shared by every user: a sharee with "s" marks a message seen
for everyone (RFC 4314 allows per-user \\Seen; Roost keeps one set of flags).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from roost.imap.handler_types import no
from roost.imap.mailbox_names import DELIMITER, is_inbox
from roost.store.base import (
    Account,
    ChangeEvent,
    ChangeListener,
    MailboxChanged,
    NoSuchAccount,
)

OTHER_USERS = "Other Users"
ALL_RIGHTS = "lrswipkxtea"  # RFC 4314 §2.1, in the RFC's order
ANYONE = "anyone"  # RFC 4314 §2: the identifier that stands for every user


def identifiers_for(user: str) -> tuple[str, ...]:
    """The ACL identifiers whose entries concern ``user`` (an account name)."""
    return (user, ANYONE, "-" + user, "-" + ANYONE)


def effective_rights(entries: Mapping[str, str], user: str) -> str:
    """``user``'s rights from a mailbox's entries: positive ones for the user and
    "anyone", less the negative ones for either (RFC 4314 §2), in ALL_RIGHTS order."""
    granted = set(entries.get(user, "")) | set(entries.get(ANYONE, ""))
    denied = set(entries.get("-" + user, "")) | set(entries.get("-" + ANYONE, ""))
    return "".join(r for r in ALL_RIGHTS if r in granted - denied)


async def rights_in(owner: Account, user: str) -> dict[str, str]:
    """Mailbox name → ``user``'s rights, for the owner's mailboxes where they hold any."""
    entries = await owner.acl_entries_for(identifiers_for(user))
    found = {name: effective_rights(e, user) for name, e in entries.items()}
    return {name: rights for name, rights in found.items() if rights}


@dataclass(frozen=True, slots=True)
class Place:
    """Where a mailbox name the client gave lives: the account holding it, its name
    there, its owner (None: the user's own) and the user's rights on it."""

    account: Account
    name: str
    owner: str | None
    rights: str

    def require(self, rights: str, what: str) -> None:
        """NO [NOPERM] unless the user holds every one of ``rights``."""
        missing = [r for r in rights if r not in self.rights]
        if missing:
            raise no(f"{what} needs the right {''.join(missing)!r} (RFC 4314)", "NOPERM")


def split_shared(name: str) -> tuple[str, str] | None:
    """``Other Users/alice/Projects`` → ("alice", "Projects"); None for a personal
    name. ``Other Users`` and ``Other Users/alice`` alone give ("", "") and
    ("alice", ""): they name no mailbox."""
    if name != OTHER_USERS and not name.startswith(OTHER_USERS + DELIMITER):
        return None
    parts = name.split(DELIMITER, 2)
    owner = parts[1] if len(parts) > 1 else ""
    rest = parts[2] if len(parts) > 2 else ""
    if is_inbox(rest.split(DELIMITER, 1)[0]):
        rest = "INBOX" + rest[5:]
    return owner, rest


def shared_name(owner: str, name: str) -> str:
    return f"{OTHER_USERS}{DELIMITER}{owner}{DELIMITER}{name}"


class MergedListener:
    """The user's own events, with other accounts' (implements ChangeListener).

    While another's mailbox is selected (``select``), the owner's events about it are
    mixed in with the user's own: mailbox ids are per account, so an own event may
    look like one for the shared mailbox, which costs one needless sync, no more.
    The accounts NOTIFY watches (``watch``) wake a wait too, but their events are
    kept apart, by account, for the notifier (``take_watched``)."""

    def __init__(self, own: ChangeListener) -> None:
        self.own = own
        self.selected: ChangeListener | None = None
        self.mailbox_id = 0
        self.watched: dict[str, ChangeListener] = {}
        self._watched_events: dict[str, dict[int | None, ChangeEvent]] = {}

    def select(self, other: ChangeListener, mailbox_id: int) -> None:
        self.unselect()
        self.selected, self.mailbox_id = other, mailbox_id

    def unselect(self) -> None:
        if self.selected is not None:
            self.selected.close()
            self.selected = None

    def watch(self, accounts: dict[str, ChangeListener]) -> None:
        """Listen to these accounts (by key) for NOTIFY, instead of any before."""
        for listener in self.watched.values():
            listener.close()
        self.watched = dict(accounts)
        self._watched_events.clear()

    def take_watched(self) -> dict[str, list[ChangeEvent]]:
        """The watched accounts' events since the last call, by account key."""
        self._keep({key: w.pending() for key, w in self.watched.items()})
        taken = {key: list(events.values()) for key, events in self._watched_events.items()}
        self._watched_events.clear()
        return taken

    def _keep(self, found: dict[str, list[ChangeEvent]]) -> None:
        for key, events in found.items():
            if not events:
                continue
            kept = self._watched_events.setdefault(key, {})
            for event in events:  # coalesced, as a Listener does: the latest per mailbox
                slot = event.mailbox_id if isinstance(event, MailboxChanged) else None
                seen = kept.get(slot)
                if isinstance(seen, MailboxChanged) and isinstance(event, MailboxChanged):
                    event = max(seen, event, key=lambda e: e.modseq)
                kept[slot] = event

    def _relevant(self, events: list[ChangeEvent]) -> list[ChangeEvent]:
        return [
            e
            for e in events
            if not isinstance(e, MailboxChanged) or e.mailbox_id == self.mailbox_id
        ]

    def pending(self) -> list[ChangeEvent]:
        self._keep({key: w.pending() for key, w in self.watched.items()})
        selected = [] if self.selected is None else self._relevant(self.selected.pending())
        return self.own.pending() + selected

    async def wait(self) -> list[ChangeEvent]:
        """Own and selected events, waiting for the first; [] when only watched
        accounts' events came (``take_watched`` has them) or once closed."""
        while True:
            events = self.pending()
            if events or self._watched_events:
                return events
            sources: dict[str, ChangeListener] = {
                "": self.own,
                **{"=" + key: listener for key, listener in self.watched.items()},
            }
            if self.selected is not None:
                sources["selected"] = self.selected
            tasks = {name: asyncio.ensure_future(s.wait()) for name, s in sources.items()}
            try:
                await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks.values():
                    if not task.done():
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
            answered = {
                name: task.result()
                for name, task in tasks.items()
                if task.done() and not task.cancelled()
            }
            events = answered.get("", []) + self._relevant(answered.get("selected", []))
            self._keep(
                {name[1:]: found for name, found in answered.items() if name.startswith("=")},
            )
            # A listener answers with nothing only once closed: stop waiting then.
            if events or self._watched_events or any(not r for r in answered.values()):
                return events

    def close(self) -> None:
        self.own.close()
        self.unselect()
        self.watch({})


async def owner_account(
    others: dict[str, Account], opener: Callable[[str], Awaitable[Account]], owner: str
) -> Account | None:
    """The owner's Account, opened once per session (``others``, by case-folded name);
    None where there is no such account."""
    key = owner.casefold()
    account = others.get(key)
    if account is None:
        try:
            account = await opener(owner)
        except NoSuchAccount:
            return None
        others[key] = account
    return account
