"""FETCH and UID FETCH (RFC 9051 §6.4.5), with CONDSTORE's MODSEQ/CHANGEDSINCE and
QRESYNC's VANISHED (RFC 7162).

Messages are read from the store in batches (``fetch_batch_size`` per round trip) and
each response is yielded as soon as it is built, so a FETCH of 100,000 messages never
holds more than one batch of metadata and one message body in memory. What each
attribute reads from the message is in ``fetch_parts``.

A FETCH of only UID, FLAGS and MODSEQ — how clients sync a whole mailbox — has its own
path (``_fetch_flags``): columns of UIDs, flag keys and (only when asked for) modseqs
from ``Account.fetch_flags`` in bigger batches (``flag_fetch_batch_size``), two batches
in flight at most, each answered as one ``FlagFetchBatch`` that passes the columns on.
Its bytes are the general path's, which a transcript test checks.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
from collections.abc import AsyncIterator, Hashable, Sequence
from dataclasses import dataclass

from roost.imap.commands.fetch_parts import (
    CONTENT_ITEMS,
    MODEL_ITEMS,
    MessageReader,
    label,
    message_value,
    whole_message,
)
from roost.imap.handler_types import Done, State, bad
from roost.imap.progress import Progress
from roost.imap.search_context import partial_slice
from roost.imap.selected import SelectedMailbox, wire_flags
from roost.imap.session import Prefetched, Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import (
    Code,
    ColumnKind,
    FetchBatch,
    FetchColumn,
    FetchResponse,
    FetchValue,
    FlagFetchBatch,
    FlagList,
    ObjectId,
    Parenthesized,
    Response,
    Vanished,
)
from roost.imap.wire.sequence import SequenceSet
from roost.mime.model import wire_values
from roost.store.base import SEEN, FlagOp, FlagRows, FlagState, MessageGone, MessageMeta

# Asked for alone, these take the fast path (``_flag_batch``).
_FLAG_ITEMS = frozenset({c.FetchItem.UID, c.FetchItem.FLAGS, c.FetchItem.MODSEQ})
_STATE_ITEMS = frozenset({c.FetchItem.FLAGS, c.FetchItem.MODSEQ})  # never read ahead
# Batches of a flags-only FETCH queued on the store's thread at any time.
_FLAG_READ_AHEAD = 2
# RFC 9051 §6.4.5: fetching these (not their .PEEK forms) sets \Seen.
_SETS_SEEN_ITEMS = {c.FetchItem.RFC822, c.FetchItem.RFC822_TEXT}


def _needs_model(attribute: c.FetchAttribute) -> bool:
    """Whether the store must send the MIME model (and thread) along with the metadata:
    a FLAGS-only FETCH of a big mailbox should not carry them."""
    if isinstance(attribute, c.FetchItem):
        return attribute in MODEL_ITEMS or attribute is c.FetchItem.THREADID
    if isinstance(attribute, c.BinarySize):
        return True
    if isinstance(attribute, c.Preview):
        return False
    return attribute.binary or bool(attribute.section.part)


def _needs_bytes(attribute: c.FetchAttribute) -> bool:
    if isinstance(attribute, c.Preview):
        return False  # kept with the message's analysis (Account.previews)
    return not isinstance(attribute, c.FetchItem) or attribute in CONTENT_ITEMS


def _needs_message(attribute: c.FetchAttribute) -> bool:
    if isinstance(attribute, c.Preview):
        return False
    return not isinstance(attribute, c.FetchItem) or attribute in MODEL_ITEMS | CONTENT_ITEMS


def _simple_value(
    selected: SelectedMailbox,
    meta: MessageMeta,
    flags: frozenset[str],
    modseq: int,
    item: c.FetchItem,
) -> FetchValue:
    match item:
        case c.FetchItem.UID:
            return meta.uid
        case c.FetchItem.FLAGS:
            return selected.flags_for_wire(meta.uid, flags)
        case c.FetchItem.MODSEQ:
            return Parenthesized(modseq)
        case c.FetchItem.EMAILID:
            return ObjectId(meta.email_id)
        case c.FetchItem.THREADID:
            return ObjectId(meta.thread_object_id)
        case c.FetchItem.SAVEDATE:
            return meta.savedate  # RFC 8514 §4: NIL when not known
        case c.FetchItem.INTERNALDATE:
            return meta.internaldate
        case c.FetchItem.RFC822_SIZE:
            return meta.size
    raise bad(f"FETCH {item.value} is not supported")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a FETCH's items ask of the store and of each message: the same for every
    FETCH of the same items, so made once (``_plan``), not per command (mbsync sends
    thousands of ``UID FETCH n (BODY.PEEK[])``)."""

    attributes: tuple[c.FetchAttribute, ...]  # as answered: UID and MODSEQ added where due
    labels: tuple[str, ...]
    content: tuple[bool, ...]  # which need the message or its model (MessageReader)
    whole: tuple[bool, ...]  # which are the stored message itself (``whole_message``)
    modseq: bool  # MODSEQ among them: a CONDSTORE-enabling command
    sets_seen: bool  # would set \Seen where the mailbox is writable (RFC 9051 §6.4.5)
    has_flags: bool
    reads_state: bool  # FLAGS or MODSEQ: never read ahead (``_readable_ahead``)
    with_model: bool  # the store sends the MIME model along
    # Bodies come in the same store round trip as the metadata (small messages); the
    # model's items (ENVELOPE, BODYSTRUCTURE) need the model only, never the bytes.
    with_content: bool
    previews: tuple[c.Preview, ...]
    # RFC 8970 §3.1: LAZY may answer NIL where the preview is not ready; without it,
    # one is made (and kept) for messages stored before previews were.
    compute_previews: bool
    flags_only: bool  # UID, FLAGS and MODSEQ only: ``_fetch_flags``
    # Items of the stored metadata and model only: answered a batch at a time, as
    # columns (``_model_batch``).
    batchable: bool


