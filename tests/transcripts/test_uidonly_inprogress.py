"""UIDONLY (RFC 9586) and INPROGRESS (RFC 9585), from the RFCs' examples."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from roost.store.postgres.account import PostgresAccount
from roost.store.sqlite.account import SqliteAccount
from tests.conftest import ImapServer
from tests.support.imap_client import message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def test_uidonly_refuses_message_numbers(imap: ImapServer) -> None:
    """RFC 9586 §3.1: once enabled, every use of a message number is ``BAD
    [UIDREQUIRED]``: FETCH, STORE, SEARCH, COPY, MOVE, a sequence set among search
    keys; the UID forms work."""
    client = await imap.login()
    caps = await client.ok("CAPABILITY")
    assert b" UIDONLY" in caps.untagged[0]
    await client.append("INBOX", message("one"))
    assert (await client.ok("ENABLE UIDONLY")).untagged == [b"* ENABLED UIDONLY"]
    await client.ok("SELECT INBOX")
    for command in (
        "FETCH 1 (FLAGS)",
        "STORE 1 +FLAGS (\\Seen)",
        "SEARCH ALL",
        "COPY 1 Archive",
        "MOVE 1 Archive",
        "SORT (DATE) UTF-8 ALL",
        "UID SEARCH 1",
        "UID SEARCH OR 1:2 SEEN",
    ):
        reply = await client.bad(command)
        assert b"[UIDREQUIRED]" in reply.line, command
    assert (await client.ok("UID SEARCH UID 1:*")).untagged == [b"* SEARCH 1"]


async def test_uidonly_answers_with_uidfetch_and_vanished(imap: ImapServer) -> None:
    """RFC 9586 §3.3: FETCH data comes as ``* uid UIDFETCH (...)`` — for UID FETCH
    (the flags-only fast path and the general one), UID STORE, and another session's
    changes; §3.2: expunges come as VANISHED."""
    client = await imap.login()
    for n in range(3):
        await client.append("INBOX", message(f"m{n}"))
    await client.ok("ENABLE UIDONLY")
    await client.ok("SELECT INBOX")
    reply = await client.ok("UID FETCH 2:3 (FLAGS)")
    assert reply.untagged == [
        b"* 2 UIDFETCH (FLAGS (\\Recent))",
        b"* 3 UIDFETCH (FLAGS (\\Recent))",
    ]
    reply = await client.ok("UID FETCH 1 (RFC822.SIZE)")
    assert reply.untagged == [b"* 1 UIDFETCH (RFC822.SIZE %d)" % len(message("m0"))]
    reply = await client.ok("UID STORE 3 +FLAGS (\\Deleted)")
    assert reply.untagged == [b"* 3 UIDFETCH (FLAGS (\\Deleted \\Recent))"]
    other = await imap.login()
    await other.ok("SELECT INBOX")
    await other.ok("UID STORE 2 +FLAGS (\\Flagged)")
    reply = await client.ok("NOOP")
    assert reply.untagged == [b"* 2 UIDFETCH (FLAGS (\\Flagged \\Recent))"]
    reply = await client.ok("EXPUNGE")
    assert reply.untagged == [b"* VANISHED 3"]


async def test_inprogress_during_a_long_fetch(imap: ImapServer) -> None:
    """RFC 9585 §3: ``* OK [INPROGRESS ("tag" count total)]`` between batches of a
    long FETCH, at most every ``progress_interval``: here every batch is due."""
    client = await imap.login()
    caps = await client.ok("CAPABILITY")
    assert b" INPROGRESS" in caps.untagged[0]
    for n in range(3):
        await client.append("INBOX", message(f"m{n}"))
    imap.context.limits = dataclasses.replace(
        imap.context.limits, fetch_batch_size=1, flag_fetch_batch_size=1, progress_interval=1e-9
    )
    await client.ok("SELECT INBOX")
    reply = await client.ok("FETCH 1:3 (RFC822.SIZE)")
    progress = [line for line in reply.untagged if b"INPROGRESS" in line]
    assert progress[0].startswith(b'* OK [INPROGRESS ("A')
    assert [p.split(b'" ', 1)[1].split(b")")[0] for p in progress] == [b"1 3", b"2 3"]
    reply = await client.ok("FETCH 1:3 (FLAGS)")
    assert len([line for line in reply.untagged if b"INPROGRESS" in line]) == 2


async def test_inprogress_while_a_search_runs(
    imap: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 9585 §3: a command whose progress cannot be counted reports NIL count and
    total while it runs (here a SEARCH held until the client has seen one)."""
    client = await imap.login()
    await client.append("INBOX", message("one"))
    imap.context.limits = dataclasses.replace(imap.context.limits, progress_interval=0.01)
    release = asyncio.Event()

    def held(search: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def held_search(*args: Any) -> Any:
            await release.wait()
            return await search(*args)

        return held_search

    for backend in (SqliteAccount, PostgresAccount):
        monkeypatch.setattr(backend, "search", held(backend.search))
    await client.ok("SELECT INBOX")
    await client.send(b"S1 UID SEARCH ALL\r\n")
    line = await client.read_response()
    assert line == b'* OK [INPROGRESS ("S1" NIL NIL)] Still working'
    release.set()
    reply = await client.read_until_tagged("S1")
    assert reply.untagged[-1] == b"* SEARCH 1"
    assert reply.line.startswith(b"S1 OK")
