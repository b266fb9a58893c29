"""FETCH / UID FETCH: macros, every attribute, sections, partials, modifiers, sets."""

from __future__ import annotations

import pytest

from roost.imap.wire.commands import (
    BadCommand,
    BinarySize,
    BodySection,
    Fetch,
    FetchAttribute,
    FetchItem,
    Section,
)
from roost.imap.wire.grammar import parse_command
from roost.imap.wire.sequence import STAR, SequenceSet
from roost.imap.wire.tokenizer import ParseError
from tests.unit.test_wire_grammar_helpers import bad, parse_all_ways

F = FetchItem
ONE = SequenceSet.of(1)


def fetch(atts: str, sequence: SequenceSet = ONE, **kw: object) -> Fetch:
    command = parse_all_ways(f"t FETCH {sequence} {atts}\r\n".encode())
    assert isinstance(command, Fetch), command
    assert command.sequence == sequence
    assert not command.uid
    return command


MACROS = [
    ("ALL", (F.FLAGS, F.INTERNALDATE, F.RFC822_SIZE, F.ENVELOPE)),
    ("fast", (F.FLAGS, F.INTERNALDATE, F.RFC822_SIZE)),
    ("Full", (F.FLAGS, F.INTERNALDATE, F.RFC822_SIZE, F.ENVELOPE, F.BODY)),
]


@pytest.mark.parametrize(("text", "expected"), MACROS)
def test_macros(text: str, expected: tuple[FetchAttribute, ...]) -> None:
    assert fetch(text).attributes == expected


@pytest.mark.parametrize("item", list(FetchItem))
def test_every_simple_item(item: FetchItem) -> None:
    assert fetch(item.value).attributes == (item,)
    assert fetch(f"({item.value.lower()} UID)").attributes == (item, F.UID)


SECTIONS: list[tuple[str, FetchAttribute]] = [
    ("BODY[]", BodySection(Section())),
    ("BODY.PEEK[]", BodySection(Section(), peek=True)),
    ("body[header]", BodySection(Section((), "HEADER"))),
    ("BODY[TEXT]", BodySection(Section((), "TEXT"))),
    ("BODY[HEADER.FIELDS (From To)]", BodySection(Section((), "HEADER.FIELDS", ("From", "To")))),
    (
        'BODY.PEEK[HEADER.FIELDS.NOT ("X-Spam" {4}\r\nDate)]',
        BodySection(Section((), "HEADER.FIELDS.NOT", ("X-Spam", "Date")), peek=True),
    ),
    ("BODY[1]", BodySection(Section((1,)))),
    ("BODY[1.2.30]", BodySection(Section((1, 2, 30)))),
    ("BODY[1.2.HEADER]", BodySection(Section((1, 2), "HEADER"))),
    ("BODY[1.2.TEXT]", BodySection(Section((1, 2), "TEXT"))),
    ("BODY[1.2.MIME]", BodySection(Section((1, 2), "MIME"))),
    ("BODY[1.header.fields (subject)]", BodySection(Section((1,), "HEADER.FIELDS", ("subject",)))),
    ("BODY[]<0.100>", BodySection(Section(), partial=(0, 100))),
    ("BODY.PEEK[1.TEXT]<5.1>", BodySection(Section((1,), "TEXT"), peek=True, partial=(5, 1))),
    (
        "BODY[]<9223372036854775807.9223372036854775807>",
        BodySection(Section(), partial=(2**63 - 1, 2**63 - 1)),
    ),
    ("BINARY[]", BodySection(Section(), binary=True)),
    ("BINARY[1.2]<0.10>", BodySection(Section((1, 2)), partial=(0, 10), binary=True)),
    ("binary.peek[3]", BodySection(Section((3,)), peek=True, binary=True)),
    ("BINARY.SIZE[1.2]", BinarySize((1, 2))),
    ("BINARY.SIZE[]", BinarySize(())),
]


@pytest.mark.parametrize(("text", "expected"), SECTIONS)
def test_sections(text: str, expected: FetchAttribute) -> None:
    assert fetch(text).attributes == (expected,)
    assert fetch(f"(FLAGS {text} UID)").attributes == (F.FLAGS, expected, F.UID)