def _make_plan(asked: tuple[c.FetchAttribute, ...], uid: bool, changedsince: bool) -> _Plan:
    attributes = list(dict.fromkeys(asked))
    if uid and c.FetchItem.UID not in attributes:
        # RFC 9051 §6.4.9: UID FETCH always returns UID.
        attributes.insert(0, c.FetchItem.UID)
    if changedsince and c.FetchItem.MODSEQ not in attributes:
        attributes.append(c.FetchItem.MODSEQ)  # RFC 7162 §3.1.4.1
    previews = tuple(a for a in attributes if isinstance(a, c.Preview))
    return _Plan(
        attributes=tuple(attributes),
        labels=tuple(label(a) for a in attributes),
        content=tuple(_needs_message(a) for a in attributes),
        whole=tuple(whole_message(a) for a in attributes),
        modseq=c.FetchItem.MODSEQ in attributes,
        sets_seen=_may_set_seen(attributes),
        has_flags=c.FetchItem.FLAGS in attributes,
        reads_state=any(a in _STATE_ITEMS for a in attributes),
        with_model=any(_needs_model(a) for a in attributes),
        with_content=any(_needs_bytes(a) for a in attributes),
        previews=previews,
        compute_previews=any(not a.lazy for a in previews),
        flags_only=all(a in _FLAG_ITEMS for a in attributes),
        batchable=all(isinstance(a, c.FetchItem) and a not in CONTENT_ITEMS for a in attributes),
    )


class _Plans:
    """``_make_plan`` remembered by the identity of the attribute tuple: the grammar
    hands every FETCH with the same items the same tuple (its tail cache), and hashing
    a tuple of dataclasses through their generated ``__hash__`` cost more than the rest
    of looking a plan up. A tuple not seen yet is looked up by value, then kept by
    identity too; each entry holds its tuple, so an id is never reused meanwhile."""

    _MAX = 256

    def __init__(self) -> None:
        self._by_id: dict[tuple[int, bool, bool], tuple[tuple[c.FetchAttribute, ...], _Plan]] = {}
        self._by_value: dict[tuple[tuple[c.FetchAttribute, ...], bool, bool], _Plan] = {}

    def __call__(self, asked: tuple[c.FetchAttribute, ...], uid: bool, changedsince: bool) -> _Plan:
        entry = self._by_id.get((id(asked), uid, changedsince))
        if entry is not None and entry[0] is asked:
            return entry[1]
        key = (asked, uid, changedsince)
        plan = self._by_value.get(key)
        if plan is None:
            plan = _make_plan(asked, uid, changedsince)
            if len(self._by_value) >= self._MAX:
                self._by_value.clear()
            self._by_value[key] = plan
        if len(self._by_id) >= self._MAX:
            self._by_id.clear()
        self._by_id[(id(asked), uid, changedsince)] = (asked, plan)
        return plan

    def cache_clear(self) -> None:
        self._by_id.clear()
        self._by_value.clear()


