"""Failed sign-ins counted across every node (``auth.throttle.SharedFailures``).

With the PostgreSQL backend the nodes share nothing else, so the throttle's count of
failures lives in the database: a guesser whose connections are spread over N nodes
meets the same delays and refusals as on one. The table is UNLOGGED — not written to
the WAL, so cheap, and emptied by a crash of PostgreSQL: the throttle slows guessing,
it is not a record. Times are wall-clock epoch seconds; rows older than a day are
dropped as failures are added.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from roost.store.postgres.pool import Database

KEEP = 86400.0  # the longest window one would configure


class PostgresSharedFailures:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    async def counts(self, ip_key: str, account_key: str, window: float) -> tuple[int, int]:
        row = await self._db.fetchrow(
            "SELECT count(*) FILTER (WHERE ip = $1), count(*) FILTER (WHERE account = $2)"
            " FROM sign_in_failures WHERE (ip = $1 OR account = $2) AND at > $3",
            ip_key,
            account_key,
            self._clock() - window,
        )
        assert row is not None
        return int(row[0]), int(row[1])

    async def add(self, ip_key: str, account_key: str) -> None:
        now = self._clock()
        await self._db.execute(
            "WITH old AS (DELETE FROM sign_in_failures WHERE at < $4)"
            " INSERT INTO sign_in_failures (ip, account, at) VALUES ($1, $2, $3)",
            ip_key,
            account_key,
            now,
            now - KEEP,
        )

    async def forget(self, ip_key: str, account_key: str) -> None:
        await self._db.execute(
            "DELETE FROM sign_in_failures WHERE ip = $1 AND account = $2", ip_key, account_key
        )
