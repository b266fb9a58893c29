"""Three ``roost serve`` nodes on one PostgreSQL database (issue 15, ARCHITECTURE.md
decision 11): any node serves the account, and every node hears every change.

* Eight IDLE sessions spread over the nodes are told of an APPEND made on node 2 and
  of flag changes and an expunge made on node 3 (LISTEN/NOTIFY,
  store/postgres/notify.py).
* Clients on all three nodes APPEND to one mailbox at once: every UID unique, and
  together they are exactly 1..N — none skipped, none given twice.
* SIGKILL of a node in the middle of a write flood: every acknowledged message is
  there, the UIDs have no gap, and the other nodes serve on.
* The three-device sync scenario of tests/transcripts/test_multidevice.py with laptop,
  tablet and phone each on its own node; then every node answers the same UIDs, flags,
  MODSEQs and HIGHESTMODSEQ as the store, and a CONDSTORE session idling on each node
  hears the next change with its new MODSEQ.

Every process is started here and stopped by its own PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.store.postgres import PostgresStore
from tests.support.imap_client import ImapClient, message
from tests.support.postgres import database_with_account
from tests.support.server_process import RoostProcess, start_all, stop_all_clean, write_config
from tests.transcripts.test_multidevice import Truth, highest, three_devices

USER = "alice"
PASSWORD = "secret pass"
HOST = "127.0.0.1"
NODES = 3
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")
_SYNC_ITEMS = re.compile(rb"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) MODSEQ \((\d+)\)\)")


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with database_with_account(USER, PASSWORD) as url:
        yield url


@pytest.fixture
async def nodes(tmp_path: Path, database: str) -> AsyncIterator[list[RoostProcess]]:
    processes = []
    for n in range(NODES):
        config = write_config(tmp_path / f"node{n}.toml", tmp_path / f"data{n}")
        with config.open("a") as file:
            file.write(f'[store]\nbackend = "postgresql"\nurl = {database!r}\n')
        processes.append(RoostProcess(config, tmp_path / f"node{n}.log"))
    try:
        await start_all(processes)
        yield processes
    finally:
        stop_all_clean(processes)


async def login(node: RoostProcess) -> ImapClient:
    client = await ImapClient.connect(HOST, node.port)
    await client.login(USER, PASSWORD)
    return client


async def next_line(client: ImapClient, prefix: bytes) -> bytes:
    """The next untagged line starting with ``prefix`` (skipping e.g. RECENT)."""
    while not (line := await client.read_response()).startswith(prefix):
        pass
    return line


async def test_idle_sessions_on_every_node_hear_changes_made_on_others(
    nodes: list[RoostProcess],
) -> None:
    """Eight IDLE sessions spread over the three nodes are each told of an APPEND,
    a flag change and an expunge, each made through one node."""
    watchers = [await login(nodes[n % NODES]) for n in range(8)]
    writer, flagger = await login(nodes[1]), await login(nodes[2])
    try:
        tags = []
        for watcher in watchers:
            await watcher.ok("SELECT INBOX")
            tags.append(await watcher.idle())
        reply = await writer.append("INBOX", message("from node 2"))
        assert b"[APPENDUID" in reply.line
        for watcher in watchers:
            assert await next_line(watcher, b"* 1 EXISTS") == b"* 1 EXISTS"
        await flagger.ok("SELECT INBOX")
        await flagger.ok("STORE 1 +FLAGS (\\Flagged)")
        for watcher in watchers:
            assert b"\\Flagged" in await next_line(watcher, b"* 1 FETCH (")
        await flagger.ok("STORE 1 +FLAGS (\\Deleted)")
        for watcher in watchers:
            assert b"\\Deleted" in await next_line(watcher, b"* 1 FETCH (")
        await flagger.ok("EXPUNGE")
        for watcher, tag in zip(watchers, tags, strict=True):
            assert await next_line(watcher, b"* 1 EXPUNGE") == b"* 1 EXPUNGE"
            await watcher.done(tag)
    finally:
        for client in (*watchers, writer, flagger):
            await client.close()


async def test_concurrent_appends_on_all_nodes_get_gapless_unique_uids(
    nodes: list[RoostProcess],
) -> None:
    per_client, clients_per_node = 15, 2
    clients = [await login(node) for node in nodes for _ in range(clients_per_node)]

    async def deliver(index: int, client: ImapClient) -> list[int]:
        uids = []
        for n in range(per_client):
            reply = await client.append("INBOX", message(f"client {index} message {n}"))
            found = _APPENDUID.search(reply.line)
            assert found is not None, reply.line
            uids.append(int(found.group(2)))
        return uids

    try:
        results = await asyncio.gather(*(deliver(i, c) for i, c in enumerate(clients)))
        for uids in results:
            assert uids == sorted(uids)  # each client's own appends: increasing
        every = sorted(uid for uids in results for uid in uids)
        total = per_client * len(clients)
        assert every == list(range(1, total + 1))  # unique, and no gap
        await clients[0].ok("SELECT INBOX")
        reply = await clients[0].ok("UID SEARCH ALL")
        assert reply.untagged[-1] == b"* SEARCH " + b" ".join(
            str(uid).encode() for uid in range(1, total + 1)
        )
    finally:
        for client in clients:
            await client.close()


async def test_sigkill_of_a_node_during_a_write_flood_loses_nothing_acknowledged(
    nodes: list[RoostProcess],
) -> None:
    """Every APPEND a client was told OK is there afterwards, the UIDs stay 1..N with no
    gap (an APPEND cut off before its commit gave its UID back), and the other nodes
    serve on, throughout."""
    victim, survivor, bystander = nodes
    writers = [await login(victim) for _ in range(3)]
    watcher = await login(bystander)
    acknowledged: list[tuple[int, str]] = []
    enough = asyncio.Event()

    async def flood(index: int, client: ImapClient) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            for n in range(10_000):
                subject = f"flood {index}-{n}"
                reply = await client.command(
                    b"APPEND INBOX {%d+}\r\n" % len(message(subject)) + message(subject)
                )
                found = _APPENDUID.search(reply.line)
                assert reply.status == "OK" and found is not None, reply.line
                acknowledged.append((int(found.group(2)), subject))
                if len(acknowledged) >= 60:
                    enough.set()

    floods = [asyncio.create_task(flood(i, c)) for i, c in enumerate(writers)]
    try:
        async with asyncio.timeout(60):
            await enough.wait()
        victim.kill()
        async with asyncio.timeout(30):
            await asyncio.gather(*floods)
        await watcher.ok("NOOP")  # the bystander node serves on
        reader = await login(survivor)
        await reader.ok("SELECT INBOX")
        reply = await reader.ok("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        stored = {
            int(m.group(1)): m.group(2).decode()
            for line in reply.untagged
            if (m := re.search(rb"UID (\d+) .*Subject: (flood \d+-\d+)", line, re.S))
        }
        assert sorted(stored) == list(range(1, len(stored) + 1))  # no gap
        for uid, subject in acknowledged:
            assert stored.get(uid) == subject
        await reader.close()
    finally:
        for task in floods:
            task.cancel()
        for client in (*writers, watcher):
            await client.close()


async def inbox_in_store(url: str) -> tuple[int, list[tuple[int, frozenset[str], int]]]:
    """HIGHESTMODSEQ of alice's INBOX and (UID, flags, MODSEQ) of each message, read
    straight from the database."""
    store = await PostgresStore.open(url, listen=False)
    try:
        account = await store.open_account(USER)
        try:
            info = await account.get_mailbox("INBOX")
            snapshot = await account.snapshot(info.id)
            found = await account.fetch_flags(info.id, snapshot.uids)
            return info.highestmodseq, found.states()
        finally:
            await account.close()
    finally:
        await store.close()


def sync_state(lines: list[bytes]) -> list[tuple[int, frozenset[str], int]]:
    """(UID, flags, MODSEQ) from the answer to ``UID FETCH 1:* (FLAGS MODSEQ)``."""
    states = []
    for line in lines:
        found = _SYNC_ITEMS.fullmatch(line)
        assert found is not None, line
        words = found.group(2).decode().split()
        flags = frozenset(w for w in words if w != "\\Recent")
        states.append((int(found.group(1)), flags, int(found.group(3))))
    return states


async def test_three_devices_each_on_its_own_node_converge_exactly(
    nodes: list[RoostProcess], database: str
) -> None:
    """Laptop on node 1, tablet (CONDSTORE) on node 2, phone (QRESYNC, offline in the
    middle) on node 3: each view ends equal to the store. Then each node, asked afresh,
    gives the same UIDVALIDITY, HIGHESTMODSEQ and per-message MODSEQs as the store;
    and a change made on node 1 reaches an idling CONDSTORE session on every node
    with the MODSEQ the store gave it (RFC 7162 §3.1.4)."""
    placement = {"laptop": nodes[0], "tablet": nodes[1], "phone": nodes[2]}
    clients: list[ImapClient] = []

    async def device(name: str) -> ImapClient:
        clients.append(await login(placement[name]))
        return clients[-1]

    async def truth() -> Truth:
        _, states = await inbox_in_store(database)
        return [(uid, flags) for uid, flags, _ in states]

    try:
        await three_devices(device, truth)

        highest_modseq, stored = await inbox_in_store(database)
        views, validities = [], set()
        for node in nodes:
            client = await login(node)
            clients.append(client)
            await client.ok("ENABLE QRESYNC")
            reply = await client.ok("SELECT INBOX")
            validities.add(highest(reply.untagged, b"UIDVALIDITY"))
            assert highest(reply.untagged, b"HIGHESTMODSEQ") == highest_modseq
            views.append(sync_state((await client.ok("UID FETCH 1:* (FLAGS MODSEQ)")).untagged))
        assert len(validities) == 1
        assert views == [stored] * NODES

        watchers = clients[-NODES:]
        tags = [await watcher.idle() for watcher in watchers[1:]]
        first_uid = stored[0][0]
        await watchers[0].ok(f"UID STORE {first_uid} +FLAGS.SILENT ($Synced)")
        highest_after, stored_after = await inbox_in_store(database)
        assert highest_after > highest_modseq
        assert stored_after[0] == (first_uid, stored[0][1] | {"$Synced"}, highest_after)
        for watcher, tag in zip(watchers[1:], tags, strict=True):
            line = await next_line(watcher, b"* 1 FETCH (")
            assert b"$Synced" in line and b"MODSEQ (%d)" % highest_after in line, line
            await watcher.done(tag)
    finally:
        for client in clients:
            await client.close()
