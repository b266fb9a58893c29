"""``roost who``, ``kick``, ``mailbox list|status|create|delete|rename|expunge`` and
``index rebuild``.

``who`` and ``kick`` ask the running server, through the control sockets of its
processes (runtime/control.py); with none running they fail, saying so. The mailbox
and index commands go the same way when a server runs — it performs the change, and
its sessions hear of it as of any other — and otherwise open the store directly, as
they always do on a PostgreSQL store (``perform``). The work itself is
``roost.admin.mailboxes.perform`` either way.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from roost.admin import mailboxes
from roost.cli.common import (
    config_option,
    data_dir_for,
    data_dir_option,
    fail,
    main,
    postgres_url,
    store_option,
    with_store,
)
from roost.runtime.control import ControlError, NoServer, request_all, request_one
from roost.runtime.coordination import RUN_DIR
from roost.store.base import Store, StoreError

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output: aligned columns, or JSON.",
)


def _run_dir(config_path: Path | None, data_dir: Path | None) -> Path:
    return data_dir_for(config_path, data_dir, must_exist=True) / RUN_DIR


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """Left-aligned columns, two spaces apart, under a header line."""
    cells = [[str(cell) for cell in row] for row in (header, *rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


@main.command("who")
@click.argument("user", required=False)
@format_option
@config_option
@data_dir_option
def who_command(
    user: str | None, fmt: str, config_path: Path | None, data_dir: Path | None
) -> None:
    """List the running server's sessions (of USER only, when given)."""
    try:
        answers = request_all(_run_dir(config_path, data_dir), {"op": "who"}, timeout=10.0)
    except ControlError as error:
        fail(str(error))
    sessions = [session for answer in answers for session in answer]
    if user is not None:
        sessions = [s for s in sessions if (s["user"] or "").casefold() == user.casefold()]
    sessions.sort(key=lambda s: (s["user"] or "", s["address"], s["protocol"], s["since"]))
    if fmt == "json":
        click.echo(json.dumps(sessions, indent=2))
        return
    rows = [
        (
            s["user"] or "-",
            s["address"],
            s["protocol"],
            "-" if s["worker"] is None else s["worker"],
            _since(s["since"]),
            s["state"],
        )
        for s in sessions
    ]
    click.echo(table(rows, ("USER", "ADDRESS", "PROTOCOL", "WORKER", "SINCE", "STATE")))


