"""The tokenizer's lexical classes, literal pieces, limits and helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.imap.wire.commands import BadCommand, Command, Literal
from roost.imap.wire.grammar import parse_command
from roost.imap.wire.sequence import STAR, SequenceSet
from roost.imap.wire.tokenizer import (
    Atom,
    ParseError,
    Tokenizer,
    literal_marker,
    read_tag_prefix,
)


def tokens(text: bytes, *literals: bytes | Literal, depth: int = 32) -> Tokenizer:
    """A tokenizer over ``text`` where "\\0L" stands for each literal's place."""
    pieces = text.split(b"\0L")
    return Tokenizer(pieces, literals, max_depth=depth)


def test_quoted_strings() -> None:
    assert tokens(b'"a\\"b\\\\c"').read_quoted() == b'a"b\\c'
    assert tokens(b'""').read_quoted() == b""
    assert tokens('"grüße"'.encode()).read_quoted() == "grüße".encode()
    for bad in (b'"a', b'"a\\b"', b'"a\rb"', b'"a\nb"', b'"a\x00b"', b"a"):
        with pytest.raises(ParseError):
            tokens(bad).read_quoted()


def test_quoted_string_is_read_in_linear_time() -> None:
    text = b'"' + b'x\\"' * 50_000 + b'"'
    assert tokens(text).read_quoted() == b'x"' * 50_000


def test_atoms_and_astrings() -> None:
    t = tokens(b"abc]d [Gmail]/x")
    assert t.read_atom() == b"abc"
    with pytest.raises(ParseError):
        t.read_atom()  # "]" is not an ATOM-CHAR
    assert t.read_astring() == b"]d"
    t.sp()
    assert t.read_astring() == b"[Gmail]/x"
    assert t.at_end()
    assert tokens(b"%a*").read_list_mailbox() == b"%a*"
    with pytest.raises(ParseError):
        tokens(b"%a").read_astring()


def test_literals_move_to_the_next_piece() -> None:
    t = tokens(b"{3}\0L {2+}\0L ~{1}\0L", b"abc", b"de", b"\x00")
    assert t.read_string() == b"abc"
    t.sp()
    assert t.read_astring() == b"de"
    t.sp()
    assert t.at_literal()
    assert t.read_literal() == (b"\x00", True)
    assert t.at_end()


def test_literal8_and_spooled_literals_are_not_strings(tmp_path: Path) -> None:
    with pytest.raises(ParseError):
        tokens(b"~{1}\0L", b"x").read_string()
    spooled = Literal(tmp_path / "x", 10)
    with pytest.raises(ParseError, match="Literal too large"):
        tokens(b"{10}\0L", spooled).read_string()
    assert tokens(b"{10}\0L", spooled).read_literal() == (spooled, False)


def test_literal_marker_must_end_its_piece() -> None:
    with pytest.raises(ParseError):
        tokens(b"{3} x").read_string()


def test_nstring_and_nil() -> None:
    assert tokens(b"NIL").read_nstring() is None
    assert tokens(b"nil").read_nstring() is None
    assert tokens(b'"NIL"').read_nstring() == b"NIL"
    with pytest.raises(ParseError):
        tokens(b"NILS").read_nstring()
    with pytest.raises(ParseError):
        tokens(b"x").read_nstring()


def test_numbers() -> None:
    assert tokens(b"4294967295").read_number() == 4294967295
    assert tokens(b"0").read_number() == 0
    with pytest.raises(ParseError, match="non-zero"):
        tokens(b"0").read_number(nonzero=True)
    with pytest.raises(ParseError, match="out of range"):
        tokens(b"4294967296").read_number()
    with pytest.raises(ParseError, match="out of range"):
        tokens(b"9" * 10_000).read_number()  # no int() of a huge digit string


def test_flags() -> None:
    t = tokens(b"(\\Seen $Junk \\*)")
    t.open_list()
    assert t.read_flag() == "\\Seen"
    t.sp()
    assert t.read_flag() == "$Junk"
    t.sp()
    with pytest.raises(ParseError):
        t.read_flag()
    assert tokens(b"(\\Answered foo)").read_flag_list() == ("\\Answered", "foo")
    assert tokens(b"()").read_flag_list() == ()


