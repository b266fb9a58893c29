"""SEARCH, SORT and THREAD, and their UID forms (RFC 9051 §6.4.4, RFC 5256), with
ESEARCH (RFC 4731), SEARCHRES (RFC 5182), ESORT (RFC 5267 §3), WITHIN (RFC 5032) and
the MODSEQ key (RFC 7162 §3.1.5).

Each handler checks the charset, turns the keys into one store query (search_eval.py),
and answers from the UIDs the store returns: only messages this session already knows
(``max_uid``), as UIDs or as the message numbers of its view. The store does the
matching and the ordering; THREAD builds its trees here (thread.py), off the event
loop when they are large.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from roost.imap import thread as threading
from roost.imap.filters import expand_filters
from roost.imap.handler_types import Done, bad, no
from roost.imap.progress import heartbeat
from roost.imap.search_context import MAX_UPDATES, UpdateContext, partial_item
from roost.imap.search_eval import CHARSETS, to_criterion, uses_modseq
from roost.imap.selected import SelectedMailbox
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import (
    BadCharsetCode,
    Code,
    ESearchResponse,
    Response,
    SearchResponse,
    SortResponse,
    Status,
    ThreadResponse,
    Untagged,
)
from roost.imap.wire.search_keys import SearchKey
from roost.imap.wire.sequence import compress_uids
from roost.store.base import Account, SearchQuery, SortField, SortOrder

THREAD_ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")
THREAD_OFF_LOOP = 2_000  # threading more messages than this runs in a worker thread
_SORT_FIELDS = {
    c.SortKey.ARRIVAL: SortField.ARRIVAL,
    c.SortKey.CC: SortField.CC,
    c.SortKey.DATE: SortField.DATE,
    c.SortKey.FROM: SortField.FROM,
    c.SortKey.SIZE: SortField.SIZE,
    c.SortKey.SUBJECT: SortField.SUBJECT,
    c.SortKey.TO: SortField.TO,
    c.SortKey.DISPLAYFROM: SortField.DISPLAY_FROM,
    c.SortKey.DISPLAYTO: SortField.DISPLAY_TO,
}


async def search(session: Session, cmd: c.Search) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    account = session.selected_account()
    options = cmd.return_options
    saving = options is not None and "SAVE" in options
    try:
        if cmd.charset is not None and session.utf8:
            # RFC 6855 §3: after ENABLE UTF8=ACCEPT, CHARSET conflicts with UTF-8.
            raise bad("CHARSET is not allowed after ENABLE UTF8=ACCEPT")
        _check_charset(cmd.charset)
        cmd = replace(cmd, criteria=await expand_filters(session, cmd.criteria))
        query, with_modseq = _query(session, selected, cmd.criteria)
        task = asyncio.ensure_future(account.search(selected.mailbox_id, query))
        async for progress in heartbeat(task, cmd.tag, session.context.limits.progress_interval):
            yield progress  # RFC 9585
        result = task.result()
    except BaseException:
        if saving:
            selected.saved_uids = []  # RFC 5182 §2.1: a failed SAVE leaves "$" empty
        raise
    uids = result.uids
    numbers = uids if cmd.uid else _ascending_msns(selected, uids)
    if options is None and not session.rev2:
        modseq = result.highest_modseq if with_modseq and numbers else None
        yield SearchResponse(tuple(numbers), modseq)
        return
    # RFC 4731 §3.1: RETURN () is RETURN (ALL); RFC 9051 §6.4.4: so is a plain SEARCH
    # once IMAP4rev2 is enabled, answered with ESEARCH.
    returns = options or ("ALL",)
    if saving:
        selected.saved_uids = _saved(uids, returns)
        returns = tuple(r for r in returns if r != "SAVE")
        if not returns:
            return  # RFC 5182 §2.4: SAVE alone answers no ESEARCH
    items = _result_items(numbers, returns, cmd.partial)
    if with_modseq and numbers:
        modseq = await _returned_modseq(account, selected, uids, returns, result.highest_modseq)
        items.append(("MODSEQ", str(modseq)))
    yield ESearchResponse(cmd.tag, cmd.uid, tuple(items))
    if "UPDATE" in returns:
        for response in _keep_updated(session, cmd.tag, cmd.uid, cmd.criteria, (), uids):
            yield response


async def sort(session: Session, cmd: c.Sort) -> AsyncIterator[Response | Done]:
    """RFC 5256 §3: equal keys keep message-number order; REVERSE turns one key."""
    selected = session.require_selected()
    account = session.selected_account()
    _check_charset(cmd.charset)
    order = tuple(SortOrder(_SORT_FIELDS[s.key], s.reverse) for s in cmd.sort_criteria)
    cmd = replace(cmd, criteria=await expand_filters(session, cmd.criteria))
    query, with_modseq = _query(session, selected, cmd.criteria, order)
    task = asyncio.ensure_future(account.search(selected.mailbox_id, query))
    async for progress in heartbeat(task, cmd.tag, session.context.limits.progress_interval):
        yield progress  # RFC 9585
    result = task.result()
    uids = result.uids
    numbers = uids if cmd.uid else _msns(selected, uids)
    if cmd.return_options is None:
        modseq = result.highest_modseq if with_modseq and numbers else None
        yield SortResponse(tuple(numbers), modseq)
        return
    # RFC 5267 §3.1: MIN and MAX are the first and last in sort order, ALL is in order.
    returns = cmd.return_options or ("ALL",)
    items = _result_items(numbers, returns, cmd.partial)
    if with_modseq and numbers:
        modseq = await _returned_modseq(account, selected, uids, returns, result.highest_modseq)
        items.append(("MODSEQ", str(modseq)))
    yield ESearchResponse(cmd.tag, cmd.uid, tuple(items))
    if "UPDATE" in returns:
        for response in _keep_updated(session, cmd.tag, cmd.uid, cmd.criteria, order, uids):
            yield response


async def cancelupdate(session: Session, cmd: c.CancelUpdate) -> AsyncIterator[Response | Done]:
    """RFC 5267 §4.3.1: no more updates for those searches."""
    selected = session.require_selected()
    kept = selected.search_contexts
    unknown = set(cmd.tags) - {context.tag for context in kept}
    selected.search_contexts = [ctx for ctx in kept if ctx.tag not in cmd.tags]
    if unknown:
        raise no(f"No updates kept for {' '.join(sorted(unknown))}")
    yield Done("CANCELUPDATE completed")


def _keep_updated(
    session: Session,
    tag: str,
    uid: bool,
    criteria: SearchKey,
    order: tuple[SortOrder, ...],
    uids: Sequence[int],
) -> list[Response]:
    """RFC 5267 §4: keep this result up to date, or say that it will not be."""
    selected = session.require_selected()
    if uid and len(selected.search_contexts) < MAX_UPDATES:
        selected.search_contexts.append(UpdateContext(tag, criteria, order, list(uids)))
        return []
    why = "Updates are kept for UID searches only" if not uid else "Too many searches kept"
    return [Untagged(Status.NO, why, Code("NOUPDATE", f'"{tag}"'))]


async def thread(session: Session, cmd: c.Thread) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    account = session.selected_account()
    if cmd.algorithm not in THREAD_ALGORITHMS:
        raise bad(f"Unsupported threading algorithm {cmd.algorithm}")
    _check_charset(cmd.charset)
    query, _ = _query(session, selected, await expand_filters(session, cmd.criteria))
    fields = await account.thread_fields(selected.mailbox_id, query)
    algorithm = threading.references if cmd.algorithm == "REFERENCES" else threading.ordered_subject

    def number(uid: int) -> int:
        return uid if cmd.uid else (selected.msn_of(uid) or 0)

    if len(fields) > THREAD_OFF_LOOP:
        threads = await asyncio.to_thread(algorithm, fields, number)
    else:
        threads = algorithm(fields, number)
    yield ThreadResponse(threads)


# ---- shared --------------------------------------------------------------------------


def _check_charset(charset: str | None) -> None:
    if charset is not None and charset not in CHARSETS:
        raise no(f"Unsupported charset {charset}", BadCharsetCode(CHARSETS))


def _query(
    session: Session,
    selected: SelectedMailbox,
    criteria: SearchKey,
    order: tuple[SortOrder, ...] = (),
) -> tuple[SearchQuery, bool]:
    """The store query, and whether it has a MODSEQ key (which enables CONDSTORE)."""
    with_modseq = uses_modseq(criteria)
    if with_modseq:
        session.enable_condstore()  # RFC 7162 §3.1
    criterion = to_criterion(criteria, selected, datetime.now(UTC))
    known = selected.uids[-1] if selected.uids else 0
    return SearchQuery(criterion, order, max_uid=known), with_modseq


def _ascending_msns(selected: SelectedMailbox, uids: Sequence[int]) -> list[int]:
    """Message numbers of ascending UIDs: each bisection starts where the last ended."""
    view = selected.uids
    numbers: list[int] = []
    start = 0
    for uid in uids:
        index = bisect.bisect_left(view, uid, start)
        if index < len(view) and view[index] == uid:
            numbers.append(index + 1)
            start = index
    return numbers


def _msns(selected: SelectedMailbox, uids: Sequence[int]) -> list[int]:
    msn_of = selected.msn_of
    return [n for n in map(msn_of, uids) if n is not None]


def _saved(uids: list[int], returns: Sequence[str]) -> list[int]:
    """RFC 5182 §2.4: with MIN and/or MAX but neither ALL nor COUNT, only those."""
    if not uids or "ALL" in returns or "COUNT" in returns:
        return list(uids)
    if "MIN" in returns or "MAX" in returns:
        picked = {uids[0]} if "MIN" in returns else set()
        if "MAX" in returns:
            picked.add(uids[-1])
        return sorted(picked)
    return list(uids)


def _result_items(
    numbers: Sequence[int], returns: Sequence[str], partial: tuple[int, int] | None = None
) -> list[tuple[str, str]]:
    """RFC 4731 §3.1 result items; MIN, MAX and ALL only when something matched;
    PARTIAL (RFC 9394 §3.1) always. UPDATE and CONTEXT (RFC 5267 §4) add none."""
    items: list[tuple[str, str]] = []
    if partial is not None:
        items.append(partial_item(numbers, partial))
    if numbers:
        if "MIN" in returns:
            items.append(("MIN", str(numbers[0])))
        if "MAX" in returns:
            items.append(("MAX", str(numbers[-1])))
        if "ALL" in returns:
            items.append(("ALL", compress_uids(list(numbers))))
    if "COUNT" in returns:
        items.append(("COUNT", str(len(numbers))))
    return items


async def _returned_modseq(
    account: Account,
    selected: SelectedMailbox,
    uids: list[int],
    returns: Sequence[str],
    highest: int,
) -> int:
    """RFC 7162 §3.1.5 with ESEARCH: the highest modseq of the messages returned —
    all of them for ALL or COUNT, else only the MIN / MAX ones."""
    if "ALL" in returns or "COUNT" in returns:
        return highest
    wanted = {uids[0]} if "MIN" in returns else set()
    if "MAX" in returns:
        wanted.add(uids[-1])
    metas = await account.fetch_meta(selected.mailbox_id, sorted(wanted), with_model=False)
    return max((m.modseq for m in metas), default=highest)
