"""The ManageSieve receiver (RFC 5804 §4): the same commands whether the bytes arrive
whole, one at a time or with more behind them; literals refused by their announced size."""

from __future__ import annotations

import pytest

from roost.managesieve.wire import (
    Atom,
    BadCommand,
    Command,
    Event,
    LiteralRefused,
    NeedData,
    Number,
    Receiver,
    String,
    quoted,
    response,
)

CASES = [
    (
        b'PUTSCRIPT "main" {5+}\r\nkeep;\r\n',
        Command("PUTSCRIPT", (String(b"main"), String(b"keep;"))),
    ),
    (b'havespace "a\\"b" 42\r\n', Command("HAVESPACE", (String(b'a"b'), Number(42)))),
    (b"LISTSCRIPTS\n", Command("LISTSCRIPTS", ())),
    (
        b'AUTHENTICATE "PLAIN" {4}\r\nAAAA\r\n',
        Command("AUTHENTICATE", (String(b"PLAIN"), String(b"AAAA"))),
    ),
    (b'"c2FzbA=="\r\n', Command("", (String(b"c2FzbA=="),))),
    (b"{3+}\r\nabc\r\n", Command("", (String(b"abc"),))),
    (b'RENAMESCRIPT {1+}\r\na "b"\r\n', Command("RENAMESCRIPT", (String(b"a"), String(b"b")))),
]


def events(receiver: Receiver, data: bytes, step: int) -> list[Event]:
    out: list[Event] = []
    for start in range(0, len(data), step):
        receiver.feed(data[start : start + step])
        while not isinstance(event := receiver.next_event(), NeedData):
            out.append(event)
    return out


@pytest.mark.parametrize(("data", "expected"), CASES)
@pytest.mark.parametrize("step", [1, 2, 7, 1000])
def test_split_anywhere(data: bytes, expected: Command, step: int) -> None:
    assert events(Receiver(), data + b"NOOP\r\n", step) == [expected, Command("NOOP", ())]


def test_script_literal_refused_before_reading_and_skipped() -> None:
    receiver = Receiver(max_script_literal=10, skip_limit=100)
    receiver.feed(b'PUTSCRIPT "x" {50+}\r\n')
    assert receiver.next_event() == LiteralRefused("PUTSCRIPT", 50, close=False)
    got = events(receiver, b"#" * 50 + b"\r\nNOOP\r\n", 3)
    assert got == [Command("NOOP", ())]


def test_huge_literal_means_close() -> None:
    receiver = Receiver(max_script_literal=10, skip_limit=100)
    receiver.feed(b'PUTSCRIPT "x" {104857600+}\r\n')
    assert receiver.next_event() == LiteralRefused("PUTSCRIPT", 104857600, close=True)


def test_other_literals_have_their_own_limit() -> None:
    receiver = Receiver(max_literal=8, max_script_literal=1000)
    receiver.feed(b"GETSCRIPT {9+}\r\n")
    assert receiver.next_event() == LiteralRefused("GETSCRIPT", 9, close=False)


def test_bad_syntax_and_long_lines() -> None:
    receiver = Receiver()
    receiver.feed(b'PUTSCRIPT "open\r\n')
    assert isinstance(receiver.next_event(), BadCommand)
    receiver.feed(b"X" * 9000)
    assert receiver.next_event() == BadCommand("line too long")
    receiver.feed(b"rest of it\r\nNOOP\r\n")
    assert receiver.next_event() == Command("NOOP", ())


def test_atoms_are_upper_case() -> None:
    receiver = Receiver()
    receiver.feed(b"noop\r\n")
    assert receiver.next_event() == Command("NOOP", ())
    assert Atom("X") != String(b"X")


def test_responses() -> None:
    assert response("OK") == b"OK\r\n"
    assert response("NO", "QUOTA/MAXSIZE", "too big") == b'NO (QUOTA/MAXSIZE) "too big"\r\n'
    assert quoted('a"b') == b'{3}\r\na"b'
    assert quoted("line\r\nbreak") == b"{11}\r\nline\r\nbreak"
