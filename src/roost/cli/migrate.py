"""``roost migrate USER --from imaps://user@old.example.org[:port]``: the work is in
``roost.admin.migrate``; this reads the password, prints progress lines and the summary.

It writes to the store directly (like ``roost import``), so it can run before the new
server does; run it again after an interruption and it continues where it stopped.
"""

from __future__ import annotations

import imaplib
import sys
from pathlib import Path

import click

from roost.admin import migrate
from roost.cli.common import (
    EXIT_CONFIG,
    config_option,
    data_dir_for,
    data_dir_option,
    existing_account,
    fail,
    main,
    store_option,
    with_store,
)
from roost.store.base import Store


def _progress(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@main.command("migrate")
@click.argument("user")
@click.option(
    "--from",
    "source_url",
    required=True,
    metavar="URL",
    help="imaps://user@host[:port] (or imap://, with STARTTLS) of the old server.",
)
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File whose first line is the old server's password. Default: a prompt.",
)
@click.option("--insecure", is_flag=True, help="Do not check the old server's certificate.")
@store_option
@config_option
@data_dir_option
def migrate_command(
    user: str,
    source_url: str,
    password_file: Path | None,
    insecure: bool,
    config_path: Path | None,
    data_dir: Path | None,
) -> None:
    """Copy every folder, flag, keyword and internal date of an IMAP account into
    account USER; a rerun copies only what is still missing."""
    try:
        source = migrate.Source.parse(source_url)
    except migrate.MigrationError as error:
        fail(str(error), EXIT_CONFIG)
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    name = existing_account(directory, user)
    if password_file is not None:
        lines = password_file.read_text().splitlines()
        password = lines[0] if lines else ""
    else:
        password = click.prompt(f"Password of {source.user} at {source.host}", hide_input=True)
    try:
        client = migrate.connect(source, password, insecure=insecure)
    except migrate.MigrationError as error:
        fail(str(error))
    state = migrate.State(migrate.state_path(directory, name))

    async def run(store: Store) -> migrate.MigrationReport:
        account = await store.open_account(name)
        try:
            return await migrate.migrate(client, account, state, progress=_progress)
        finally:
            await account.close()

    try:
        report = with_store(directory, run)
    except migrate.MigrationError as error:
        fail(f"{error} (run the command again to continue)")
    except (OSError, imaplib.IMAP4.error) as error:  # the connection broke midway
        fail(f"{source.host}:{source.port}: {error} (run the command again to continue)")
    finally:
        migrate.close(client)
    copied = sum(report.folders.values())
    click.echo(
        f"Copied {copied} messages ({report.bytes / 1e6:.1f} MB) into "
        f"{len(report.folders)} folders of {name}; {report.skipped} were already there."
    )
    if report.dropped_keywords:
        dropped = ", ".join(sorted(report.dropped_keywords))
        click.echo(f"Dropped keywords that are not IMAP atoms: {dropped}")
