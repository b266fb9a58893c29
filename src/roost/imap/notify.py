"""NOTIFY (RFC 5465): which events of which mailboxes a session hears about, unasked.

A ``NotifySpec`` is the session's answer to NOTIFY SET. ``Notifier`` turns store change
events into responses: for the selected mailbox, the usual EXISTS/FETCH/EXPUNGE (now
also between commands); for other mailboxes, STATUS (§5.1 to §5.3); for mailbox and
subscription changes, LIST (§5.4 and §5.5), with OLDNAME for a rename. It keeps what it last
told the client so that an event changing nothing visible says nothing.

MessageNew with fetch attributes (§5.2) is answered as a UID FETCH would be; the NOTIFY
command hands its notifier that FETCH (``fetch_new``), so neither this module nor the
session imports a command handler.

Mailboxes other accounts share with the user (ACL, imap/shared.py) are watched too,
in their owners' accounts, when a "subscribed", "subtree" or "mailboxes" filter names
them ("personal" and "inboxes" are the user's own namespace, §6): STATUS for their
message events where the user holds "r", LIST for MailboxName where "l" (RFC 4314
§4). Rights are read again with each batch of the owner's events, so a revoked
mailbox falls silent at once; what is shared after NOTIFY SET is watched from the
next NOTIFY SET.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from roost.imap.handler_types import Done
from roost.imap.mailbox_names import DELIMITER, is_inbox
from roost.imap.shared import rights_in, shared_name, split_shared
from roost.imap.wire import commands as c
from roost.imap.wire.responses import ListResponse, Response, StatusResponse
from roost.store.base import (
    Account,
    ChangeEvent,
    MailboxChanged,
    MailboxListChanged,
    NoSuchMailbox,
)

MESSAGE_NEW = "MESSAGENEW"
MESSAGE_EXPUNGE = "MESSAGEEXPUNGE"
FLAG_CHANGE = "FLAGCHANGE"
MAILBOX_NAME = "MAILBOXNAME"
SUBSCRIPTION_CHANGE = "SUBSCRIPTIONCHANGE"
SUPPORTED_EVENTS = frozenset(
    {MESSAGE_NEW, MESSAGE_EXPUNGE, FLAG_CHANGE, MAILBOX_NAME, SUBSCRIPTION_CHANGE}
)
# As they are spelled in BADEVENT (RFC 5465 §5.8 lists them in this case).
EVENT_SPELLING = ("MessageNew", "MessageExpunge", "FlagChange", "MailboxName", "SubscriptionChange")
MESSAGE_EVENTS = frozenset({MESSAGE_NEW, MESSAGE_EXPUNGE, FLAG_CHANGE})


class NotifyError(Exception):
    """An event group the server cannot honour; ``bad_event`` for NO [BADEVENT]."""

    def __init__(self, text: str, *, bad_event: bool = False) -> None:
        super().__init__(text)
        self.bad_event = bad_event


@dataclass(frozen=True, slots=True)
class OtherGroup:
    """A filter for mailboxes other than the selected one, and its events."""

    kind: str  # INBOXES, PERSONAL, SUBSCRIBED, SUBTREE, MAILBOXES
    names: tuple[str, ...]
    events: frozenset[str]

    def matches(self, name: str, subscribed: set[str]) -> bool:
        match self.kind:
            case "INBOXES":
                return is_inbox(name)
            case "PERSONAL":
                return split_shared(name) is None
            case "SUBSCRIBED":
                return name in subscribed
            case "SUBTREE":
                return any(name == n or name.startswith(n + DELIMITER) for n in self.names)
            case _:
                return name in self.names


@dataclass(frozen=True, slots=True)
class NotifySpec:
    # None: no SELECTED group, so the selected mailbox follows the normal rules.
    selected_events: frozenset[str] | None
    selected_delayed: bool
    selected_fetch: tuple[c.FetchAttribute, ...]
    others: tuple[OtherGroup, ...]

    def events_for(self, name: str, subscribed: set[str]) -> frozenset[str]:
        """The events of the first group whose filter takes ``name`` (RFC 5465 §6)."""
        for group in self.others:
            if group.matches(name, subscribed):
                return group.events
        return frozenset()

    @property
    def wants_mailbox_names(self) -> bool:
        return any(g.events & {MAILBOX_NAME, SUBSCRIPTION_CHANGE} for g in self.others)


def build_spec(command: c.Notify, decode_name: Callable[[bytes], str]) -> NotifySpec:
    """Check NOTIFY SET's groups (RFC 5465 §6) and turn them into a spec."""
    assert command.groups is not None
    selected_events: frozenset[str] | None = None
    delayed = False
    fetch: tuple[c.FetchAttribute, ...] = ()
    others: list[OtherGroup] = []
    for group in command.groups:
        events = frozenset(group.events)
        unsupported = events - SUPPORTED_EVENTS
        if unsupported:
            raise NotifyError(
                f"Unsupported events: {' '.join(sorted(unsupported))}", bad_event=True
            )
        if (MESSAGE_NEW in events) != (MESSAGE_EXPUNGE in events):
            raise NotifyError("MessageNew and MessageExpunge go together")
        if FLAG_CHANGE in events and MESSAGE_NEW not in events:
            raise NotifyError("FlagChange needs MessageNew and MessageExpunge")
        if group.filter in ("SELECTED", "SELECTED-DELAYED"):
            if events & {MAILBOX_NAME, SUBSCRIPTION_CHANGE}:
                raise NotifyError("Mailbox events make no sense for the selected mailbox")
            selected_events = events
            delayed = group.filter == "SELECTED-DELAYED"
            fetch = group.fetch_attributes
        else:
            if group.fetch_attributes:
                raise NotifyError("FETCH attributes only apply to the selected mailbox")
            names = tuple(decode_name(raw) for raw in group.mailboxes)
            others.append(OtherGroup(group.filter, names, events))
    return NotifySpec(selected_events, delayed, fetch, tuple(others))


