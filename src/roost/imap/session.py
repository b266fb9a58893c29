"""The state machine of one IMAP connection, with no sockets.

The session holds what one connection knows — its state, account, selected mailbox,
enabled extensions — and the facts handlers ask for. It runs no command itself:
``dispatch.run_command(session, command)`` does, and is the one choke point for errors
(STYLE.md §6). This module imports no handler.

Before every tagged completion in the selected state the runner has the session run a
*sync point*: it asks the store what changed since the modseq its view knows and lets
the view (``SelectedMailbox``) decide what may be said now (RFC 9051 §7.5.1).

The connection (the asyncio glue) reads ``awaiting`` after each command: a handler
that needs more from the client — a SASL response, IDLE's DONE, a TLS handshake —
says so there, and the connection calls back ``dispatch.continue_sasl``,
``idle_updates`` or ``idle_done``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from roost.auth.sasl import available_mechanisms
from roost.imap.context import ImapContext
from roost.imap.handler_types import (
    Awaiting,
    CommandError,
    Done,
    State,
    bad,
    no,
)
from roost.imap.mailbox_names import InvalidMailboxName, decode_mailbox_name
from roost.imap.search_context import context_updates
from roost.imap.selected import SelectedMailbox
from roost.imap.shared import (
    ALL_RIGHTS,
    MergedListener,
    Place,
    effective_rights,
    owner_account,
    rights_in,
    split_shared,
)
from roost.imap.uidonly import uid_form
from roost.imap.wire import commands as c
from roost.imap.wire.responses import (
    Response,
    Status,
    Tagged,
    Untagged,
)
from roost.imap.wire.sequence import SequenceSet
from roost.store.base import (
    Account,
    ChangeEvent,
    ChangeListener,
    MailboxListChanged,
    MessageMeta,
    NoSuchMailbox,
    StorageFull,
    StoreBusy,
)

if TYPE_CHECKING:
    from roost.auth.sasl import SaslSignIn
    from roost.imap.notify import Notifier

log = logging.getLogger("roost.imap")


@dataclass(frozen=True, slots=True)
class Prefetched:
    """The metadata (and small bodies) read ahead for a run of pipelined FETCHes."""

    mailbox_id: int
    asked: frozenset[int]
    with_model: bool
    with_content: bool
    metas: dict[int, MessageMeta]

    def covers(self, mailbox_id: int, uids: list[int], model: bool, content: bool) -> bool:
        return (
            mailbox_id == self.mailbox_id
            and (self.with_model or not model)
            and (self.with_content or not content)
            and self.asked.issuperset(uids)
        )


class Session:
    def __init__(self, context: ImapContext, *, tls_active: bool, remote_ip: str) -> None:
        self.context = context
        self.tls_active = tls_active
        self.remote_ip = remote_ip
        self.state = State.NOT_AUTHENTICATED
        self.awaiting = Awaiting.NOTHING
        self.account: Account | None = None
        self.listener: ChangeListener | None = None
        self.selected: SelectedMailbox | None = None
        self.utf8 = False  # UTF8=ACCEPT enabled (RFC 6855): names and strings in UTF-8
        self.compressed = False  # COMPRESS=DEFLATE active (RFC 4978)
        self.enabled: set[str] = set()
        self.condstore = False  # RFC 7162 §3.1: a CONDSTORE-enabling command was seen
        # RFC 7162 §3.1: the first CONDSTORE-enabling command while a mailbox is
        # selected reports its HIGHESTMODSEQ (dispatch adds it to the completion).
        self.announce_highestmodseq = False
        self.qresync = False  # RFC 7162 §3.2.3: ENABLE QRESYNC
        # ENABLE IMAP4rev2 (RFC 9051 §6.3.1): UTF-8 names, ESEARCH for SEARCH, and no
        # \Recent, RECENT or [UNSEEN] any more.
        self.rev2 = False
        self.uidonly = False  # ENABLE UIDONLY (RFC 9586): messages by UID only (uidonly.py)
        self.client_id: dict[str, str | None] = {}
        self.sasl: SaslSignIn | None = None
        self.pending_tag = ""  # tag of the command waiting on ``awaiting``
        self.counted_account: str | None = None  # counted in context.account_connections
        self.notifier: Notifier | None = None  # NOTIFY SET is in force (RFC 5465)
        self._notify_backlog: list[ChangeEvent] = []  # events for the notifier
        self.last_new_uids: list[int] = []  # what the last sync added
        # Read ahead for a run of pipelined FETCHes (commands/fetch.py ``prefetch``).
        self.prefetched: Prefetched | None = None
        self._dirty = False
        # Shared folders (imap/shared.py): owners' accounts opened by this session, by
        # case-folded name; the selected mailbox's account and the user's rights on it
        # while it is another's.
        self.other_accounts: dict[str, Account] = {}
        self.mailbox_account: Account | None = None
        self.mailbox_rights = ALL_RIGHTS

    # ---- facts handlers need ---------------------------------------------------------

    @property
    def plaintext_auth_allowed(self) -> bool:
        return self.tls_active or self.context.allow_plaintext_auth

    @property
    def starttls_offered(self) -> bool:
        return not self.tls_active and self.context.tls_context is not None

    def capabilities(self) -> tuple[str, ...]:
        caps = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"]
        if self.state is State.NOT_AUTHENTICATED:
            if self.starttls_offered:
                caps.append("STARTTLS")
            if self.plaintext_auth_allowed:
                caps += [
                    f"AUTH={name}" for name in available_mechanisms(self.context.authenticator)
                ]
            else:
                caps.append("LOGINDISABLED")
            return tuple(caps)
        caps += [
            "NAMESPACE",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "CHILDREN",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "MULTIAPPEND",
            "CATENATE",
            f"APPENDLIMIT={self.context.limits.max_literal_size}",
            "STATUS=SIZE",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "QUOTA=RES-MESSAGE",
            "UTF8=ACCEPT",
            "BINARY",
            "CONDSTORE",
            "QRESYNC",
            "NOTIFY",
            "UNAUTHENTICATE",
            "OBJECTID",
            "SAVEDATE",
            "PREVIEW",
            "UIDONLY",
            "INPROGRESS",
            "MULTISEARCH",
            "CONTEXT=SEARCH",
            "CONTEXT=SORT",
            "PARTIAL",
            "I18NLEVEL=1",
            "REPLACE",
            "ESEARCH",
            "SEARCHRES",
            "WITHIN",
            "SORT",
            "SORT=DISPLAY",
            "ESORT",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "METADATA",
            "METADATA-SERVER",
            "LIST-METADATA",
            "FILTERS",  # RFC 5466: FILTER search key, from METADATA entries
            "ACL",
            "RIGHTS=texk",
            "LIST-MYRIGHTS",
            "URLAUTH",  # RFC 4467, for BURL in submission (RFC 4468)
            "URLAUTH=BINARY",  # RFC 5524: extended URLFETCH
        ]
        if not self.compressed:
            caps.append("COMPRESS=DEFLATE")
        return tuple(caps)

    def require_account(self) -> Account:
        if self.account is None:
            raise bad("Not signed in")
        return self.account

    def selected_account(self) -> Account:
        """The account the selected mailbox lives in: the user's, or its owner's."""
        return self.mailbox_account or self.require_account()

    async def locate(self, raw: bytes) -> Place:
        """Where a mailbox argument lives (imap/shared.py). A shared name the user may
        neither list nor read is NO [NONEXISTENT], as if absent (RFC 4314 §4)."""
        name = self.mailbox_name(raw)
        place = await self.place_of(name)
        if place is None or not set(place.rights) & {"l", "r"}:
            raise no(f"No mailbox {name}", "NONEXISTENT")
        return place

    async def place_of(self, name: str) -> Place | None:
        """Where a decoded mailbox name lives, whatever the user's rights on it (they
        may be none); None for a name under "Other Users" of no other account."""
        account = self.require_account()
        shared = split_shared(name)
        if shared is None:
            return Place(account, name, None, ALL_RIGHTS)
        owner_name, rest = shared
        if not owner_name or not rest or owner_name.casefold() == account.name.casefold():
            return None
        owner = await owner_account(
            self.other_accounts, self.context.store.open_account, owner_name
        )
        if owner is None:
            return None
        rights = (await rights_in(owner, account.name)).get(rest, "")
        return Place(owner, rest, owner.name, rights)

    def enter_shared(self, place: Place, mailbox_id: int) -> None:
        """A mailbox of ``place.owner`` is now selected: work on their account and hear
        its events about that mailbox as well as the user's own."""
        self.leave_shared()
        if place.owner is None:
            return
        self.mailbox_account = place.account
        self.mailbox_rights = place.rights
        merged = self._merged_listener()
        if merged is not None:
            merged.select(place.account.listen(), mailbox_id)

    async def refresh_rights(self) -> None:
        """Read the user's rights on the selected shared mailbox again (before each
        command): a right to change it that was taken away (or given) applies at once,
        as Dovecot checks each change; reading is as SELECT found it ("r" is checked
        there, as Dovecot and Cyrus do). The session is told nothing."""
        if self.mailbox_account is None or self.selected is None:
            return
        try:
            entries = await self.mailbox_account.get_acl(self.selected.mailbox_id)
        except NoSuchMailbox:
            return  # the sync point after the command says it is gone
        self.mailbox_rights = effective_rights(entries, self.require_account().name)

    def leave_shared(self) -> None:
        """Back to the user's own account (SELECT, CLOSE, UNSELECT start here)."""
        if isinstance(self.listener, MergedListener):
            self.listener.unselect()
        self.mailbox_account = None
        self.mailbox_rights = ALL_RIGHTS

    def watch_accounts(self, accounts: Iterable[Account]) -> None:
        """Hear these other accounts' events, for NOTIFY (none: stop)."""
        merged = self._merged_listener()
        if merged is not None:
            merged.watch({account.name.casefold(): account.listen() for account in accounts})

    def _merged_listener(self) -> MergedListener | None:
        if self.listener is not None and not isinstance(self.listener, MergedListener):
            self.listener = MergedListener(self.listener)
        return self.listener

    def require_selected(self) -> SelectedMailbox:
        if self.selected is None:
            raise bad("No mailbox selected")
        return self.selected

    def mailbox_name(self, raw: bytes) -> str:
        """A mailbox argument as a store name: decoded (modified UTF-7, or UTF-8 after
        UTF8=ACCEPT), INBOX normalised, validated."""
        try:
            limits = self.context.limits
            return decode_mailbox_name(
                raw,
                utf8=self.utf8,
                max_bytes=limits.max_mailbox_name_bytes,
                max_depth=limits.max_mailbox_levels,
            )
        except InvalidMailboxName as error:
            raise no(f"Invalid mailbox name: {error}", "CANNOT") from None

    def enable_condstore(self) -> None:
        """RFC 7162 §3.1: from now on, flag updates carry MODSEQ; enabled implicitly
        while a mailbox is selected, the command also reports its HIGHESTMODSEQ."""
        if not self.condstore and self.selected is not None:
            self.announce_highestmodseq = True
        self.condstore = True
        if self.selected is not None:
            self.selected.condstore = True

    def enable_qresync(self) -> None:
        self.enable_condstore()
        self.qresync = True
        if self.selected is not None:
            self.selected.qresync = True

    def mark_dirty(self) -> None:
        """This session changed its selected mailbox: sync at the next point."""
        self._dirty = True

    # ---- sync points ----------------------------------------------------------------

    def sync_due(self, *, expunge_allowed: bool) -> bool:
        """Whether a sync point now has anything to say or ask: the runner skips it
        otherwise (most pipelined commands), which spares an async generator each."""
        selected = self.selected
        if selected is None or self.account is None:
            return False
        if self.listener is not None:
            self.note_events(self.listener.pending())
        return self._dirty or (expunge_allowed and bool(selected.pending_expunges))

    async def sync(self, *, expunge_allowed: bool) -> AsyncIterator[Response]:
        """A sync point: tell the client what changed in its selected mailbox."""
        selected = self.selected
        if selected is None or self.account is None:
            return
        if self.listener is not None:
            self.note_events(self.listener.pending())
        dirty = self._dirty
        self._dirty = False
        if not dirty:
            if expunge_allowed:
                for expunged in selected.flush_expunges():
                    yield expunged
            return
        try:
            changes = await self.selected_account().changes_since(
                selected.mailbox_id, selected.known_modseq
            )
        except NoSuchMailbox:
            # Another connection deleted or renamed it away: nothing valid remains.
            self.state = State.LOGOUT
            yield Untagged(Status.BYE, "Selected mailbox was deleted, closing connection")
            return
        except StoreBusy as error:
            # Busy, or its database restarting: an expected state, not a bug. The
            # changes wait for the next sync point, as below.
            self._dirty = True
            log.warning("sync point deferred ip=%s: %s", self.remote_ip, error)
            return
        except Exception:
            # The command (or IDLE) has done its work; the client just hears of the
            # changes at the next sync point, which asks the store again.
            self._dirty = True
            log.exception("sync point failed ip=%s; will retry", self.remote_ip)
            return
        responses, new_uids = selected.apply(changes, expunge_allowed=expunge_allowed)
        self.last_new_uids = new_uids
        for response in responses:
            yield uid_form(response) if self.uidonly else response
        if new_uids:
            if not self.rev2:
                # RFC 3501 §2.3.2: recent for the first session told; a read-only one
                # sees it so without claiming it (EXAMINE, §6.3.2).
                floor = await self.claim_recent(selected.mailbox_id, peek=selected.readonly)
                if floor is not None:
                    selected.add_recent(floor, new_uids)
            for response in selected.announce_new():
                yield response
        if selected.search_contexts and (changes.changed or changes.expunged):
            async for update in context_updates(self.account, selected):
                yield update  # RFC 5267 §4.3 ADDTO / REMOVETO

    async def claim_recent(self, mailbox_id: int, *, peek: bool = False) -> int | None:
        """Claim \\Recent (see ``Account.claim_recent``), or with ``peek`` only read the
        floor; None when the store cannot record the claim (no space, or its database
        restarting): \\Recent is a courtesy, never a reason to refuse SELECT or break a
        sync point."""
        try:
            account = self.selected_account()
            if peek:
                return await account.recent_floor(mailbox_id)
            return await account.claim_recent(mailbox_id)
        except StorageFull:
            log.warning("disk full: \\Recent not claimed ip=%s", self.remote_ip)
            return None
        except StoreBusy as error:
            log.warning("\\Recent not claimed ip=%s: %s", self.remote_ip, error)
            return None

    def note_events(self, events: Iterable[ChangeEvent]) -> None:
        """Remember whether any of ``events`` touches the selected mailbox."""
        if self.notifier is not None:
            self._notify_backlog.extend(events)
        selected = self.selected
        if selected is None:
            return
        for event in events:
            if isinstance(event, MailboxListChanged):
                # The selected mailbox may be gone: the next sync asks the store.
                self._dirty = True
            elif event.mailbox_id == selected.mailbox_id and event.modseq > selected.known_modseq:
                self._dirty = True

    # ---- continuations ---------------------------------------------------------------

    async def idle_updates(self) -> AsyncIterator[Response]:
        """Changes to announce while idling (RFC 2177): everything, expunges included,
        and with NOTIFY what it asks about other mailboxes."""
        async for response in self.sync(expunge_allowed=True):
            yield response
        async for response in self._notify_others():
            yield response

    async def notify_updates(self) -> AsyncIterator[Response]:
        """Between commands, with NOTIFY on (RFC 5465 §5): the selected mailbox's
        changes if a SELECTED group asked for them, and other mailboxes' as asked."""
        notifier = self.notifier
        if notifier is None:
            return
        events = notifier.spec.selected_events
        if self.state is State.SELECTED and events:
            async for response in self.sync(expunge_allowed=not notifier.spec.selected_delayed):
                yield response
            if self.last_new_uids and notifier.spec.selected_fetch:
                async for response in self._fetch_new(notifier):
                    yield response
        async for response in self._notify_others():
            yield response

    async def _notify_others(self) -> AsyncIterator[Response]:
        if self.notifier is None or self.account is None:
            self._notify_backlog.clear()
            return
        if self.listener is not None:
            self.note_events(self.listener.pending())
        events, self._notify_backlog = self._notify_backlog, []
        selected = self.selected.mailbox_id if self.selected is not None else None
        # A selected mailbox's id is its account's: the user's, or a sharing owner's.
        owner = None if self.mailbox_account is None else self.mailbox_account.name.casefold()
        own_selected = selected if owner is None else None
        notifier = self.notifier
        async for response in notifier.updates(self.account, events, own_selected, self.condstore):
            yield response
        watched = self.listener.take_watched() if isinstance(self.listener, MergedListener) else {}
        for key, shared_events in watched.items():
            in_it = selected if key == owner else None
            async for response in notifier.shared_updates(
                key, shared_events, in_it, self.condstore
            ):
                yield response

    async def _fetch_new(self, notifier: Notifier) -> AsyncIterator[Response]:
        """MessageNew with fetch attributes: the new messages, as a UID FETCH would
        (through the FETCH handler the NOTIFY command handed the notifier)."""
        new = self.last_new_uids
        self.last_new_uids = []
        attributes = notifier.spec.selected_fetch
        command = c.Fetch("*", SequenceSet.of(*new), attributes, uid=True)
        try:
            async for response in notifier.fetch_new(command):
                if not isinstance(response, Done):
                    yield uid_form(response) if self.uidonly else response
        except CommandError as error:
            log.info("NOTIFY MessageNew fetch refused: %s", error.text)

    async def idle_done(self, line: bytes) -> AsyncIterator[Response]:
        self.awaiting = Awaiting.NOTHING
        tag = self.pending_tag
        if line.strip().upper() != b"DONE":
            yield Tagged(tag, Status.BAD, "Expected DONE")
            return
        async for response in self.sync(expunge_allowed=True):
            yield response
        yield Tagged(tag, Status.OK, "IDLE terminated")

    def tls_started(self) -> None:
        self.tls_active = True
        self.awaiting = Awaiting.NOTHING

    def compression_started(self) -> None:
        self.compressed = True
        self.awaiting = Awaiting.NOTHING

    # ---- end -------------------------------------------------------------------------

    async def sign_out(self) -> None:
        """Back to the not-authenticated state (RFC 8437 UNAUTHENTICATE)."""
        await self.close()
        self.state = State.NOT_AUTHENTICATED
        self.selected = None
        self.notifier = None
        self._notify_backlog.clear()
        self.enabled.clear()
        self.utf8 = self.condstore = self.qresync = self.rev2 = self.uidonly = False

    async def close(self) -> None:
        if self.counted_account is not None:
            self.context.account_connections.release(self.counted_account, self.remote_ip)
            self.counted_account = None
        if self.listener is not None:
            self.listener.close()  # a merged one closes all it listens to
            self.listener = None
        self.mailbox_account = None
        others, self.other_accounts = self.other_accounts, {}
        for other in others.values():
            await other.close()
        if self.account is not None:
            account, self.account = self.account, None
            await account.close()
