"""The receiver: literals, limits and recovery, raw lines, STARTTLS, spool files."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roost.imap.wire.commands import (
    Append,
    Authenticate,
    BadCommand,
    Fetch,
    Idle,
    Literal,
    Login,
    Noop,
    StartTls,
)
from roost.imap.wire.receiver import (
    LiteralTooLarge,
    NeedData,
    NeedLiteral,
    RawLine,
    Receiver,
    SpoolBudget,
    SpoolFailed,
)
from tests.unit.test_wire_grammar_helpers import collect, events_all_ways, parse_all_ways


def test_events_are_returned_lazily_one_command_at_a_time() -> None:
    receiver = Receiver()
    receiver.feed(b"a NOOP\r\nb NOOP\r\nc NO")
    assert receiver.next_event() == Noop("a")
    assert receiver.next_event() == Noop("b")
    assert receiver.next_event() == NeedData()
    receiver.feed(b"OP\n")
    assert receiver.next_event() == Noop("c")
    assert receiver.next_event() == NeedData()


def test_empty_lines_between_commands_are_ignored() -> None:
    assert events_all_ways(b"\r\n\n\r\na NOOP\r\n") == [Noop("a")]


def test_sync_literal_needs_continuation_once() -> None:
    receiver = Receiver()
    receiver.feed(b"a LOGIN {4}\r\n")
    assert receiver.next_event() == NeedLiteral(4)
    assert receiver.next_event() == NeedData()
    receiver.feed(b"fr")
    assert receiver.next_event() == NeedData()
    receiver.feed(b"ed {0}\r\n")
    assert receiver.next_event() == NeedLiteral(0)
    assert receiver.next_event() == NeedData()
    receiver.feed(b"\r\n")
    assert receiver.next_event() == Login("a", b"fred", b"")


def test_non_sync_literals_produce_no_event() -> None:
    """RFC 7888 LITERAL+: ``{n+}`` is sent without waiting; ``~{n+}`` too."""
    assert events_all_ways(b"a LOGIN {4+}\r\nfred {2+}\r\npw\r\n") == [Login("a", b"fred", b"pw")]


def test_literal_may_hold_line_ends_and_markers() -> None:
    assert parse_all_ways(b"a LOGIN {8}\r\nx {2}\r\n\n pw\r\n") == Login("a", b"x {2}\r\n\n", b"pw")


def test_literal_spooled_over_threshold(tmp_path: Path) -> None:
    receiver = Receiver(spool_threshold=4, spool_dir=tmp_path)
    receiver.feed(b"a APPEND x {4}\r\n")
    assert receiver.next_event() == NeedLiteral(4)
    receiver.feed(b"abcd {5+}\r\nabcde\r\n")
    command = receiver.next_event()
    assert isinstance(command, Append)
    small, big = (m.data for m in command.messages)
    assert small == b"abcd"
    assert isinstance(big, Literal)
    assert big.size == 5 and not big.binary and big.path.read_bytes() == b"abcde"
    receiver.discard_spools()
    assert not big.path.exists()


def test_in_memory_literals_of_one_command_are_bounded(tmp_path: Path) -> None:
    """Past 4 * spool_threshold in memory, even small literals go to disk."""
    groups = b"".join(b" {4+}\r\n%04d" % i for i in range(6))
    receiver = Receiver(spool_threshold=4, spool_dir=tmp_path)
    [command] = collect(receiver, [b"a APPEND x" + groups + b"\r\n"])
    assert isinstance(command, Append)
    kinds = [type(m.data) for m in command.messages]
    assert kinds == [bytes] * 4 + [Literal] * 2
    receiver.close()
    assert list(tmp_path.iterdir()) == []


def test_close_deletes_spools_of_a_partial_command(tmp_path: Path) -> None:
    receiver = Receiver(spool_threshold=4, spool_dir=tmp_path)
    receiver.feed(b"a APPEND x {10+}\r\n01234")
    assert receiver.next_event() == NeedData()
    assert len(list(tmp_path.iterdir())) == 1
    receiver.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_line_too_long_before_its_end(chunk: int) -> None:
    data = b"a LOGIN " + b"x" * 100 + b" y\r\nb NOOP\r\n"
    receiver = Receiver(max_line_length=64)
    events = collect(receiver, [data[i : i + chunk] for i in range(0, len(data), chunk)])
    assert events == [BadCommand("a", "Line too long"), Noop("b")]


def test_line_limit_counts_every_piece_of_a_command() -> None:
    data = b"a LOGIN {2+}\r\nab " + b"x" * 60 + b"\r\nb NOOP\r\n"
    assert events_all_ways(data, max_line_length=64) == [
        BadCommand("a", "Line too long"),
        Noop("b"),
    ]
    assert isinstance(parse_all_ways(data[: -len(b"b NOOP\r\n")], max_line_length=80), Login)


def test_line_exactly_at_the_limit() -> None:
    line = b"a LOGIN " + b"x" * 54 + b" y"
    assert len(line) == 64
    assert parse_all_ways(line + b"\r\n", max_line_length=64) == Login("a", b"x" * 54, b"y")
    assert events_all_ways(line + b"z\r\n", max_line_length=64) == [
        BadCommand("a", "Line too long")
    ]


def test_too_long_line_ending_in_non_sync_literal_skips_that_literal() -> None:
    data = b"a APPEND " + b"x" * 100 + b" {6+}\r\nb NOOP more {1+}\r\n)\r\nc NOOP\r\n"
    assert events_all_ways(data, max_line_length=64) == [
        BadCommand("a", "Line too long"),
        Noop("c"),
    ]


def test_too_long_line_with_unreadable_tag() -> None:
    assert events_all_ways(b"+" * 100 + b"\r\nb NOOP\r\n", max_line_length=64) == [
        BadCommand("*", "Line too long"),
        Noop("b"),
    ]


def test_sync_literal_too_large_drops_the_command() -> None:
    """The client waits for "+" that never comes, gets NO [TOOBIG], sends the next."""
    events = events_all_ways(b"a APPEND x {100}\r\nb NOOP\r\n", max_literal_size=99)
    assert events == [LiteralTooLarge("a", 100, True, 99), Noop("b")]


def test_non_sync_literal_too_large_is_skipped() -> None:
    data = b"a APPEND x (\\Seen) {10+}\r\n0123456789\r\nb NOOP\r\n"
    events = events_all_ways(data, max_literal_size=9)
    assert events == [LiteralTooLarge("a", 10, False, 9), Noop("b")]


def test_absurd_literal_size_is_too_large() -> None:
    data = b"a APPEND x {" + b"9" * 5000 + b"}\r\nb NOOP\r\n"
    [event, noop] = events_all_ways(data, max_line_length=10000)
    assert isinstance(event, LiteralTooLarge) and event.synchronizing and event.tag == "a"
    assert noop == Noop("b")


def test_nesting_limit() -> None:
    deep = b"a SELECT x (X " + b"(" * 10 + b")" * 10 + b")\r\n"
    assert events_all_ways(deep, max_nesting_depth=8) == [
        BadCommand("a", "Too deeply nested", "SELECT")
    ]


def test_raw_line_after_idle_with_pipelined_input() -> None:
    receiver = Receiver()
    receiver.feed(b"a IDLE\r\nDONE\r\nb NOOP\r\n")
    assert receiver.next_event() == Idle("a")
    receiver.expect_raw_line()
    assert receiver.next_event() == RawLine(b"DONE")
    assert receiver.next_event() == Noop("b")


def test_raw_lines_for_authenticate() -> None:
    receiver = Receiver()
    for byte in b"a AUTHENTICATE PLAIN\r\n":
        receiver.feed(bytes([byte]))
    assert receiver.next_event() == Authenticate("a", "PLAIN", None)
    receiver.expect_raw_line()
    assert receiver.next_event() == NeedData()
    receiver.feed(b"AHVzZXIAcGFzcw==\nb NOOP {3}\r\n")
    assert receiver.next_event() == RawLine(b"AHVzZXIAcGFzcw==")
    receiver.expect_raw_line()  # a raw line is never a literal marker
    assert receiver.next_event() == RawLine(b"b NOOP {3}")
    receiver.expect_raw_line()
    receiver.feed(b"\r\n*\r\n")
    assert receiver.next_event() == RawLine(b"")


def test_raw_line_too_long() -> None:
    receiver = Receiver(max_line_length=16)
    receiver.feed(b"a IDLE\r\n" + b"x" * 20)
    assert receiver.next_event() == Idle("a")
    receiver.expect_raw_line()
    assert receiver.next_event() == BadCommand("*", "Line too long")
    receiver.feed(b"xx {3+}\r\nb NOOP\r\n")
    assert receiver.next_event() == Noop("b")


def test_expect_raw_line_refused_mid_command() -> None:
    receiver = Receiver()
    receiver.feed(b"a LOGIN {3}\r\n")
    assert receiver.next_event() == NeedLiteral(3)
    with pytest.raises(RuntimeError):
        receiver.expect_raw_line()


def test_clear_buffer_after_starttls() -> None:
    """RFC 9051 §6.2.1: commands pipelined behind STARTTLS are not run."""
    receiver = Receiver()
    receiver.feed(b"a STARTTLS\r\nb LOGIN x y\r\nc NO")
    assert receiver.next_event() == StartTls("a")
    receiver.clear_buffer()
    assert receiver.next_event() == NeedData()
    receiver.feed(b"d NOOP\r\n")
    assert receiver.next_event() == Noop("d")


def test_clear_buffer_drops_a_partial_command(tmp_path: Path) -> None:
    receiver = Receiver(spool_threshold=2, spool_dir=tmp_path)
    receiver.feed(b"a APPEND x {5}\r\n")
    assert receiver.next_event() == NeedLiteral(5)
    receiver.feed(b"abc")
    assert receiver.next_event() == NeedData()
    receiver.clear_buffer()
    assert list(tmp_path.iterdir()) == []
    receiver.feed(b"b NOOP\r\n")
    assert receiver.next_event() == Noop("b")


def test_spools_of_returned_commands_live_until_discarded(tmp_path: Path) -> None:
    receiver = Receiver(spool_threshold=2, spool_dir=tmp_path)
    receiver.feed(b"a APPEND x {5+}\r\nabcde\r\nb APPEND x {3+}\r\nxyz\r\n")
    first = receiver.next_event()
    second = receiver.next_event()
    assert isinstance(first, Append) and isinstance(second, Append)
    assert len(list(tmp_path.iterdir())) == 2
    receiver.discard_spools()
    assert list(tmp_path.iterdir()) == []


def test_per_command_literal_cap_counts_every_literal() -> None:
    """Before sign-in (limit_literals with a per-command total) LOGIN's two small
    literals fit, three that add up past the total do not."""
    receiver = Receiver()
    receiver.limit_literals(8, 10)
    receiver.feed(b"a LOGIN {4+}\r\nfred {4+}\r\npass\r\n")
    assert receiver.next_event() == Login("a", b"fred", b"pass")
    receiver.feed(b"b LOGIN {6}\r\n")
    assert receiver.next_event() == NeedLiteral(6)
    assert receiver.command_literal_bytes == 6 and receiver.mid_command
    receiver.feed(b"abcdef {6}\r\nc NOOP\r\n")
    assert receiver.next_event() == LiteralTooLarge("b", 6, True, 8)
    assert receiver.next_event() == Noop("c")
    assert not receiver.mid_command and receiver.command_literal_bytes == 0
    receiver.limit_literals(100)  # signed in
    receiver.feed(b"d LOGIN {50+}\r\n" + b"u" * 50 + b" {50+}\r\n" + b"p" * 50 + b"\r\n")
    assert receiver.next_event() == Login("d", b"u" * 50, b"p" * 50)


def test_spool_budget_refuses_before_writing(tmp_path: Path) -> None:
    """A literal that would pass the shared budget is refused: a synchronizing one at
    once (no "+" to send), a non-synchronizing one after its bytes are skipped; no file
    is written, and the budget is given back when spools are deleted."""
    budget = SpoolBudget(10)
    first = Receiver(spool_threshold=2, spool_dir=tmp_path, spool_budget=budget)
    second = Receiver(spool_threshold=2, spool_dir=tmp_path, spool_budget=budget)
    first.feed(b"a APPEND x {8}\r\n")
    assert first.next_event() == NeedLiteral(8)
    assert budget.used == 8 and len(list(tmp_path.iterdir())) == 1
    second.feed(b"b APPEND x {8}\r\n")
    refused = second.next_event()
    assert isinstance(refused, SpoolFailed) and refused.tag == "b" and refused.over_budget
    second.feed(b"c APPEND x {8+}\r\n12345678\r\nd NOOP\r\n")
    refused = second.next_event()
    assert isinstance(refused, SpoolFailed) and refused.tag == "c" and refused.no_space
    assert second.next_event() == Noop("d")
    assert len(list(tmp_path.iterdir())) == 1
    first.feed(b"12345678\r\n")
    assert isinstance(first.next_event(), Append)
    first.discard_spools()
    assert budget.used == 0 and list(tmp_path.iterdir()) == []
    first.feed(b"e APPEND x {8}\r\n")
    assert first.next_event() == NeedLiteral(8)
    first.close()  # an abandoned command gives its share back too
    assert budget.used == 0


def test_spooled_literal_notes_a_nul_unless_literal8(tmp_path: Path) -> None:
    receiver = Receiver(spool_threshold=2, spool_dir=tmp_path)
    receiver.feed(b"a APPEND x {5+}\r\nab\x00cd ~{5+}\r\nab\x00cd {5+}\r\nabcde\r\n")
    command = receiver.next_event()
    assert isinstance(command, Append)
    flags = [(m.data.binary, m.data.contains_nul) for m in command.messages]  # type: ignore[union-attr]
    assert flags == [(False, True), (True, False), (False, False)]
    receiver.discard_spools()


def test_long_pipeline_is_consumed_in_linear_time() -> None:
    """Many pipelined commands in one buffer: each is found from the last position."""
    receiver = Receiver()
    receiver.feed(b"".join(b"t%d UID FETCH 1:* (FLAGS)\r\n" % i for i in range(5000)))
    count = 0
    while isinstance(event := receiver.next_event(), Fetch):
        count += 1
    assert count == 5000 and event == NeedData()


# ---- fuzzing ------------------------------------------------------------------------

FRAGMENTS = [
    b"a ",
    b"b1 ",
    b"UID ",
    b"FETCH ",
    b"APPEND ",
    b"LOGIN ",
    b"SELECT ",
    b"LIST ",
    b"STORE ",
    b"1:*,3 ",
    b"BODY[HEADER.FIELDS (a)]<0.5>",
    b"(",
    b")",
    b" ",
    b"\r\n",
    b"\n",
    b"\r",
    b'"',
    b"\\",
    b"{3}\r\n",
    b"{2+}\r\n",
    b"~{1}\r\n",
    b"{99}\r\n",
    b"{999+}\r\n",
    b"x" * 40,
    b"\x00",
    b"\xff",
    b"NIL",
    b"%",
    b"*",
    b"$",
    b"<",
    b"[",
]


def _drain(receiver: Receiver, chunks: list[bytes]) -> None:
    for chunk in chunks:
        receiver.feed(chunk)
        for _ in range(len(chunk) + 2):  # each event consumes input, so this is enough
            event = receiver.next_event()
            if isinstance(event, NeedData):
                break
            if isinstance(event, RawLine):
                continue
            if isinstance(event, Idle):
                receiver.expect_raw_line()
        else:
            raise AssertionError("receiver produced events without consuming input")


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_random_bytes_never_raise(tmp_path: Path, data: bytes, cuts: list[int]) -> None:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    chunks = [data[a:b] for a, b in pairwise(points)]
    receiver = Receiver(
        max_line_length=64, max_literal_size=64, spool_threshold=4, spool_dir=tmp_path
    )
    _drain(receiver, chunks)
    receiver.close()
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    parts=st.lists(st.sampled_from(FRAGMENTS), max_size=30),
    chunk=st.integers(1, 50),
)
def test_imap_like_fragments_never_raise(tmp_path: Path, parts: list[bytes], chunk: int) -> None:
    data = b"".join(parts)
    receiver = Receiver(
        max_line_length=100, max_literal_size=100, spool_threshold=2, spool_dir=tmp_path
    )
    _drain(receiver, [data[i : i + chunk] for i in range(0, len(data), chunk)])
    receiver.close()
    assert list(tmp_path.iterdir()) == []
