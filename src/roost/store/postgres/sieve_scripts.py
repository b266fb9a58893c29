"""Sieve scripts and Sieve tracking of one account, as sqlite/sieve_scripts.py keeps
them: the source and its compiled form change together; at most one script is active
(a partial unique index); tracking rows expire and are dropped as new ones come."""

from __future__ import annotations

import asyncpg

from roost.store.errors import NoSuchScript, ScriptActive, ScriptExists
from roost.store.values import SieveScript

_COLUMNS = "name, source, compiled, compiled_version, active"


def _script(row: asyncpg.Record) -> SieveScript:
    return SieveScript(row[0], row[1], row[2], int(row[3]), bool(row[4]))


async def list_scripts(conn: asyncpg.Connection, account_id: int) -> list[SieveScript]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM sieve_scripts WHERE account_id = $1 ORDER BY name",
        account_id,
    )
    return [_script(row) for row in rows]


async def get_script(conn: asyncpg.Connection, account_id: int, name: str) -> SieveScript:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM sieve_scripts WHERE account_id = $1 AND name = $2",
        account_id,
        name,
    )
    if row is None:
        raise NoSuchScript(name)
    return _script(row)


async def active_script(conn: asyncpg.Connection, account_id: int) -> SieveScript | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM sieve_scripts WHERE account_id = $1 AND active", account_id
    )
    return None if row is None else _script(row)


async def put_script(
    conn: asyncpg.Connection, account_id: int, name: str, source: str, compiled: str, version: int
) -> None:
    await conn.execute(
        "INSERT INTO sieve_scripts (account_id, name, source, compiled, compiled_version)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, name) DO UPDATE"
        " SET source = excluded.source, compiled = excluded.compiled,"
        " compiled_version = excluded.compiled_version",
        account_id,
        name,
        source,
        compiled,
        version,
    )


async def update_compiled(
    conn: asyncpg.Connection, account_id: int, name: str, source: str, compiled: str, version: int
) -> None:
    await conn.execute(
        "UPDATE sieve_scripts SET compiled = $1, compiled_version = $2"
        " WHERE account_id = $3 AND name = $4 AND source = $5",
        compiled,
        version,
        account_id,
        name,
        source,
    )


async def delete_script(conn: asyncpg.Connection, account_id: int, name: str) -> None:
    active = await conn.fetchval(
        "SELECT active FROM sieve_scripts WHERE account_id = $1 AND name = $2 FOR UPDATE",
        account_id,
        name,
    )
    if active is None:
        raise NoSuchScript(name)
    if active:
        raise ScriptActive(name)
    await conn.execute(
        "DELETE FROM sieve_scripts WHERE account_id = $1 AND name = $2", account_id, name
    )


async def rename_script(conn: asyncpg.Connection, account_id: int, old: str, new: str) -> None:
    names = {
        row[0]
        for row in await conn.fetch(
            "SELECT name FROM sieve_scripts WHERE account_id = $1 AND name = ANY($2::text[])",
            account_id,
            [old, new],
        )
    }
    if old not in names:
        raise NoSuchScript(old)
    if old == new:
        return
    if new in names:
        raise ScriptExists(new)
    await conn.execute(
        "UPDATE sieve_scripts SET name = $1 WHERE account_id = $2 AND name = $3",
        new,
        account_id,
        old,
    )


async def set_active_script(conn: asyncpg.Connection, account_id: int, name: str | None) -> None:
    if name is not None:
        exists = await conn.fetchval(
            "SELECT 1 FROM sieve_scripts WHERE account_id = $1 AND name = $2", account_id, name
        )
        if exists is None:
            raise NoSuchScript(name)
    await conn.execute(
        "UPDATE sieve_scripts SET active = false WHERE account_id = $1 AND active", account_id
    )
    if name is not None:
        await conn.execute(
            "UPDATE sieve_scripts SET active = true WHERE account_id = $1 AND name = $2",
            account_id,
            name,
        )


async def tracked(
    conn: asyncpg.Connection, account_id: int, kind: str, key: str, now: float
) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM sieve_tracking WHERE account_id = $1 AND kind = $2 AND key = $3"
        " AND expires > $4",
        account_id,
        kind,
        key,
        int(now),
    )
    return found is not None


async def track(
    conn: asyncpg.Connection, account_id: int, kind: str, key: str, expires: float, now: float
) -> None:
    await conn.execute(
        "DELETE FROM sieve_tracking WHERE account_id = $1 AND expires <= $2", account_id, int(now)
    )
    await conn.execute(
        "INSERT INTO sieve_tracking (account_id, kind, key, expires) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (account_id, kind, key) DO UPDATE"
        " SET expires = greatest(sieve_tracking.expires, excluded.expires)",
        account_id,
        kind,
        key,
        int(expires),
    )