_plan = _Plans()


async def fetch(session: Session, cmd: c.Fetch) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    account = session.selected_account()
    if cmd.vanished and not session.qresync:
        raise bad("VANISHED needs QRESYNC to be enabled")  # RFC 7162 §3.2.6
    if not cmd.uid and not cmd.sequence.uses_star() and not selected.msn_valid(cmd.sequence):
        raise bad("Message number out of range")

    plan = _plan(cmd.attributes, cmd.uid, cmd.changedsince is not None)
    attributes, labels, content, whole = plan.attributes, plan.labels, plan.content, plan.whole
    if plan.modseq:
        session.enable_condstore()  # RFC 7162 §3.1: a CONDSTORE-enabling command
    # RFC 4314 §4: the implicit \Seen needs the "s" right in a shared mailbox.
    sets_seen = plan.sets_seen and not selected.readonly and "s" in session.mailbox_rights
    has_flags, with_model, with_content = plan.has_flags, plan.with_model, plan.with_content
    previews, compute_previews = plan.previews, plan.compute_previews

    uids = selected.resolve(cmd.sequence, uid=cmd.uid)
    if cmd.partial is not None:
        uids = list(partial_slice(uids, cmd.partial))  # RFC 9394 §3.2
    if cmd.vanished and cmd.changedsince is not None:
        vanished = await _vanished_since(session, cmd.sequence, cmd.changedsince)
        if vanished:
            yield Vanished(tuple(vanished), earlier=True)
    batchable = plan.batchable and not sets_seen
    if plan.flags_only:
        async for response in _fetch_flags(session, cmd, attributes, uids):
            yield response
        return
    batch_size = session.context.limits.fetch_batch_size
    progress = None
    if len(uids) > batch_size:  # one batch has nothing to report (mbsync's FETCHes)
        progress = Progress(cmd.tag, session.context.limits.progress_interval)
    missing = 0
    ahead = session.prefetched
    for start in range(0, len(uids), batch_size):
        report = progress.tick(start, len(uids)) if progress is not None and start else None
        if report is not None:
            yield report  # RFC 9585 INPROGRESS: at most one clock read per batch
        batch = uids[start : start + batch_size]
        if ahead is not None and ahead.covers(selected.mailbox_id, batch, with_model, with_content):
            metas = [ahead.metas[uid] for uid in batch if uid in ahead.metas]
        else:
            metas = await account.fetch_meta(
                selected.mailbox_id, batch, with_model=with_model, with_content=with_content
            )
        missing += len(batch) - len(metas)
        if cmd.changedsince is not None:
            metas = [m for m in metas if m.modseq > cmd.changedsince]
        preview_of: dict[int, str | None] = {}
        if previews and metas:
            preview_of = await account.previews(
                selected.mailbox_id, [m.uid for m in metas], compute=compute_previews
            )
        now_seen: dict[int, FlagState] = {}
        if sets_seen:
            unseen = [m.uid for m in metas if SEEN not in m.flags]
            if unseen:
                result = await account.store_flags(
                    selected.mailbox_id, unseen, FlagOp.ADD, frozenset({SEEN})
                )
                for state in result.updated:
                    now_seen[state.uid] = state
                    selected.note_reported(state.uid, state.modseq)
                session.mark_dirty()
        if batchable and (batch_response := _model_batch(selected, attributes, labels, metas)):
            yield batch_response
            continue
        for meta in metas:
            msn = selected.msn_of(meta.uid)
            if msn is None:
                continue
            seen_state = now_seen.get(meta.uid)
            flags = meta.flags if seen_state is None else seen_state.flags
            modseq = meta.modseq if seen_state is None else seen_state.modseq
            reader = None
            items: list[tuple[str, FetchValue]] = []
            gone = False
            for attribute, name, is_content, is_whole in zip(
                attributes, labels, content, whole, strict=True
            ):
                if is_content:
                    if is_whole and meta.content is not None:
                        # BODY[] of a body read with the metadata: no reader needed.
                        items.append((name, message_value(meta.content)))
                        continue
                    if reader is None:
                        reader = MessageReader(account, meta)
                    try:
                        items.append((name, await reader.value(attribute)))
                    except MessageGone:
                        # Expunged by another session since its metadata was read: like
                        # any expunged message, left out (RFC 9051 §7.5.1, EXPUNGEISSUED).
                        gone = True
                        break
                elif isinstance(attribute, c.Preview):
                    items.append((name, preview_of.get(meta.uid)))
                else:
                    assert isinstance(attribute, c.FetchItem)
                    value = _simple_value(selected, meta, flags, modseq, attribute)
                    items.append((name, value))
            if gone:
                missing += 1
                continue
            if seen_state is not None and not has_flags:
                # RFC 9051 §6.4.5: a \Seen set as a side effect is reported with FLAGS.
                items.append(("FLAGS", selected.flags_for_wire(meta.uid, flags)))
                if session.condstore and c.FetchItem.MODSEQ not in attributes:
                    items.append(("MODSEQ", Parenthesized(modseq)))
            yield FetchResponse(msn, tuple(items))
    yield _done(cmd, missing)


