"""THREAD algorithms and the base subject (RFC 5256 §2.1, §3), as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from roost.imap.thread import base_subject, ordered_subject, references, subject_key
from roost.imap.wire.responses import ThreadNode, ThreadResponse
from roost.imap.wire.serializer import serialize
from roost.store.base import ThreadFields

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def msg(
    uid: int,
    subject: str = "",
    *,
    minutes: int | None = None,
    message_id: str | None = None,
    refs: tuple[str, ...] = (),
    in_reply_to: str = "",
) -> ThreadFields:
    """Message ``uid``, sent ``minutes`` (default: ``uid``) after T0, id ``<uid>``."""
    return ThreadFields(
        uid,
        T0 + timedelta(minutes=uid if minutes is None else minutes),
        subject,
        f"<{uid}>" if message_id is None else message_id,
        in_reply_to,
        refs,
    )


def wire(threads: tuple[ThreadNode, ...]) -> bytes:
    return serialize(ThreadResponse(threads)).removeprefix(b"* THREAD").strip()


def same(uid: int) -> int:
    return uid


BASE_SUBJECTS = [
    ("Hello", "Hello", False),
    ("Re: Hello", "Hello", True),
    ("RE:   re: Hello", "Hello", True),
    ("Fwd: Hello", "Hello", True),
    ("fw: Hello", "Hello", True),
    ("Re[2]: Hello", "Hello", True),
    ("Re [2] : Hello", "Hello", True),
    ("[list] Re: Hello", "Hello", True),
    ("[list] Hello", "Hello", False),
    ("[list] [tag] Hello", "Hello", False),
    ("[only a blob]", "[only a blob]", False),
    ("Hello (fwd)", "Hello", True),
    ("Hello (FWD) (fwd)  ", "Hello", True),
    ("[Fwd: Hello]", "Hello", True),
    ("[fwd: Re: [list] Hello (fwd)]", "Hello", True),
    ("  folded\r\n\tsubject  here ", "folded subject here", False),
    ("Reply to this", "Reply to this", False),
    ("Re:", "", True),
    ("", "", False),
    ("Grüße: nicht", "Grüße: nicht", False),
]


@pytest.mark.parametrize(("subject", "base", "reply"), BASE_SUBJECTS)
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    assert base_subject(subject) == (base, reply)


def test_subject_key_folds_ascii_only() -> None:
    """i;ascii-casemap (RFC 5256 §2.1): a-z fold, other letters stay as they are."""
    assert subject_key("Hello") == subject_key("HELLO")
    assert subject_key("grüße") == "GRüßE"


def test_ordered_subject() -> None:
    """RFC 5256 §3 ORDEREDSUBJECT: grouped by base subject, each thread's first message
    the parent of the rest, threads in the order of their first messages."""
    messages = [
        msg(1, "b", minutes=5),
        msg(2, "Re: a", minutes=2),
        msg(3, "a", minutes=3),
        msg(4, "c", minutes=1),
        msg(5, "RE: A", minutes=9),
        msg(6, "re: b", minutes=6),
    ]
    assert wire(ordered_subject(messages, same)) == b"(4)(2 (3)(5))(1 6)"


def test_ordered_subject_ties_break_on_message_number() -> None:
    messages = [msg(2, "x", minutes=0), msg(1, "x", minutes=0), msg(3, "x", minutes=0)]
    assert wire(ordered_subject(messages, same)) == b"(1 (2)(3))"


def test_references_links_replies() -> None:
    messages = [
        msg(1, "Party"),
        msg(2, "Re: Party", refs=("<1>",)),
        msg(3, "Re: Party", refs=("<1>", "<2>")),
        msg(4, "Re: Party", refs=("<1>",)),
        msg(5, "Other"),
    ]
    assert wire(references(messages, same)) == b"(1 (2 3)(4))(5)"


def test_references_uses_in_reply_to_without_references() -> None:
    messages = [msg(1, "a"), msg(2, "b", in_reply_to="<1>"), msg(3, "c", in_reply_to="<9>")]
    assert wire(references(messages, same)) == b"(1 2)(3)"


def test_references_missing_parent_becomes_a_dummy() -> None:
    """Two replies to a message not in the mailbox share a placeholder parent; one reply
    alone is promoted (RFC 5256 §3 step 3)."""
    messages = [
        msg(1, "x", refs=("<gone>",)),
        msg(2, "y", refs=("<gone>",)),
        msg(3, "z", refs=("<also-gone>",)),
    ]
    assert wire(references(messages, same)) == b"((1)(2))(3)"


def test_references_nested_dummies_are_spliced() -> None:
    messages = [
        msg(1, "top"),
        msg(2, "r", refs=("<1>", "<missing>")),
        msg(3, "r", refs=("<1>", "<missing>")),
    ]
    assert wire(references(messages, same)) == b"(1 (2)(3))"


def test_references_merges_threads_by_subject() -> None:
    """Step 5: a reply whose references were lost joins the thread of its subject."""
    messages = [msg(1, "Lunch?"), msg(2, "Re: Lunch?"), msg(3, "lunch?")]
    # The reply 2 goes under 1; 1 and 3 are both originals: a dummy holds them.
    assert wire(references(messages, same)) == b"((1 2)(3))"


def test_references_reply_without_original_subject_match() -> None:
    messages = [msg(1, "Re: Status"), msg(2, "Status", minutes=10)]
    assert wire(references(messages, same)) == b"(2 1)"


def test_references_ignores_empty_subjects_when_merging() -> None:
    messages = [msg(1, ""), msg(2, "Re:"), msg(3, "")]
    assert wire(references(messages, same)) == b"(1)(2)(3)"


def test_references_duplicate_message_ids_are_made_unique() -> None:
    messages = [
        msg(1, "a", message_id="<same>"),
        msg(2, "b", message_id="<same>"),
        msg(3, "c", refs=("<same>",)),
    ]
    assert wire(references(messages, same)) == b"(1 3)(2)"


def test_references_loops_are_not_created() -> None:
    messages = [
        msg(1, "a", refs=("<2>",)),
        msg(2, "b", refs=("<1>",)),
        msg(3, "c", refs=("<3>",)),
    ]
    threads = references(messages, same)
    numbers = wire(threads)
    assert numbers in (b"(1 2)(3)", b"(2 1)(3)"), numbers


def test_references_sorts_siblings_by_date_then_number() -> None:
    messages = [
        msg(1, "root", minutes=0),
        msg(2, "x", minutes=30, refs=("<1>",)),
        msg(3, "y", minutes=10, refs=("<1>",)),
        msg(4, "z", minutes=10, refs=("<1>",)),
    ]
    assert wire(references(messages, same)) == b"(1 (3)(4)(2))"


def test_references_numbers_are_mapped() -> None:
    messages = [msg(10, "a"), msg(20, "b", refs=("<10>",))]
    assert wire(references(messages, lambda uid: uid // 10)) == b"(1 2)"


def test_a_very_deep_thread_needs_no_recursion() -> None:
    depth = 5_000
    messages = [msg(1, "deep")] + [
        msg(n, "Re: deep", refs=tuple(f"<{i}>" for i in range(max(1, n - 3), n)))
        for n in range(2, depth + 1)
    ]
    line = wire(references(messages, same))
    assert line == b"(" + b" ".join(str(n).encode() for n in range(1, depth + 1)) + b")"
    # Every even message has two replies: nested lists thousands deep.
    branching = [msg(1, "b")] + [
        msg(n, "b", refs=(f"<{max(1, 2 * ((n - 2) // 2))}>",)) for n in range(2, depth + 1)
    ]
    line = wire(references(branching, same))
    assert line.startswith(b"(1 (2 (4 (6 (8 ")
    assert line.endswith(b"(7))(5))(3))")
