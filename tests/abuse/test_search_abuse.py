"""Search programs built to hurt (issue 13 items 6 and 7): a NUL in a search string, an
OR/NOT chain thousands deep, thousands of keys. Each gets a clean BAD before any work,
never NO [SERVERBUG], and the server keeps answering."""

from __future__ import annotations

import time

import pytest

from roost.imap.wire.grammar.search import MAX_KEY_DEPTH, MAX_SEARCH_KEYS
from tests.abuse.conftest import StartServer
from tests.support.imap_client import ImapClient, message


async def _selected(start_server: StartServer) -> ImapClient:
    handle = await start_server()
    client = await handle.login()
    await client.append("INBOX", message("hello", body="needle in the body\r\n"))
    await client.ok("SELECT INBOX")
    return client


@pytest.mark.parametrize(
    "command",
    [
        b"SEARCH TEXT {3}\r\na\x00b",
        b"SEARCH SUBJECT {1}\r\n\x00",
        b"SEARCH BODY {4}\r\nne\x00e",
        b'SEARCH HEADER {5}\r\nX\x00Foo ""',
        b"SEARCH HEADER Subject {3}\r\nh\x00l",
        b"UID SORT (SUBJECT) UTF-8 TEXT {2}\r\n\x00a",
    ],
)
async def test_nul_in_a_search_string_is_bad(start_server: StartServer, command: bytes) -> None:
    """Issue 13 item 6: was NO [SERVERBUG] with FTS5's "unterminated string". RFC 9051
    §9: a literal is CHAR8, which excludes NUL, so this is a syntax error."""
    client = await _selected(start_server)
    reply = await client.bad(command)
    assert b"NUL" in reply.line
    assert (await client.ok("SEARCH BODY needle")).untagged == [b"* SEARCH 1"]


@pytest.mark.parametrize(
    "program",
    [
        b"OR SUBJECT a " * 1000 + b"ALL",  # right-nested: flattens to one wide OR
        b"OR " * 1000 + b"SUBJECT a " * 1001,  # left-nested
        b"NOT " * 1001 + b"ALL",
        b"OR LARGER 1 " * 10_000 + b"ALL",
        b"(" * 10 + b"OR SUBJECT a " * 60 + b"ALL" + b")" * 10,
    ],
)
async def test_deep_or_and_not_chains_are_bad(start_server: StartServer, program: bytes) -> None:
    """Issue 13 item 7: 1,000 nested OR was NO [SERVERBUG] (SQLite "Expression tree is
    too large") and 10,000 cost 1.4 s of CPU. NOT, OR and lists count against the
    nesting limit as sent, before flattening."""
    client = await _selected(start_server)
    started = time.process_time()
    reply = await client.bad(b"SEARCH " + program)
    assert b"nested" in reply.line
    assert time.process_time() - started < 0.5  # refused while parsing, not searched
    await client.ok("NOOP")


async def test_many_keys_are_bad(start_server: StartServer) -> None:
    """Thousands of ANDed keys also pass SQLite's expression depth: BAD, not SERVERBUG."""
    client = await _selected(start_server)
    reply = await client.bad(b"SEARCH " + b"LARGER 1 " * (MAX_SEARCH_KEYS + 1))
    assert str(MAX_SEARCH_KEYS).encode() in reply.line


async def test_programs_within_the_limits_are_answered(start_server: StartServer) -> None:
    """Up to the limits every shape is searched: a chain of OR as deep as allowed, and
    as many keys as allowed, with text, header and NOT keys."""
    client = await _selected(start_server)
    deep = b"OR SUBJECT zzz " * (MAX_KEY_DEPTH - 1) + b"BODY needle"
    assert (await client.ok(b"SEARCH " + deep)).untagged == [b"* SEARCH 1"]
    wide = b"NOT HEADER X-Nope b " * (MAX_SEARCH_KEYS - 1) + b"SUBJECT hello"
    assert (await client.ok(b"SEARCH " + wide)).untagged == [b"* SEARCH 1"]