def test_generic_values_and_nesting_limit() -> None:
    assert tokens(b'(a "b" (\\c 1:*) ())').read_value() == (
        Atom(b"a"),
        b"b",
        (Atom(b"\\c"), Atom(b"1:*")),
        (),
    )
    assert tokens(b"((()))", depth=3).read_value() == (((),),)
    with pytest.raises(ParseError, match="Too deeply nested"):
        tokens(b"((()))", depth=2).read_value()
    with pytest.raises(ParseError, match="Too deeply nested"):
        tokens(b"(" * 100_000 + b")" * 100_000).read_value()  # no RecursionError


def test_sequence_sets() -> None:
    assert tokens(b"1,3:4,*,7:*").read_sequence_set() == SequenceSet(
        ((1, 1), (3, 4), (STAR, STAR), (7, STAR))
    )
    assert tokens(b"$").read_sequence_set() == SequenceSet.saved()
    for bad in (b"0", b"1:0", b"$$", b"1,", b",1", b"*:", b"1:2:3", b"x", b"00001"):
        with pytest.raises(ParseError):
            tokens(bad).read_sequence_set()


def test_partial() -> None:
    assert tokens(b"<0.1>").read_partial() == (0, 1)
    for bad in (b"<0.0>", b"<1>", b"<a.1>", b"<0.1", b"0.1>"):
        with pytest.raises(ParseError):
            tokens(bad).read_partial()


def test_read_list_reports_missing_separator() -> None:
    t = tokens(b"(a b")
    with pytest.raises(ParseError, match='Expected space or "\\)"'):
        t.read_list(t.read_atom)
    t = tokens(b"()")
    with pytest.raises(ParseError, match="Empty list"):
        t.read_list(t.read_atom, allow_empty=False)


def test_literal_marker() -> None:
    assert literal_marker(b"a LOGIN {5}") == (5, True, False)
    assert literal_marker(b"a LOGIN {5+}") == (5, False, False)
    assert literal_marker(b"a APPEND x ~{12}") == (12, True, True)
    assert literal_marker(b"~{0+}") == (0, False, True)
    assert literal_marker(b"{" + b"1" * 40 + b"}")[0] > 10**20  # type: ignore[index]
    for line in (b"a NOOP", b"{}", b"{+}", b"{5", b"{x}", b"}", b"{5}x", b"{-5}", b"{5++}"):
        assert literal_marker(line) is None


def test_read_tag_prefix() -> None:
    assert read_tag_prefix(b"a1 LOGIN") == "a1"
    assert read_tag_prefix(b"a1") == "*"  # a tag must be followed by SP
    assert read_tag_prefix(b"+ x") == "*"
    assert read_tag_prefix(b"a+ x") == "*"
    assert read_tag_prefix(b"") == "*"


def test_tokenizer_needs_one_piece_more_than_literals() -> None:
    with pytest.raises(ValueError):
        Tokenizer([b"a"], [b"x"])


@given(st.binary(max_size=300))
def test_parse_command_never_raises(data: bytes) -> None:
    command = parse_command([data])
    assert isinstance(command, Command)
    if not isinstance(command, BadCommand):
        assert command.tag


@given(
    st.lists(
        st.sampled_from(
            [
                b"a ",
                b"FETCH",
                b"UID",
                b"APPEND",
                b"LIST",
                b"STORE",
                b"SELECT",
                b"ID",
                b" ",
                b"(",
                b")",
                b'"',
                b"\\",
                b"1:*",
                b"BODY[",
                b"]",
                b"<0.1>",
                b"NIL",
                b"{1}",
                b"~{1}",
                b"HEADER.FIELDS",
                b"1.MIME",
                b"(CHANGEDSINCE 1)",
                b"\\Seen",
                b"+FLAGS",
                b"RETURN",
                b"STATUS",
                b"AUTHENTICATE",
                b"=",
                b"LOGIN",
                b"x",
            ]
        ),
        max_size=25,
    )
)
def test_parse_command_never_raises_on_imap_like_input(parts: list[bytes]) -> None:
    text = b"".join(parts)
    pieces = text.split(b"{1}")
    literals = [b"x"] * (len(pieces) - 1)
    pieces = [p + b"{1}" for p in pieces[:-1]] + [pieces[-1]]
    assert isinstance(parse_command(pieces, literals), Command)
