"""Connections to PostgreSQL and the one way every store operation runs on them.

Invariants:

* Every operation is a function of a connection run by ``Database.run`` in one
  transaction (or by ``plain``, statement by statement, where no single instant is
  needed); a serialization failure, deadlock or lost race for a blob rolls it back
  whole and runs it again after a jittered, growing pause (at most ``MAX_ATTEMPTS``
  times), so a caller never sees a conflict between nodes — only the outcome of one
  clean attempt.
* A write to an account's mail first locks that account's ``mail_counters`` row
  (``run`` with ``account_id``): writers of one account take turns in lock order, so
  they never deadlock with each other and every read after the lock sees the latest
  commits (READ COMMITTED). A write may read before its turn (``run_optimistic``)
  only if it checks under the turn that what it read is still so, and runs again
  in the turn when it is not.
* A change's NOTIFY is sent in its transaction's COMMIT (notify.py): other nodes hear
  of it only once it is committed.
* Losing the server is ``StoreUnavailable`` (a ``StoreBusy``): never a hang, never a
  half-done write. A pooled connection the server cut while it sat idle is dropped
  and the work runs on the next one (``STALE``).
* A pooled connection carries no session state between users: no LISTEN, advisory
  lock, cursor or SET is left on one (LISTEN has its own connection, notify.py), so the
  pool skips asyncpg's reset query, a round trip per store call (``_no_reset``); an
  open transaction is still rolled back by asyncpg before the connection goes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from roost.store.errors import NoSuchAccount, StoreBusy, StoreError
from roost.store.postgres.notify import CHANNEL, new_node_id
from roost.store.postgres.schema import CHANGED_SINCE_READ

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 8
FIRST_PAUSE = 0.005  # seconds; doubled per attempt, with full jitter
POOL_MIN = 1
CONTENDED_FOR = 1.0  # seconds an account's writes wait for the turn after a stale read
CONTENDED_ACCOUNTS = 1024  # accounts remembered so, at most (the cooled ones dropped)
POOL_MAX = 10
RETRYABLE: tuple[type[BaseException], ...] = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    # A blob released by another node between our check and our reference to it
    # (messages.py): the next attempt stores it again.
    asyncpg.ForeignKeyViolationError,
)


# The server is gone or going (restart, failover, network): nothing to retry blindly.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


# asyncpg's protocol state machine refusing a connection: the server cut it (restart,
# failover) and its last words, a FATAL error, arrived while the connection sat idle in
# the pool, before the end of the stream did. Nothing of the failing statement reached
# the server, and the pool drops such a connection when it is released.
STALE: tuple[type[BaseException], ...] = (asyncpg.InternalClientError,)


class StoreUnavailable(StoreBusy):
    """The database cannot be reached (restarting, failing over, unreachable): the
    protocols answer as for a busy store (IMAP ``NO [UNAVAILABLE]``), and the client
    tries again. Nothing was changed — unless the connection broke during COMMIT, when
    the write may have committed (a retried APPEND may then store a message twice)."""


class Database:
    """A pool of connections to one PostgreSQL database."""

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self.pool = pool
        self.url = url
        self.node = new_node_id()  # notify.py: whose notifications are whose
        # When an optimistic write (run_optimistic) of each account last went stale.
        self._went_stale: dict[int, float] = {}

    @classmethod
    async def connect(cls, url: str, *, max_size: int = POOL_MAX) -> Database:
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=POOL_MIN,
                max_size=max_size,
                command_timeout=60,
                reset=_no_reset,
            )
        except (OSError, asyncpg.PostgresError) as error:
            raise StoreUnavailable(f"cannot connect to {redact(url)}: {error}") from None
        assert pool is not None
        return cls(pool, url)

    async def close(self) -> None:
        await self.pool.close()

    async def run(
        self,
        fn: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        readonly: bool = False,
        isolation: str = "read_committed",
        account_id: int | None = None,
        notify: Callable[[], str | None] | None = None,
        deferred: list[str] | None = None,
    ) -> T:
        """``fn`` in one transaction, retried on conflicts (module docstring). With
        ``account_id``, the transaction starts by taking that account's write turn
        (the row lock above) in the same round trip as its BEGIN; ``notify``, called after
        ``fn``, gives a payload NOTIFYed in the round trip of the COMMIT (notify.py).
        ``deferred``: statements ``fn`` left to run in that round trip too, before the
        NOTIFY (literal SQL, ``sql_*`` below): the last write of a transaction whose
        outcome ``fn`` needs not read. Emptied before each attempt.
        Every round trip counts: on a busy machine each is a wake-up of two processes."""
        begin = f"BEGIN ISOLATION LEVEL {isolation.replace('_', ' ').upper()}"
        if readonly:
            begin += " READ ONLY"
        if account_id is not None:
            begin += (
                f"; SELECT 1 FROM mail_counters WHERE account_id = {int(account_id)} FOR UPDATE"
            )
        return await self._attempts(lambda conn: _transaction(conn, begin, fn, notify, deferred))

    async def run_optimistic(
        self,
        fn: Callable[[asyncpg.Connection], Awaitable[T]],
        *,
        account_id: int,
        expect: Callable[[], str | None],
        notify: Callable[[], str | None],
        deferred: list[str],
    ) -> T:
        """``run(fn, account_id=...)`` in one round trip fewer, for a write whose reads
        are one statement and whose changes are all ``deferred``: ``fn`` reads without
        the write turn, then one round trip takes the turn, checks ``expect()`` — a
        condition on the state under the turn that holds iff nothing ``fn`` read has
        changed (such as the account's modseq, which every change of its mail takes) —
        and runs the deferred statements, the NOTIFY and the COMMIT. When something did
        change, that transaction is rolled back and the write runs as ``run`` does, and
        so do the account's writes for ``CONTENDED_FOR`` seconds (others are writing
        it: their reads would likely go stale too). A ``fn`` that changes nothing
        commits nothing; one whose ``expect`` gives None (it cannot vouch for its
        reads) runs as ``run`` does too."""

        async def attempt(conn: asyncpg.Connection) -> tuple[bool, T]:
            deferred.clear()
            result = await fn(conn)
            if not deferred:
                return True, result
            condition = expect()
            if condition is None:
                return False, result
            payload = notify()
            statements = [
                "BEGIN ISOLATION LEVEL READ COMMITTED",
                f"SELECT 1 FROM mail_counters WHERE account_id = {int(account_id)} FOR UPDATE",
                # A statement of its own: its snapshot is taken once the turn is ours.
                f"SELECT roost_expect({condition})",
                *deferred,
            ]
            if payload is not None:
                statements.append(f"SELECT pg_notify('{CHANNEL}', {_literal(payload)})")
            statements.append("COMMIT")
            try:
                await conn.execute("; ".join(statements))
            except BaseException as error:
                with contextlib.suppress(Exception):
                    if not conn.is_closed() and conn.is_in_transaction():
                        await conn.execute("ROLLBACK")
                if isinstance(error, asyncpg.PostgresError) and (
                    error.sqlstate == CHANGED_SINCE_READ
                ):
                    return False, result
                raise
            return True, result

        stale_at = self._went_stale.get(account_id)
        if stale_at is not None and time.monotonic() - stale_at < CONTENDED_FOR:
            # Others write this account now: a read before the turn would likely go
            # stale again, costing two round trips more than waiting for the turn.
            return await self.run(fn, account_id=account_id, notify=notify, deferred=deferred)
        done, result = await self._attempts(attempt)
        if done:
            return result
        self._note_stale(account_id)
        return await self.run(fn, account_id=account_id, notify=notify, deferred=deferred)

    def _note_stale(self, account_id: int) -> None:
        now = time.monotonic()
        if len(self._went_stale) >= CONTENDED_ACCOUNTS:  # bounded: drop the cooled
            self._went_stale = {
                key: at for key, at in self._went_stale.items() if now - at < CONTENDED_FOR
            }
        self._went_stale[account_id] = now

    async def plain(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """``fn``'s statements each on their own (autocommit): for reads whose statements
        need not see one instant."""
        return await self._attempts(fn)

    async def _attempts(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        attempt = stale = 0
        while True:
            attempt += 1
            try:
                async with self.pool.acquire() as conn:
                    return await fn(conn)
            except STALE as error:
                # Every pooled connection may be one the server cut: try each once.
                stale += 1
                attempt -= 1
                if stale > self.pool.get_max_size():
                    raise StoreUnavailable(f"database unavailable: {error}") from None
                log.debug("dropped a connection the server had cut: %s", error)
            except RETRYABLE as error:
                if attempt >= MAX_ATTEMPTS:
                    raise StoreError(f"gave up after {attempt} conflicting attempts") from error
                pause = random.uniform(0, FIRST_PAUSE * 2**attempt)
                log.debug("retrying after %s (attempt %d)", type(error).__name__, attempt)
                await asyncio.sleep(pause)
            except UNAVAILABLE as error:
                raise StoreUnavailable(f"database unavailable: {error}") from None

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        """One statement outside ``run`` (autocommit), unavailability mapped."""
        async with unavailable():
            return list(await self.pool.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: object) -> asyncpg.Record | None:
        async with unavailable():
            return await self.pool.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: object) -> Any:
        async with unavailable():
            return await self.pool.fetchval(sql, *args)

    async def execute(self, sql: str, *args: object) -> str:
        async with unavailable():
            return str(await self.pool.execute(sql, *args))

    async def read(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """``fn`` in one read-only snapshot (REPEATABLE READ): every statement sees the
        same instant."""
        return await self.run(fn, readonly=True, isolation="repeatable_read")


async def _no_reset(conn: asyncpg.Connection) -> None:
    """The pool's reset of a released connection: nothing to undo (module docstring)."""