def _since(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@main.command("kick")
@click.argument("user")
@config_option
@data_dir_option
def kick_command(user: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Close every session of USER on the running server."""
    request = {"op": "kick", "user": user}
    try:
        answers = request_all(_run_dir(config_path, data_dir), request, timeout=10.0)
    except ControlError as error:
        fail(str(error))
    kicked = sum(int(answer["kicked"]) for answer in answers)
    click.echo(f"Kicked {kicked} session{'s' if kicked != 1 else ''} of {user}.")


def perform(config_path: Path | None, data_dir: Path | None, request: dict[str, Any]) -> Any:
    """Through the running server when there is one, else on the store directly. On
    a PostgreSQL store always directly: the change is NOTIFYed to every node, whose
    sessions hear of it as of any other node's (ARCHITECTURE.md decision 11), and a
    server on this data directory may not be on that database."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    full = {"op": "mailbox", **request}
    if postgres_url() is None:
        try:
            return request_one(directory / RUN_DIR, full)
        except NoServer:
            pass
        except ControlError as error:
            fail(str(error))

    async def direct(store: Store) -> Any:
        try:
            return await mailboxes.perform(store, full)
        except (mailboxes.RequestError, StoreError) as error:
            fail(str(error))

    return with_store(directory, direct)


@main.group("mailbox")
def mailbox_group() -> None:
    """List, inspect, create, delete, rename and expunge one user's mailboxes."""


@mailbox_group.command("list")
@click.argument("user")
@format_option
@store_option
@config_option
@data_dir_option
def mailbox_list(user: str, fmt: str, config_path: Path | None, data_dir: Path | None) -> None:
    """List USER's mailboxes."""
    boxes = perform(config_path, data_dir, {"action": "list", "user": user})
    if fmt == "json":
        click.echo(json.dumps(boxes, indent=2))
        return
    for box in boxes:
        notes = [note for note in (box["special_use"], box["noselect"] and "\\Noselect") if note]
        click.echo(" ".join([box["name"], *notes]))


STATUS_COLUMNS = ("messages", "unseen", "deleted", "size", "uidnext", "uidvalidity")


@mailbox_group.command("status")
@click.argument("user")
@click.argument("names", nargs=-1)
@format_option
@store_option
@config_option
@data_dir_option
def mailbox_status(
    user: str, names: tuple[str, ...], fmt: str, config_path: Path | None, data_dir: Path | None
) -> None:
    """Counts of USER's mailboxes (NAMES only, when given)."""
    request = {"action": "status", "user": user, "names": list(names)}
    statuses = perform(config_path, data_dir, request)
    if fmt == "json":
        click.echo(json.dumps(statuses, indent=2))
        return
    rows = [(s["name"], *(s[column] for column in STATUS_COLUMNS)) for s in statuses]
    click.echo(table(rows, ("MAILBOX", *(column.upper() for column in STATUS_COLUMNS))))


@mailbox_group.command("create")
@click.argument("user")
@click.argument("name")
@store_option
@config_option
@data_dir_option
def mailbox_create(user: str, name: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Create mailbox NAME (and missing parents; "/" separates levels)."""
    perform(config_path, data_dir, {"action": "create", "user": user, "name": name})
    click.echo(f"Created {name}.")


@mailbox_group.command("delete")
@click.argument("user")
@click.argument("name")
@store_option
@config_option
@data_dir_option
def mailbox_delete(user: str, name: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Delete mailbox NAME and its messages."""
    perform(config_path, data_dir, {"action": "delete", "user": user, "name": name})
    click.echo(f"Deleted {name}.")


@mailbox_group.command("rename")
@click.argument("user")
@click.argument("name")
@click.argument("new_name")
@store_option
@config_option
@data_dir_option
def mailbox_rename(
    user: str, name: str, new_name: str, config_path: Path | None, data_dir: Path | None
) -> None:
    """Rename mailbox NAME (with its children) to NEW_NAME."""
    request = {"action": "rename", "user": user, "name": name, "new_name": new_name}
    perform(config_path, data_dir, request)
    click.echo(f"Renamed {name} to {new_name}.")


@mailbox_group.command("expunge")
@click.argument("user")
@click.argument("name")
@click.option("--before", metavar="DATE", help="Arrived before DATE (YYYY-MM-DD).")
@click.option("--seen", is_flag=True, help="Flagged \\Seen.")
@click.option("--deleted", is_flag=True, help="Flagged \\Deleted.")
@click.option("--larger", type=click.IntRange(0), metavar="N", help="Larger than N bytes.")
@store_option
@config_option
@data_dir_option
def mailbox_expunge(
    user: str,
    name: str,
    before: str | None,
    seen: bool,
    deleted: bool,
    larger: int | None,
    config_path: Path | None,
    data_dir: Path | None,
) -> None:
    """Remove the messages of NAME that match every condition given (at least one)."""
    request = {
        "action": "expunge",
        "user": user,
        "name": name,
        "before": before,
        "seen": seen,
        "deleted": deleted,
        "larger": larger,
    }
    try:
        mailboxes.criterion_of(request)  # a usage error, before any connection
    except mailboxes.RequestError as error:
        fail(str(error), 2)
    result = perform(config_path, data_dir, request)
    click.echo(f"Expunged {result['expunged']} messages from {result['mailbox']}.")


@main.group("index")
def index_group() -> None:
    """The search index and message analyses."""


@index_group.command("rebuild")
@click.argument("user")
@store_option
@config_option
@data_dir_option
def index_rebuild(user: str, config_path: Path | None, data_dir: Path | None) -> None:
    """Analyse every message of USER again and rebuild the search index."""
    result = perform(config_path, data_dir, {"action": "rebuild-index", "user": user})
    click.echo(f"Rebuilt the index of {user}: {result['reindexed']} messages analysed.")
