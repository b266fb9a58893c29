"""``roost user``: add, passwd, del, list; app-password add|list|revoke; totp
enable|disable. The work is in ``roost.auth.manage``; these only parse and print."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from roost.auth import manage, totp
from roost.auth.authenticator import account_name_problem, find_account
from roost.cli.common import (
    EXIT_CONFIG,
    config_option,
    data_dir_for,
    data_dir_option,
    existing_account,
    fail,
    main,
    read_password,
    special_folders_for,
    store_option,
    utc,
    with_store,
)
from roost.store.base import AccountExists, NoSuchAccount, Store
from roost.store.credentials import AppPasswordRecord


@main.group()
@store_option
def user() -> None:
    """Manage accounts."""


@user.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--shard",
    type=click.IntRange(min=1),
    help="With [store] shards: the shard (1 is the first listed) to place the account "
    "on. Default: the one with the fewest accounts.",
)
@config_option
@data_dir_option
def user_add(
    name: str,
    password_stdin: bool,
    shard: int | None,
    config_path: Path | None,
    data_dir: Path | None,
) -> None:
    """Create an account NAME with its standard folders."""
    problem = account_name_problem(name)
    if problem is not None:
        fail(f"invalid account name {name!r}: {problem}", EXIT_CONFIG)
    directory = data_dir_for(config_path, data_dir, must_exist=False)
    password = read_password(password_stdin)

    async def add(store: Store) -> bool:
        existing = await find_account(store, name)
        if existing is not None:
            same = "" if existing == name else f" (as {existing!r}; names ignore case)"
            fail(f"account {name!r} already exists{same}")
        create = None
        if shard is not None:
            from roost.store.postgres.shards import ShardedStore

            if not isinstance(store, ShardedStore):
                fail("--shard needs a sharded store ([store] shards)", EXIT_CONFIG)
            create = functools.partial(store.create_account, shard=shard - 1)
        try:
            return await manage.create_account(store, name, password, create=create)
        except AccountExists:
            fail(f"account {name!r} already exists")

    scram_keys = with_store(directory, add, special_folders=special_folders_for(config_path))
    click.echo(f"Created account {name}.")
    if not scram_keys:
        click.echo(_NO_SCRAM_NOTE)


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@config_option
@data_dir_option
def user_passwd(
    name: str, password_stdin: bool, config_path: Path | None, data_dir: Path | None
) -> None:
    """Set a new password for account NAME."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)

    async def lookup(store: Store) -> str:
        account = await find_account(store, name)
        if account is None:
            fail(f"no account {name!r}")
        return account

    account = with_store(directory, lookup)
    password = read_password(password_stdin)

    async def change(store: Store) -> bool:
        try:
            return await manage.set_password(store, account, password)
        except NoSuchAccount:
            fail(f"no account {name!r}")

    scram_keys = with_store(directory, change)
    click.echo(f"Changed the password of {account}.")
    if not scram_keys:
        click.echo(_NO_SCRAM_NOTE)


@user.command("del")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@config_option
@data_dir_option
def user_del(name: str, yes: bool, config_path: Path | None, data_dir: Path | None) -> None:
    """Delete account NAME and all its mail."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)

    async def lookup(store: Store) -> str:
        account = await find_account(store, name)
        if account is None:
            fail(f"no account {name!r}")
        return account

    account = with_store(directory, lookup)
    if not yes:
        click.confirm(f"Delete account {account} and all its mail?", abort=True)

    async def delete(store: Store) -> None:
        try:
            await store.delete_account(account)
        except NoSuchAccount:
            fail(f"no account {name!r}")

    with_store(directory, delete)
    click.echo(f"Deleted account {account}.")


@user.command("list")
@config_option
@data_dir_option
def user_list(config_path: Path | None, data_dir: Path | None) -> None:
    """List the accounts, one per line."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)

    async def names(store: Store) -> list[str]:
        return await store.list_accounts()

    for account in sorted(with_store(directory, names)):
        click.echo(account)


_NO_SCRAM_NOTE = (
    "Note: this password has characters SCRAM cannot use (SASLprep, RFC 4013); "
    "AUTHENTICATE SCRAM-SHA-256 will fail for this account, PLAIN and LOGIN work."
)


