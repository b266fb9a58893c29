"""GETMETADATA, SETMETADATA (RFC 5464 §5), LIST RETURN (METADATA/MYRIGHTS) (RFC 9590,
RFC 8440) and the ACL commands (RFC 4314 §4), fed every way (STYLE.md §12)."""

from __future__ import annotations

import pytest

from roost.imap.wire.commands import (
    BadCommand,
    Command,
    DeleteAcl,
    GetAcl,
    GetMetadata,
    List,
    ListRights,
    MyRights,
    SetAcl,
    SetMetadata,
)
from tests.unit.test_wire_grammar_helpers import bad, parse_all_ways

VALID: list[tuple[bytes, Command]] = [
    (b'a GETMETADATA "" /shared/comment\r\n', GetMetadata("a", b"", ("/shared/comment",))),
    (
        b"a GETMETADATA INBOX (/Shared/Comment /private/comment)\r\n",
        GetMetadata("a", b"INBOX", ("/shared/comment", "/private/comment")),
    ),
    # RFC 5464 §5 puts the options first; its own examples (§4.2.1) after the mailbox.
    (
        b"a GETMETADATA (MAXSIZE 1024 DEPTH infinity) INBOX /private\r\n",
        GetMetadata("a", b"INBOX", ("/private",), 1024, None),
    ),
    (
        b'a GETMETADATA "INBOX" (DEPTH 1) ("/private/filters/values")\r\n',
        GetMetadata("a", b"INBOX", ("/private/filters/values",), None, 1),
    ),
    (
        b"a SETMETADATA INBOX (/private/comment {5}\r\nab\r\nc /shared/x NIL)\r\n",
        SetMetadata("a", b"INBOX", (("/private/comment", b"ab\r\nc"), ("/shared/x", None))),
    ),
    (
        b"a SETMETADATA x (/private/vendor/v ~{3}\r\na\x00b)\r\n",
        SetMetadata("a", b"x", (("/private/vendor/v", b"a\x00b"),)),
    ),
    (
        b'a LIST "" % RETURN (METADATA (/shared/comment) MYRIGHTS)\r\n',
        List(
            "a",
            b"",
            (b"%",),
            return_options=("METADATA", "MYRIGHTS"),
            extended=True,
            metadata_entries=("/shared/comment",),
        ),
    ),
    (b"a GETACL INBOX\r\n", GetAcl("a", b"INBOX")),
    (b'a SETACL Team bob "+lr"\r\n', SetAcl("a", b"Team", "bob", "+lr")),
    (b"a SETACL Team bob -w\r\n", SetAcl("a", b"Team", "bob", "-w")),
    (b"a DELETEACL Team bob\r\n", DeleteAcl("a", b"Team", "bob")),
    (b"a LISTRIGHTS Team bob\r\n", ListRights("a", b"Team", "bob")),
    (b"a MYRIGHTS {4}\r\nTeam\r\n", MyRights("a", b"Team")),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid(data: bytes, expected: Command) -> None:
    assert parse_all_ways(data) == expected


INVALID: list[tuple[bytes, str, str]] = [
    (b"a GETMETADATA INBOX /foo/bar\r\n", "GETMETADATA", "Invalid metadata entry name"),
    (b"a GETMETADATA INBOX /shared//x\r\n", "GETMETADATA", "Invalid metadata entry name"),
    (b'a GETMETADATA INBOX "/shared/x*"\r\n', "GETMETADATA", "Invalid metadata entry name"),
    (b"a GETMETADATA (DEPTH 2) INBOX /shared\r\n", "GETMETADATA", "DEPTH is 0, 1 or infinity"),
    (b"a GETMETADATA (COLOR 1) INBOX /shared\r\n", "GETMETADATA", "Unknown GETMETADATA option"),
    (b"a GETMETADATA INBOX ()\r\n", "GETMETADATA", "Empty list"),
    (b"a SETMETADATA INBOX (/shared x)\r\n", "SETMETADATA", "Invalid metadata entry name"),
    (b"a SETMETADATA INBOX (/shared/x)\r\n", "SETMETADATA", "Expected space"),
    (b"a SETMETADATA INBOX (/shared/x y)\r\n", "SETMETADATA", "Expected string or NIL"),
    (b"a SETACL Team bob\r\n", "SETACL", "Expected space"),
    (b"a MYRIGHTS\r\n", "MYRIGHTS", "Expected space"),
]


@pytest.mark.parametrize(("data", "name", "message"), INVALID)
def test_invalid(data: bytes, name: str, message: str) -> None:
    assert bad(data) == BadCommand("a", message, name)
