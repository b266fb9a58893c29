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
from typing import TYPE_CHECKING

import asyncpg
import click

from roost.cli.common import (
    EXIT_CONFIG,
    config_option,
    data_dir_for,
    fail,
    main,
    store_option,
    with_store,
)
from roost.runtime.opening import STORE_ENV
from roost.store.base import Store

if TYPE_CHECKING:
    from roost.store.postgres.shards import ShardLoad


@main.group()
def db() -> None:
    """Manage the PostgreSQL store's schema."""


@db.command("migrate")
@store_option
@config_option
def db_migrate(config_path: Path | None) -> None:
    """Apply the schema migrations this Roost knows to the --store database (to every
    shard, with [store] shards, each then set up as the shard its place says)."""
    from roost.store.postgres.pool import redact
    from roost.store.postgres.schema import SchemaMismatch, claim_shard, migrate
    from roost.store.postgres.shards import shard_urls

    if not os.environ.get(STORE_ENV) and config_path is not None:
        data_dir_for(config_path, None, must_exist=False)  # reads [store]
    url = os.environ.get(STORE_ENV)
    if not url:
        fail("give --store postgresql://... (or set [store] url in the configuration)", EXIT_CONFIG)

    urls = shard_urls(url)

    async def go(index: int, shard_url: str) -> tuple[int, int]:
        conn = await asyncpg.connect(shard_url)
        try:
            versions = await migrate(conn)
            if len(urls) > 1:
                await claim_shard(conn, index, len(urls))
            return versions
        finally:
            await conn.close()

    for index, shard_url in enumerate(urls):
        try:
            before, after = asyncio.run(go(index, shard_url))
        except (OSError, asyncpg.PostgresError, SchemaMismatch) as error:
            fail(f"cannot migrate {redact(shard_url)}: {error}")
        name = redact(shard_url) if len(urls) == 1 else f"shard {index + 1} ({redact(shard_url)})"
        if before == after:
            click.echo(f"schema of {name} is current (version {after})")
        else:
            click.echo(f"migrated {name} from version {before} to {after}")


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
        fail("copy --from sqlite:DATA_DIR --to postgresql://..., or the reverse", EXIT_CONFIG)
    if len(url.split()) > 1:
        fail(
            "store copy takes one database: copy into the first shard, then run `roost db"
            " migrate` with every shard listed (it maps the accounts to the first shard),"
            " then spread them with `roost store move-account`",
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


@store_group.command("shards")
@store_option
@config_option
def store_shards(config_path: Path | None) -> None:
    """List the shards of a sharded PostgreSQL store ([store] shards) with the number
    of accounts on each."""
    from roost.store.postgres.pool import redact
    from roost.store.postgres.shards import ShardedStore

    async def listing(store: Store) -> list[ShardLoad]:
        if not isinstance(store, ShardedStore):
            fail("not a sharded store: give [store] shards (or --store 'URL1 URL2 ...')")
        return await store.loads()

    directory = data_dir_for(config_path, None, must_exist=False)
    for load in with_store(directory, listing):
        click.echo(f"{load.index + 1:>5}  {load.accounts:>9} accounts  {redact(load.url)}")


@store_group.command("move-account")
@click.argument("name")
@click.option("--to", "target", required=True, type=click.IntRange(min=1), metavar="N")
@store_option
@config_option
def store_move_account(name: str, target: int, config_path: Path | None) -> None:
    """Move account NAME to shard N of a sharded store (1 is the first listed),
    keeping its UIDs, MODSEQs and ids so that clients do not resync. Its open sessions
    end or fail and sign in again; safe to run again after an interruption."""
    from roost.store.postgres.copy import VerifyFailed
    from roost.store.postgres.move import move_account
    from roost.store.postgres.shards import ShardedStore

    async def move(store: Store) -> None:
        if not isinstance(store, ShardedStore):
            fail("not a sharded store: give [store] shards (or --store 'URL1 URL2 ...')")
        try:
            await move_account(store, name, target - 1, lambda line: click.echo(line))
        except VerifyFailed as error:
            fail(f"the copy did not verify, nothing moved: {error}")

    directory = data_dir_for(config_path, None, must_exist=False)
    with_store(directory, move)
