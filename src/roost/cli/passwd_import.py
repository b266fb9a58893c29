"""``roost user import-passwd FILE``: accounts and password hashes from a Dovecot
passwd-file (the work is in ``roost.admin.passwd_file``)."""

from __future__ import annotations

from pathlib import Path

import click

from roost.admin import passwd_file
from roost.cli.common import (
    config_option,
    data_dir_for,
    data_dir_option,
    fail,
    special_folders_for,
    with_store,
)
from roost.cli.user import user
from roost.store.base import Store


@user.command("import-passwd")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--update", is_flag=True, help="Also replace the password of existing accounts.")
@config_option
@data_dir_option
def import_passwd(
    file: Path, update: bool, config_path: Path | None, data_dir: Path | None
) -> None:
    """Create accounts from a Dovecot passwd-file, keeping their password hashes.

    Schemes: ARGON2ID, ARGON2I, BLF-CRYPT, SHA512-CRYPT, SHA256-CRYPT, CRYPT, SSHA512,
    SSHA256, SSHA, SHA512, SHA256, SHA, PLAIN. Each hash becomes argon2id at the
    user's next successful sign-in.
    """
    directory = data_dir_for(config_path, data_dir, must_exist=False)
    try:
        entries, problems = passwd_file.read(file)
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {file}: {error}")

    async def run(store: Store) -> passwd_file.PasswdReport:
        return await passwd_file.import_entries(store, entries, update=update)

    report = with_store(directory, run, special_folders=special_folders_for(config_path))
    for note in [*problems, *report.skipped]:
        click.echo(f"skipped {note}", err=True)
    click.echo(
        f"Created {len(report.created)} accounts, updated {len(report.updated)}, "
        f"skipped {len(problems) + len(report.skipped)}."
    )
