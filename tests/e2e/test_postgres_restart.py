"""PostgreSQL goes away and comes back under live IMAP sessions (issue 15).

A private cluster of the test's own (tests/support/postgres.py ``PrivateServer``), one
``roost serve`` node on it, a session selected and one idling:

* While the server is stopped, every command that needs the store gets a clean
  ``NO [UNAVAILABLE]`` (or ``BYE``): never a hang, never a traceback in the node's log;
  a refused APPEND leaves nothing behind.
* ``pg_ctl restart -m fast`` under a stream of commands: each answer is OK or such a
  refusal, and the node serves again once the server is back, on the same connections.
* The IDLE session hears changes made by another node (this test's own store) again
  once the node's LISTEN connection is back (store/postgres/notify.py).
* Nothing acknowledged is lost: every APPEND that was told OK is there, with its UID,
  and the UIDs run 1..N without a gap.

The server and the node are started here and stopped by their own PIDs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from argon2 import PasswordHasher

from roost.auth.passwords import hash_password
from roost.store.postgres import PostgresStore
from roost.store.postgres.schema import migrate
from roost.store.values import MessageSource, NewMessage
from tests.support.imap_client import ImapClient, Reply, message
from tests.support.postgres import PrivateServer
from tests.support.server_process import RoostProcess, write_config

USER = "alice"
PASSWORD = "secret pass"
HOST = "127.0.0.1"
# The node's LISTEN connection retries with a growing pause (at most 5 s): a change
# made just after a restart may take that long to be heard on a loaded machine.
HEAR_SECONDS = 60.0
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")
_SUBJECT = re.compile(rb"UID (\d+) .*Subject: ([^\r\n]+)", re.S)


@pytest.fixture
async def cluster() -> AsyncIterator[PrivateServer]:
    """A private PostgreSQL with the schema and the account."""
    server = PrivateServer()
    try:
        await asyncio.to_thread(server.init)
        conn = await asyncpg.connect(server.url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        store = await PostgresStore.open(server.url, listen=False)
        try:
            hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            await store.create_account(USER, hash_password(PASSWORD, hasher=hasher))
        finally:
            await store.close()
        yield server
    finally:
        await asyncio.to_thread(server.remove)


@pytest.fixture
async def node(tmp_path: Path, cluster: PrivateServer) -> AsyncIterator[RoostProcess]:
    config = write_config(tmp_path / "node.toml", tmp_path / "data")
    with config.open("a") as file:
        file.write(f'[store]\nbackend = "postgresql"\nurl = {cluster.url!r}\n')
    process = RoostProcess(config, tmp_path / "node.log")
    try:
        await asyncio.to_thread(process.start)
        yield process
    finally:
        process.stop()
        assert process.errors_logged() == [], process.log_path.read_text()


class Refused(Exception):
    """The command got a clean refusal: ``NO [UNAVAILABLE]``, or ``BYE`` and the end."""


async def command(client: ImapClient, text: str | bytes) -> Reply:
    """Run ``text`` (no synchronizing literal): its reply when OK; Refused on a clean
    refusal; anything else (BAD, another NO, a hang, a cut without BYE) fails the test."""
    tag = client.next_tag()
    data = text.encode() if isinstance(text, str) else text
    await client.send(tag.encode() + b" " + data + b"\r\n")
    untagged: list[bytes] = []
    while not (line := await client.read_response()).startswith(tag.encode() + b" "):
        if line.startswith(b"* BYE"):
            assert await client.expect_eof() == b"", "data after BYE"
            raise Refused(line.decode())
        untagged.append(line)
    reply = Reply(tag, line.split(b" ", 2)[1].decode(), line, untagged)
    if reply.status == "OK":
        return reply
    assert line.startswith(tag.encode() + b" NO [UNAVAILABLE]"), (text, line)
    raise Refused(line.decode())


class Device:
    """A client of the node with INBOX selected, as a mail program keeps one: after a
    BYE it connects, signs in and selects again before its next command."""

    def __init__(self, node: RoostProcess, *, enable: str | None = None) -> None:
        self.node = node
        self.enable = enable
        self.client: ImapClient | None = None

    async def open(self) -> ImapClient:
        """Connect, sign in and select; on a refusal the half-open connection goes."""
        client = await ImapClient.connect(HOST, self.node.port)
        steps = [f'LOGIN "{USER}" "{PASSWORD}"', "SELECT INBOX"]
        if self.enable is not None:
            steps.insert(1, f"ENABLE {self.enable}")
        try:
            for text in steps:
                await command(client, text)
        except Refused:
            await client.close()
            raise
        self.client = client
        return client

    async def run(self, text: str | bytes) -> Reply:
        client = self.client or await self.open()
        try:
            return await command(client, text)
        except Refused:
            if client.writer.is_closing() or client.reader.at_eof():
                await client.close()
                self.client = None
            raise

    async def served(self, text: str | bytes) -> Reply:
        """``text`` once the node serves again: the server is up, so at most a refusal
        or two from connections it cut before the node noticed."""
        for _ in range(3):
            with contextlib.suppress(Refused):
                return await self.run(text)
        raise AssertionError(f"{text!r} still refused with the server back")

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


def append_command(subject: str) -> bytes:
    data = message(subject)
    return b"APPEND INBOX {%d+}\r\n" % len(data) + data


def appended_uid(reply: Reply) -> int:
    found = _APPENDUID.search(reply.line)
    assert found is not None, reply.line
    return int(found.group(1))


async def until_untagged(client: ImapClient, wanted: bytes) -> None:
    """Read until the untagged line ``wanted`` (others, e.g. keep-alives, skipped)."""
    async with asyncio.timeout(HEAR_SECONDS):
        while (line := await client.reader.readline()) != wanted + b"\r\n":
            assert line, f"connection closed before {wanted!r}"


async def test_restart_of_postgresql_under_imap_sessions(
    node: RoostProcess, cluster: PrivateServer
) -> None:
    acknowledged: dict[int, str] = {}  # UID → subject of every APPEND told OK
    # Refused during the restart: a connection cut during COMMIT may have committed it
    # (store/postgres/pool.py StoreUnavailable), so it may or may not be there.
    uncertain: set[str] = set()
    writer, session = Device(node), Device(node)
    idler = Device(node, enable="IMAP4rev2")  # no RECENT lines to read past
    other = await PostgresStore.open(cluster.url, listen=False)  # another node
    try:
        for n in range(3):
            acknowledged[appended_uid(await writer.run(append_command(f"before {n}")))] = (
                f"before {n}"
            )
        await session.open()
        idle = await idler.open()
        idle_tag = await idle.idle()

        # The server is down: clean refusals; a refused APPEND stores nothing.
        await asyncio.to_thread(cluster.stop)
        for text in (
            append_command("while down"),
            "UID FETCH 1:* (FLAGS)",
            "STATUS INBOX (MESSAGES)",
        ):
            with pytest.raises(Refused):
                await session.run(text)
        newcomer = await ImapClient.connect(HOST, node.port)
        with pytest.raises(Refused):
            await command(newcomer, f'LOGIN "{USER}" "{PASSWORD}"')
        await newcomer.close()
        await asyncio.to_thread(cluster.start)
        await session.served("NOOP")
        acknowledged[appended_uid(await session.served(append_command("after the stop")))] = (
            "after the stop"
        )

        # pg_ctl restart -m fast under a stream of APPENDs.
        restart = asyncio.create_task(asyncio.to_thread(cluster.restart))
        sent = 0
        while not restart.done() or sent == 0:
            subject = f"during {sent}"
            sent += 1
            try:
                acknowledged[appended_uid(await writer.run(append_command(subject)))] = subject
            except Refused:
                uncertain.add(subject)
        await restart
        await session.served("NOOP")
        await writer.served("NOOP")

        # The idling session hears another node's changes once LISTEN is back: the
        # first may come by the re-sync after the reconnect, the second only by NOTIFY.
        account = await other.open_account(USER)
        inbox = await account.get_mailbox("INBOX")
        for subject in ("from elsewhere 1", "from elsewhere 2"):
            new = NewMessage(MessageSource(data=message(subject)))
            [uid] = (await account.append(inbox.id, [new])).uids
            acknowledged[uid] = subject
            total = len((await account.snapshot(inbox.id)).uids)
            await until_untagged(idle, b"* %d EXISTS" % total)
        await account.close()
        reply = await idle.done(idle_tag)
        assert reply.status == "OK", reply.line

        # Nothing acknowledged is lost, no UID skipped; nothing refused while the
        # server was down was stored.
        reader = Device(node)  # a new session: sees all, from its SELECT on
        fetched = await reader.served("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        await reader.close()
        stored = {
            int(m.group(1)): m.group(2).decode()
            for line in fetched.untagged
            if (m := _SUBJECT.search(line))
        }
        assert sorted(stored) == list(range(1, len(stored) + 1))
        for uid, subject in acknowledged.items():
            assert stored.get(uid) == subject, (uid, subject)
        assert set(stored.values()) <= set(acknowledged.values()) | uncertain
        assert sent > 0 and len(stored) == len(acknowledged) + len(uncertain & set(stored.values()))
    finally:
        await other.close()
        for device in (writer, session, idler):
            await device.close()
