"""``roost backup DEST``, ``roost restore SRC`` and ``roost verify [USER]``: the work is
in ``roost.store.sqlite.backup`` and ``roost.store.sqlite.verify``, which know the
embedded store's files, and on a PostgreSQL store in ``roost.store.postgres.dump``
(``pg_dump``) and ``roost.store.postgres.verify``; these parse and report.

Exit codes: 0 done (verify: no problem found), 1 a failure or any problem found.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import click

from roost.cli.common import (
    EXIT_CONFIG,
    config_option,
    data_dir_for,
    data_dir_option,
    fail,
    main,
    postgres_url,
    store_option,
)
from roost.store.sqlite import backup as backups
from roost.store.sqlite import verify as verifying


@main.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
@store_option
@config_option
@data_dir_option
def backup_command(
    dest: Path, quiet: bool, config_path: Path | None, data_dir: Path | None
) -> None:
    """Copy the data directory to DEST consistently, while the server runs.

    DEST is new, empty, or an earlier backup (then only new message files are added).
    Message files are hard-linked when DEST is on the same filesystem. On a PostgreSQL
    store: pg_dump of the database to DEST/roost.pgdump (restore with pg_restore).
    """
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    if (url := postgres_url()) is not None:
        _dump(url, dest)
        return
    notice = None if quiet else (lambda line: click.echo(line, err=True))
    try:
        report = backups.backup(directory, dest.absolute(), notice=notice)
    except (backups.BackupError, OSError, sqlite3.Error) as error:
        fail(f"backup failed: {error}")
    messages = sum(copy.messages for copy in report.accounts)
    linked = sum(copy.files_linked for copy in report.accounts)
    copied = sum(copy.files_copied for copy in report.accounts)
    click.echo(
        f"Backed up {len(report.accounts)} accounts, {messages} messages, to {dest} in "
        f"{report.seconds:.1f} s ({linked} files linked, {copied} copied)."
    )
    if not report.complete:
        for problem in report.errors:
            click.echo(f"error: {problem}", err=True)
        fail(f"the backup in {dest} is incomplete: {len(report.errors)} accounts failed")


def _dump(url: str, dest: Path) -> None:
    from roost.store.postgres.dump import DumpError, dump
    from roost.store.postgres.pool import redact

    try:
        report = dump(url, dest.absolute())
    except (DumpError, OSError) as error:
        fail(f"backup of {redact(url)} failed: {error}")
    click.echo(
        f"Dumped {redact(url)} to {report.path} ({report.size / 1e6:.1f} MB) in"
        f" {report.seconds:.1f} s; restore it with pg_restore."
    )


def _restore_dump(url: str, src: Path, force: bool) -> None:
    """A PostgreSQL store's backup (``roost backup``: a pg_dump) put back by pg_restore,
    into an empty database, or with ``--force`` over what is there (every node of the
    site stopped first)."""
    import asyncpg

    from roost.store.postgres.dump import DumpError, restore, table_count
    from roost.store.postgres.pool import redact

    if len(url.split()) > 1:
        fail("restore one shard at a time: --store names one database", EXIT_CONFIG)
    try:
        existing = asyncio.run(table_count(url))
    except (OSError, asyncpg.PostgresError) as error:
        fail(f"cannot reach {redact(url)}: {error}")
    if existing and not force:
        fail(
            f"{redact(url)} is not empty ({existing} tables): restore into a new database"
            " (createdb) and point [store] url at it, or give --force to replace this"
            " one's contents with the backup (stop every node first)",
            EXIT_CONFIG,
        )
    try:
        seconds = restore(url, src, replace=bool(existing))
    except (DumpError, OSError) as error:
        fail(f"restore into {redact(url)} failed, the database is as it was: {error}")
    click.echo(f"Restored {src} into {redact(url)} in {seconds:.1f} s.")


@main.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Replace the accounts already in the data directory (PostgreSQL: the database).",
)
@store_option
@config_option
@data_dir_option
def restore_command(
    src: Path, force: bool, config_path: Path | None, data_dir: Path | None
) -> None:
    """Restore the backup in SRC into the data directory (the server must be stopped),
    or a PostgreSQL store's backup into its database with pg_restore."""
    directory = data_dir_for(config_path, data_dir, must_exist=False)
    if (url := postgres_url()) is not None:
        _restore_dump(url, src.absolute(), force)
        return
    try:
        manifest = backups.restore(src.absolute(), directory, force=force)
    except (backups.BackupError, OSError, sqlite3.Error) as error:
        fail(f"restore failed: {error}")
    accounts = manifest.get("accounts")
    count = len(accounts) if isinstance(accounts, dict) else 0
    click.echo(
        f"Restored {count} accounts from the backup of {manifest.get('started')} into {directory}."
    )


@main.command("verify")
@click.argument("user", required=False)
@store_option
@config_option
@data_dir_option
def verify_command(user: str | None, config_path: Path | None, data_dir: Path | None) -> None:
    """Check every message of USER (default: every account): present, intact, counted."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    if (url := postgres_url()) is not None:
        report = _verify_postgres(url, user)
    else:
        try:
            report = verifying.verify(directory, user)
        except (verifying.VerifyError, OSError, sqlite3.Error) as error:
            fail(str(error))
    for problem in report.problems:
        click.echo(problem)
    summary = (
        f"Verified {report.accounts} accounts, {report.messages} messages, "
        f"{report.blobs} distinct contents: "
    )
    if report.problems:
        click.echo(summary + f"{len(report.problems)} problems.", err=True)
        raise click.exceptions.Exit(1)
    click.echo(summary + "no problems.")


def _verify_postgres(url: str, user: str | None) -> verifying.VerifyReport:
    import asyncpg

    from roost.store.postgres import verify as pg_verifying
    from roost.store.postgres.pool import redact

    try:
        return asyncio.run(pg_verifying.verify(url, user))
    except verifying.VerifyError as error:
        fail(str(error))
    except (OSError, asyncpg.PostgresError) as error:
        fail(f"cannot verify {redact(url)}: {error}")
