"""APPEND: flags, date-time, literal / literal8 / spooled messages, MULTIAPPEND,
CATENATE (RFC 4469 §5) with literals inside its parenthesised list."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from roost.imap.wire.commands import (
    Append,
    AppendMessage,
    BadCommand,
    Catenate,
    CatText,
    CatUrl,
    Command,
    Literal,
)
from roost.imap.wire.receiver import NeedLiteral
from tests.unit.test_wire_grammar_helpers import bad, events_all_ways, parse_all_ways

CET = timezone(timedelta(hours=1))
DATE = datetime(2026, 11, 2, 9, 5, 7, tzinfo=CET)

VALID: list[tuple[bytes, Command]] = [
    (
        b"a APPEND INBOX {5}\r\nhello\r\n",
        Append("a", b"INBOX", (AppendMessage((), None, b"hello"),)),
    ),
    (b"a APPEND INBOX {0}\r\n\r\n", Append("a", b"INBOX", (AppendMessage((), None, b""),))),
    (
        b"a APPEND INBOX {5+}\r\nhe\r\no\r\n",
        Append("a", b"INBOX", (AppendMessage((), None, b"he\r\no"),)),
    ),
    (
        b"a APPEND Sent (\\Seen $Forwarded) {2}\r\nhi\r\n",
        Append("a", b"Sent", (AppendMessage(("\\Seen", "$Forwarded"), None, b"hi"),)),
    ),
    (
        b'a APPEND Sent () " 2-Nov-2026 09:05:07 +0100" {2}\r\nhi\r\n',
        Append("a", b"Sent", (AppendMessage((), DATE, b"hi"),)),
    ),
    (
        b'a APPEND Sent "02-nov-2026 09:05:07 +0100" {2}\r\nhi\r\n',
        Append("a", b"Sent", (AppendMessage((), DATE, b"hi"),)),
    ),
    (
        b'a APPEND "x y" (\\Draft) "31-Dec-1999 23:59:59 -0830" {2}\r\nhi\r\n',
        Append(
            "a",
            b"x y",
            (
                AppendMessage(
                    ("\\Draft",),
                    datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=8.5))),
                    b"hi",
                ),
            ),
        ),
    ),
    (
        b"a APPEND INBOX ~{3}\r\n\x00\x01\x02\r\n",
        Append("a", b"INBOX", (AppendMessage((), None, b"\x00\x01\x02", binary=True),)),
    ),
    (
        b"a APPEND INBOX ~{3+}\r\n\x00\r\n\r\n",
        Append("a", b"INBOX", (AppendMessage((), None, b"\x00\r\n", binary=True),)),
    ),
    (  # MULTIAPPEND, RFC 3502 §6.3.11
        b'a APPEND INBOX (\\Seen) {2}\r\nhi "02-Nov-2026 09:05:07 +0100" {3+}\r\nyou'
        b" (\\Flagged) ~{1}\r\n!\r\n",
        Append(
            "a",
            b"INBOX",
            (
                AppendMessage(("\\Seen",), None, b"hi"),
                AppendMessage((), DATE, b"you"),
                AppendMessage(("\\Flagged",), None, b"!", binary=True),
            ),
        ),
    ),
    (  # RFC 4469 §5, the first example: URL and TEXT parts, literals inside the list
        b"a APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE "
        b'(URL "/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER" TEXT {4}\r\n\r\n--'
        b' URL "/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME" TEXT {2+}\r\nxy'
        b" URL /Drafts/;UID=30)\r\n",
        Append(
            "a",
            b"Drafts",
            (
                AppendMessage(
                    ("\\Seen", "\\Draft", "$MDNSent"),
                    None,
                    Catenate(
                        (
                            CatUrl(b"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER"),
                            CatText(b"\r\n--"),
                            CatUrl(b"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME"),
                            CatText(b"xy"),
                            CatUrl(b"/Drafts/;UID=30"),
                        )
                    ),
                ),
            ),
        ),
    ),
    (  # MULTIAPPEND with CATENATE (RFC 4469 §3 extends both)
        b"a APPEND INBOX {2}\r\nhi catenate (text {1}\r\n!) (\\Seen) CATENATE (URL {3}\r\n/x;)\r\n",
        Append(
            "a",
            b"INBOX",
            (
                AppendMessage((), None, b"hi"),
                AppendMessage((), None, Catenate((CatText(b"!"),))),
                AppendMessage(("\\Seen",), None, Catenate((CatUrl(b"/x;"),))),
            ),
        ),
    ),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid(data: bytes, expected: Command) -> None:
    assert parse_all_ways(data) == expected


INVALID: list[tuple[bytes, str]] = [
    (b"a APPEND INBOX\r\n", "Expected space"),
    (b"a APPEND INBOX \r\n", "APPEND message must be a literal"),
    (b'a APPEND INBOX "hello"\r\n', "Expected date-time or literal"),
    (b"a APPEND INBOX hello\r\n", "APPEND message must be a literal"),
    (b'a APPEND INBOX "02-Nov-2026 09:05:07 +0100"\r\n', "Expected space"),
    (b'a APPEND INBOX "32-Nov-2026 09:05:07 +0100" {1}\r\nx\r\n', "Invalid date-time"),
    (b'a APPEND INBOX "30-Feb-2026 09:05:07 +0100" {1}\r\nx\r\n', "Invalid date-time"),
    (b'a APPEND INBOX "02-Nox-2026 09:05:07 +0100" {1}\r\nx\r\n', "Invalid month in date-time"),
    (b'a APPEND INBOX "02-Nov-2026 24:05:07 +0100" {1}\r\nx\r\n', "Invalid date-time"),
    (b'a APPEND INBOX "02-Nov-2026 09:05:07 +0160" {1}\r\nx\r\n', "Invalid zone in date-time"),
    (b'a APPEND INBOX "02-Nov-2026 09:05:07 +2400" {1}\r\nx\r\n', "Invalid date-time"),
    (b'a APPEND INBOX "2-Nov-2026 09:05:07 +0100" {1}\r\nx\r\n', "Expected date-time or literal"),
    (b'a APPEND INBOX "02-Nov-2026 09:05:07" {1}\r\nx\r\n', "Expected date-time or literal"),
    (b"a APPEND INBOX (\\*) {1}\r\nx\r\n", "Expected flag"),
    (b"a APPEND INBOX (\\Seen {1}\r\nx\r\n", "Expected flag"),
    (b"a APPEND INBOX {1}\r\nx extra\r\n", "APPEND message must be a literal"),
    (b"a APPEND INBOX {1}\r\nx\x20\r\n", "APPEND message must be a literal"),
    (b"a APPEND INBOX {1}\r\nxy\r\n", "Expected space"),
    (b"a APPEND INBOX CATENATE ()\r\n", "Empty list"),
    (b'a APPEND INBOX CATENATE (TEXT "hi")\r\n', "CATENATE TEXT must be a literal"),
    (b"a APPEND INBOX CATENATE (TEXT ~{1}\r\nx)\r\n", "CATENATE TEXT must be a literal"),
    (b"a APPEND INBOX CATENATE (FILE {1}\r\nx)\r\n", "CATENATE part must be TEXT or URL"),
    (b"a APPEND INBOX CATENATE (URL /x\r\n", 'Expected space or ")"'),
    (b"a APPEND INBOX CATENATE URL /x\r\n", 'Expected "("'),
]


@pytest.mark.parametrize(("data", "message"), INVALID)
def test_invalid(data: bytes, message: str) -> None:
    assert bad(data) == BadCommand("a", message, "APPEND")


def test_sync_literal_asks_for_continuation() -> None:
    events = events_all_ways(b"a APPEND INBOX (\\Seen) {5}\r\nhello\r\n")
    assert events[0] == NeedLiteral(5)
    assert len(events) == 2


def test_big_literal_is_spooled(tmp_path: Path) -> None:
    body = b"From: x\r\n\r\n" + bytes(range(256)) * 40
    data = b"a APPEND INBOX {%d}\r\n" % len(body) + body + b"\r\n"
    command = parse_all_ways(data, spool_threshold=1024, spool_dir=tmp_path)
    assert isinstance(command, Append)
    spooled: object = command.messages[0].data  # materialized by the helper
    assert spooled == ("spooled", body, len(body), False)


def test_big_literal8_is_spooled_as_binary(tmp_path: Path) -> None:
    from roost.imap.wire.receiver import Receiver

    receiver = Receiver(spool_threshold=4, spool_dir=tmp_path)
    receiver.feed(b"a APPEND INBOX ~{10+}\r\n0123456789\r\n")
    command = receiver.next_event()
    assert isinstance(command, Append)
    message = command.messages[0]
    assert isinstance(message.data, Literal)
    assert message.binary and message.data.binary and message.data.size == 10
    assert message.data.path.parent == tmp_path
    assert message.data.path.read_bytes() == b"0123456789"
    receiver.discard_spools()
    assert list(tmp_path.iterdir()) == []