async def _transaction(
    conn: asyncpg.Connection,
    begin: str,
    fn: Callable[[asyncpg.Connection], Awaitable[T]],
    notify: Callable[[], str | None] | None,
    deferred: list[str] | None,
) -> T:
    if deferred is not None:
        deferred.clear()
    status = await conn.execute(begin)
    try:
        if begin.endswith("FOR UPDATE") and status != "SELECT 1":
            raise NoSuchAccount("the account is gone")
        result = await fn(conn)
        payload = None if notify is None else notify()
        # One simple query: the deferred statements, the NOTIFY and the COMMIT; an
        # error in any skips the rest and the transaction rolls back below.
        closing = list(deferred or ())
        if payload is not None:
            closing.append(f"SELECT pg_notify('{CHANNEL}', {_literal(payload)})")
        closing.append("COMMIT")
        await conn.execute("; ".join(closing))
    except BaseException:
        # A connection the server cut is detached from the pool: even asking whether
        # it is closed raises then, and there is nothing to roll back.
        with contextlib.suppress(Exception):
            if not conn.is_closed() and conn.is_in_transaction():
                await conn.execute("ROLLBACK")
        raise
    return result


def _literal(text: str) -> str:
    """A string constant of ``text`` for a simple-query statement: an E'' string, whose
    meaning does not depend on standard_conforming_strings."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def sql_text(text: str) -> str:
    """``text`` as a constant of a deferred statement (``Database.run``)."""
    return _literal(text)


def sql_ints(values: Sequence[int]) -> str:
    """A bigint[] constant of a deferred statement; ``int()`` makes each a number."""
    return "ARRAY[" + ",".join(str(int(value)) for value in values) + "]::bigint[]"


def sql_texts(values: Sequence[str]) -> str:
    """A text[] constant of a deferred statement."""
    return "ARRAY[" + ",".join(_literal(value) for value in values) + "]::text[]"


@contextlib.asynccontextmanager
async def unavailable() -> AsyncIterator[None]:
    """Connection loss as StoreUnavailable (a stale connection too: the pool drops it)."""
    try:
        yield
    except (*UNAVAILABLE, *STALE) as error:
        raise StoreUnavailable(f"database unavailable: {error}") from None


async def next_modseq(conn: asyncpg.Connection, account_id: int) -> int:
    """The account's next modseq; only inside its write turn."""
    value: int = await conn.fetchval(
        "UPDATE mail_counters SET modseq = modseq + 1 WHERE account_id = $1 RETURNING modseq",
        account_id,
    )
    return value


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs (each URL of a sharded
    store's locator, shards.py)."""
    if len(urls := url.split()) > 1:
        return " ".join(redact(one) for one in urls)
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


Row = Any
