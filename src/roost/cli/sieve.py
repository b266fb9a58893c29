"""``roost sieve``: test a script on a message, and put|list|activate|get|delete a
user's scripts — the admin's side of what ManageSieve offers the user."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from roost import sieve as engine
from roost.cli.common import (
    EXIT_CONFIG,
    config_option,
    data_dir_for,
    data_dir_option,
    default_config,
    existing_account,
    fail,
    main,
    with_store,
)
from roost.config import ConfigError, Settings
from roost.delivery.filtering import compiled_form, sieve_context, store_script, test_script
from roost.store.base import NoSuchScript, ScriptActive, Store

EXIT_SCRIPT = 65  # EX_DATAERR: the script does not compile


@main.group("sieve")
def sieve_group() -> None:
    """Test and manage users' Sieve scripts."""


def _settings(config_path: Path | None) -> Settings:
    path = default_config(config_path)
    if path is None:
        return Settings()
    try:
        return Settings.load(path)
    except ConfigError as error:
        fail(str(error), EXIT_CONFIG)


def _read_source(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror}")
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8", EXIT_SCRIPT)


@sieve_group.command("test")
@click.argument("user")
@click.argument("script")
@click.argument("message", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--from", "sender", default="sender@example.net", help="Envelope sender.")
@click.option("--to", "recipient", default="", help="Envelope recipient (default: USER).")
@config_option
@data_dir_option
def sieve_test(
    user: str,
    script: str,
    message: Path,
    sender: str,
    recipient: str,
    config_path: Path | None,
    data_dir: Path | None,
) -> None:
    """Print the actions SCRIPT (a file, or the name of one of USER's scripts) would
    take for MESSAGE ("-": standard input). Nothing is delivered, sent or remembered."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    settings = _settings(config_path)
    name = existing_account(directory, user)
    data = sys.stdin.buffer.read() if str(message) == "-" else message.read_bytes()
    context = sieve_context(settings.sieve, settings.server.hostname, settings.delivery.domains)
    source = _read_source(Path(script)) if Path(script).is_file() else None

    async def run(store: Store) -> engine.Result:
        account = await store.open_account(name)
        try:
            if source is not None:
                compiled = engine.compile_script(source)
            else:
                compiled = await compiled_form(account, await account.get_script(script))
            return await test_script(
                context, account, compiled, data, sender=sender, recipient=recipient or name
            )
        except NoSuchScript:
            fail(f"no script file or stored script {script!r}")
        except engine.SieveSyntaxError as error:
            fail(f"{script}: {error}", EXIT_SCRIPT)
        finally:
            await account.close()

    click.echo(engine.describe(with_store(directory, run)))


@sieve_group.command("put")
@click.argument("user")
@click.argument("name")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--activate", is_flag=True, help="Make it the active script.")
@config_option
@data_dir_option
def sieve_put(
    user: str,
    name: str,
    file: Path,
    activate: bool,
    config_path: Path | None,
    data_dir: Path | None,
) -> None:
    """Store FILE as USER's script NAME (checked first; nothing stored on an error)."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account_name = existing_account(directory, user)
    source = _read_source(file)

    async def put(store: Store) -> None:
        account = await store.open_account(account_name)
        try:
            await store_script(account, name, source)
            if activate:
                await account.set_active_script(name)
        except engine.SieveSyntaxError as error:
            fail(f"{file}: {error}", EXIT_SCRIPT)
        finally:
            await account.close()

    with_store(directory, put)
    click.echo(f"Stored script {name!r} for {account_name}" + (" (active)." if activate else "."))


@sieve_group.command("list")
@click.argument("user")
@config_option
@data_dir_option
def sieve_list(user: str, config_path: Path | None, data_dir: Path | None) -> None:
    """List USER's scripts; the active one is marked."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account_name = existing_account(directory, user)

    async def listing(store: Store) -> list[tuple[str, bool]]:
        account = await store.open_account(account_name)
        try:
            return [(s.name, s.active) for s in await account.list_scripts()]
        finally:
            await account.close()

    for name, active in with_store(directory, listing):
        click.echo(f"{name}{'  (active)' if active else ''}")


@sieve_group.command("activate")
@click.argument("user")
@click.argument("name", required=False)
@config_option
@data_dir_option
def sieve_activate(
    user: str, name: str | None, config_path: Path | None, data_dir: Path | None
) -> None:
    """Make NAME USER's active script; without NAME, none is active."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account_name = existing_account(directory, user)

    async def activate(store: Store) -> None:
        account = await store.open_account(account_name)
        try:
            await account.set_active_script(name or None)
        except NoSuchScript:
            fail(f"{account_name} has no script {name!r}")
        finally:
            await account.close()

    with_store(directory, activate)
    click.echo(f"Active script of {account_name}: {name or '(none)'}")


@sieve_group.command("get")
@click.argument("user")
@click.argument("name")
@config_option
@data_dir_option
def sieve_get(user: str, name: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Print USER's script NAME."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account_name = existing_account(directory, user)

    async def get(store: Store) -> str:
        account = await store.open_account(account_name)
        try:
            return (await account.get_script(name)).source
        except NoSuchScript:
            fail(f"{account_name} has no script {name!r}")
        finally:
            await account.close()

    click.echo(with_store(directory, get), nl=False)


@sieve_group.command("delete")
@click.argument("user")
@click.argument("name")
@config_option
@data_dir_option
def sieve_delete(user: str, name: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Delete USER's script NAME (not the active one: deactivate it first)."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account_name = existing_account(directory, user)

    async def delete(store: Store) -> None:
        account = await store.open_account(account_name)
        try:
            await account.delete_script(name)
        except NoSuchScript:
            fail(f"{account_name} has no script {name!r}")
        except ScriptActive:
            fail(f"{name!r} is the active script; run 'roost sieve activate {user}' first")
        finally:
            await account.close()

    with_store(directory, delete)
    click.echo(f"Deleted script {name!r} of {account_name}.")
