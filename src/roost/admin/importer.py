"""``roost import``: messages from mbox files and Maildir++ trees into an account.

Every message is stored through ``Account.append`` — the one delivery path, with its
analysis, durability and change events (ARCHITECTURE.md, decision 9) — in batches of
``BATCH_MESSAGES`` (or ``BATCH_BYTES``) per call: one transaction and one commit per
batch, so a running server's sessions of the account get the write lock between
batches instead of waiting for the whole import (mox holds it throughout). A failed
import leaves the batches committed before it; a rerun imports everything again.

Keywords that are not valid IMAP atoms (RFC 9051 §9 ``flag-keyword``) cannot be stored
and are dropped, counted in the report; ``\\Recent`` is never imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from roost.admin import maildir
from roost.admin.items import MailItem
from roost.admin.mbox import MboxReader
from roost.store.errors import MailboxExists
from roost.store.interface import Account
from roost.store.values import SYSTEM_FLAGS, AppendResult, MessageSource, NewMessage

BATCH_MESSAGES = 500
BATCH_BYTES = 32 * 1024 * 1024
# RFC 9051 §9: atom-char minus resp-specials ("]"); no "\" (only system flags have it).
_KEYWORD = re.compile(r"[!#$&'+\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+")

Progress = Callable[[int, int, int], None]  # (messages done, messages in all, bytes done)


class SourceError(Exception):
    """The source cannot be read as mail (the operator's mistake, not a crash)."""


@dataclass
class ImportReport:
    messages: int = 0
    bytes: int = 0
    folders: dict[str, int] = field(default_factory=dict)  # folder -> messages
    dropped_keywords: set[str] = field(default_factory=set)
    seconds: float = 0.0


class MailSource:
    """What ``PATH`` holds: its messages in order, and how many there are."""

    def __init__(
        self,
        total: int,
        items: Iterator[MailItem],
        closers: list[MboxReader],
        folders: list[str],
    ) -> None:
        self.total = total
        self.items = items
        self.folders = folders  # every folder, empty ones too
        self._closers = closers

    def close(self) -> None:
        for reader in self._closers:
            reader.close()


def open_source(path: Path, *, folder: str | None = None, mbox_style: str = "auto") -> MailSource:
    """An mbox file (into ``folder``, default INBOX), a Maildir++ tree, or a directory
    of mbox files (each file a folder named by its path, Thunderbird's ``.sbd``
    directories and a ``.mbox`` suffix left out: what ``roost export --format mbox``
    writes)."""
    if path.is_file():
        reader = MboxReader(path, folder or "INBOX", mbox_style)
        return MailSource(reader.count, iter(reader), [reader], [reader.folder])
    if not path.is_dir():
        raise SourceError(f"{path} is neither a file nor a directory")
    folders = maildir.scan(path)
    if folders:
        if folder is not None:
            raise SourceError("--folder applies to a single mbox file only")
        items = (item for f in folders for item in maildir.read_folder(f))
        return MailSource(maildir.count(folders), items, [], [f.name for f in folders])
    readers = [MboxReader(file, _mbox_folder(path, file), mbox_style) for file in _mbox_files(path)]
    if not readers:
        raise SourceError(f"{path} holds neither a Maildir nor mbox files")
    items = (item for reader in readers for item in reader)
    total = sum(reader.count for reader in readers)
    return MailSource(total, items, readers, [reader.folder for reader in readers])


def _mbox_files(root: Path) -> list[Path]:
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in sorted(files):
            if not name.startswith(".") and not name.endswith((".msf", ".dat")):
                found.append(Path(directory) / name)
    return found


def _mbox_folder(root: Path, file: Path) -> str:
    parts = list(file.relative_to(root).parts)
    parts = [part.removesuffix(".sbd") for part in parts[:-1]] + [parts[-1].removesuffix(".mbox")]
    name = "/".join(parts)
    return "INBOX" if name.upper() == "INBOX" else name


async def import_mail(
    account: Account,
    source: MailSource,
    *,
    batch_messages: int = BATCH_MESSAGES,
    batch_bytes: int = BATCH_BYTES,
    progress: Progress | None = None,
) -> ImportReport:
    """Store every message of ``source`` in ``account``, creating folders as needed."""
    report = ImportReport()
    started = time.monotonic()
    existing = {info.name for info in await account.list_mailboxes() if not info.noselect}
    batch: list[NewMessage] = []
    batch_folder = ""
    batch_size = 0
    pending: asyncio.Future[AppendResult] | None = None

    async def flush() -> None:
        nonlocal pending, batch, batch_size
        if not batch:
            return
        if pending is not None:
            await pending
        # The next batch is read while this one is stored (the worker thread).
        pending = asyncio.ensure_future(account.append(batch_folder, batch))
        report.messages += len(batch)
        report.bytes += batch_size
        report.folders[batch_folder] = report.folders.get(batch_folder, 0) + len(batch)
        batch, batch_size = [], 0
        if progress is not None:
            progress(report.messages, source.total, report.bytes)

    try:
        for folder in source.folders:
            await _ensure_folder(account, existing, folder)
        for item in source.items:
            name = await _ensure_folder(account, existing, item.folder)
            if name != batch_folder or len(batch) >= batch_messages or batch_size >= batch_bytes:
                await flush()
                batch_folder = name
            batch.append(
                NewMessage(
                    MessageSource(data=item.data),
                    _storable(item.flags, report.dropped_keywords),
                    item.internaldate,
                )
            )
            batch_size += len(item.data)
        await flush()
        if pending is not None:
            await pending
    finally:
        if pending is not None and not pending.done():
            await asyncio.wait([pending])
        source.close()
    report.seconds = time.monotonic() - started
    return report


async def _ensure_folder(account: Account, existing: set[str], folder: str) -> str:
    """The folder's mailbox name, created if missing (names are case-sensitive, but
    INBOX is any case: RFC 9051 §5.1)."""
    if folder.upper() == "INBOX":
        return "INBOX"
    if folder not in existing:
        with contextlib.suppress(MailboxExists):
            await account.create_mailbox(folder)
        existing.add(folder)
    return folder


def _storable(flags: frozenset[str], dropped: set[str]) -> frozenset[str]:
    kept = set()
    for flag in flags:
        if flag in SYSTEM_FLAGS or _KEYWORD.fullmatch(flag):
            kept.add(flag)
        elif flag.casefold() != "\\recent":
            dropped.add(flag)
    return frozenset(kept)
