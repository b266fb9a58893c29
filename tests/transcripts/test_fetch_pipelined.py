"""FETCHes pipelined behind one another (mbsync sends one ``UID FETCH n (BODY.PEEK[])``
per message) are read from the store in one round trip (commands/fetch.py
``prefetch``). The answers must be byte for byte those of the same commands sent one at
a time, and a FETCH that sets \\Seen must be seen by the FETCHes after it. FLAGS and
MODSEQ are never read ahead."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from roost.store.postgres.account import PostgresAccount
from roost.store.sqlite.account import SqliteAccount
from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)

COMMANDS = [
    "UID FETCH 1 (BODY.PEEK[])",
    "UID FETCH 2 (UID FLAGS ENVELOPE BODY.PEEK[HEADER])",
    "FETCH 3 (RFC822.SIZE BODYSTRUCTURE BODY.PEEK[TEXT]<0.10>)",
    "UID FETCH 9 (BODY.PEEK[])",  # no such message: an empty answer
    "UID FETCH 2:4 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    "NOOP",
    "UID FETCH 4 (BODY.PEEK[])",
]


async def _pipelined(client: ImapClient, commands: list[str]) -> list[bytes]:
    tags = [f"p{n}" for n in range(len(commands))]
    lines = [f"{tag} {text}\r\n" for tag, text in zip(tags, commands, strict=True)]
    await client.send("".join(lines))
    answers: list[bytes] = []
    for tag in tags:
        reply = await client.read_until_tagged(tag)
        answers += [*reply.untagged, reply.line.split(b" ", 1)[1]]
    return answers


async def _one_by_one(client: ImapClient, commands: list[str]) -> list[bytes]:
    lines: list[bytes] = []
    for text in commands:
        reply = await client.command(text)
        lines += [*reply.untagged, reply.line.split(b" ", 1)[1]]
    return lines


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the store's reads of message metadata, on either backend."""
    calls: list[int] = []

    def counting(original: Callable[..., Awaitable[object]]) -> Callable[..., Awaitable[object]]:
        async def counted(*args: object, **kwargs: object) -> object:
            calls.append(1)
            return await original(*args, **kwargs)

        return counted

    for backend in (SqliteAccount, PostgresAccount):
        monkeypatch.setattr(backend, "fetch_meta", counting(backend.fetch_meta))
    return calls


async def test_pipelined_fetches_answer_as_one_by_one(
    imap: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = await imap.login()
    for n in range(4):
        await writer.append("INBOX", message(f"message {n}"), flags="\\Flagged" * (n % 2))
    await writer.ok("SELECT INBOX")  # \Recent is the writer's, so neither has it
    first, second = await imap.login(), await imap.login()
    await first.ok("SELECT INBOX")
    await second.ok("SELECT INBOX")
    expected = await _one_by_one(first, COMMANDS)
    reads = _count_reads(monkeypatch)
    assert await _pipelined(second, COMMANDS) == expected
    # The three FETCHes without FLAGS read together; the two that ask for FLAGS each
    # read when they run (flags read ahead could be older than what a sync point
    # between them reported); then the NOOP, then the last FETCH alone.
    assert len(reads) == 4


async def test_a_fetch_that_sets_seen_is_seen_by_those_after_it(imap: ImapServer) -> None:
    writer = await imap.login()
    for n in range(2):
        await writer.append("INBOX", message(f"message {n}"))
    client = await imap.login()
    await client.ok("SELECT INBOX")
    lines = await _pipelined(
        client,
        [
            "UID FETCH 2 (BODY.PEEK[HEADER])",
            "UID FETCH 1 (BODY[TEXT])",  # sets \Seen
            "UID FETCH 1 (FLAGS)",
            "UID FETCH 1:2 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
        ],
    )
    flags = [line for line in lines if line.startswith(b"* 1 FETCH") and b"FLAGS" in line]
    assert flags and all(b"\\Seen" in line for line in flags), lines
