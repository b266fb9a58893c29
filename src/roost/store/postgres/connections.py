"""Connection slots and POP3 maildrop locks counted across every node.

With the PostgreSQL backend any node serves any client, so the limits on connections
per address, sessions per account and per account and address, and RFC 1939 §8's one
POP3 session per maildrop, are counted in the database: a slot is a row of
``live_slots`` (schema.py), owned by a node. A client that spreads its connections
over N nodes meets the same limits as on one.

Invariants:

* Each ``NodeSlots`` (one per serving process: its id is ``Database.node``) holds a
  lease, a ``node_leases`` row that it renews every third of ``lease`` seconds. Only
  the slots of nodes whose lease runs count. Each renewal also deletes every lease
  that has run out, with its slots (the foreign key cascades): the slots of a node
  killed by SIGKILL, or of a machine that is gone, are free at most ``lease`` seconds
  later. A node shut down cleanly deletes its own lease at once (``close``).
* Taking is one round trip (``roost_take_slots``): every claim of a call within its
  limit, or none of them; exact between nodes (advisory locks on the claimed keys,
  held to COMMIT). Times are PostgreSQL's clock, never the nodes'.
* Giving back is queued and sent as one DELETE for everything given back meanwhile
  (``give_back``), or at once where a waiting client needs the slot (``give_back_now``,
  the maildrop lock at the end of a POP3 session). What cannot be sent (the database
  unreachable) is sent again at the next renewal.
* The node remembers the slots it holds. If it finds its lease gone — the process was
  stalled past it, or a restart of PostgreSQL emptied the UNLOGGED tables — it takes a
  new lease and puts them back (logged: meanwhile others may have taken more than the
  limit allows).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterable, Sequence

import asyncpg

from roost.store.errors import StoreError
from roost.store.postgres.pool import Database

log = logging.getLogger(__name__)

LEASE = 30.0  # seconds; [store] node_lease

# (kind, key, limit): one slot of ``key`` among at most ``limit`` of that kind.
Claim = tuple[str, str, int]

_TAKE = "SELECT roost_take_slots($1, $2::bigint[], $3::text[], $4::text[], $5::integer[])"
_RENEW = """
WITH swept AS (DELETE FROM node_leases WHERE expires < now() AND node <> $1),
     freed AS (DELETE FROM live_slots WHERE node = $1 AND id = ANY($3::bigint[]))
INSERT INTO node_leases (node, expires) VALUES ($1, now() + make_interval(secs => $2))
ON CONFLICT (node) DO UPDATE SET expires = EXCLUDED.expires
RETURNING xmax = 0
"""
_PUT_BACK = """
INSERT INTO live_slots (node, id, kind, key)
SELECT $1, u.id, u.kind, u.key
FROM unnest($2::bigint[], $3::text[], $4::text[]) AS u (id, kind, key)
ON CONFLICT DO NOTHING
"""
_GIVE_BACK = "DELETE FROM live_slots WHERE node = $1 AND id = ANY($2::bigint[])"


class NodeSlots:
    """This node's slots (module docstring). Start with ``await NodeSlots.start(db)``;
    ``close`` gives back every slot and the lease."""

    def __init__(self, db: Database, lease: float = LEASE) -> None:
        self._db = db
        self.node = db.node
        self.lease = lease
        self._ids = itertools.count(1)
        self._held: dict[int, tuple[str, str]] = {}  # slot id -> (kind, key)
        self._given_back: list[int] = []  # not yet deleted in the database
        self._flushing: asyncio.Task[None] | None = None
        self._renewing: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    async def start(cls, db: Database, *, lease: float = LEASE) -> NodeSlots:
        slots = cls(db, lease)
        await slots.renew()
        slots._renewing = asyncio.get_running_loop().create_task(slots._keep_renewing())
        return slots

    @property
    def held(self) -> int:
        """How many slots this node holds."""
        return len(self._held)

    async def take(self, claims: Sequence[Claim]) -> list[int] | int:
        """A slot for every claim (their ids, in order), or the index of the first claim
        whose key has no slot left (and nothing is taken)."""
        ids = [next(self._ids) for _ in claims]
        kinds = [kind for kind, _, _ in claims]
        keys = [key for _, key, _ in claims]
        limits = [limit for _, _, limit in claims]
        for _ in range(2):
            outcome: int = await self._db.plain(
                lambda conn: conn.fetchval(_TAKE, self.node, ids, kinds, keys, limits)
            )
            if outcome != -1:
                break
            await self.renew()  # our lease ran out: renew it, then ask again
        else:
            raise StoreError("this node's lease runs out as soon as it is renewed")
        if outcome > 0:
            return outcome - 1
        for slot, kind, key in zip(ids, kinds, keys, strict=True):
            self._held[slot] = (kind, key)
        return ids

    def give_back(self, ids: Iterable[int]) -> None:
        """Give back slots this node holds; they are deleted in the next batch."""
        for slot in ids:
            if self._held.pop(slot, None) is not None:
                self._given_back.append(slot)
        if self._given_back and self._flushing is None and not self._closed:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def give_back_now(self, ids: Iterable[int]) -> None:
        """Give back slots and return once the database has them free (or, when it
        cannot be reached, once they are queued for the next renewal)."""
        mine = [slot for slot in ids if self._held.pop(slot, None) is not None]
        if not mine:
            return
        try:
            await self._db.execute(_GIVE_BACK, self.node, mine)
        except (StoreError, asyncpg.PostgresError) as error:
            self._given_back.extend(mine)  # sent with the next renewal
            log.warning("cannot give back %d connection slots: %s", len(mine), error)

    async def renew(self) -> None:
        """Renew this node's lease (taking it anew, with its slots, if it was lost),
        sweep the leases that ran out, and delete what was given back meanwhile."""
        sending, self._given_back = self._given_back, []
        try:
            taken_anew: bool = await self._db.plain(
                lambda conn: conn.fetchval(_RENEW, self.node, self.lease, sending)
            )
        except BaseException:
            self._given_back[:0] = sending
            raise
        if taken_anew and self._held:
            held = list(self._held.items())
            log.warning(
                "node %s lost its lease; putting back %d connection slots (limits may"
                " have been exceeded meanwhile)",
                self.node,
                len(held),
            )
            await self._db.execute(
                _PUT_BACK,
                self.node,
                [slot for slot, _ in held],
                [kind for _, (kind, _) in held],
                [key for _, (_, key) in held],
            )

    async def close(self) -> None:
        """Stop renewing and delete the lease, which frees every slot of this node."""
        self._closed = True
        for task in (self._renewing, self._flushing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._renewing = self._flushing = None
        self._held.clear()
        self._given_back.clear()
        with contextlib.suppress(StoreError, asyncpg.PostgresError):
            await self._db.execute("DELETE FROM node_leases WHERE node = $1", self.node)

    async def _keep_renewing(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.renew()
            except (StoreError, asyncpg.PostgresError) as error:
                log.warning("cannot renew the lease of node %s: %s", self.node, error)

    async def _flush(self) -> None:
        try:
            while self._given_back:
                batch, self._given_back = self._given_back, []
                try:
                    await self._db.execute(_GIVE_BACK, self.node, batch)
                except (StoreError, asyncpg.PostgresError) as error:
                    # Sent again with the next renewal.
                    self._given_back[:0] = batch
                    log.warning("cannot give back %d connection slots: %s", len(batch), error)
                    return
        finally:
            self._flushing = None