# ---- app passwords and two-factor ----------------------------------------------------


@user.group("app-password")
def app_password() -> None:
    """Passwords for mail programs, one per device, each revocable alone."""


@app_password.command("add")
@click.argument("name")
@click.argument("label")
@config_option
@data_dir_option
def app_password_add(
    name: str, label: str, config_path: Path | None, data_dir: Path | None
) -> None:
    """Make an app password labelled LABEL for account NAME and print it, once."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account = existing_account(directory, name)

    async def add(store: Store) -> str:
        try:
            return await manage.add_app_password(store, account, label)
        except manage.CredentialError as error:
            fail(str(error), EXIT_CONFIG)

    password = with_store(directory, add)
    click.echo(f"App password {label!r} of {account}: {password}")
    click.echo(
        "Use it in place of the account password in one mail program; it is not shown again."
    )


@app_password.command("list")
@click.argument("name")
@config_option
@data_dir_option
def app_password_list(name: str, config_path: Path | None, data_dir: Path | None) -> None:
    """List the app passwords of account NAME: label, created, last used."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account = existing_account(directory, name)

    async def listing(store: Store) -> tuple[AppPasswordRecord, ...]:
        return await manage.list_app_passwords(store, account)

    records = with_store(directory, listing)
    if not records:
        click.echo(f"{account} has no app passwords.")
        return
    width = max(len("LABEL"), *(len(r.label) for r in records))
    click.echo(f"{'LABEL':<{width}}  {'CREATED':<20}  LAST USED")
    for record in records:
        used = utc(record.last_used) if record.last_used is not None else "never"
        click.echo(f"{record.label:<{width}}  {utc(record.created):<20}  {used}")


@app_password.command("revoke")
@click.argument("name")
@click.argument("label")
@config_option
@data_dir_option
def app_password_revoke(
    name: str, label: str, config_path: Path | None, data_dir: Path | None
) -> None:
    """Revoke the app password LABEL of account NAME: it stops working at once."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account = existing_account(directory, name)

    async def revoke(store: Store) -> bool:
        return await store.delete_app_password(account, label)

    if not with_store(directory, revoke):
        fail(f"{account} has no app password labelled {label!r}")
    click.echo(f"Revoked the app password {label!r} of {account}.")


@user.group("totp")
def totp_group() -> None:
    """Two-factor sign-in with a time-based code (TOTP, RFC 6238)."""


@totp_group.command("enable")
@click.argument("name")
@click.option("--issuer", default="Roost", show_default=True, help="Name shown in the app.")
@click.option("--no-qr", is_flag=True, help="Print the otpauth:// URI only, no QR code.")
@config_option
@data_dir_option
def totp_enable(
    name: str, issuer: str, no_qr: bool, config_path: Path | None, data_dir: Path | None
) -> None:
    """Turn two-factor sign-in on for account NAME; print the secret for an app."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account = existing_account(directory, name)

    async def enable(store: Store) -> str:
        try:
            return await manage.enable_totp(store, account)
        except manage.CredentialError as error:
            fail(str(error))

    secret = with_store(directory, enable)
    uri = totp.provisioning_uri(secret, account, issuer)
    click.echo(f"Two-factor sign-in is on for {account}. Scan this with an authenticator app:")
    if not no_qr:
        click.echo(totp.qr_code_text(uri), nl=False)
    click.echo(uri)
    click.echo(
        "From now on the account password alone no longer signs in. Use an app password\n"
        "(roost user app-password add), or the password followed directly by the current\n"
        "6-digit code, without a space: password hunter2 and code 123456 make hunter2123456."
    )


@totp_group.command("disable")
@click.argument("name")
@config_option
@data_dir_option
def totp_disable(name: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Turn two-factor sign-in off for account NAME."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account = existing_account(directory, name)

    async def disable(store: Store) -> bool:
        return await manage.disable_totp(store, account)

    if with_store(directory, disable):
        click.echo(f"Two-factor sign-in is off for {account}.")
    else:
        click.echo(f"Two-factor sign-in was not on for {account}.")
