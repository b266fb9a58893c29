"""``roost db migrate``: bring a PostgreSQL store's schema to this Roost's version.

Nodes never migrate on their own (store/postgres/schema.py): with many nodes on one
database, the operator upgrades the schema once, then the nodes.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import click

from roost.cli.common import (
    EXIT_CONFIG,
    config_option,
    data_dir_for,
    fail,
    main,
    store_option,
)
from roost.runtime.app import STORE_ENV


@main.group()
def db() -> None:
    """Manage the PostgreSQL store's schema."""


@db.command("migrate")
@store_option
@config_option
def db_migrate(config_path: Path | None) -> None:
    """Apply the schema migrations this Roost knows to the --store database."""
    from roost.store.postgres.pool import redact
    from roost.store.postgres.schema import SchemaMismatch, migrate

    if not os.environ.get(STORE_ENV) and config_path is not None:
        data_dir_for(config_path, None, must_exist=False)  # reads [store]
    url = os.environ.get(STORE_ENV)
    if not url:
        fail("give --store postgresql://... (or set [store] url in the configuration)", EXIT_CONFIG)

    async def go() -> tuple[int, int]:
        conn = await asyncpg.connect(url)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    try:
        before, after = asyncio.run(go())
    except (OSError, asyncpg.PostgresError, SchemaMismatch) as error:
        fail(f"cannot migrate {redact(url)}: {error}")
    if before == after:
        click.echo(f"schema of {redact(url)} is current (version {after})")
    else:
        click.echo(f"migrated {redact(url)} from version {before} to {after}")
