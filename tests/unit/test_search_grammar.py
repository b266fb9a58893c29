"""SEARCH, SORT and THREAD grammar (RFC 9051 §6.4.4, RFC 5256 §5, RFC 4731, RFC 5267,
RFC 5182, RFC 5032, RFC 7162 §3.1.5), fed every way (STYLE.md §12)."""

from __future__ import annotations

from datetime import date

import pytest

from roost.imap.wire import search_keys as k
from roost.imap.wire.commands import Search, Sort, SortCriterion, SortKey, Thread
from roost.imap.wire.grammar import parse_command
from roost.imap.wire.grammar.search import MAX_KEY_DEPTH
from roost.imap.wire.sequence import STAR, SequenceSet
from tests.unit.test_wire_grammar_helpers import bad, parse_all_ways


def keys(text: str) -> k.SearchKey:
    command = parse_all_ways(f"t SEARCH {text}\r\n".encode())
    assert isinstance(command, Search), command
    return command.criteria


SEEN = k.Flag(k.FlagName.SEEN)
DELETED = k.Flag(k.FlagName.DELETED)

SIMPLE_KEYS: list[tuple[str, k.SearchKey]] = [
    ("ALL", k.All()),
    ("ANSWERED", k.Flag(k.FlagName.ANSWERED)),
    ("DELETED", DELETED),
    ("DRAFT", k.Flag(k.FlagName.DRAFT)),
    ("FLAGGED", k.Flag(k.FlagName.FLAGGED)),
    ("seen", SEEN),
    ("UNANSWERED", k.Flag(k.FlagName.ANSWERED, present=False)),
    ("UNDELETED", k.Flag(k.FlagName.DELETED, present=False)),
    ("UNDRAFT", k.Flag(k.FlagName.DRAFT, present=False)),
    ("UNFLAGGED", k.Flag(k.FlagName.FLAGGED, present=False)),
    ("UNSEEN", k.Flag(k.FlagName.SEEN, present=False)),
    ("NEW", k.Recent(k.SessionFlag.NEW)),
    ("OLD", k.Recent(k.SessionFlag.OLD)),
    ("RECENT", k.Recent(k.SessionFlag.RECENT)),
    ("KEYWORD $Forwarded", k.Keyword("$Forwarded")),
    ("UNKEYWORD Junk", k.Keyword("Junk", present=False)),
    ("BCC x", k.Text(k.TextField.BCC, b"x")),
    ('BODY "two words"', k.Text(k.TextField.BODY, b"two words")),
    ("CC {3}\r\nabc", k.Text(k.TextField.CC, b"abc")),
    ('FROM "\\"q\\""', k.Text(k.TextField.FROM, b'"q"')),
    ("SUBJECT {2+}\r\nhi", k.Text(k.TextField.SUBJECT, b"hi")),
    ('TEXT ""', k.Text(k.TextField.TEXT, b"")),
    ("TO bob@example.org", k.Text(k.TextField.TO, b"bob@example.org")),
    ('HEADER X-Mailer ""', k.Header("X-Mailer", b"")),
    ('HEADER "Message-ID" "<a@b>"', k.Header("Message-ID", b"<a@b>")),
    ("BEFORE 1-Feb-2024", k.DateKey(k.DateField.INTERNAL, k.DateOp.BEFORE, date(2024, 2, 1))),
    ('ON "01-feb-2024"', k.DateKey(k.DateField.INTERNAL, k.DateOp.ON, date(2024, 2, 1))),
    ("SINCE 29-Feb-2024", k.DateKey(k.DateField.INTERNAL, k.DateOp.SINCE, date(2024, 2, 29))),
    ("SENTBEFORE 1-Jan-2000", k.DateKey(k.DateField.SENT, k.DateOp.BEFORE, date(2000, 1, 1))),
    ("SENTON 31-Dec-1999", k.DateKey(k.DateField.SENT, k.DateOp.ON, date(1999, 12, 31))),
    ("SENTSINCE 7-Jul-2007", k.DateKey(k.DateField.SENT, k.DateOp.SINCE, date(2007, 7, 7))),
    ("LARGER 1024", k.Size(True, 1024)),
    ("SMALLER 9223372036854775807", k.Size(False, 9_223_372_036_854_775_807)),
    ("OLDER 3600", k.Within(True, 3600)),
    ("YOUNGER 259200", k.Within(False, 259_200)),
    ("UID 1:*", k.Messages(SequenceSet(((1, STAR),)), uid=True)),
    ("UID $", k.Messages(SequenceSet.saved(), uid=True)),
    ("1,3:5", k.Messages(SequenceSet(((1, 1), (3, 5))))),
    ("*", k.Messages(SequenceSet(((STAR, STAR),)))),
    ("$", k.Messages(SequenceSet.saved())),
    ("MODSEQ 620162338", k.ModSeq(620_162_338)),
    (
        'MODSEQ "/flags/\\\\draft" all 620162338',
        k.ModSeq(620_162_338, "/flags/\\draft", "ALL"),
    ),
]


