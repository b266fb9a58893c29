"""STORE / UID STORE, with UNCHANGEDSINCE."""

from __future__ import annotations

import pytest

from roost.imap.wire.commands import BadCommand, Command, Store, StoreMode
from roost.imap.wire.sequence import STAR, SequenceSet
from tests.unit.test_wire_grammar_helpers import bad, parse_all_ways

ONE = SequenceSet.of(1)
SET = SequenceSet(((2, 4), (7, STAR)))

VALID: list[tuple[bytes, Command]] = [
    (b"a STORE 1 FLAGS (\\Seen)\r\n", Store("a", ONE, StoreMode.REPLACE, False, ("\\Seen",))),
    (b"a STORE 1 FLAGS ()\r\n", Store("a", ONE, StoreMode.REPLACE, False, ())),
    (
        b"a store 2:4,7:* +flags.silent (\\seen $Label1 \\Deleted)\r\n",
        Store("a", SET, StoreMode.ADD, True, ("\\seen", "$Label1", "\\Deleted")),
    ),
    (
        b"a STORE 1 -FLAGS \\Flagged Junk\r\n",
        Store("a", ONE, StoreMode.REMOVE, False, ("\\Flagged", "Junk")),
    ),
    (b"a STORE 1 FLAGS.SILENT \\Draft\r\n", Store("a", ONE, StoreMode.REPLACE, True, ("\\Draft",))),
    (
        b"a STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)\r\n",
        Store("a", ONE, StoreMode.ADD, False, ("\\Seen",), unchangedsince=0),
    ),
    (
        b"a UID STORE 1 (unchangedsince 320162338) -FLAGS.SILENT (\\Seen)\r\n",
        Store("a", ONE, StoreMode.REMOVE, True, ("\\Seen",), uid=True, unchangedsince=320162338),
    ),
    (b"a STORE $ +FLAGS x\r\n", Store("a", SequenceSet.saved(), StoreMode.ADD, False, ("x",))),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid(data: bytes, expected: Command) -> None:
    assert parse_all_ways(data) == expected


INVALID: list[tuple[bytes, str]] = [
    (b"a STORE 1\r\n", "Expected space"),
    (b"a STORE 1 FLAGS\r\n", "Expected space"),
    (b"a STORE 1 FLAGS \r\n", "Expected flag"),
    (b"a STORE 1 FLAGS (\\*)\r\n", "Expected flag"),
    (b"a STORE 1 FLAGS \\*\r\n", "Expected flag"),
    (b"a STORE 1 FLAGS (\\Seen) x\r\n", "Unexpected extra arguments"),
    (b"a STORE 1 FLAGS \\Seen  x\r\n", "Expected flag"),
    (b"a STORE 1 +FLAGS.LOUD (x)\r\n", "Expected FLAGS or FLAGS.SILENT"),
    (b"a STORE 1 *FLAGS (x)\r\n", "Expected atom"),
    (b"a STORE 1 LABELS (x)\r\n", "Expected FLAGS or FLAGS.SILENT"),
    (b"a STORE 1 (UNCHANGEDSINCE) FLAGS (x)\r\n", "Expected space"),
    (b"a STORE 1 (UNCHANGEDSINCE -1) FLAGS (x)\r\n", "Expected number"),
    (b"a STORE 1 (FOO 1) FLAGS (x)\r\n", "Unsupported STORE modifier"),
    (b"a STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) FLAGS (x)\r\n", "Unsupported STORE modifier"),
    (b"a STORE 1 (UNCHANGEDSINCE 1)FLAGS (x)\r\n", "Expected space"),
    (b'a STORE 1 FLAGS ("x")\r\n', "Expected flag"),
    (b"a STORE 0 FLAGS (x)\r\n", "Invalid sequence set"),
]


@pytest.mark.parametrize(("data", "message"), INVALID)
def test_invalid(data: bytes, message: str) -> None:
    assert bad(data) == BadCommand("a", message, "STORE")
