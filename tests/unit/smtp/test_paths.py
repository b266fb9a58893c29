"""RFC 5321 §4.1.2 paths: quoted and UTF-8 local parts, literals, source routes."""

from __future__ import annotations

import pytest

from roost.smtp import Mailbox, MailFrom, RcptTo, Rejected, replies
from roost.smtp.commands import parse_command
from roost.smtp.paths import parse_path
from roost.smtp.replies import Reply
from tests.unit.smtp.helpers import run_all_ways


@pytest.mark.parametrize(
    ("text", "mailbox"),
    [
        ("<a.b@x.example>", Mailbox("a.b", "x.example")),
        ('<"john doe"@x.example>', Mailbox("john doe", "x.example")),
        ('<"a\\"b\\\\c"@x>', Mailbox('a"b\\c', "x")),
        ("<@r1.example,@r2.example:u@x>", Mailbox("u", "x")),
        ("<u@[192.0.2.1]>", Mailbox("u", "[192.0.2.1]")),
        ("<u@[IPv6:2001:db8::1]>", Mailbox("u", "[IPv6:2001:db8::1]")),
        ("<Postmaster>", Mailbox("Postmaster", "")),
        ("<пользователь@пример.рф>", Mailbox("пользователь", "пример.рф")),
    ],
)
def test_valid_paths(text: str, mailbox: Mailbox) -> None:
    assert parse_path(text, allow_null=False) == (mailbox, "")


@pytest.mark.parametrize(
    "text",
    ["<a@>", "<@x>", "<a..b@x>", "<a@-x>", "<a@[300.1.1.1]>", "a@x", "<a b@x>", "<u>", "<>"],
)
def test_invalid_paths(text: str) -> None:
    assert isinstance(parse_path(text, allow_null=False), Reply)


def test_quoted_local_part_round_trips() -> None:
    assert str(Mailbox("john doe", "x")) == '"john doe"@x'
    assert str(Mailbox("a.b", "x")) == "a.b@x"


def test_verbs_case_insensitive_and_null_sender() -> None:
    assert parse_command(b"mail from:<> size=10") == MailFrom(
        None,
        parse_command(b"MAIL FROM:<> SIZE=10").params,  # type: ignore[union-attr]
    )
    assert isinstance(parse_command(b"rcpt to:<a@x>"), RcptTo)


def test_utf8_needs_smtputf8() -> None:
    hello = b"LHLO c\r\n"
    events, _, _ = run_all_ways(hello + "MAIL FROM:<ä@x>\r\n".encode())
    assert events[-1] == Rejected(replies.NON_ASCII_WITHOUT_SMTPUTF8)
    events, _, _ = run_all_ways(hello + b"MAIL FROM:<a@x>\r\n" + "RCPT TO:<ü@y>\r\n".encode())
    assert events[-1] == Rejected(replies.NON_ASCII_WITHOUT_SMTPUTF8)
    data = hello + 'MAIL FROM:<ä@x> SMTPUTF8\r\nRCPT TO:<"ü x"@ÿ.example>\r\n'.encode()
    events, _, _ = run_all_ways(data)
    assert events[-1] == RcptTo(Mailbox("ü x", "ÿ.example"))


def test_unknown_parameter_555() -> None:
    events, _, _ = run_all_ways(b"LHLO c\r\nMAIL FROM:<a@x> FOO=1\r\n")
    assert events[-1] == Rejected(replies.UNKNOWN_PARAMETER)
