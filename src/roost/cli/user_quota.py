"""``roost user quota``: set, show, recalc (RFC 9208 limits; ARCHITECTURE.md decision 10).

An account's own limits are kept in the users directory and override the ``[quota]``
default of the configuration; ``none`` goes back to the default, ``unlimited`` (or 0)
lifts the limit for this account alone. A running server applies a change within
30 seconds (``SqliteStore`` quota_refresh), at once to new sessions and deliveries.
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
from roost.config import ConfigError, Settings, format_size, parse_size
from roost.store.base import QuotaLimits, QuotaOverride, QuotaUsage, Store


@user.group("quota")
def quota_group() -> None:
    """Storage and message-count limits of an account."""


@quota_group.command("set")
@click.argument("name")
@click.option("--storage", metavar="SIZE", help="2G, 500M, 0 or unlimited, none: the default.")
@click.option("--messages", metavar="N", help="A count, 0 or unlimited, none: the default.")
@config_option
@data_dir_option
def quota_set(
    name: str,
    storage: str | None,
    messages: str | None,
    config_path: Path | None,
    data_dir: Path | None,
) -> None:
    """Set the quota of account NAME; options not given stay as they are."""
    if storage is None and messages is None:
        fail("give --storage, --messages or both", EXIT_CONFIG)
    new_storage = _limit("--storage", storage, sizes=True) if storage is not None else None
    new_messages = _limit("--messages", messages, sizes=False) if messages is not None else None
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    account = existing_account(directory, name)

    async def change(store: Store) -> QuotaOverride:
        current = await store.quota_override(account)
        override = QuotaOverride(
            current.storage if storage is None else new_storage,
            current.messages if messages is None else new_messages,
        )
        await store.set_quota_override(account, override)
        return override

    override = with_store(directory, change)
    click.echo(
        f"Quota of {account}: storage {_own(override.storage, sizes=True)},"
        f" messages {_own(override.messages, sizes=False)}."
    )


@quota_group.command("show")
@click.argument("name")
@config_option
@data_dir_option
def quota_show(name: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Show the usage and limits of account NAME (the default from --config)."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    default = _default_limits(config_path)
    account = existing_account(directory, name)

    async def show(store: Store) -> tuple[QuotaUsage, QuotaOverride]:
        opened = await store.open_account(account)
        try:
            return await opened.quota(), await store.quota_override(account)
        finally:
            await opened.close()

    usage, override = with_store(directory, show, quota=default)
    _print_usage(account, usage, override)


@quota_group.command("recalc")
@click.argument("name")
@config_option
@data_dir_option
def quota_recalc(name: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Count the usage of account NAME again from its messages and store it."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    default = _default_limits(config_path)
    account = existing_account(directory, name)

    async def recalc(store: Store) -> tuple[QuotaUsage, QuotaUsage, QuotaOverride]:
        opened = await store.open_account(account)
        try:
            before, after = await opened.recalculate_quota()
            return before, after, await store.quota_override(account)
        finally:
            await opened.close()

    before, after, override = with_store(directory, recalc, quota=default)
    if (before.storage, before.messages) == (after.storage, after.messages):
        click.echo(f"The usage of {account} was right.")
    else:
        click.echo(
            f"Corrected the usage of {account}: was {before.storage} octets in"
            f" {before.messages} messages."
        )
    _print_usage(account, after, override)


def _limit(option: str, text: str, *, sizes: bool) -> int | None:
    """None for the default, else the limit (0: unlimited)."""
    word = text.strip().lower()
    if word == "none":
        return None
    if word == "unlimited":
        return 0
    try:
        if sizes:
            return parse_size(text)
        if not word.isdigit():
            raise ValueError(f"{text!r} is not a number")
        return int(word)
    except ValueError as error:
        fail(f"invalid value for {option}: {error}", EXIT_CONFIG)


def _default_limits(config_path: Path | None) -> QuotaLimits:
    if config_path is None:
        return QuotaLimits()
    try:
        return Settings.load(config_path).quota.limits
    except ConfigError as error:
        fail(str(error), EXIT_CONFIG)


def _own(value: int | None, *, sizes: bool) -> str:
    if value is None:
        return "the default"
    if value == 0:
        return "unlimited"
    return format_size(value) if sizes else str(value)


def _print_usage(account: str, usage: QuotaUsage, override: QuotaOverride) -> None:
    def source(own: int | None) -> str:
        return "the default" if own is None else "this account's own"

    storage_limit = "unlimited" if usage.storage_limit is None else format_size(usage.storage_limit)
    message_limit = "unlimited" if usage.message_limit is None else str(usage.message_limit)
    click.echo(f"Quota of {account}:")
    click.echo(
        f"  storage   {usage.storage} octets used, limit {storage_limit}"
        f" ({source(override.storage)})"
    )
    click.echo(
        f"  messages  {usage.messages} used, limit {message_limit} ({source(override.messages)})"
    )
