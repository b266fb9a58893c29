"""Mailbox names a stranger can make up: "..", "/" at either end, NUL and other control
characters, in quoted strings, literals, modified UTF-7 and UTF-8. Every command that
takes a name refuses them with NO (never BAD for a well-formed command, never a crash),
and nothing named after them appears in the account or on disk."""

from __future__ import annotations

import os

import pytest

from tests.abuse.conftest import StartServer
from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message


def literal(name: bytes) -> bytes:
    return b"{%d+}\r\n" % len(name) + name


def quoted(name: bytes) -> bytes:
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


# Each contains "evil", so that the tree can be searched for it afterwards.
BAD_NAMES = [
    b"..",
    b".",
    b"../evil",
    b"evil/..",
    b"evil/../INBOX",
    b"evil/./x",
    b"/evil",
    b"/",
    b"//evil",
    b"evil//x",
    b"evil\x00x",
    b"\x00",
    b"evil\x01",
    b"evil\x1b[31m",
    b"evil\x7f",
    b"evil\rx",
    b"evil\nx",
    b"evil\r\nA2 LOGOUT",
    b"&AC4ALg-",  # ".." in modified UTF-7
    b"&AC8-evil",  # "/evil"
    b"evil&AAA-",  # NUL
    b"evil&AIU-",  # U+0085, a C1 control
    b"evil&ICg-",  # U+2028 LINE SEPARATOR
    b"evil&",  # broken modified UTF-7
    b"evil&Jjo",  # unterminated
    b"evil\xff",  # 8-bit without UTF8=ACCEPT
    b"e" * 2000,  # too long
    b"/".join([b"evil"] * 100),  # too deep
]

NAME_COMMANDS = [
    b"CREATE %s",
    b"SELECT %s",
    b"EXAMINE %s",
    b"DELETE %s",
    b"RENAME INBOX/sub %s",
    b"RENAME %s other",
    b"SUBSCRIBE %s",
    b"UNSUBSCRIBE %s",
    b"STATUS %s (MESSAGES)",
    b"APPEND %s {10+}\r\nSubject: x",
    b"COPY 1 %s",
    b"MOVE 1 %s",
    b"UID COPY 1 %s",
]


def _tree_names(root: str) -> list[str]:
    names = []
    for _, directories, files in os.walk(root):
        names += directories + files
    return names


async def _selected_client(handle: ImapServer) -> ImapClient:
    client = await handle.login()
    await client.ok("CREATE INBOX/sub")
    await client.append("INBOX", message())
    await client.ok("SELECT INBOX")
    return client


@pytest.mark.parametrize("form", ["quoted", "literal"])
async def test_bad_mailbox_names_are_refused_by_every_command(
    start_server: StartServer, form: str
) -> None:
    handle = await start_server()
    client = await _selected_client(handle)
    before = (await client.ok('LIST "" "*"')).untagged
    encode = quoted if form == "quoted" else literal
    for name in BAD_NAMES:
        if form == "quoted" and (b"\x00" in name or b"\r" in name or b"\n" in name):
            continue  # a quoted string cannot hold these: that is a BAD, tested below
        for template in NAME_COMMANDS:
            if template.startswith((b"COPY", b"MOVE", b"UID")):
                await client.ok("SELECT INBOX")  # a failed SELECT left the selected state
            command = template % encode(name)
            reply = await client.command(command)
            assert reply.status == "NO", (command[:60], reply.line)
    await client.ok("SELECT INBOX")
    fetched = await client.ok("FETCH 1 (FLAGS)")
    assert len(fetched.untagged) == 1  # MOVE moved nothing
    assert (await client.ok('LIST "" "*"')).untagged == before
    assert not [n for n in _tree_names(str(handle.data_dir)) if "evil" in n]


async def test_control_characters_in_quoted_names_are_syntax_errors(
    start_server: StartServer,
) -> None:
    handle = await start_server()
    client = await handle.login()
    for raw in (b"evil\x00x", b"evil\rx"):
        reply = await client.command(b'CREATE "' + raw + b'"')
        assert reply.status == "BAD", reply.line
    await client.ok("NOOP")


async def test_bad_names_after_utf8_accept(start_server: StartServer) -> None:
    """RFC 6855 §3: no C0, C1, DEL, U+2028 or U+2029 in UTF-8 names either."""
    handle = await start_server()
    client = await handle.login()
    await client.ok("ENABLE UTF8=ACCEPT")
    for name in [
        b"evil\xc2\x85",
        b"evil\xe2\x80\xa8",
        b"evil\xe2\x80\xa9",
        b"evil\x7f",
        b"evil\xff",  # not UTF-8
        b"evil\xc0\xaf",  # overlong "/"
        b"evil\xed\xa0\x80",  # a surrogate
        b"../evil",
    ]:
        reply = await client.command(b"CREATE " + literal(name))
        assert reply.status == "NO", (name, reply.line)
    assert not [line for line in (await client.ok('LIST "" "*"')).untagged if b"evil" in line]


async def test_trailing_separator_on_create_names_the_parent(start_server: StartServer) -> None:
    """RFC 9051 §6.3.4: "CREATE foo/" creates foo; only CREATE may end with "/"."""
    handle = await start_server()
    client = await handle.login()
    await client.ok("CREATE fine/")
    listed = (await client.ok('LIST "" "fine*"')).untagged
    assert [line.rsplit(b" ", 1)[1] for line in listed] == [b"fine"]
    await client.no("CREATE fine//")
    await client.no("SELECT fine/")


async def test_list_patterns_cannot_climb_out(start_server: StartServer) -> None:
    handle = await start_server()
    bob = await handle.login("bob")
    await bob.ok("CREATE Secret")
    client = await handle.login()
    for reference, pattern in [
        (b'""', b"../*"),
        (b'"../"', b"*"),
        (b'"/"', b"*"),
        (b'"../bob/"', b"*"),
        (b'"~bob/"', b"*"),
        (b'"#users/"', b"*"),
        (b'""', b"%/../%"),
        (b'""', b"*Secret*"),
    ]:
        reply = await client.command(b"LIST " + reference + b" " + pattern)
        assert reply.status in ("OK", "NO"), reply.line
        assert not [line for line in reply.untagged if b"Secret" in line], reply.untagged


async def test_list_wildcards_are_refused_in_new_names(start_server: StartServer) -> None:
    """ "*" and "%" in a name make LIST ambiguous (no escape exists, RFC 9051 §6.3.9):
    CREATE and RENAME refuse them with NO [CANNOT] (issue 13, item 15)."""
    handle = await start_server()
    client = await handle.login()
    await client.ok("CREATE Plain")
    for name in (b"*", b"%", b"a*b", b"50%", b"Plain/*", b"%/x"):
        for command in (b"CREATE " + quoted(name), b"RENAME Plain " + quoted(name)):
            reply = await client.command(command)
            assert reply.status == "NO" and b"[CANNOT]" in reply.line, (command, reply.line)
            assert b"wildcard" in reply.line, reply.line
    listed = (await client.ok('LIST "" "*"')).untagged
    names = [line.rsplit(b" ", 1)[1] for line in listed]
    assert b"Plain" in names and not [name for name in names if b"*" in name or b"%" in name]