_MODEL_VALUE = {c.FetchItem.ENVELOPE: 0, c.FetchItem.BODYSTRUCTURE: 1, c.FetchItem.BODY: 2}


def _model_batch(
    selected: SelectedMailbox,
    attributes: Sequence[c.FetchAttribute],
    labels: Sequence[str],
    metas: list[MessageMeta],
) -> FetchBatch | None:
    """The responses for ``metas`` when every item comes from the metadata or the model
    (a whole-mailbox FETCH of ENVELOPE and BODYSTRUCTURE): the model's wire values are
    sliced from the stored blobs, without a MessageModel, a reader or a FetchResponse
    per message. None when a message has no stored model (the general path parses it)."""
    numbers, metas = _numbered(selected, metas)
    if not metas:
        return None
    wire: tuple[tuple[bytes, ...], ...] = ()
    if any(a in _MODEL_VALUE for a in attributes):
        models = [meta.model for meta in metas]
        if None in models:
            return None
        wire = tuple(zip(*map(wire_values, models), strict=True))  # type: ignore[arg-type]
    columns: list[FetchColumn] = []
    for attribute in attributes:
        assert isinstance(attribute, c.FetchItem)
        if (at := _MODEL_VALUE.get(attribute)) is not None:
            columns.append(FetchColumn(ColumnKind.RAW, wire[at]))
        elif attribute is c.FetchItem.UID:
            columns.append(FetchColumn(ColumnKind.NUMBER, [meta.uid for meta in metas]))
        elif attribute is c.FetchItem.RFC822_SIZE:
            columns.append(FetchColumn(ColumnKind.NUMBER, [meta.size for meta in metas]))
        else:
            values = [
                _simple_value(selected, meta, meta.flags, meta.modseq, attribute) for meta in metas
            ]
            columns.append(FetchColumn(ColumnKind.VALUE, values))
    return FetchBatch(tuple(labels), numbers, tuple(columns))


def _numbered(
    selected: SelectedMailbox, metas: list[MessageMeta]
) -> tuple[Sequence[int], list[MessageMeta]]:
    """The message numbers of ``metas`` in this session, and those of them it knows
    (a message added since its last sync point has none yet)."""
    if not metas:
        return [], metas
    uids = selected.uids
    first = bisect.bisect_left(uids, metas[0].uid)
    end = first + len(metas)
    if end <= len(uids) and uids[first] == metas[0].uid and uids[end - 1] == metas[-1].uid:
        # Both ascending without duplicates, ``metas`` among the session's UIDs (they
        # were resolved from them), same ends and count: they are that stretch.
        return range(first + 1, end + 1), metas
    numbered = [(msn, meta) for meta in metas if (msn := selected.msn_of(meta.uid)) is not None]
    return [msn for msn, _ in numbered], [meta for _, meta in numbered]