@pytest.mark.parametrize(("text", "expected"), SIMPLE_KEYS)
def test_every_key(text: str, expected: k.SearchKey) -> None:
    assert keys(text) == expected


def test_program_is_an_and_of_its_keys() -> None:
    assert keys("UNDELETED SEEN") == k.And((k.Flag(k.FlagName.DELETED, False), SEEN))


def test_or_chains_are_flattened() -> None:
    """Thunderbird builds long OR chains: they stay one level deep."""
    criteria = keys("OR OR OR FROM a FROM b FROM c FROM d UNDELETED")
    assert isinstance(criteria, k.And)
    [either, undeleted] = criteria.keys
    assert undeleted == k.Flag(k.FlagName.DELETED, present=False)
    assert either == k.Or(tuple(k.Text(k.TextField.FROM, x) for x in (b"a", b"b", b"c", b"d")))


def test_parenthesised_lists_and_not() -> None:
    assert keys("NOT NOT SEEN") == SEEN
    assert keys("(SEEN)") == SEEN
    assert keys("((SEEN DELETED) (ALL))") == k.And((SEEN, DELETED, k.All()))
    assert keys("NOT (SEEN DELETED)") == k.Not(k.And((SEEN, DELETED)))
    assert keys("OR (SEEN) NOT DELETED") == k.Or((SEEN, k.Not(DELETED)))


def test_or_chain_is_flattened_up_to_the_depth_limit() -> None:
    depth = MAX_KEY_DEPTH - 1
    chain = "OR " * depth + " ".join(["SEEN"] * (depth + 1))
    criteria = keys(chain)
    assert isinstance(criteria, k.Or)
    assert len(criteria.keys) == depth + 1


def test_or_chain_beyond_the_depth_limit_is_refused() -> None:
    """Issue 13 item 7: a 5,000-deep chain flattens to one OR, but the SQL for it is too
    deep for SQLite and costly: it is counted as sent, and refused while parsing."""
    chain = "OR " * 5000 + " ".join(["SEEN"] * 5001)
    assert "too deeply nested" in bad(f"t SEARCH {chain}\r\n".encode()).message


def test_charset_and_return_options() -> None:
    command = parse_all_ways(b't UID SEARCH RETURN (MIN count) CHARSET "utf-8" TEXT x\r\n')
    assert command == Search(
        "t",
        k.Text(k.TextField.TEXT, b"x"),
        uid=True,
        charset="UTF-8",
        return_options=("MIN", "COUNT"),
    )
    empty = parse_all_ways(b"t SEARCH RETURN () ALL\r\n")
    assert isinstance(empty, Search)
    assert empty.return_options == ()
    plain = parse_all_ways(b"t SEARCH ALL\r\n")
    assert isinstance(plain, Search)
    assert plain.return_options is None
    assert plain.charset is None


def test_sort() -> None:
    command = parse_all_ways(b"t UID SORT (REVERSE ARRIVAL displayfrom) US-ASCII UNSEEN\r\n")
    assert command == Sort(
        "t",
        (SortCriterion(SortKey.ARRIVAL, True), SortCriterion(SortKey.DISPLAYFROM)),
        "US-ASCII",
        k.Flag(k.FlagName.SEEN, present=False),
        uid=True,
    )
    esort = parse_all_ways(b"t SORT RETURN (MIN MAX) (DATE) UTF-8 ALL\r\n")
    assert isinstance(esort, Sort)
    assert esort.return_options == ("MIN", "MAX")


def test_thread() -> None:
    command = parse_all_ways(b"t THREAD references UTF-8 SINCE 1-Feb-1994\r\n")
    assert command == Thread(
        "t",
        "REFERENCES",
        "UTF-8",
        k.DateKey(k.DateField.INTERNAL, k.DateOp.SINCE, date(1994, 2, 1)),
    )
    uid = parse_all_ways(b"t UID THREAD ORDEREDSUBJECT UTF-8 ALL\r\n")
    assert isinstance(uid, Thread)
    assert uid.uid


