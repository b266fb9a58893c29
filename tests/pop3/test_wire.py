"""The sans-IO POP3 wire: line framing fed whole, byte by byte and with trailing bytes
(STYLE.md §12), the command grammar, the serializer, and message encoding checked
against its size counter on random input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roost.pop3.wire import commands as c
from roost.pop3.wire.message import MessageEncoder, SizeCounter, uidl
from roost.pop3.wire.receiver import Line, LineReceiver, LineTooLong, NeedData
from roost.pop3.wire.responses import (
    Challenge,
    End,
    Err,
    ListLine,
    MessageData,
    Ok,
    serialize,
)

# ---- receiver --------------------------------------------------------------------------


def events(data: bytes, *, step: int | None = None, limit: int = 64) -> list[object]:
    receiver = LineReceiver(max_line_length=limit)
    out: list[object] = []
    pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        receiver.feed(piece)
        while not isinstance(event := receiver.next_event(), NeedData):
            out.append(event)
    return out


@pytest.mark.parametrize("step", [None, 1, 2, 7])
def test_lines_split_anywhere(step: int | None) -> None:
    data = b"USER alice\r\nPASS a b \r\nSTAT\nLIST 1\r\n"
    assert events(data, step=step) == [
        Line(b"USER alice"),
        Line(b"PASS a b "),
        Line(b"STAT"),  # a bare LF ends a line too
        Line(b"LIST 1"),
    ]


@pytest.mark.parametrize("step", [None, 1, 5])
def test_line_too_long_is_reported_once_and_reading_goes_on(step: int | None) -> None:
    data = b"NOOP\r\n" + b"X" * 500 + b"\r\nSTAT\r\n"
    assert events(data, step=step, limit=64) == [
        Line(b"NOOP"),
        LineTooLong(500),
        Line(b"STAT"),
    ]


def test_a_line_of_exactly_the_limit_is_accepted() -> None:
    assert events(b"A" * 64 + b"\r\n", limit=64) == [Line(b"A" * 64)]
    assert events(b"A" * 65 + b"\r\n", limit=64) == [LineTooLong(65)]


def test_one_line_per_event_and_the_rest_stays_buffered() -> None:
    receiver = LineReceiver()
    receiver.feed(b"STLS\r\nUSER mallory\r\n")
    assert receiver.next_event() == Line(b"STLS")
    assert receiver.buffered == len(b"USER mallory\r\n")
    assert receiver.clear_buffer() == len(b"USER mallory\r\n")
    assert receiver.next_event() == NeedData()


def test_long_input_fed_in_small_pieces_is_linear() -> None:
    receiver = LineReceiver(max_line_length=10_000_000)
    for _ in range(200_000):
        receiver.feed(b"x")
        assert receiver.next_event() == NeedData()
    receiver.feed(b"\r\n")
    event = receiver.next_event()
    assert isinstance(event, Line) and len(event.data) == 200_000


# ---- grammar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"user alice", c.User(b"alice")),
        (b"PASS  two  spaces ", c.Pass(b" two  spaces ")),  # RFC 1939 §7: all of it
        (b"STAT", c.Stat()),
        (b"LIST", c.List(None)),
        (b"list 3", c.List(3)),
        (b"LIST 3 ", c.List(3)),
        (b"RETR 1", c.Retr(1)),
        (b"DELE 007", c.Dele(7)),
        (b"TOP 2 0", c.Top(2, 0)),
        (b"UIDL", c.Uidl(None)),
        (b"UIDL 5", c.Uidl(5)),
        (b"NOOP", c.Noop()),
        (b"RSET", c.Rset()),
        (b"QUIT", c.Quit()),
        (b"CAPA", c.Capa()),
        (b"STLS", c.Stls()),
        (b"AUTH", c.Auth(None)),
        (b"AUTH plain", c.Auth("PLAIN")),
        (b"AUTH PLAIN =", c.Auth("PLAIN", b"")),
        (b"AUTH PLAIN AGFsaWNlAHB3", c.Auth("PLAIN", b"\0alice\0pw")),
    ],
)
def test_commands(line: bytes, command: c.Command) -> None:
    assert c.parse_command(line) == command


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"APOP alice 0123456789abcdef", "Unknown command"),
        (b"XYZZY", "Unknown command"),
        (b"\xff\xfe", "Unknown command"),
        (b"", "Unknown command"),
        (b"STAT 1", "STAT: takes no arguments"),
        (b"RETR", "RETR: wrong number of arguments"),
        (b"RETR x", "RETR: invalid number"),
        (b"RETR -1", "RETR: invalid number"),
        (b"RETR +1", "RETR: invalid number"),
        (b"RETR 12345678901", "RETR: invalid number"),
        (b"LIST 1 2", "LIST: wrong number of arguments"),
        (b"TOP 1", "TOP: wrong number of arguments"),
        (b"TOP 1 -1", "TOP: invalid number"),
        (b"USER", "USER: a user name is required"),
        (b"PASS", "PASS: a password is required"),
        (b"AUTH PLAIN !!!", "AUTH: the initial response is not valid base64"),
        (b"AUTH PLAIN a b", "AUTH: wrong number of arguments"),
    ],
)
def test_bad_commands(line: bytes, message: str) -> None:
    bad = c.parse_command(line)
    assert isinstance(bad, c.BadCommand)
    assert bad.message == message


def test_secrets_stay_out_of_reprs() -> None:
    assert "hunter2" not in repr(c.parse_command(b"PASS hunter2"))
    assert "AGFsaWNl" not in repr(c.parse_command(b"AUTH PLAIN AGFsaWNlAHB3"))


# ---- serializer ------------------------------------------------------------------------


def test_status_lines_with_codes() -> None:
    assert serialize(Ok()) == b"+OK\r\n"
    assert serialize(Ok("2 320")) == b"+OK 2 320\r\n"
    assert serialize(Err("In use", "IN-USE")) == b"-ERR [IN-USE] In use\r\n"
    # No text can break the framing, and RFC 2449 §4 caps a response line at 512.
    assert serialize(Err("a\r\nb")) == b"-ERR a  b\r\n"
    assert len(serialize(Err("x" * 1000))) == 512


def test_multi_line_pieces() -> None:
    assert serialize(Challenge(b"Username:")) == b"+ VXNlcm5hbWU6\r\n"
    assert serialize(Challenge(b"")) == b"+ \r\n"
    assert serialize(ListLine(b"1 120")) == b"1 120\r\n"
    assert serialize(ListLine(b".odd")) == b"..odd\r\n"
    assert serialize(MessageData(b"as is")) == b"as is"
    assert serialize(End()) == b".\r\n"


def test_uidl_is_stable_hex_of_uid_and_uidvalidity() -> None:
    assert uidl(0x6B027624, 1) == "000000016B027624"
    assert re.fullmatch(r"[0-9A-F]{16}", uidl(2**32 - 1, 2**32 - 1))


# ---- message encoding ------------------------------------------------------------------


def encode(data: bytes, body_lines: int | None = None, step: int | None = None) -> bytes:
    encoder = MessageEncoder(body_lines)
    out = b""
    pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        out += encoder.feed(piece)
    return out + encoder.finish()


def size_of(data: bytes, step: int | None = None) -> int:
    counter = SizeCounter()
    pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        counter.feed(piece)
    return counter.finish()


def unstuff(encoded: bytes) -> bytes:
    """What a client keeps of a multi-line body: un-stuffed lines, the "." dropped."""
    assert encoded.endswith(b".\r\n")
    body = encoded[:-3]
    lines = body.split(b"\r\n")
    assert lines[-1] == b""
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines[:-1])


def test_encoding_normalises_stuffs_and_terminates() -> None:
    message = b"Subject: x\n.From: y\r\n\r\n.one\nline2\r\n..l3\nend\0nul"
    assert encode(message) == (
        b"Subject: x\r\n..From: y\r\n\r\n..one\r\nline2\r\n...l3\r\nend\x80nul\r\n.\r\n"
    )
    assert size_of(message) == len(unstuff(encode(message)))


def test_empty_message_and_message_without_body() -> None:
    assert encode(b"") == b".\r\n"
    assert size_of(b"") == 0
    assert encode(b"Subject: x") == b"Subject: x\r\n.\r\n"
    assert size_of(b"Subject: x") == 12


def test_top_sends_header_blank_line_and_n_body_lines() -> None:
    message = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.l3\r\n"
    assert encode(message, 0) == b"A: 1\r\nB: 2\r\n\r\n.\r\n"
    assert encode(message, 2) == b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n"
    assert encode(message, 3) == b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n..l3\r\n.\r\n"
    assert encode(message, 99) == encode(message)
    # Bare LF line ends, and a header with no body at all.
    assert encode(b"A: 1\n\nl1\nl2\n", 1) == b"A: 1\r\n\r\nl1\r\n.\r\n"
    assert encode(b"A: 1\nB: 2", 0) == b"A: 1\r\nB: 2\r\n.\r\n"


def test_top_stops_reading_when_it_has_enough() -> None:
    encoder = MessageEncoder(1)
    assert encoder.feed(b"A: 1\r\n\r\nl1\r\nl2") == b"A: 1\r\n\r\nl1\r\n"
    assert encoder.done
    assert encoder.feed(b"more") == b""
    assert encoder.finish() == b".\r\n"


_messages = st.lists(
    st.sampled_from([b"a", b"b", b"\r", b"\n", b"\r\n", b".", b"\0", b"\n\n", b"\r\n\r\n"]),
    max_size=60,
).map(b"".join)


@given(_messages, st.integers(min_value=1, max_value=9))
def test_size_counter_matches_what_is_sent(message: bytes, step: int) -> None:
    """LIST's size is exactly what the client gets after un-stuffing, and neither the
    encoding nor the size depends on how the message is chunked."""
    whole = encode(message)
    assert encode(message, step=step) == whole
    assert size_of(message, step) == size_of(message) == len(unstuff(whole))
    assert b"\0" not in whole
    assert b"\n" not in whole.replace(b"\r\n", b"")  # no bare LF on the wire
    for line in whole.split(b"\r\n")[:-2]:
        assert line != b"."  # a body line can never end the response early


@given(_messages, st.integers(min_value=0, max_value=5), st.integers(min_value=1, max_value=9))
def test_top_is_a_prefix_of_retr_in_whole_lines(message: bytes, lines: int, step: int) -> None:
    top = encode(message, lines, step)
    assert top == encode(message, lines)
    retr = encode(message)
    assert retr.startswith(top[:-3])
    assert top.endswith(b"\r\n.\r\n") or top == b".\r\n"