def _may_set_seen(attributes: Sequence[c.FetchAttribute]) -> bool:
    return any(
        (isinstance(a, c.BodySection) and not a.peek) or a in _SETS_SEEN_ITEMS for a in attributes
    )


def _readable_ahead(
    session: Session, selected: SelectedMailbox, cmd: c.Fetch, plan: _Plan
) -> tuple[list[int], bool, bool] | None:
    """The UIDs, model and bytes a FETCH will read, if they may be read before it runs:
    no side effect (\\Seen), no CHANGEDSINCE, no FLAGS or MODSEQ, one batch. Flags read
    ahead could be older than a change the sync point after an earlier FETCH of the run
    has already reported, and the client would see them go back."""
    if cmd.changedsince is not None or cmd.vanished or plan.reads_state:
        return None
    if not cmd.uid and not cmd.sequence.uses_star() and not selected.msn_valid(cmd.sequence):
        return None
    uids = selected.resolve(cmd.sequence, uid=cmd.uid)
    if len(uids) > session.context.limits.fetch_batch_size:
        return None
    return uids, plan.with_model, plan.with_content


async def prefetch(session: Session, commands: Sequence[c.Fetch]) -> None:
    """Read what a run of pipelined FETCHes needs in one store round trip (mbsync sends
    one ``UID FETCH n (BODY.PEEK[])`` per message, thousands at once): each then takes
    its messages from ``session.prefetched`` instead of a round trip of its own. Only
    FETCHes without side effects are read ahead, at most one FETCH batch in all; the
    caller clears ``session.prefetched`` after the run. A message changed by another
    session meanwhile is reported by the sync point after the FETCH, as when one FETCH
    reads its batch."""
    account, selected = session.account, session.selected
    if account is None or selected is None or session.state is not State.SELECTED:
        return
    wanted = []
    for cmd in commands:
        plan = _plan(cmd.attributes, cmd.uid, cmd.changedsince is not None)
        if plan.sets_seen and not selected.readonly:
            break  # what follows must see the \Seen it sets: read when it runs
        if found := _readable_ahead(session, selected, cmd, plan):
            wanted.append(found)
    if len(wanted) < 2:
        return
    union = sorted({uid for uids, _, _ in wanted for uid in uids})
    if not union or len(union) > session.context.limits.fetch_batch_size:
        return
    with_model = any(model for _, model, _ in wanted)
    with_content = any(content for _, _, content in wanted)
    metas = await account.fetch_meta(
        selected.mailbox_id, union, with_model=with_model, with_content=with_content
    )
    session.prefetched = Prefetched(
        selected.mailbox_id,
        frozenset(union),
        with_model,
        with_content,
        {meta.uid: meta for meta in metas},
    )


_COMPLETED = Done("FETCH completed")
_COMPLETED_EXPUNGED = Done(
    "FETCH completed; some messages were already expunged", Code("EXPUNGEISSUED")
)


def _done(cmd: c.Fetch, missing: int) -> Done:
    """RFC 9051 §7.5.1: FETCH by number of messages expunged meanwhile says so."""
    return _COMPLETED_EXPUNGED if missing and not cmd.uid else _COMPLETED


