"""Search keys to store criteria in the session (search_eval.py): message numbers, ``$``
and \\Recent become UID ranges of the view; strings are decoded; OLDER/YOUNGER become
an instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from roost.imap.handler_types import CommandError
from roost.imap.search_eval import sequence_ranges, to_criterion, uid_ranges, uses_modseq
from roost.imap.selected import SelectedMailbox
from roost.imap.wire import search_keys as k
from roost.imap.wire.sequence import STAR, SequenceSet
from roost.store import base as s

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def view(uids: list[int], recent_from: int | None = None) -> SelectedMailbox:
    info = s.MailboxInfo(1, "INBOX", 7, (uids[-1] + 1) if uids else 1, 10)
    snapshot = s.MailboxSnapshot(info, uids, [frozenset()] * len(uids), frozenset())
    return SelectedMailbox(snapshot, readonly=False, recent_floor=recent_from)


# UIDs 1..4 and 10, 11, 20: message numbers 1..7.
VIEW = [1, 2, 3, 4, 10, 11, 20]


@pytest.mark.parametrize(
    ("sequence", "uid", "expected"),
    [
        (SequenceSet(((1, STAR),)), False, ((1, 20),)),
        (SequenceSet(((5, 6),)), False, ((10, 11),)),
        (SequenceSet(((7, 100),)), False, ((20, 20),)),
        (SequenceSet(((8, 9),)), False, ()),
        (SequenceSet(((STAR, STAR),)), False, ((20, 20),)),
        (SequenceSet(((2, 2), (4, 5))), False, ((2, 2), (4, 10))),
        (SequenceSet(((5, 12),)), True, ((10, 11),)),
        (SequenceSet(((5, 9),)), True, ()),
        (SequenceSet(((21, STAR),)), True, ((20, 20),)),  # "21:*" includes the last
        (SequenceSet(((1, 2**32 - 1),)), True, ((1, 20),)),
    ],
)
def test_sequence_sets_become_tight_uid_ranges(
    sequence: SequenceSet, uid: bool, expected: tuple[tuple[int, int], ...]
) -> None:
    assert sequence_ranges(view(VIEW), sequence, uid=uid) == expected


def test_empty_mailbox_matches_nothing() -> None:
    assert sequence_ranges(view([]), SequenceSet(((1, STAR),)), uid=False) == ()
    assert sequence_ranges(view([]), SequenceSet(((1, STAR),)), uid=True) == ()


def test_saved_result() -> None:
    """RFC 5182: "$" is the saved UIDs, as numbers or UIDs alike; empty before a SAVE;
    UIDs no longer in the view drop out."""
    selected = view(VIEW)
    assert sequence_ranges(selected, SequenceSet.saved(), uid=False) == ()
    selected.saved_uids = [2, 3, 5, 10, 20]
    assert sequence_ranges(selected, SequenceSet.saved(), uid=False) == ((2, 3), (10, 10), (20, 20))
    assert sequence_ranges(selected, SequenceSet.saved(), uid=True) == ((2, 3), (10, 10), (20, 20))
    assert selected.resolve(SequenceSet.saved(), uid=False) == [2, 3, 10, 20]


def test_uid_ranges_join_neighbours_in_the_view() -> None:
    assert uid_ranges(view(VIEW), [3, 4, 10, 20]) == ((3, 10), (20, 20))
    assert uid_ranges(view(VIEW), []) == ()


def test_recent_new_old() -> None:
    selected = view(VIEW, recent_from=10)
    recent = s.MatchUids(((10, 20),))
    assert to_criterion(k.Recent(k.SessionFlag.RECENT), selected, NOW) == recent
    assert to_criterion(k.Recent(k.SessionFlag.OLD), selected, NOW) == s.MatchNot(recent)
    assert to_criterion(k.Recent(k.SessionFlag.NEW), selected, NOW) == s.MatchAllOf(
        (recent, s.MatchNot(s.MatchFlag("\\Seen")))
    )
    assert to_criterion(k.Recent(k.SessionFlag.RECENT), view(VIEW), NOW) == s.MatchUids(())


def test_keys_to_criteria() -> None:
    selected = view(VIEW)
    tree = k.And(
        (
            k.Flag(k.FlagName.DELETED, present=False),
            k.Or((k.Text(k.TextField.FROM, "jürgen".encode()), k.Header("X-A", b""))),
            k.Keyword("$Junk", present=False),
            k.DateKey(k.DateField.SENT, k.DateOp.SINCE, date(2025, 1, 1)),
            k.DateKey(k.DateField.INTERNAL, k.DateOp.BEFORE, date(2025, 2, 1)),
            k.Size(True, 100),
            k.Size(False, 200),
            k.Not(k.ModSeq(5)),
            k.Messages(SequenceSet.of(1), uid=True),
            k.All(),
        )
    )
    assert to_criterion(tree, selected, NOW) == s.MatchAllOf(
        (
            s.MatchNot(s.MatchFlag("\\Deleted")),
            s.MatchAnyOf((s.MatchText(s.TextField.FROM, "jürgen"), s.MatchHeader("X-A", ""))),
            s.MatchNot(s.MatchFlag("$Junk")),
            s.MatchSentDay(s.DateComparison.SINCE, date(2025, 1, 1)),
            s.MatchArrivalDay(s.DateComparison.BEFORE, date(2025, 2, 1)),
            s.MatchLarger(100),
            s.MatchSmaller(200),
            s.MatchNot(s.MatchModSeq(5)),
            s.MatchUids(((1, 1),)),
            s.MatchAll(),
        )
    )
    assert uses_modseq(tree)
    assert not uses_modseq(k.All())


def test_within_splits_the_mailbox_at_now_minus_the_interval() -> None:
    """RFC 5032: OLDER n and YOUNGER n are complements."""
    cutoff = s.MatchArrivedBy(NOW - timedelta(seconds=3600))
    assert to_criterion(k.Within(True, 3600), view(VIEW), NOW) == cutoff
    assert to_criterion(k.Within(False, 3600), view(VIEW), NOW) == s.MatchNot(cutoff)


def test_strings_must_be_utf8() -> None:
    with pytest.raises(CommandError) as error:
        to_criterion(k.Text(k.TextField.BODY, b"\xff\xfe"), view(VIEW), NOW)
    assert error.value.text == "Search string is not valid UTF-8"
