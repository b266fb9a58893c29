"""``roost export``: every folder of an account to Maildir++ or mbox files.

The way out: what ``roost import`` (and Dovecot, mutt, Thunderbird) read back, with
flags, keywords and internal dates. Messages are read through the Account interface,
``FETCH_CHUNK`` at a time, so a mailbox of any size is exported in bounded memory.

Layouts:

* maildir: INBOX at ``DEST/{cur,new,tmp}``, "A/B" at ``DEST/.A.B`` (maildir.py).
* mbox: one mboxrd file per folder, INBOX at ``DEST/INBOX``, "A/B" at
  ``DEST/A.sbd/B`` (Thunderbird's layout, so "A" can be a folder with messages and
  children at once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from roost.admin import maildir, mbox
from roost.store.interface import Account
from roost.store.values import MailboxInfo, MessageMeta

FETCH_CHUNK = 1000
FORMATS = ("maildir", "mbox")

Progress = Callable[[int, int, int], None]


@dataclass
class ExportReport:
    messages: int = 0
    bytes: int = 0
    folders: dict[str, int] = field(default_factory=dict)
    skipped_folders: list[str] = field(default_factory=list)  # names the format cannot hold
    dropped_keywords: set[str] = field(default_factory=set)


def mbox_path(dest: Path, folder: str) -> Path:
    parts = folder.split("/")
    return dest.joinpath(*(part + ".sbd" for part in parts[:-1]), parts[-1])


async def export_mail(
    account: Account, dest: Path, fmt: str, *, progress: Progress | None = None
) -> ExportReport:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    report = ExportReport()
    mailboxes = [info for info in await account.list_mailboxes() if not info.noselect]
    snapshots = [await account.snapshot(info.id) for info in mailboxes]
    total = sum(len(snapshot.uids) for snapshot in snapshots)
    for snapshot in snapshots:
        info = snapshot.info
        writer = _writer(dest, info, fmt)
        if writer is None:
            report.skipped_folders.append(info.name)
            continue
        try:
            uids = list(snapshot.uids)
            report.folders[info.name] = 0
            for start in range(0, len(uids), FETCH_CHUNK):
                chunk = uids[start : start + FETCH_CHUNK]
                metas = await account.fetch_meta(
                    info.id, chunk, with_model=False, with_content=True
                )
                for meta in metas:
                    data = await _content(account, meta)
                    writer.add(meta.uid, data, meta.flags - {"\\Recent"}, meta.internaldate)
                    report.messages += 1
                    report.bytes += len(data)
                    report.folders[info.name] += 1
                if progress is not None:
                    progress(report.messages, total, report.bytes)
        finally:
            writer.close()
            report.dropped_keywords |= writer.dropped_keywords
    return report


class _Writer(Protocol):
    dropped_keywords: set[str]

    def add(self, uid: int, data: bytes, flags: frozenset[str], date: datetime) -> None: ...
    def close(self) -> None: ...


def _writer(dest: Path, info: MailboxInfo, fmt: str) -> _Writer | None:
    """The writer of one folder; None when the format cannot name it."""
    if fmt == "mbox":
        if any(part in ("", ".", "..") for part in info.name.split("/")):
            return None  # no file of that name inside DEST
        return mbox.MboxWriter(mbox_path(dest, info.name))
    try:
        place = dest if info.name == "INBOX" else dest / maildir.directory_name(info.name)
    except ValueError:
        return None
    return maildir.MaildirWriter(place, str(info.uidvalidity))


async def _content(account: Account, meta: MessageMeta) -> bytes:
    if meta.content is not None:
        return meta.content
    return b"".join([chunk async for chunk in account.read_message(meta)])