async def _fetch_flags(
    session: Session, cmd: c.Fetch, attributes: Sequence[c.FetchAttribute], uids: list[int]
) -> AsyncIterator[Response | Done]:
    """FETCH of only UID, FLAGS and MODSEQ: bigger batches of light columns, each
    answered as one FlagFetchBatch, while the store reads the next ones on its thread.
    ``_FLAG_READ_AHEAD`` batches are queued there at any time, so that its thread goes
    from one to the next without waiting for this loop to ask (a round trip per batch
    cost more than the batch's own read); at most that many more batches are held."""
    selected, account = session.require_selected(), session.selected_account()
    size = session.context.limits.flag_fetch_batch_size
    batches = [uids[start : start + size] for start in range(0, len(uids), size)]
    with_modseq = c.FetchItem.MODSEQ in attributes or cmd.changedsince is not None
    missing = 0
    reading: collections.deque[asyncio.Future[FlagRows]] = collections.deque()
    queued = 0
    progress = Progress(cmd.tag, session.context.limits.progress_interval)
    try:
        for number, batch in enumerate(batches):
            if number and (report := progress.tick(number * size, len(uids))) is not None:
                yield report  # RFC 9585 INPROGRESS
            while queued < len(batches) and len(reading) < _FLAG_READ_AHEAD:
                following = account.fetch_flags(
                    selected.mailbox_id, batches[queued], with_modseq=with_modseq
                )
                reading.append(asyncio.ensure_future(following))
                queued += 1
            # The new reads reach the store's thread, and other sessions run (a read
            # already done is awaited without yielding to the loop).
            await asyncio.sleep(0)
            found = await reading.popleft()
            missing += len(batch) - len(found.uids)
            response = _flag_batch(selected, attributes, found, cmd.changedsince)
            if response.numbers:
                yield response
    finally:
        for future in reading:
            if not future.cancel() and not future.cancelled():
                future.exception()  # it had ended: its outcome is seen, and dropped
    yield _done(cmd, missing)


def _flag_batch(
    selected: SelectedMailbox,
    attributes: Sequence[c.FetchAttribute],
    found: FlagRows,
    changedsince: int | None,
) -> FlagFetchBatch:
    """What the general path answers for these messages, when only UID, FLAGS and MODSEQ
    are asked for (the common whole-mailbox sync): messages unchanged since
    ``changedsince`` or unknown to this session are left out, and \\Recent is added for
    this session's recent messages (``flags_for_wire``)."""
    items = tuple(label(a) for a in attributes)
    found_uids, keys, modseqs = found.uids, found.keys, found.modseqs
    if not found_uids:
        return FlagFetchBatch(items, [], [], [], [] if modseqs is not None else None, {})
    uids, recent = selected.uids, selected.recent
    count = len(uids)
    first = bisect.bisect_left(uids, found_uids[0])
    end = first + len(found_uids)
    if changedsince is None and not recent and end <= count and uids[end - 1] == found_uids[-1]:
        # The rows are exactly the session's UIDs first, first+1, ... (both ascending,
        # no duplicates, same ends and count): the usual case. They go out as they are.
        wire = {key: wire_flags(flags, recent=False) for key, flags in found.flags.items()}
        return FlagFetchBatch(items, range(first + 1, end + 1), found_uids, keys, modseqs, wire)
    # Otherwise walk the session's UIDs alongside to find each message number.
    numbers: list[int] = []
    shown_uids: list[int] = []
    shown_keys: list[tuple[Hashable, bool]] = []
    shown_modseqs: list[int] | None = None if modseqs is None else []
    if changedsince is not None and modseqs is None:
        raise ValueError("CHANGEDSINCE needs the modseqs")
    modseq_of: Sequence[int] = () if modseqs is None else modseqs
    i = first
    for at, uid in enumerate(found_uids):
        if changedsince is not None and modseq_of[at] <= changedsince:
            continue
        while i < count and uids[i] < uid:
            i += 1
        if i == count or uids[i] != uid:
            continue  # new since this session last synced: not in its numbering yet
        numbers.append(i + 1)
        shown_uids.append(uid)
        shown_keys.append((keys[at], uid in recent))
        if shown_modseqs is not None:
            shown_modseqs.append(modseq_of[at])
    keyed: dict[Hashable, FlagList] = {
        (key, is_recent): wire_flags(found.flags[key], is_recent)
        for key, is_recent in set(shown_keys)
    }
    return FlagFetchBatch(items, numbers, shown_uids, shown_keys, shown_modseqs, keyed)


async def _vanished_since(session: Session, uids: SequenceSet, modseq: int) -> list[int]:
    """UIDs in ``uids`` expunged after ``modseq`` (RFC 7162 §3.2.6)."""
    selected = session.require_selected()
    changes = await session.selected_account().changes_since(selected.mailbox_id, modseq)
    largest = max(selected.uidnext - 1, selected.uids[-1] if selected.uids else 1)
    wanted = uids.membership(largest)
    return [uid for uid in changes.expunged if wanted(uid)]
