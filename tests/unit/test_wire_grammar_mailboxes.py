"""SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST, LSUB, NAMESPACE, STATUS."""

from __future__ import annotations

import pytest

from roost.imap.wire.commands import (
    BadCommand,
    Command,
    Create,
    Delete,
    List,
    Lsub,
    Rename,
    Select,
    Status,
    Subscribe,
    Unsubscribe,
)
from tests.unit.test_wire_grammar_helpers import bad, parse_all_ways

VALID: list[tuple[bytes, Command]] = [
    (b"a SELECT INBOX\r\n", Select("a", b"INBOX", readonly=False)),
    (b"a select inbox\r\n", Select("a", b"inbox", readonly=False)),
    (b"a EXAMINE Archive/2024\r\n", Select("a", b"Archive/2024", readonly=True)),
    (b"a SELECT [Gmail]/Sent\r\n", Select("a", b"[Gmail]/Sent", readonly=False)),
    (
        b'a SELECT "My Box" (CONDSTORE)\r\n',
        Select("a", b"My Box", readonly=False, condstore=True),
    ),
    (b"a EXAMINE x (condstore)\r\n", Select("a", b"x", readonly=True, condstore=True)),
    (b'a SELECT {5}\r\nIN"BX\r\n', Select("a", b'IN"BX', readonly=False)),
    ('a SELECT "Entwürfe"\r\n'.encode(), Select("a", "Entwürfe".encode(), readonly=False)),
    (b"a CREATE foo/bar\r\n", Create("a", b"foo/bar")),
    (b"a CREATE Sent (USE (\\Sent))\r\n", Create("a", b"Sent", ("\\Sent",))),
    (
        b"a CREATE x (use (\\Archive \\junk))\r\n",
        Create("a", b"x", ("\\Archive", "\\junk")),
    ),
    (b"a CREATE x (USE ())\r\n", Create("a", b"x", ())),
    (b"a DELETE foo\r\n", Delete("a", b"foo")),
    (b"a SUBSCRIBE foo\r\n", Subscribe("a", b"foo")),
    (b"a UNSUBSCRIBE foo\r\n", Unsubscribe("a", b"foo")),
    (b'a RENAME old "new one"\r\n', Rename("a", b"old", b"new one")),
    (b'a LIST "" *\r\n', List("a", b"", (b"*",))),
    (b'a LIST "" ""\r\n', List("a", b"", (b"",))),
    (b"a list ~/Mail/ %/x*\r\n", List("a", b"~/Mail/", (b"%/x*",))),
    (b'a LIST "" {1}\r\n%\r\n', List("a", b"", (b"%",))),
    (b'a LIST () "" %\r\n', List("a", b"", (b"%",), extended=True)),
    (
        b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" (INBOX Sent*)\r\n',
        List(
            "a",
            b"",
            (b"INBOX", b"Sent*"),
            selection=("SUBSCRIBED", "RECURSIVEMATCH"),
            extended=True,
        ),
    ),
    (
        b'a LIST (special-use remote) "" *\r\n',
        List("a", b"", (b"*",), selection=("SPECIAL-USE", "REMOTE"), extended=True),
    ),
    (b'a LIST "" (a "b c")\r\n', List("a", b"", (b"a", b"b c"), extended=True)),
    (
        b'a LIST "" % RETURN (CHILDREN SUBSCRIBED SPECIAL-USE)\r\n',
        List(
            "a",
            b"",
            (b"%",),
            return_options=("CHILDREN", "SUBSCRIBED", "SPECIAL-USE"),
            extended=True,
        ),
    ),
    (b'a LIST "" % RETURN ()\r\n', List("a", b"", (b"%",), extended=True)),
    (
        b'a LIST "" % return (status (messages UNSEEN))\r\n',
        List(
            "a",
            b"",
            (b"%",),
            return_options=("STATUS",),
            status_items=("MESSAGES", "UNSEEN"),
            extended=True,
        ),
    ),
    (b'a LSUB "" *\r\n', Lsub("a", b"", b"*")),
    (b"a LSUB foo/ %\r\n", Lsub("a", b"foo/", b"%")),
    (b"a STATUS INBOX (MESSAGES)\r\n", Status("a", b"INBOX", ("MESSAGES",))),
    (
        b"a STATUS x (messages recent uidnext uidvalidity unseen deleted size highestmodseq"
        b" appendlimit mailboxid)\r\n",
        Status(
            "a",
            b"x",
            (
                "MESSAGES",
                "RECENT",
                "UIDNEXT",
                "UIDVALIDITY",
                "UNSEEN",
                "DELETED",
                "SIZE",
                "HIGHESTMODSEQ",
                "APPENDLIMIT",
                "MAILBOXID",
            ),
        ),
    ),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid(data: bytes, expected: Command) -> None:
    assert parse_all_ways(data) == expected


INVALID: list[tuple[bytes, str, str]] = [
    (b"a SELECT\r\n", "SELECT", "Expected space"),
    (b"a SELECT a b\r\n", "SELECT", 'Expected "("'),
    (b"a SELECT x ()\r\n", "SELECT", "Empty list"),
    (b"a SELECT x (QRESYNC)\r\n", "SELECT", "Unsupported SELECT parameter"),
    (b"a SELECT x (QRESYNC (0 2))\r\n", "SELECT", "Number must not be zero"),
    (b"a SELECT x (QRESYNC (1 2 1:*))\r\n", "SELECT", "Invalid sequence set in QRESYNC"),
    (b"a SELECT x (QRESYNC (1 2 1:5 (1:2)))\r\n", "SELECT", "Invalid QRESYNC sequence match data"),
    (b'a SELECT x ("CONDSTORE")\r\n', "SELECT", "Unsupported SELECT parameter"),
    (b"a SELECT x (CONDSTORE) y\r\n", "SELECT", "Unexpected extra arguments"),
    (b"a EXAMINE a*\r\n", "EXAMINE", "Expected space"),
    (b"a SELECT caf\xc3\xa9\r\n", "SELECT", "Expected space"),
    (b"a CREATE\r\n", "CREATE", "Expected space"),
    (b"a CREATE x (FOO)\r\n", "CREATE", "Unsupported CREATE parameter"),
    (b"a CREATE x (USE (Sent))\r\n", "CREATE", "Expected special-use attribute"),
    (b"a CREATE x (USE \\Sent)\r\n", "CREATE", 'Expected "("'),
    (b"a DELETE\r\n", "DELETE", "Expected space"),
    (b"a DELETE a b\r\n", "DELETE", "Unexpected extra arguments"),
    (b"a RENAME a\r\n", "RENAME", "Expected space"),
    (b"a RENAME a b c\r\n", "RENAME", "Unexpected extra arguments"),
    (b"a SUBSCRIBE\r\n", "SUBSCRIBE", "Expected space"),
    (b"a UNSUBSCRIBE a b\r\n", "UNSUBSCRIBE", "Unexpected extra arguments"),
    (b'a LIST ""\r\n', "LIST", "Expected space"),
    (b'a LIST "" ()\r\n', "LIST", "Empty list"),
    (b'a LIST (FOO) "" *\r\n', "LIST", "Unknown LIST selection option"),
    (b'a LIST (RECURSIVEMATCH) "" *\r\n', "LIST", "RECURSIVEMATCH needs another selection option"),
    (
        b'a LIST (REMOTE RECURSIVEMATCH) "" *\r\n',
        "LIST",
        "RECURSIVEMATCH needs another selection option",
    ),
    (b'a LIST "" * RETURN (FOO)\r\n', "LIST", "Unknown LIST return option"),
    (b'a LIST "" * RETURN (STATUS ())\r\n', "LIST", "Empty list"),
    (b'a LIST "" * RETURN (STATUS (FOO))\r\n', "LIST", "Unknown STATUS item"),
    (b'a LIST "" * RETURNS (CHILDREN)\r\n', "LIST", "Expected RETURN"),
    (b'a LIST "" * RETURN CHILDREN\r\n', "LIST", 'Expected "("'),
    (b'a LIST "" * x\r\n', "LIST", "Expected RETURN"),
    (b"a LSUB x\r\n", "LSUB", "Expected space"),
    (b"a LSUB x y z\r\n", "LSUB", "Unexpected extra arguments"),
    (b"a NAMESPACE x\r\n", "NAMESPACE", "Unexpected extra arguments"),
    (b"a STATUS INBOX\r\n", "STATUS", "Expected space"),
    (b"a STATUS INBOX ()\r\n", "STATUS", "Empty list"),
    (b"a STATUS INBOX MESSAGES\r\n", "STATUS", 'Expected "("'),
    (b"a STATUS INBOX (MESSAGES FOO)\r\n", "STATUS", "Unknown STATUS item"),
    (b"a STATUS INBOX (MESSAGES  UNSEEN)\r\n", "STATUS", "Expected atom"),
    (b"a STATUS INBOX (MESSAGES\r\n", "STATUS", 'Expected space or ")"'),
]


@pytest.mark.parametrize(("data", "name", "message"), INVALID)
def test_invalid(data: bytes, name: str, message: str) -> None:
    assert bad(data) == BadCommand("a", message, name)


def test_select_parameters_are_nesting_limited() -> None:
    deep = b"a SELECT x (X " + b"(" * 40 + b")" * 40 + b")\r\n"
    assert bad(deep) == BadCommand("a", "Too deeply nested", "SELECT")
    assert bad(b"a SELECT x (X ((1)))\r\n", max_nesting_depth=2).message == "Too deeply nested"
    assert bad(b"a SELECT x (X ((1)))\r\n", max_nesting_depth=3).message == (
        "Unsupported SELECT parameter"
    )


def test_list_status_is_nesting_limited() -> None:
    data = b'a LIST "" * RETURN (STATUS (MESSAGES))\r\n'
    assert isinstance(parse_all_ways(data, max_nesting_depth=2), List)
    assert bad(data, max_nesting_depth=1).message == "Too deeply nested"


def test_select_qresync_parameters() -> None:
    """RFC 7162 §3.2.5, the RFC's own examples."""
    from roost.imap.wire.commands import QresyncParams
    from roost.imap.wire.sequence import SequenceSet

    command = parse_all_ways(
        b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n"
    )
    assert isinstance(command, Select)
    assert command.qresync == QresyncParams(
        67890007, 20050715194045000, SequenceSet(((41, 41), (43, 211), (214, 541)))
    )
    command = parse_all_ways(
        b"B02 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 "
        b"(5000,7500,9000,9990:9999 15000,22500,27000,29970,29973)))\r\n"
    )
    assert isinstance(command, Select) and command.qresync is not None
    assert command.qresync.known_sequence == SequenceSet(
        ((5000, 5000), (7500, 7500), (9000, 9000), (9990, 9999))
    )
    assert command.qresync.known_sequence_uids is not None
