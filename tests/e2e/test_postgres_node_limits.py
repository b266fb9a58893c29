"""Connection limits and the POP3 maildrop lock held over two ``roost serve`` nodes on
one PostgreSQL database (issue 15; store/postgres/connections.py,
runtime/node_limits.py):

* connections per address are counted over both nodes, and a slot given back on one
  is free on the other;
* sessions per account and per account and address, likewise (clients on 127.0.0.2
  and 127.0.0.3 stand for other addresses);
* RFC 1939 §8 / RFC 2449 §8.1.1: a POP3 sign-in on node 2 gets ``-ERR [IN-USE]``
  while node 1 holds the maildrop, gets in as soon as node 1's session QUITs, and —
  after node 1 is SIGKILLed holding it — once node 1's lease (``[store] node_lease``,
  short here) has run out.

Every process is started here and stopped by its own PID.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.support.imap_client import ImapClient
from tests.support.pop3_client import Pop3Client
from tests.support.postgres import database_with_account
from tests.support.server_process import RoostProcess, start_all, stop_all_clean, write_config

USER = "alice"
PASSWORD = "secret pass"
HOST = "127.0.0.1"
LEASE = 3.0  # seconds: renewed every second, so a loaded machine does not lose it
WAIT = 60.0  # seconds a condition has to come true
POLL = 0.05

StartNodes = Callable[..., Awaitable[list[RoostProcess]]]


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with database_with_account(USER, PASSWORD) as url:
        yield url


@pytest.fixture
async def start_nodes(tmp_path: Path, database: str) -> AsyncIterator[StartNodes]:
    """Start two nodes with POP3 and the given ``[limits]``."""
    processes: list[RoostProcess] = []

    async def start(**limits: object) -> list[RoostProcess]:
        for n in range(2):
            config = write_config(
                tmp_path / f"node{n}.toml", tmp_path / f"data{n}", limits=limits, pop3=True
            )
            with config.open("a") as file:
                file.write(
                    f'[store]\nbackend = "postgresql"\nurl = {database!r}\nnode_lease = {LEASE}\n'
                )
            processes.append(RoostProcess(config, tmp_path / f"node{n}.log"))
        await start_all(processes)
        return processes

    try:
        yield start
    finally:
        stop_all_clean(processes)


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(int(WAIT / POLL)):
        if await condition():
            return
        await asyncio.sleep(POLL)
    raise AssertionError(f"timed out waiting for {what}")


async def connect_from(source: str, port: int) -> ImapClient:
    """An IMAP client whose address is ``source`` (any 127.0.0.0/8 address is local)."""
    reader, writer = await asyncio.open_connection(
        HOST, port, local_addr=(source, 0), limit=64 << 20
    )
    client = ImapClient(reader, writer)
    client.greeting = await client.read_response()
    return client


async def test_connections_per_address_are_counted_over_both_nodes(
    start_nodes: StartNodes,
) -> None:
    one, two = await start_nodes(max_connections_per_ip=3)
    clients = [
        await ImapClient.connect(HOST, one.port),
        await ImapClient.connect(HOST, one.port),
        await ImapClient.connect(HOST, two.port),
    ]
    try:
        assert all(client.greeting.startswith(b"* OK") for client in clients)
        for node in (two, one):
            refused = await ImapClient.connect(HOST, node.port)
            clients.append(refused)
            assert refused.greeting.startswith(b"* BYE [UNAVAILABLE] ")
            assert b"max_connections_per_ip" in refused.greeting
        await clients[0].close()  # a slot of node 1 given back: node 2 may use it

        async def admitted_on_two() -> bool:
            client = await ImapClient.connect(HOST, two.port)
            clients.append(client)
            return client.greeting.startswith(b"* OK")

        await until(admitted_on_two, "the slot given back on node 1 to be free on node 2")
        assert (await ImapClient.connect(HOST, one.port)).greeting.startswith(b"* BYE")
    finally:
        for client in clients:
            await client.close()


async def test_sessions_per_account_and_address_are_counted_over_both_nodes(
    start_nodes: StartNodes,
) -> None:
    one, two = await start_nodes(max_connections_per_account=3, max_connections_per_user_ip=2)
    clients = [await connect_from("127.0.0.1", node.port) for node in (one, two, one)]
    clients += [await connect_from(source, two.port) for source in ("127.0.0.2", "127.0.0.3")]
    first, second, third, other, another = clients
    try:
        await first.login(USER, PASSWORD)
        await second.login(USER, PASSWORD)
        reply = await third.no(f'LOGIN "{USER}" "{PASSWORD}"')
        assert b"[LIMIT]" in reply.line and b"max_connections_per_user_ip" in reply.line
        await other.login(USER, PASSWORD)  # a third session, from another address
        reply = await another.no(f'LOGIN "{USER}" "{PASSWORD}"')
        assert b"[LIMIT]" in reply.line and b"max_connections_per_account" in reply.line
        await other.ok("LOGOUT")

        async def signed_in() -> bool:
            reply = await another.command(f'LOGIN "{USER}" "{PASSWORD}"')
            return reply.status == "OK"

        await until(signed_in, "the session ended on node 2 to be given back")
    finally:
        for client in clients:
            await client.close()


async def pop3_sign_in(node: RoostProcess) -> tuple[Pop3Client, bytes]:
    """A POP3 client on ``node`` after USER and PASS, and the answer to PASS."""
    client = await Pop3Client.connect(HOST, node.pop3_port)
    await client.ok(f"USER {USER}")
    return client, await client.command(f"PASS {PASSWORD}")


async def test_the_pop3_maildrop_lock_holds_over_both_nodes(start_nodes: StartNodes) -> None:
    """RFC 2449 §8.1.1: one POP3 session per maildrop, whichever node serves it; the
    lock goes with QUIT at once, and with a SIGKILLed node when its lease runs out."""
    one, two = await start_nodes()
    holder, answer = await pop3_sign_in(one)
    assert answer.startswith(b"+OK"), answer
    second, answer = await pop3_sign_in(two)
    assert answer.startswith(b"-ERR [IN-USE] "), answer
    await holder.ok("QUIT")
    await second.ok(f"USER {USER}")
    await second.ok(f"PASS {PASSWORD}")  # given back before QUIT's +OK
    await second.ok("QUIT")

    holder, answer = await pop3_sign_in(one)
    assert answer.startswith(b"+OK"), answer
    waiting = await Pop3Client.connect(HOST, two.pop3_port)
    try:
        await waiting.ok(f"USER {USER}")
        assert (await waiting.err(f"PASS {PASSWORD}")).startswith(b"-ERR [IN-USE] ")
        one.kill()  # holding the lock: it stays until node 1's lease runs out

        async def signed_in() -> bool:
            await waiting.ok(f"USER {USER}")
            line = await waiting.command(f"PASS {PASSWORD}")
            assert line.startswith((b"+OK", b"-ERR [IN-USE] ")), line
            return line.startswith(b"+OK")

        await until(signed_in, "the dead node's lock to be freed by its lease")
        await waiting.ok("QUIT")
    finally:
        await waiting.close()
        await holder.close()
