"""``roost import USER PATH`` and ``roost export USER DEST``: the work is in
``roost.admin.importer`` and ``roost.admin.exporter``; these parse, report progress and
print the summary.

Progress: on a terminal, one line redrawn in place (messages, MB, rate, ETA) at most
``REDRAW_SECONDS`` apart; otherwise ``progress N/M`` lines, one per batch, for logs and
scripts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

import click

from roost.admin import exporter, importer
from roost.cli.common import (
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

REDRAW_SECONDS = 0.2


class ProgressLine:
    """Prints progress for ``verb`` (imported, exported) to ``stream``."""

    def __init__(self, stream: TextIO, verb: str, *, terminal: bool | None = None) -> None:
        self.stream = stream
        self.verb = verb
        self.terminal = stream.isatty() if terminal is None else terminal
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int, nbytes: int) -> None:
        if not self.terminal:
            self.stream.write(f"progress {done}/{total}\n")
            self.stream.flush()
            return
        now = time.monotonic()
        if now - self._last_draw < REDRAW_SECONDS and done < total:
            return
        self._last_draw = now
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        eta = "--:--" if rate <= 0 or done >= total else _clock((total - done) / rate)
        line = (
            f"\r{self.verb} {done:,}/{total:,} messages  {nbytes / 1e6:,.1f} MB"
            f"  {rate:,.0f} msg/s  ETA {eta} "
        )
        self.stream.write(line)
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@main.command("import")
@click.argument("user")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--folder", help="Mailbox for a single mbox file. Default: INBOX.")
@click.option(
    "--mbox-format",
    type=click.Choice(["auto", "mboxrd", "mboxo"]),
    default="auto",
    show_default=True,
    help="How From-quoting is undone; auto: mboxrd if a line starts '>>From '.",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 10_000),
    default=importer.BATCH_MESSAGES,
    show_default=True,
    help="Messages stored per transaction.",
)
@store_option
@config_option
@data_dir_option
def import_command(
    user: str,
    path: Path,
    folder: str | None,
    mbox_format: str,
    batch: int,
    config_path: Path | None,
    data_dir: Path | None,
) -> None:
    """Import the mail at PATH into account USER.

    PATH is an mbox file (mboxrd or mboxo), a Maildir++ tree (flags, Dovecot keywords,
    .Folder.Sub folders) or a directory of mbox files, as `roost export` writes them.
    Internal dates come from From_ lines and file times; flags are kept.
    """
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    name = existing_account(directory, user)
    try:
        source = importer.open_source(path, folder=folder, mbox_style=mbox_format)
    except (importer.SourceError, OSError) as error:
        fail(str(error))
    progress = ProgressLine(sys.stderr, "imported")

    async def run(store: Store) -> importer.ImportReport:
        account = await store.open_account(name)
        try:
            return await importer.import_mail(
                account, source, batch_messages=batch, progress=progress
            )
        finally:
            await account.close()

    try:
        report = with_store(directory, run)
    finally:
        progress.finish()
    rate = report.messages / report.seconds if report.seconds > 0 else 0.0
    click.echo(
        f"Imported {report.messages} messages ({report.bytes / 1e6:.1f} MB) into "
        f"{len(report.folders)} folders of {name} in {report.seconds:.1f} s "
        f"({rate:.0f} messages/s)."
    )
    if report.dropped_keywords:
        dropped = ", ".join(sorted(report.dropped_keywords))
        click.echo(f"Dropped keywords that are not IMAP atoms: {dropped}")


@main.command("export")
@click.argument("user")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(exporter.FORMATS)),
    default="maildir",
    show_default=True,
)
@store_option
@config_option
@data_dir_option
def export_command(
    user: str, dest: Path, fmt: str, config_path: Path | None, data_dir: Path | None
) -> None:
    """Export every folder of account USER to DEST (a new or empty directory)."""
    directory = data_dir_for(config_path, data_dir, must_exist=True)
    name = existing_account(directory, user)
    if dest.exists() and any(dest.iterdir()):
        fail(f"{dest} is not empty")
    progress = ProgressLine(sys.stderr, "exported")

    async def run(store: Store) -> exporter.ExportReport:
        account = await store.open_account(name)
        try:
            return await exporter.export_mail(account, dest, fmt, progress=progress)
        finally:
            await account.close()

    try:
        report = with_store(directory, run)
    finally:
        progress.finish()
    click.echo(
        f"Exported {report.messages} messages ({report.bytes / 1e6:.1f} MB) in "
        f"{len(report.folders)} folders of {name} to {dest} as {fmt}."
    )
    if report.skipped_folders:
        skipped = ", ".join(report.skipped_folders)
        click.echo(f"Skipped, as the format cannot name them: {skipped}")
    if report.dropped_keywords:
        dropped = ", ".join(sorted(report.dropped_keywords))
        click.echo(f"Keywords past the 26 a Maildir folder holds, not kept: {dropped}")