INVALID = [
    (b"t SEARCH\r\n", "Expected space"),
    (b"t SEARCH \r\n", "Expected atom"),
    (b"t SEARCH ()\r\n", "Expected atom"),
    (b"t SEARCH (SEEN\r\n", "Expected space"),
    (b"t SEARCH SEEN)\r\n", "Expected space"),
    (b"t SEARCH SEEN  DELETED\r\n", "Expected atom"),
    (b"t SEARCH BOGUS\r\n", "Unknown search key BOGUS"),
    (b"t SEARCH NOT\r\n", "Expected space"),
    (b"t SEARCH OR SEEN\r\n", "Expected space"),
    (b"t SEARCH FROM\r\n", "Expected space"),
    (b"t SEARCH ON 31-Feb-2024\r\n", "Invalid date"),
    (b"t SEARCH ON 1-Foo-2024\r\n", "Invalid month in date"),
    (b'"t SEARCH ON "1-Feb-2024\r\n', "Invalid tag"),
    (b"t SEARCH ON 1-Feb-24\r\n", "Expected date"),
    (b"t SEARCH KEYWORD \\Seen\r\n", "Expected atom"),
    (b"t SEARCH LARGER -1\r\n", "Expected number"),
    (b"t SEARCH OLDER 0\r\n", "Expected a non-zero number"),
    (b"t SEARCH UID 1:*,$\r\n", "Invalid sequence set"),
    (b"t SEARCH 0\r\n", "Invalid sequence set"),
    (b't SEARCH MODSEQ "/x" all 1\r\n', "Invalid MODSEQ entry name"),
    (b't SEARCH MODSEQ "/flags/x" mine 1\r\n', "Invalid MODSEQ entry type"),
    (b"t SEARCH RETURN (PARTIAL 0:10) ALL\r\n", "Invalid partial range"),
    (b"t SEARCH RETURN (PARTIAL -1:10) ALL\r\n", "Invalid partial range"),
    (b"t SEARCH RETURN (PARTIAL) ALL\r\n", "Expected space"),
    (b"t SEARCH RETURN ALL\r\n", 'Expected "("'),
    (b"t SEARCH CHARSET\r\n", "Unknown search key CHARSET"),
    (b"t SORT (SUBJECT) ALL\r\n", "Expected space"),
    (b"t SORT () UTF-8 ALL\r\n", "Empty list"),
    (b"t SORT (BOGUS) UTF-8 ALL\r\n", "Unknown sort key BOGUS"),
    (b"t SORT RETURN (SAVE) (DATE) UTF-8 ALL\r\n", "Unsupported RETURN option SAVE"),
    (b"t THREAD REFERENCES\r\n", "Expected space"),
]


@pytest.mark.parametrize(("data", "message"), INVALID)
def test_invalid(data: bytes, message: str) -> None:
    assert bad(data).message == message


def test_bad_keeps_tag_and_name() -> None:
    command = bad(b"x1 UID SEARCH NOPE\r\n")
    assert (command.tag, command.name) == ("x1", "SEARCH")


def test_parenthesis_nesting_is_limited() -> None:
    deep = b"t SEARCH " + b"(" * 40 + b"SEEN" + b")" * 40 + b"\r\n"
    assert bad(deep).message == "Too deeply nested"
    inside = b"t SEARCH " + b"(" * 10 + b"SEEN" + b")" * 10
    assert parse_command([inside], max_nesting_depth=32) == Search("t", SEEN)


def test_tree_depth_after_flattening_is_limited() -> None:
    """NOT and OR alternating cannot be flattened: their depth is bounded."""
    deep = "NOT OR SEEN " * 100 + "DELETED"
    assert bad(f"t SEARCH {deep}\r\n".encode()).message == "Search program too deeply nested"


def test_esearch_cancelupdate_and_partial() -> None:
    """RFC 7377 §4 ESEARCH IN (...), RFC 5267 §5 CANCELUPDATE, RFC 9394 partial ranges."""
    from roost.imap.wire.commands import CancelUpdate, ESearch, SearchSource

    command = parse_all_ways(
        b't ESEARCH IN (mailboxes ("a" b) subtree-one c personal) RETURN (MIN) UNSEEN\r\n'
    )
    assert isinstance(command, ESearch)
    assert command.sources == (
        SearchSource("MAILBOXES", (b"a", b"b")),
        SearchSource("SUBTREE-ONE", (b"c",)),
        SearchSource("PERSONAL"),
    )
    assert command.return_options == ("MIN",)
    plain = parse_all_ways(b"t ESEARCH ALL\r\n")
    assert isinstance(plain, ESearch) and plain.sources == ()
    assert parse_all_ways(b't CANCELUPDATE "A1" "B2"\r\n') == CancelUpdate("t", ("A1", "B2"))
    search = parse_all_ways(b"t UID SEARCH RETURN (PARTIAL -100:-1 UPDATE) ALL\r\n")
    assert isinstance(search, Search)
    assert search.partial == (-1, -100) and search.return_options == ("PARTIAL", "UPDATE")
    bad(b"t CANCELUPDATE A1\r\n")
    bad(b"t ESEARCH IN (selected) RETURN (SAVE) ALL\r\n")
    bad(b"t SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL\r\n")


def test_replace() -> None:
    """RFC 8508 §6: REPLACE seq-number mailbox append-message; UID REPLACE."""
    from roost.imap.wire.commands import Replace

    command = parse_all_ways(b"t UID REPLACE 7 Drafts (\\Draft) {3+}\r\nabc\r\n")
    assert isinstance(command, Replace)
    assert command.uid and command.sequence == SequenceSet.of(7)
    assert command.mailbox == b"Drafts" and command.message.flags == ("\\Draft",)
    assert command.message.data == b"abc"
    bad(b"t REPLACE 1:2 Drafts {3+}\r\nabc\r\n")


def test_filter_key() -> None:
    """RFC 5466 §4: ``FILTER filter-name``, an atom without "/"; the name as sent."""
    assert keys("FILTER on-the-road") == k.Filter("on-the-road")
    assert keys("NOT FILTER Small SEEN") == k.And((k.Not(k.Filter("Small")), SEEN))
    bad(b"t SEARCH FILTER a/b\r\n")
    bad(b"t SEARCH FILTER\r\n")
