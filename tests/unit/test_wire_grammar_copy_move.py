"""COPY, MOVE, the UID prefix and UID EXPUNGE (SEARCH: test_search_grammar.py)."""

from __future__ import annotations

import pytest

from roost.imap.wire.commands import BadCommand, Command, Copy, Expunge, Move
from roost.imap.wire.sequence import STAR, SequenceSet
from tests.unit.test_wire_grammar_helpers import bad, parse_all_ways

SET = SequenceSet(((1, 3), (5, 5)))

VALID: list[tuple[bytes, Command]] = [
    (b"a COPY 1:3,5 Trash\r\n", Copy("a", SET, b"Trash")),
    (b'a copy 1:3,5 "Deleted Items"\r\n', Copy("a", SET, b"Deleted Items")),
    (b"a MOVE 1:3,5 {4}\r\nJunk\r\n", Move("a", SET, b"Junk")),
    (b"a UID COPY 1:3,5 Trash\r\n", Copy("a", SET, b"Trash", uid=True)),
    (b"a uid move 1:3,5 Trash\r\n", Move("a", SET, b"Trash", uid=True)),
    (b"a MOVE $ Trash\r\n", Move("a", SequenceSet.saved(), b"Trash")),
    (b"a UID EXPUNGE 3000:*\r\n", Expunge("a", SequenceSet(((3000, STAR),)))),
    (b"a EXPUNGE\r\n", Expunge("a")),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid(data: bytes, expected: Command) -> None:
    assert parse_all_ways(data) == expected


INVALID: list[tuple[bytes, BadCommand]] = [
    (b"a COPY 1\r\n", BadCommand("a", "Expected space", "COPY")),
    (b"a COPY 1 \r\n", BadCommand("a", "Expected string", "COPY")),
    (b"a COPY x Trash\r\n", BadCommand("a", "Expected sequence set", "COPY")),
    (b"a MOVE 1 Trash x\r\n", BadCommand("a", "Unexpected extra arguments", "MOVE")),
    (b"a UID MOVE 1 Trash x\r\n", BadCommand("a", "Unexpected extra arguments", "MOVE")),
    (b"a UID EXPUNGE\r\n", BadCommand("a", "Expected space", "EXPUNGE")),
    (b"a UID EXPUNGE 1 2\r\n", BadCommand("a", "Unexpected extra arguments", "EXPUNGE")),
    (b"a EXPUNGE 1:3\r\n", BadCommand("a", "Unexpected extra arguments", "EXPUNGE")),
    (b"a UID\r\n", BadCommand("a", "Missing command after UID", "UID")),
    (b"a UID NOOP\r\n", BadCommand("a", "Unknown command")),
    (b"a UID CLOSE\r\n", BadCommand("a", "Unknown command")),
    (b"a UID SEARCH\r\n", BadCommand("a", "Expected space", "SEARCH")),
]


@pytest.mark.parametrize(("data", "expected"), INVALID)
def test_invalid(data: bytes, expected: BadCommand) -> None:
    assert bad(data) == expected