FetchNew = Callable[[c.Fetch], AsyncIterator[Response | Done]]


@dataclass
class SharedMailboxes:
    """The mailboxes of another account (``account``) the user may see: id → (name
    under "Other Users", the user's rights)."""

    account: Account
    names: dict[int, tuple[str, str]]


StatusValues = tuple[tuple[str, int], ...]


@dataclass
class Notifier:
    """What one session has told its client about mailboxes other than the selected."""

    spec: NotifySpec
    fetch_new: FetchNew  # runs a UID FETCH for this session (MessageNew, §5.2)
    names: dict[int, str] = field(default_factory=dict)  # mailbox id → name
    subscribed: set[str] = field(default_factory=set)
    last_status: dict[int, StatusValues] = field(default_factory=dict)
    user: str = ""  # the account name other accounts' ACLs know the user by
    shared: dict[str, SharedMailboxes] = field(default_factory=dict)  # by owner key
    last_shared_status: dict[tuple[str, int], StatusValues] = field(default_factory=dict)

    async def load(self, account: Account) -> None:
        self.names = {m.id: m.name for m in await account.list_mailboxes() if not m.noselect}
        self.subscribed = set(await account.list_subscriptions())

    async def load_shared(self, user: str, owners: list[Account]) -> list[Account]:
        """Take the mailboxes ``owners`` share with ``user`` that a filter names;
        the owners to listen to."""
        self.user = user
        self.shared = {}
        for owner in owners:
            names = await self._shared_names(owner)
            if any(
                self._watched(name, MESSAGE_EVENTS | {MAILBOX_NAME}) for name, _ in names.values()
            ):
                self.shared[owner.name.casefold()] = SharedMailboxes(owner, names)
        return [watch.account for watch in self.shared.values()]

    async def _shared_names(self, owner: Account) -> dict[int, tuple[str, str]]:
        rights = await rights_in(owner, self.user)
        return {
            info.id: (shared_name(owner.name, info.name), rights[info.name])
            for info in await owner.list_mailboxes()
            if info.name in rights and set(rights[info.name]) & {"l", "r"}
        }

    def _watched(self, name: str, events: frozenset[str] | set[str]) -> bool:
        return bool(self.spec.events_for(name, self.subscribed) & events)

    async def initial_status(
        self,
        account: Account,
        selected_id: int | None,
        condstore: bool,
        selected_shared: tuple[str, int] | None = None,
    ) -> AsyncIterator[Response]:
        """NOTIFY SET STATUS: where every watched mailbox stands now (§3), but the
        selected one: the user's own (``selected_id``) or a sharer's (owner key, id)."""
        for mailbox_id, name in sorted(self.names.items(), key=lambda item: item[1]):
            if mailbox_id != selected_id and self.spec.events_for(name, self.subscribed) & (
                MESSAGE_EVENTS
            ):
                status = await self._status(account, mailbox_id, name, condstore, force=True)
                if status is not None:
                    yield status
        for key, watch in sorted(self.shared.items()):
            for mailbox_id, (name, rights) in sorted(watch.names.items(), key=lambda i: i[1]):
                if (key, mailbox_id) == selected_shared:
                    continue
                if "r" in rights and self._watched(name, MESSAGE_EVENTS):
                    status = await self._status(
                        watch.account, mailbox_id, name, condstore, force=True, key=key
                    )
                    if status is not None:
                        yield status

    async def updates(
        self,
        account: Account,
        events: list[ChangeEvent],
        selected_id: int | None,
        condstore: bool,
    ) -> AsyncIterator[Response]:
        """Responses for ``events`` about mailboxes other than the selected one."""
        if any(isinstance(e, MailboxListChanged) for e in events):
            async for response in self._list_changes(account):
                yield response
        for event in events:
            if not isinstance(event, MailboxChanged) or event.mailbox_id == selected_id:
                continue
            name = self.names.get(event.mailbox_id)
            if name is None or not self.spec.events_for(name, self.subscribed) & MESSAGE_EVENTS:
                continue
            status = await self._status(account, event.mailbox_id, name, condstore)
            if status is not None:
                yield status

    async def shared_updates(
        self, key: str, events: list[ChangeEvent], selected_id: int | None, condstore: bool
    ) -> AsyncIterator[Response]:
        """Responses for the events of a watched owner's account (``key``): STATUS of
        the shared mailboxes that changed, LIST for those that came, went or were
        renamed; ``selected_id`` is the owner's mailbox the session has selected."""
        watch = self.shared.get(key)
        if watch is None:
            return
        before, watch.names = watch.names, await self._shared_names(watch.account)
        if self.spec.wants_mailbox_names:
            visible_before = {i: name for i, (name, rights) in before.items() if "l" in rights}
            visible = {i: name for i, (name, rights) in watch.names.items() if "l" in rights}
            for response in self._mailbox_name_events(visible_before, visible):
                yield response
        for event in events:
            if not isinstance(event, MailboxChanged) or event.mailbox_id == selected_id:
                continue
            name, rights = watch.names.get(event.mailbox_id, ("", ""))
            if "r" in rights and self._watched(name, MESSAGE_EVENTS):
                status = await self._status(
                    watch.account, event.mailbox_id, name, condstore, key=key
                )
                if status is not None:
                    yield status

    async def _status(
        self,
        account: Account,
        mailbox_id: int,
        name: str,
        condstore: bool,
        *,
        force: bool = False,
        key: str | None = None,
    ) -> StatusResponse | None:
        """RFC 5465 §5.1 to §5.3: STATUS with the counts a client shows for a folder."""
        try:
            status = await account.status(mailbox_id)
        except NoSuchMailbox:  # gone meanwhile: the MailboxName event tells
            return None
        items: list[tuple[str, int]] = [
            ("MESSAGES", status.messages),
            ("UIDNEXT", status.uidnext),
            ("UIDVALIDITY", status.uidvalidity),
            ("UNSEEN", status.unseen),
        ]
        if condstore:
            items.append(("HIGHESTMODSEQ", status.highestmodseq))
        values = tuple(items)
        if key is None:
            if not force and self.last_status.get(mailbox_id) == values:
                return None
            self.last_status[mailbox_id] = values
        else:  # another account's mailbox: its ids are not the user's
            if not force and self.last_shared_status.get((key, mailbox_id)) == values:
                return None
            self.last_shared_status[key, mailbox_id] = values
        return StatusResponse(name, values)

    async def _list_changes(self, account: Account) -> AsyncIterator[Response]:
        """RFC 5465 §5.4 and §5.5: mailboxes created, deleted, renamed; subscriptions."""
        before, subscribed_before = self.names, self.subscribed
        await self.load(account)
        after, subscribed_after = self.names, self.subscribed
        if not self.spec.wants_mailbox_names:
            return

        def wants(name: str, event: str, subscribed: set[str]) -> bool:
            return event in self.spec.events_for(name, subscribed)

        for response in self._mailbox_name_events(before, after, subscribed_before):
            yield response
        for mailbox_id in before.keys() - after.keys():
            self.last_status.pop(mailbox_id, None)
        for name in sorted(subscribed_after ^ subscribed_before):
            subscribed_now = name in subscribed_after
            pool = subscribed_after if subscribed_now else subscribed_before
            if wants(name, SUBSCRIPTION_CHANGE, pool):
                attributes = ("\\Subscribed",) if subscribed_now else ()
                yield ListResponse(attributes, DELIMITER, name)

    def _mailbox_name_events(
        self,
        before: dict[int, str],
        after: dict[int, str],
        subscribed_before: set[str] | None = None,
    ) -> list[ListResponse]:
        """RFC 5465 §5.4: LIST for each mailbox created or renamed (OLDNAME) between
        ``before`` and ``after`` (id → name), \\NonExistent for each one gone."""
        found: list[ListResponse] = []
        for mailbox_id, name in sorted(after.items(), key=lambda item: item[1]):
            old = before.get(mailbox_id)
            if old != name and self._watched(name, {MAILBOX_NAME}):
                found.append(ListResponse((), DELIMITER, name, old_name=old))
        subscribed = self.subscribed if subscribed_before is None else subscribed_before
        for mailbox_id, name in sorted(before.items(), key=lambda item: item[1]):
            if mailbox_id not in after and MAILBOX_NAME in self.spec.events_for(name, subscribed):
                found.append(ListResponse(("\\NonExistent",), DELIMITER, name))
        return found
