"""ESEARCH IN (...): MULTISEARCH (RFC 7377), one search over several mailboxes.

Each mailbox the sources name is searched in turn, and each with a result gets its
own ``* ESEARCH (TAG "t" MAILBOX "name" UIDVALIDITY n) UID ...`` — always UIDs
(§2), in the order LIST gives the mailboxes. Message numbers and "$" mean nothing
outside the selected mailbox, so a program using them is refused (§2), and so is
SAVE (the grammar). The selected mailbox is searched in this session's view (its
\\Recent, only the messages it knows); any other in a view of its own, read for the
purpose. Mailboxes that do not exist or cannot be selected are skipped. Mailboxes
other users share (ACL) are searched in their owners' accounts, after the user's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

from roost.imap.commands.acl import shared_mailboxes
from roost.imap.commands.search import _check_charset, _result_items, _returned_modseq
from roost.imap.filters import expand_filters
from roost.imap.handler_types import Done, bad
from roost.imap.mailbox_names import DELIMITER, is_inbox
from roost.imap.progress import heartbeat
from roost.imap.search_eval import to_criterion, uses_modseq
from roost.imap.selected import SelectedMailbox
from roost.imap.session import Session
from roost.imap.shared import shared_name
from roost.imap.wire import commands as c
from roost.imap.wire import search_keys as k
from roost.imap.wire.responses import ESearchResponse, Response
from roost.store.base import Account, MailboxInfo, NoSuchMailbox, SearchQuery

_SELECTED = frozenset({"SELECTED", "SELECTED-DELAYED"})


async def esearch(session: Session, cmd: c.ESearch) -> AsyncIterator[Response | Done]:
    session.require_account()
    if cmd.charset is not None and session.utf8:
        raise bad("CHARSET is not allowed after ENABLE UTF8=ACCEPT")  # RFC 6855 §3
    _check_charset(cmd.charset)
    cmd = replace(cmd, criteria=await expand_filters(session, cmd.criteria))
    for key in k.walk(cmd.criteria):
        if isinstance(key, k.Messages) and (not key.uid or key.sequence.is_saved):
            # RFC 7377 §2: message numbers and "$" are the selected mailbox's only.
            raise bad("ESEARCH takes UIDs only, never message numbers or $")
    sources = cmd.sources or (c.SearchSource("SELECTED"),)
    targets = await _mailboxes(session, sources)
    with_modseq = uses_modseq(cmd.criteria)
    if with_modseq:
        session.enable_condstore()  # RFC 7162 §3.1
    returns = cmd.return_options or ("ALL",)
    now = datetime.now(UTC)
    interval = session.context.limits.progress_interval
    for account, info, name in targets:
        selected = session.selected
        # A shared mailbox's ids are its owner's: the selected one is matched by account.
        in_view = account is session.selected_account()
        if selected is None or not in_view or selected.mailbox_id != info.id:
            snapshot = await account.snapshot(info.id)
            selected = SelectedMailbox(snapshot, readonly=True, recent_floor=None)
        criterion = to_criterion(cmd.criteria, selected, now)
        known = selected.uids[-1] if selected.uids else 0
        query = SearchQuery(criterion, (), max_uid=known)
        task = asyncio.ensure_future(account.search(info.id, query))
        async for progress in heartbeat(task, cmd.tag, interval):
            yield progress  # RFC 9585
        uids = task.result().uids
        if not uids:
            continue  # RFC 7377 §2: only mailboxes with matches are reported
        items = _result_items(uids, returns)
        if with_modseq:
            highest = task.result().highest_modseq
            modseq = await _returned_modseq(account, selected, uids, returns, highest)
            items.append(("MODSEQ", str(modseq)))
        yield ESearchResponse(cmd.tag, True, tuple(items), name, info.uidvalidity)
    yield Done("ESEARCH completed")


async def _mailboxes(
    session: Session, sources: tuple[c.SearchSource, ...]
) -> list[tuple[Account, MailboxInfo, str]]:
    """The selectable mailboxes ``sources`` name, each once, in LIST order: (the
    account holding it, it, its name for the client). Other users' mailboxes come
    after the user's own, where the user may read them ("r", RFC 4314 §4): the
    selected one, and those "subscribed", "subtree", "subtree-one" and "mailboxes"
    name ("personal" and "inboxes" are the user's own namespace, RFC 5465 §6)."""
    account = session.require_account()
    everything = [info for info in await account.list_mailboxes() if not info.noselect]
    subscribed: set[str] | None = None
    wanted: set[int] = set()
    shared: list[tuple[str, str]] | None = None  # (name, rights) of others' mailboxes
    wanted_shared: set[str] = set()
    for source in sources:
        names = tuple(session.mailbox_name(raw) for raw in source.mailboxes)
        if source.filter in _SELECTED:
            selected = session.selected
            if selected is None:
                raise bad("No mailbox is selected")  # RFC 7377 §2
            owner = session.mailbox_account
            if owner is None:
                wanted.add(selected.mailbox_id)
            else:
                wanted_shared.add(shared_name(owner.name, selected.info.name))
            continue
        if source.filter == "SUBSCRIBED" and subscribed is None:
            subscribed = set(await account.list_subscriptions())
        for info in everything:
            if _takes(source.filter, names, info.name, subscribed or set()):
                wanted.add(info.id)
        if source.filter not in ("INBOXES", "PERSONAL"):
            shared = await shared_mailboxes(session) if shared is None else shared
            wanted_shared.update(
                name
                for name, rights in shared
                if "r" in rights and _takes(source.filter, names, name, subscribed or set())
            )
    found = [(account, info, info.name) for info in everything if info.id in wanted]
    # The selected shared mailbox is searched as SELECT found it ("r" checked there).
    owner, selected = session.mailbox_account, session.selected
    in_view: dict[str, tuple[Account, MailboxInfo]] = {}
    if owner is not None and selected is not None:
        in_view[shared_name(owner.name, selected.info.name)] = (owner, selected.info)
    for name in sorted(wanted_shared, key=lambda n: n.split(DELIMITER)):
        if name in in_view:
            found.append((*in_view[name], name))
            continue
        place = await session.place_of(name)
        if place is None or "r" not in place.rights:
            continue
        try:
            info = await place.account.get_mailbox(place.name)
        except NoSuchMailbox:
            continue
        if not info.noselect:
            found.append((place.account, info, name))
    return found


def _takes(kind: str, names: tuple[str, ...], name: str, subscribed: set[str]) -> bool:
    """RFC 5465 §6 filters, and RFC 7377's subtree-one: a name and its children."""
    match kind:
        case "INBOXES":
            return is_inbox(name)
        case "PERSONAL":
            return True
        case "SUBSCRIBED":
            return name in subscribed
        case "SUBTREE":
            return any(name == n or name.startswith(n + DELIMITER) for n in names)
        case "SUBTREE-ONE":
            return any(
                name == n
                or (name.startswith(n + DELIMITER) and DELIMITER not in name[len(n) + 1 :])
                for n in names
            )
        case _:
            return name in names
