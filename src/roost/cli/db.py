"""``roost db migrate``: bring a PostgreSQL store's schema to this Roost's version;
``roost store copy``: move a SQLite data directory's accounts into PostgreSQL, or back.

Nodes never migrate on their own (store/postgres/schema.py): with many nodes on one
database, the operator upgrades the schema once, then the nodes.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
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
from roost.runtime.opening import STORE_ENV


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


@main.group("store")
def store_group() -> None:
    """Move mail between stores."""


@store_group.command("copy")
@click.option("--from", "source", required=True, metavar="sqlite:DATA_DIR | postgresql://...")
@click.option("--to", "target", required=True, metavar="postgresql://... | sqlite:DATA_DIR")
def store_copy(source: str, target: str) -> None:
    """Copy every account of a SQLite data directory into a PostgreSQL store (its schema
    applied by `roost db migrate`), or of a PostgreSQL store into a SQLite data
    directory, keeping UIDs, UIDVALIDITY, MODSEQs, flags, dates, credentials, Sieve
    scripts and the rest, so that clients do not resync. Accounts already copied are
    verified and skipped: run it again to resume. Stop the servers on DATA_DIR first."""
    from roost.store.postgres.copy import CopyOutcome, VerifyFailed, copy_store
    from roost.store.postgres.copy_back import copy_to_sqlite
    from roost.store.postgres.pool import redact
    from roost.store.postgres.schema import SchemaMismatch, check_version

    postgres = ("postgresql://", "postgres://")
    if source.startswith("sqlite:") and target.startswith(postgres):
        url, data_dir = target, Path(source.removeprefix("sqlite:")).absolute()
        if not (data_dir / "users.db").is_file():
            fail(f"no Roost data directory at {data_dir} (users.db is missing)", EXIT_CONFIG)
    elif source.startswith(postgres) and target.startswith("sqlite:"):
        url, data_dir = source, Path(target.removeprefix("sqlite:")).absolute()
    else:
        fail(
            "copy --from sqlite:DATA_DIR --to postgresql://..., or the reverse",
            EXIT_CONFIG,
        )

    async def go() -> CopyOutcome:
        conn = await asyncpg.connect(url)
        try:
            await check_version(conn)
        finally:
            await conn.close()
        if url == target:
            return await copy_store(data_dir, url, click.echo)
        return await copy_to_sqlite(url, data_dir, click.echo)

    try:
        outcome = asyncio.run(go())
    except (OSError, sqlite3.Error, asyncpg.PostgresError, SchemaMismatch, VerifyFailed) as error:
        fail(f"copy {redact(source)} to {redact(target)} stopped: {error}")
    click.echo(
        f"done: {outcome.copied} accounts copied ({outcome.messages} messages),"
        f" {outcome.skipped} already there; every one verified"
    )
