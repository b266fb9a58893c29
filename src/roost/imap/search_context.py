"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4), and PARTIAL results (RFC 9394).

``SEARCH RETURN (UPDATE)`` (and SORT) leaves an ``UpdateContext`` on the selected
mailbox's view. At every sync point that brought changes, each context's search runs
again (through the store's index, as the first time) and the difference goes out as
``* ESEARCH (TAG "t") UID REMOVETO (0 uids)`` then ``ADDTO (position uids)``: for
SEARCH position 0 (the result is a set, §4.3); for SORT the 1-based place in the new
order, additions in ascending place so that each is right when the client applies
it. Updates are kept for UID commands only, and at most ``MAX_UPDATES`` per session;
otherwise the result is sent and ``* NO [NOUPDATE "tag"]`` says no updates follow
(§4.3). They end with CANCELUPDATE or when the mailbox is deselected.

``partial_slice`` picks RFC 9394 positions: ``n:m`` from the first, ``-n:-m`` from
the last.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from roost.imap.search_eval import to_criterion
from roost.imap.selected import SelectedMailbox, UpdateContext
from roost.imap.wire.responses import ESearchResponse
from roost.imap.wire.sequence import compress_uids
from roost.store.base import Account, SearchQuery

MAX_UPDATES = 10  # searches kept up to date per session

__all__ = ["MAX_UPDATES", "UpdateContext", "context_updates", "partial_item", "partial_slice"]


def partial_slice(items: Sequence[int], partial: tuple[int, int]) -> Sequence[int]:
    """The items at RFC 9394 positions ``partial`` (first has the smaller magnitude)."""
    first, last = partial
    count = len(items)
    if first > 0:
        return items[first - 1 : last]
    return items[max(count + last, 0) : max(count + first + 1, 0)]


def partial_item(items: Sequence[int], partial: tuple[int, int]) -> tuple[str, str]:
    """``PARTIAL (range set)`` (RFC 9394 §3.1), NIL for an empty set."""
    picked = list(partial_slice(items, partial))
    shown = compress_uids(picked) if picked else "NIL"
    return "PARTIAL", f"({partial[0]}:{partial[1]} {shown})"


async def context_updates(
    account: Account, selected: SelectedMailbox
) -> AsyncIterator[ESearchResponse]:
    """After changes: each kept search's ADDTO / REMOVETO."""
    now = datetime.now(UTC)
    known = selected.uids[-1] if selected.uids else 0
    for context in list(selected.search_contexts):
        criterion = to_criterion(context.criteria, selected, now)
        found = await account.search(
            selected.mailbox_id, SearchQuery(criterion, context.order, max_uid=known)
        )
        new = list(found.uids)
        old = context.result
        if new == old:
            continue
        context.result = new
        now_in = set(new)
        was_in = set(old)
        gone = [uid for uid in old if uid not in now_in]
        if context.order:
            # SORT: those no longer where they were among the kept ones move (out, then
            # back in); the rest keep their relative order in both lists.
            kept = [uid for uid in old if uid in now_in]
            reordered = [uid for uid in new if uid in was_in]
            gone += [a for a, b in zip(kept, reordered, strict=True) if a != b]
        stay = was_in - set(gone)
        items: list[tuple[str, str]] = []
        if gone:
            items.append(("REMOVETO", f"(0 {compress_uids(sorted(gone))})"))
        if context.order:
            pairs = [f"{i + 1} {uid}" for i, uid in enumerate(new) if uid not in stay]
            if pairs:
                items.append(("ADDTO", f"({' '.join(pairs)})"))
        else:
            added = [uid for uid in new if uid not in stay]
            if added:
                items.append(("ADDTO", f"(0 {compress_uids(added)})"))
        if items:
            yield ESearchResponse(context.tag, True, tuple(items))