def test_body_without_section_is_bodystructure_lite() -> None:
    assert fetch("(BODY BODY[])").attributes == (F.BODY, BodySection(Section()))


SETS = [
    ("1", SequenceSet(((1, 1),))),
    ("1:5", SequenceSet(((1, 5),))),
    ("5:1", SequenceSet(((5, 1),))),
    ("*", SequenceSet(((STAR, STAR),))),
    ("5:*", SequenceSet(((5, STAR),))),
    ("1,3:4,*", SequenceSet(((1, 1), (3, 4), (STAR, STAR)))),
    ("4294967295", SequenceSet(((4294967295, 4294967295),))),
    ("$", SequenceSet.saved()),
]


@pytest.mark.parametrize(("text", "expected"), SETS)
def test_sequence_sets(text: str, expected: SequenceSet) -> None:
    command = parse_all_ways(f"t FETCH {text} FLAGS\r\n".encode())
    assert isinstance(command, Fetch)
    assert command.sequence == expected


def test_modifiers() -> None:
    command = parse_all_ways(b"t UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n")
    assert command == Fetch(
        "t", SequenceSet(((1, STAR),)), (F.FLAGS,), uid=True, changedsince=12345
    )
    command = parse_all_ways(b"t UID FETCH 1:* FLAGS (VANISHED changedsince 7)\r\n")
    assert command == Fetch(
        "t", SequenceSet(((1, STAR),)), (F.FLAGS,), uid=True, changedsince=7, vanished=True
    )
    command = parse_all_ways(b"t FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775807)\r\n")
    assert isinstance(command, Fetch) and command.changedsince == 2**63 - 1


def test_uid_fetch() -> None:
    command = parse_all_ways(b"t uid fetch 1:4 (UID FLAGS)\r\n")
    assert command == Fetch("t", SequenceSet(((1, 4),)), (F.UID, F.FLAGS), uid=True)


