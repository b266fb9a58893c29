"""Connection slots counted across nodes (store/postgres/connections.py): two
``NodeSlots`` on one database stand for two nodes (each ``Database`` is a node of its
own). Limits hold over both, exactly under concurrency; a node that stops renewing
its lease (as a SIGKILLed one does) frees its slots when the lease runs out; a node
that lost its lease puts its slots back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from roost.store.postgres.connections import NodeSlots
from roost.store.postgres.pool import Database

WAIT = 20.0  # seconds a condition has to come true
POLL = 0.05


@pytest.fixture
async def databases(url: str) -> AsyncIterator[tuple[Database, Database]]:
    one = await Database.connect(url, max_size=4)
    two = await Database.connect(url, max_size=4)
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


@pytest.fixture
async def nodes(databases: tuple[Database, Database]) -> AsyncIterator[tuple[NodeSlots, NodeSlots]]:
    one = await NodeSlots.start(databases[0])
    two = await NodeSlots.start(databases[1])
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait for ``condition`` to come true (checked every ``POLL`` s), at most ``WAIT``."""
    for _ in range(int(WAIT / POLL)):
        if await condition():
            return
        await asyncio.sleep(POLL)
    raise AssertionError("the condition never came true")


async def rows(db: Database, node: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM live_slots WHERE node = $1", node))


async def test_a_limit_holds_over_both_nodes(nodes: tuple[NodeSlots, NodeSlots]) -> None:
    one, two = nodes
    claim = [("address", "192.0.2.1", 3)]
    first = await one.take(claim)
    second = await one.take(claim)
    assert isinstance(first, list) and isinstance(second, list)
    assert isinstance(await two.take(claim), list)
    assert await two.take(claim) == 0  # full: the index of the full claim
    assert await one.take(claim) == 0
    assert isinstance(await two.take([("address", "192.0.2.2", 3)]), list)  # another key
    one.give_back(first)  # batched: free once the batch is sent
    await until(lambda: _took(two, claim))
    assert await one.take(claim) == 0


async def _took(slots: NodeSlots, claims: list[tuple[str, str, int]]) -> bool:
    return isinstance(await slots.take(claims), list)


async def test_claims_are_taken_all_or_none(
    nodes: tuple[NodeSlots, NodeSlots], databases: tuple[Database, Database]
) -> None:
    one, two = nodes
    assert isinstance(await one.take([("user-address", "alice\n192.0.2.1", 1)]), list)
    both = [("account", "alice", 5), ("user-address", "alice\n192.0.2.1", 1)]
    assert await two.take(both) == 1  # the second claim is full: nothing taken
    assert await rows(databases[1], two.node) == 0
    assert two.held == 0
    taken = await two.take([("account", "alice", 5), ("user-address", "alice\n192.0.2.9", 1)])
    assert isinstance(taken, list) and len(taken) == 2


async def test_concurrent_takes_on_two_nodes_never_exceed_the_limit(
    nodes: tuple[NodeSlots, NodeSlots],
) -> None:
    one, two = nodes
    claim = [("account", "bob", 5)]
    results = await asyncio.gather(*(node.take(claim) for _ in range(12) for node in (one, two)))
    assert sum(isinstance(result, list) for result in results) == 5
    assert one.held + two.held == 5


async def test_a_take_waits_for_a_concurrent_uncommitted_one_and_counts_it(
    url: str, nodes: tuple[NodeSlots, NodeSlots], databases: tuple[Database, Database]
) -> None:
    """Count-then-insert is exact between nodes: while one node's take of the last slot
    is not yet committed, another's waits for it, then finds the key full."""
    one, two = nodes
    conn = await asyncpg.connect(url)
    try:
        transaction = conn.transaction()
        await transaction.start()
        taken = await conn.fetchval(
            "SELECT roost_take_slots($1, $2, $3, $4, $5)",
            one.node,
            [1_000_000],
            ["maildrop"],
            ["alice\nINBOX"],
            [1],
        )
        assert taken == 0
        waiting = asyncio.create_task(two.take([("maildrop", "alice\nINBOX", 1)]))
        await until(lambda: _waits_for_a_lock(databases[1]))
        assert not waiting.done()
        await transaction.commit()
        assert await waiting == 0  # full: the first take is counted
    finally:
        await conn.close()


async def _waits_for_a_lock(db: Database) -> bool:
    return bool(
        await db.fetchval(
            "SELECT count(*) > 0 FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )


async def test_a_maildrop_lock_is_free_at_once_when_given_back_now(
    nodes: tuple[NodeSlots, NodeSlots],
) -> None:
    one, two = nodes
    lock = [("maildrop", "alice\nINBOX", 1)]
    held = await one.take(lock)
    assert isinstance(held, list)
    assert await two.take(lock) == 0
    await one.give_back_now(held)
    assert isinstance(await two.take(lock), list)


async def test_the_slots_of_a_node_that_stops_renewing_are_freed_by_its_lease(
    databases: tuple[Database, Database],
) -> None:
    """A node that stops renewing (SIGKILL, a lost machine) holds its slots only until
    its lease runs out; the next renewal of another node then deletes them."""
    dead = NodeSlots(databases[0], lease=1.0)  # its lease is taken, never renewed
    await dead.renew()
    alive = await NodeSlots.start(databases[1], lease=1.0)
    try:
        lock = [("maildrop", "alice\nINBOX", 1)]
        assert isinstance(await dead.take(lock), list)
        assert await alive.take(lock) == 0
        await until(lambda: _took(alive, lock))
        await until(lambda: _no_rows(databases[1], dead.node))  # swept with its lease
    finally:
        await alive.close()


async def _no_rows(db: Database, node: str) -> bool:
    return await rows(db, node) == 0


async def test_a_node_that_lost_its_lease_puts_its_slots_back(
    nodes: tuple[NodeSlots, NodeSlots], databases: tuple[Database, Database]
) -> None:
    """As after a restart of PostgreSQL (UNLOGGED tables emptied): the node's next
    take renews its lease and puts back what it holds, so the limit counts it again."""
    one, two = nodes
    claim = [("address", "192.0.2.1", 2)]
    assert isinstance(await one.take(claim), list)
    await databases[1].execute("DELETE FROM node_leases WHERE node = $1", one.node)
    assert await rows(databases[1], one.node) == 0
    assert isinstance(await one.take(claim), list)  # renews, puts the first back
    assert await rows(databases[1], one.node) == 2
    assert await two.take(claim) == 0


async def test_close_frees_every_slot_of_the_node_at_once(
    nodes: tuple[NodeSlots, NodeSlots], databases: tuple[Database, Database]
) -> None:
    one, two = nodes
    claim = [("account", "carol", 1)]
    assert isinstance(await one.take(claim), list)
    await one.close()
    assert await rows(databases[1], one.node) == 0
    assert isinstance(await two.take(claim), list)
