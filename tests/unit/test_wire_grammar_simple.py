"""No-argument commands, LOGIN, AUTHENTICATE, ENABLE, ID, tags and command names."""

from __future__ import annotations

import pytest

from roost.imap.wire.commands import (
    Authenticate,
    BadCommand,
    Capability,
    Check,
    Close,
    Command,
    Enable,
    Expunge,
    Id,
    Idle,
    Login,
    Logout,
    Namespace,
    Noop,
    StartTls,
    Unselect,
)
from roost.imap.wire.grammar import parse_command
from tests.unit.test_wire_grammar_helpers import bad, parse_all_ways

VALID: list[tuple[bytes, Command]] = [
    (b"a CAPABILITY\r\n", Capability("a")),
    (b"a NOOP\r\n", Noop("a")),
    (b"a noop\r\n", Noop("a")),
    (b"a LOGOUT\r\n", Logout("a")),
    (b"a STARTTLS\r\n", StartTls("a")),
    (b"a IDLE\r\n", Idle("a")),
    (b"a CHECK\r\n", Check("a")),
    (b"a Close\r\n", Close("a")),
    (b"a UNSELECT\r\n", Unselect("a")),
    (b"a EXPUNGE\r\n", Expunge("a")),
    (b"a NAMESPACE\r\n", Namespace("a")),
    (b"A001.x] NOOP\n", Noop("A001.x]")),  # bare LF; "]" is an astring-char
    (b"a LOGIN fred secret\r\n", Login("a", b"fred", b"secret")),
    (b'a LOGIN "fr ed" "se\\"c\\\\ret"\r\n', Login("a", b"fr ed", b'se"c\\ret')),
    (b'a LOGIN "" ""\r\n', Login("a", b"", b"")),
    (b"a LOGIN {4}\r\nfred {6}\r\nsecret\r\n", Login("a", b"fred", b"secret")),
    (b"a LOGIN {4+}\r\nfred {6+}\r\nsec\r\nt\r\n", Login("a", b"fred", b"sec\r\nt")),
    (b"a LOGIN {3}\r\nf\x00d x\r\n", Login("a", b"f\x00d", b"x")),
    (
        'a LOGIN "jürgen" "pässword"\r\n'.encode(),
        Login("a", "jürgen".encode(), "pässword".encode()),
    ),
    (b"a AUTHENTICATE PLAIN\r\n", Authenticate("a", "PLAIN", None)),
    (b"a authenticate plain =\r\n", Authenticate("a", "PLAIN", b"")),
    (
        b"a AUTHENTICATE PLAIN AHVzZXIAcGFzcw==\r\n",
        Authenticate("a", "PLAIN", b"\x00user\x00pass"),
    ),
    (b"a AUTHENTICATE XOAUTH2 dXNl\r\n", Authenticate("a", "XOAUTH2", b"use")),
    (b"a ENABLE CONDSTORE\r\n", Enable("a", ("CONDSTORE",))),
    (b"a enable qresync utf8=accept\r\n", Enable("a", ("QRESYNC", "UTF8=ACCEPT"))),
    (b"a ID NIL\r\n", Id("a", None)),
    (b"a ID nil\r\n", Id("a", None)),
    (b"a ID ()\r\n", Id("a", ())),
    (
        b'a ID ("name" "Thunder bird" "version" NIL "os" {5}\r\nLinux)\r\n',
        Id("a", (("name", "Thunder bird"), ("version", None), ("os", "Linux"))),
    ),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid(data: bytes, expected: Command) -> None:
    assert parse_all_ways(data) == expected


INVALID: list[tuple[bytes, BadCommand]] = [
    (b"a NOOP extra\r\n", BadCommand("a", "Unexpected extra arguments", "NOOP")),
    (b"a NOOP \r\n", BadCommand("a", "Unexpected extra arguments", "NOOP")),
    (b"a FROB\r\n", BadCommand("a", "Unknown command")),
    (b"a\r\n", BadCommand("a", "Missing command")),
    (b"a \r\n", BadCommand("a", "Missing command")),
    (b"+ NOOP\r\n", BadCommand("*", "Invalid tag")),
    (b"a+b NOOP\r\n", BadCommand("*", "Invalid tag")),
    (b"* NOOP\r\n", BadCommand("*", "Invalid tag")),
    (b"(a NOOP\r\n", BadCommand("*", "Invalid tag")),
    (b" a NOOP\r\n", BadCommand("*", "Invalid tag")),
    (b"a  NOOP\r\n", BadCommand("a", "Missing command")),
    (b"a LOGIN fred\r\n", BadCommand("a", "Expected space", "LOGIN")),
    (b"a LOGIN fred  secret\r\n", BadCommand("a", "Expected string", "LOGIN")),
    (b"a LOGIN fred secret x\r\n", BadCommand("a", "Unexpected extra arguments", "LOGIN")),
    (b'a LOGIN "fred secret\r\n', BadCommand("a", "Invalid quoted string", "LOGIN")),
    (b'a LOGIN "fr\\ed" x\r\n', BadCommand("a", "Invalid quoted string", "LOGIN")),
    (b'a LOGIN "fr\x00ed" x\r\n', BadCommand("a", "Invalid quoted string", "LOGIN")),
    (b'a LOGIN "fr\red" x\r\n', BadCommand("a", "Invalid quoted string", "LOGIN")),
    (b"a LOGIN fr\xc3\xa9d x\r\n", BadCommand("a", "Expected space", "LOGIN")),
    (b"a LOGIN ~{1}\r\nx y\r\n", BadCommand("a", "Expected space", "LOGIN")),
    (b"a AUTHENTICATE\r\n", BadCommand("a", "Expected space", "AUTHENTICATE")),
    (b"a AUTHENTICATE PLAIN abc\r\n", BadCommand("a", "Invalid base64", "AUTHENTICATE")),
    (b"a AUTHENTICATE PLAIN ab=c\r\n", BadCommand("a", "Invalid base64", "AUTHENTICATE")),
    (b"a AUTHENTICATE PLAIN ====\r\n", BadCommand("a", "Invalid base64", "AUTHENTICATE")),
    (
        b"a AUTHENTICATE PLAIN = x\r\n",
        BadCommand("a", "Unexpected extra arguments", "AUTHENTICATE"),
    ),
    (b"a ENABLE\r\n", BadCommand("a", "Expected space", "ENABLE")),
    (b"a ENABLE \r\n", BadCommand("a", "Expected atom", "ENABLE")),
    (b"a ID\r\n", BadCommand("a", "Expected space", "ID")),
    (b'a ID ("name")\r\n', BadCommand("a", "Expected space", "ID")),
    (b'a ID (name "x")\r\n', BadCommand("a", "Expected string", "ID")),
    (b'a ID ("a" "b") x\r\n', BadCommand("a", "Unexpected extra arguments", "ID")),
    (b"a ID NILS\r\n", BadCommand("a", "Expected NIL", "ID")),
]


@pytest.mark.parametrize(("data", "expected"), INVALID)
def test_invalid(data: bytes, expected: BadCommand) -> None:
    assert bad(data) == expected


def test_id_allows_at_most_30_pairs() -> None:
    pairs = b" ".join(b'"k%d" "v"' % i for i in range(30))
    assert isinstance(parse_all_ways(b"a ID (" + pairs + b")\r\n"), Id)
    too_many = pairs + b' "k30" "v"'
    assert bad(b"a ID (" + too_many + b")\r\n").message == "Too many ID parameters"


def test_parse_command_takes_pieces_and_literals() -> None:
    assert parse_command([b"a LOGIN {4}", b" x"], [b"fred"]) == Login("a", b"fred", b"x")
    assert parse_command([b"a NOOP"]) == Noop("a")


def test_spooled_literal_is_refused_outside_append(tmp_path: object) -> None:
    command = parse_all_ways(
        b"a LOGIN {10}\r\n0123456789 x\r\n", spool_threshold=4, spool_dir=tmp_path
    )
    assert command == BadCommand("a", "Literal too large for this argument", "LOGIN")