INVALID: list[tuple[str, str]] = [
    ("FETCH", "Expected space"),
    ("FETCH 1", "Expected space"),
    ("FETCH 1 ", "Expected FETCH attribute"),
    ("FETCH 0 FLAGS", "Invalid sequence set"),
    ("FETCH 1:0 FLAGS", "Invalid sequence set"),
    ("FETCH 01 FLAGS", "Invalid sequence set"),
    ("FETCH 4294967296 FLAGS", "Number out of range"),
    ("FETCH 99999999999 FLAGS", "Invalid sequence set"),
    ("FETCH 1,,2 FLAGS", "Invalid sequence set"),
    ("FETCH 1: FLAGS", "Invalid sequence set"),
    ("FETCH 1:2:3 FLAGS", "Invalid sequence set"),
    ("FETCH 1,$ FLAGS", "Invalid sequence set"),
    ("FETCH -1 FLAGS", "Expected sequence set"),
    ("FETCH 1 ()", "Empty list"),
    ("FETCH 1 (ALL)", "Unknown FETCH attribute"),
    ("FETCH 1 (FLAGS FAST)", "Unknown FETCH attribute"),
    ("FETCH 1 FOO", "Unknown FETCH attribute"),
    ("FETCH 1 X-GM-MSGID", "Unknown FETCH attribute"),
    ("FETCH 1 FLAGS UID", 'Expected "("'),
    ("FETCH 1 (FLAGS  UID)", "Expected FETCH attribute"),
    ("FETCH 1 (FLAGS", 'Expected space or ")"'),
    ("FETCH 1 BODY.PEEK", "Unknown FETCH attribute"),
    ("FETCH 1 BODY[", "Expected section"),
    ("FETCH 1 BODY[HEADER", 'Expected "]"'),
    ("FETCH 1 BODY[MIME]", "Invalid section"),
    ("FETCH 1 BODY[0]", "Invalid part number"),
    ("FETCH 1 BODY[1.0]", "Invalid part number"),
    ("FETCH 1 BODY[01]", "Invalid part number"),
    ("FETCH 1 BODY[1.]", "Invalid section"),
    ("FETCH 1 BODY[.1]", "Invalid section"),
    ("FETCH 1 BODY[1..2]", "Invalid section"),
    ("FETCH 1 BODY[HEADERS]", "Invalid section"),
    ("FETCH 1 BODY[1.FOO]", "Invalid section"),
    ("FETCH 1 BODY[HEADER.FIELDS]", "Expected space"),
    ("FETCH 1 BODY[HEADER.FIELDS ()]", "Empty list"),
    ("FETCH 1 BODY[HEADER.FIELDS (a:b)]", "Invalid header field name"),
    ('FETCH 1 BODY[HEADER.FIELDS ("")]', "Invalid header field name"),
    ("FETCH 1 BODY[TEXT (a)]", 'Expected "]"'),
    ("FETCH 1 BODY[]<0.0>", "Expected a non-zero number"),
    ("FETCH 1 BODY[]<5>", 'Expected "."'),
    ("FETCH 1 BODY[]<9223372036854775808.1>", "Number out of range"),
    ("FETCH 1 BODY[] <0.5>", 'Expected "("'),
    ("FETCH 1 BINARY", 'Expected "["'),
    ("FETCH 1 BINARY[TEXT]", "Invalid part number"),
    ("FETCH 1 BINARY[1.MIME]", "Invalid part number"),
    ("FETCH 1 (BINARY.SIZE[1]<0.1>)", 'Expected space or ")"'),
    ("FETCH 1 FLAGS (CHANGEDSINCE)", "Expected space"),
    ("FETCH 1 FLAGS (CHANGEDSINCE x)", "Expected number"),
    ("FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)", "Unsupported FETCH modifier"),
    ("FETCH 1 FLAGS (FOO)", "Unsupported FETCH modifier"),
    ("FETCH 1 FLAGS ()", "Empty list"),
    ("FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)", "VANISHED needs UID FETCH and CHANGEDSINCE"),
    ("UID FETCH 1 FLAGS (VANISHED)", "VANISHED needs UID FETCH and CHANGEDSINCE"),
    ("FETCH 1 FLAGS (CHANGEDSINCE 1) x", "Unexpected extra arguments"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid(text: str, message: str) -> None:
    assert bad(f"t {text}\r\n".encode()) == BadCommand("t", message, "FETCH")


def test_section_lists_are_nesting_limited() -> None:
    data = b"t FETCH 1 (BODY[HEADER.FIELDS (From)])\r\n"
    assert isinstance(parse_all_ways(data, max_nesting_depth=2), Fetch)
    assert bad(data, max_nesting_depth=1).message == "Too deeply nested"


def test_huge_sequence_set() -> None:
    """A 64 KiB set (as clients send for UID FETCH after a sync) parses, and is kept as
    written; the receiver is fed in small chunks, as from a socket."""
    from roost.imap.wire.receiver import NeedData, Receiver

    numbers = range(1, 20000, 2)
    text = ",".join(f"{n}:{n + 1}" if n % 3 else str(n) for n in numbers).encode()[: 64 * 1024]
    text = text.rstrip(b",:").rsplit(b",", 1)[0]
    data = b"t UID FETCH " + text + b" (UID FLAGS)\r\n"
    receiver = Receiver()
    events = []
    for i in range(0, len(data), 1500):
        receiver.feed(data[i : i + 1500])
        while not isinstance(event := receiver.next_event(), NeedData):
            events.append(event)
    [command] = events
    assert isinstance(command, Fetch)
    assert str(command.sequence).encode() == text
    assert command == parse_command([data[:-2]])


def test_preview_and_its_lazy_modifier() -> None:
    """RFC 8970 §6: PREVIEW [SP "(" preview-mod ")"]; a list after a lone PREVIEW that
    is not LAZY is the FETCH modifiers."""
    from roost.imap.wire.commands import Preview

    assert fetch("PREVIEW").attributes == (Preview(),)
    assert fetch("(UID PREVIEW (LAZY))").attributes == (F.UID, Preview(lazy=True))
    assert fetch("PREVIEW (lazy)").attributes == (Preview(lazy=True),)
    command = fetch("PREVIEW (CHANGEDSINCE 5)")
    assert command.attributes == (Preview(),) and command.changedsince == 5
    bad(b"t FETCH 1 (PREVIEW (LAZY FAST))\r\n")


def test_a_parsed_tail_is_reused_only_where_it_would_parse_the_same() -> None:
    """The cache of parsed tails (mbsync's thousands of ``UID FETCH n (BODY.PEEK[])``)
    gives what parsing gives; a tail refused once is refused again; a tail is not
    reused under a nesting limit it does not fit; UID-ness is part of the key."""
    from roost.imap.wire.grammar import fetch as fetch_grammar
    from roost.imap.wire.tokenizer import Tokenizer

    def parsed(line: bytes, *, uid: bool, depth: int = 32) -> Fetch:
        tokens = Tokenizer([line], max_depth=depth)
        return fetch_grammar.parse_fetch(tokens, "t", uid=uid)

    fetch_grammar._TAILS.clear()
    first = parsed(b" 7 (BODY.PEEK[] UID)", uid=True)
    again = parsed(b" 9 (BODY.PEEK[] UID)", uid=True)
    assert len(fetch_grammar._TAILS) == 1
    assert again.attributes == first.attributes and again.sequence == SequenceSet.of(9)
    deep = b" 1 (BODY.PEEK[HEADER.FIELDS (A B)])"
    parsed(deep, uid=False)
    with pytest.raises(ParseError):
        parsed(deep, uid=False, depth=1)
    vanished = b" 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)"
    assert parsed(vanished, uid=True).vanished
    with pytest.raises(ParseError):  # RFC 7162 §3.2.6: only in UID FETCH
        parsed(vanished, uid=False)
    for _ in range(2):
        with pytest.raises(ParseError):
            parsed(b" 1 (BODY.PEEK[] NOSUCH)", uid=True)


@pytest.mark.parametrize(
    "line",
    [
        b"a1 UID FETCH 5 (BODY.PEEK[])",
        b"a1 uid Fetch 5 (BODY.PEEK[])",
        b"x] UID FETCH 4294967295 (BODY.PEEK[] UID)",
        b"a1 UID FETCH 4294967296 (BODY.PEEK[])",  # out of range
        b"a1 UID FETCH 05 (BODY.PEEK[])",  # a leading zero is no number
        b"a1 UID FETCH 12345678901 (BODY.PEEK[])",
        b"a+1 UID FETCH 5 (BODY.PEEK[])",  # "+" in a tag
        b"a1 UID FETCH 5 (BODY.PEEK[]) extra",
        b"a1 UID FETCH 5 (FLAGS) (CHANGEDSINCE 3 VANISHED)",
        b"a1 UID FETCH 5  (BODY.PEEK[])",
        b"a1 UID FETCH 5:7 (BODY.PEEK[])",
    ],
)
def test_one_uid_fetch_from_the_line_is_what_the_tokenizer_parses(line: bytes) -> None:
    """mbsync's ``tag UID FETCH n <tail>``, read straight from the line once its tail
    is known, is the command the tokenizer makes of it; anything else is left to it."""
    from roost.imap.wire.grammar import fetch as fetch_grammar

    fetch_grammar._TAILS.clear()
    assert fetch_grammar.parse_one_uid_fetch(line, 32) is None  # tail not known yet
    expected = parse_command([line])
    quick = fetch_grammar.parse_one_uid_fetch(line, 32)
    assert quick is None or quick == expected
    assert parse_command([line]) == expected
    ranges = expected.sequence.ranges if isinstance(expected, Fetch) else ()
    one = len(ranges) == 1 and ranges[0][0] == ranges[0][1]
    assert (quick is not None) == one  # the common shape takes the quick path
    assert fetch_grammar.parse_one_uid_fetch(line, 1) is None or expected == parse_command(
        [line], max_nesting_depth=1
    )
