"""Search keys (protocol) to a store query (mail terms), in the session.

What only the session knows is resolved here: message numbers and ``$`` become UID
ranges of its view, \\Recent (RECENT, NEW, OLD) the UIDs it holds, OLDER/YOUNGER an
instant from now, strings text in the command's charset. The store then answers the
whole tree in one query.

Every UID range built here spans only UIDs of the session's view (an MSN range maps to
the UIDs at its ends), so the store never expands a range into numbers that do not exist.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import datetime, timedelta

from roost.imap.handler_types import bad, no
from roost.imap.selected import SelectedMailbox
from roost.imap.wire import search_keys as k
from roost.imap.wire.sequence import SequenceSet
from roost.store import base as s

CHARSETS = ("UTF-8", "US-ASCII")  # RFC 9051 §6.4.4: both must be supported
_TEXT_FIELDS = {
    k.TextField.BCC: s.TextField.BCC,
    k.TextField.BODY: s.TextField.BODY,
    k.TextField.CC: s.TextField.CC,
    k.TextField.FROM: s.TextField.FROM,
    k.TextField.SUBJECT: s.TextField.SUBJECT,
    k.TextField.TEXT: s.TextField.TEXT,
    k.TextField.TO: s.TextField.TO,
}
_DATE_OPS = {
    k.DateOp.BEFORE: s.DateComparison.BEFORE,
    k.DateOp.ON: s.DateComparison.ON,
    k.DateOp.SINCE: s.DateComparison.SINCE,
}


def uses_modseq(key: k.SearchKey) -> bool:
    """RFC 7162 §3.1.5: a MODSEQ key enables CONDSTORE and adds MODSEQ to the answer."""
    return any(isinstance(node, k.ModSeq) for node in k.walk(key))


def to_criterion(key: k.SearchKey, selected: SelectedMailbox, now: datetime) -> s.Criterion:
    """The store criterion for ``key`` in ``selected``'s view at ``now`` (aware)."""
    match key:
        case k.All():
            return s.MatchAll()
        case k.Flag(flag=flag, present=present):
            return _maybe_not(s.MatchFlag(flag.value), present)
        case k.Keyword(keyword=keyword, present=present):
            return _maybe_not(s.MatchFlag(keyword), present)
        case k.Recent(which=which):
            recent = s.MatchUids(uid_ranges(selected, sorted(selected.recent)))
            if which is k.SessionFlag.RECENT:
                return recent
            if which is k.SessionFlag.OLD:
                return s.MatchNot(recent)
            return s.MatchAllOf((recent, s.MatchNot(s.MatchFlag(k.FlagName.SEEN.value))))
        case k.DateKey(field=field, op=op, day=day):
            if field is k.DateField.SENT:
                return s.MatchSentDay(_DATE_OPS[op], day)
            if field is k.DateField.SAVED:
                return s.MatchSavedDay(_DATE_OPS[op], day)
            return s.MatchArrivalDay(_DATE_OPS[op], day)
        case k.Within(older=older, seconds=seconds):
            # RFC 5032: OLDER n and YOUNGER n split the mailbox in two.
            cutoff = s.MatchArrivedBy(now - timedelta(seconds=seconds))
            return cutoff if older else s.MatchNot(cutoff)
        case k.Size(larger=larger, size=size):
            return s.MatchLarger(size) if larger else s.MatchSmaller(size)
        case k.Text(field=field, value=value):
            return s.MatchText(_TEXT_FIELDS[field], decode(value))
        case k.Header(name=name, value=value):
            return s.MatchHeader(name, decode(value))
        case k.Messages(sequence=sequence, uid=uid):
            return s.MatchUids(sequence_ranges(selected, sequence, uid=uid))
        case k.ModSeq(modseq=modseq):
            return s.MatchModSeq(modseq)
        case k.Filter(name=name):
            # Commands expand filters (imap/filters.py) before they get here.
            raise no(f"Filter {name} was not expanded", "SERVERBUG")
        case k.Not(key=inner):
            return s.MatchNot(to_criterion(inner, selected, now))
        case k.Or(keys=keys):
            return s.MatchAnyOf(tuple(to_criterion(x, selected, now) for x in keys))
        case k.And(keys=keys):
            return s.MatchAllOf(tuple(to_criterion(x, selected, now) for x in keys))


def _maybe_not(criterion: s.Criterion, present: bool) -> s.Criterion:
    return criterion if present else s.MatchNot(criterion)


def decode(value: bytes) -> str:
    """A search string: UTF-8, of which US-ASCII is a subset (RFC 9051 §6.4.4)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("Search string is not valid UTF-8") from None


def sequence_ranges(
    selected: SelectedMailbox, sequence: SequenceSet, *, uid: bool
) -> tuple[tuple[int, int], ...]:
    """UID ranges of the messages ``sequence`` names in the view; ``$`` is the saved
    result (RFC 5182 §2.1), whether used as numbers or as UIDs."""
    uids = selected.uids
    if sequence.is_saved:
        return uid_ranges(selected, selected.saved_uids)
    if not uids:
        return ()
    ranges: list[tuple[int, int]] = []
    if uid:
        for low, high in sequence.normalized(uids[-1]):
            start = bisect.bisect_left(uids, low)
            end = bisect.bisect_right(uids, high) - 1
            if start <= end:
                ranges.append((uids[start], uids[end]))
    else:
        count = len(uids)
        for low, high in sequence.normalized(count):
            if low <= count:
                ranges.append((uids[low - 1], uids[min(high, count) - 1]))
    return tuple(ranges)


def uid_ranges(
    selected: SelectedMailbox, ascending_uids: Iterable[int]
) -> tuple[tuple[int, int], ...]:
    """Ascending UIDs of the view as ranges of neighbours in the view."""
    uids = selected.uids
    ranges: list[tuple[int, int]] = []
    last_index = -2
    for uid in ascending_uids:
        index = bisect.bisect_left(uids, uid)
        if index >= len(uids) or uids[index] != uid:
            continue
        if index == last_index + 1 and ranges:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
        last_index = index
    return tuple(ranges)
