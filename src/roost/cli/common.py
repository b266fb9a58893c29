"""What every ``roost`` command shares: the ``main`` group, the --config and --data-dir
options, the one-line failure (``roost: ...``, exit code) and opening the store.

Errors the operator can fix (a bad configuration, a missing certificate, a port in use,
an unknown account) are one line on stderr, ``roost: ...``, never a traceback. Exit
codes: 0 success, 1 a runtime failure, 2 a configuration or usage error.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import click

from roost.auth.authenticator import find_account
from roost.config import (
    DEV_DATA_DIR,
    ConfigError,
    Settings,
)
from roost.runtime.data_dir import private_umask
from roost.runtime.listeners import ServerError
from roost.runtime.opening import STORE_ENV, open_store
from roost.store.base import QuotaLimits, Store, StoreError
from roost.store.values import DEFAULT_SPECIAL_FOLDERS

_T = TypeVar("_T")

EXIT_RUNTIME = 1
EXIT_CONFIG = 2


def fail(message: str, code: int = EXIT_RUNTIME) -> NoReturn:
    click.echo(f"roost: {message}", err=True)
    raise click.exceptions.Exit(code)


# The one configuration every command reads when neither --config nor $ROOST_CONFIG
# names another: `roost serve` and `roost user add` must agree on the data directory.
DEFAULT_CONFIG = Path("/etc/roost/roost.toml")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="ROOST_CONFIG",
    metavar="FILE",
    help=f"Configuration file (TOML). Default: $ROOST_CONFIG, else {DEFAULT_CONFIG}.",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Data directory; overrides the configuration's. Without a configuration: "
    f"./{DEV_DATA_DIR}, the --dev server's, when it exists.",
)


def _set_store(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        os.environ[STORE_ENV] = value  # every process of this command reads it


store_option = click.option(
    "--store",
    metavar="URL",
    envvar=STORE_ENV,
    expose_value=False,
    callback=_set_store,
    help="The store: a postgresql://user@host/db URL (overrides [store] and the data "
    "directory). Default: $ROOST_STORE, else the configuration's.",
)


def postgres_url() -> str | None:
    """The PostgreSQL store's URL when the command works on one (--store, $ROOST_STORE,
    or ``[store]`` as ``data_dir_for`` read it), else None: the data directory's."""
    url = os.environ.get(STORE_ENV, "")
    return url if url.startswith(("postgresql://", "postgres://")) else None


def default_config(config_path: Path | None) -> Path | None:
    """``config_path`` when given (--config, $ROOST_CONFIG), else the default file
    when it exists."""
    if config_path is not None:
        return config_path
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def no_config() -> str:
    return f"give --config FILE (or set ROOST_CONFIG, or create {DEFAULT_CONFIG})"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="roost", prog_name="roost")
def main() -> None:
    """Roost: an IMAP and POP3 mail store server."""
    private_umask()  # every file 0600, every directory 0700 (runtime/data_dir.py)


def existing_account(directory: Path, name: str) -> str:
    """The canonical name of account ``name``; fails with a message when absent."""

    async def lookup(store: Store) -> str:
        account = await find_account(store, name)
        if account is None:
            fail(f"no account {name!r}")
        return account

    return with_store(directory, lookup)


def utc(epoch_seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch_seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def data_dir_for(config_path: Path | None, data_dir: Path | None, *, must_exist: bool) -> Path:
    """The data directory an admin command works on: the one the server uses.

    --data-dir wins, then the configuration's (--config, $ROOST_CONFIG, else
    /etc/roost/roost.toml). With neither, only ./roost-data of a --dev server that
    exists is taken: a command run from the wrong directory must not create a data
    directory and an account that no server reads. ``must_exist`` is False only for
    commands that may create the directory they were told of explicitly."""
    config_path = default_config(config_path)
    if data_dir is not None:
        directory = data_dir
    elif config_path is not None:
        try:
            settings = Settings.load(config_path)
        except ConfigError as error:
            fail(str(error), EXIT_CONFIG)
        directory = settings.server.data_dir
        if (url := settings.store.postgresql_url) is not None and not os.environ.get(STORE_ENV):
            os.environ[STORE_ENV] = url  # --store (or a non-empty $ROOST_STORE) wins
    else:
        directory = DEV_DATA_DIR.absolute()
        if not directory.is_dir() and not os.environ.get(STORE_ENV):
            fail(
                f"no data directory: {directory} (the --dev server's) does not exist, and "
                f"there is no configuration ({DEFAULT_CONFIG} is absent and neither "
                "--config nor ROOST_CONFIG is given); give --config FILE or --data-dir DIR",
                EXIT_CONFIG,
            )
    directory = directory.absolute()
    if must_exist and not directory.is_dir() and not os.environ.get(STORE_ENV):
        fail(f"data directory {directory} does not exist")
    return directory


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            fail("no password on standard input", EXIT_CONFIG)
        return password
    entered: str = click.prompt(
        "Password", hide_input=True, confirmation_prompt="Repeat the password"
    )
    return entered


def special_folders_for(config_path: Path | None) -> tuple[tuple[str, str], ...]:
    """The site's names for a new account's special folders (``[imap]
    special_use_names``) from its configuration, if there is one; else the defaults."""
    config_path = default_config(config_path)
    if config_path is None:
        return DEFAULT_SPECIAL_FOLDERS
    try:
        return Settings.load(config_path).imap.special_use_names
    except ConfigError as error:
        fail(str(error), EXIT_CONFIG)


def with_store(
    directory: Path,
    action: Callable[[Store], Awaitable[_T]],
    *,
    quota: QuotaLimits | None = None,
    special_folders: tuple[tuple[str, str], ...] = DEFAULT_SPECIAL_FOLDERS,
) -> _T:
    """Run ``action`` on the store in ``directory`` (``quota``: the default limits;
    ``special_folders``: those of accounts it creates)."""

    async def go() -> _T:
        store = await open_store(directory, quota=quota, special_folders=special_folders)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except ServerError as error:
        fail(str(error))
    except StoreError as error:
        fail(f"store error: {error}")
