"""``roost user alias``: add, del, list — the addresses an account may send as.

Submission (``roost.submission.policy``) lets an account send as its own name when
that is an address (or name@each [delivery] domain) and as these aliases; anything
else in the envelope sender or From: is refused with 553 5.7.1. An address is the
alias of one account at most. A running server reads them at each sign-in.
"""

from __future__ import annotations

from pathlib import Path

import click

from roost.cli.common import (
    EXIT_CONFIG,
    config_option,
    data_dir_for,
    data_dir_option,
    existing_account,
    fail,
    with_store,
)
from roost.cli.user import user
from roost.smtp.paths import parse_path
from roost.store.base import CannotDoThat, Store


@user.group("alias")
def alias_group() -> None:
    """Addresses an account may send mail as (submission)."""


def _checked(address: str) -> str:
    """The address as an SMTP mailbox would carry it; exits when it is not one."""
    parsed = parse_path(f"<{address}>", allow_null=False)
    if not isinstance(parsed, tuple) or parsed[0] is None or parsed[1]:
        fail(f"{address!r} is not an email address (local@domain)", EXIT_CONFIG)
    return str(parsed[0])


@alias_group.command("add")
@click.argument("name")
@click.argument("address")
@config_option
@data_dir_option
def alias_add(name: str, address: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Let account NAME send as ADDRESS."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account = existing_account(directory, name)
    address = _checked(address)

    async def add(store: Store) -> None:
        try:
            await store.add_alias(account, address)
        except CannotDoThat as error:
            fail(str(error), EXIT_CONFIG)

    with_store(directory, add)
    click.echo(f"{account} may now send as {address}.")


@alias_group.command("del")
@click.argument("name")
@click.argument("address")
@config_option
@data_dir_option
def alias_del(name: str, address: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Stop account NAME sending as ADDRESS."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account = existing_account(directory, name)

    async def delete(store: Store) -> bool:
        return await store.delete_alias(account, address)

    if not with_store(directory, delete):
        fail(f"{account} has no alias {address}")
    click.echo(f"{account} may no longer send as {address}.")


@alias_group.command("list")
@click.argument("name")
@config_option
@data_dir_option
def alias_list(name: str, config_path: Path | None, data_dir: Path | None) -> None:
    """List the aliases of account NAME."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account = existing_account(directory, name)

    async def listing(store: Store) -> list[str]:
        return await store.list_aliases(account)

    for address in with_store(directory, listing):
        click.echo(address)
