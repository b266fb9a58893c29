"""``roost migrate``: copy one account's mail from a running IMAP server, as imapsync
does — every folder, flag, keyword and internal date — through Python's imaplib.

Resuming. The source names a message by (folder, UIDVALIDITY, UID) and its UIDs grow,
so a folder is copied in ascending UID order and the state file
(``data_dir/migrate/<user>.json``) keeps, per folder and UIDVALIDITY, the highest UID
copied: a rerun skips everything up to it. A new UIDVALIDITY at the source (the folder
was re-created) starts that folder afresh. The state is written (fsynced, renamed)
after each batch is stored; so that a crash between a batch's commit and that write
cannot duplicate the batch, the state first records the batch as ``pending`` with the
target mailbox's UIDNEXT and the batch's internal dates: on the rerun, a pending batch
whose messages are found after that UIDNEXT, in order, counts as copied.

Each batch goes through ``Account.append`` — the one delivery path, with the quota
check and change events — at most ``BATCH_MESSAGES`` messages or ``BATCH_BYTES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import json
import os
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from roost.admin.importer import _ensure_folder, _storable
from roost.imap.wire.mutf7 import decode_mutf7
from roost.store.base import Account, MessageSource, NewMessage
from roost.store.query import MatchUids, SearchQuery

BATCH_MESSAGES = 100
BATCH_BYTES = 16 * 1024 * 1024
FETCH_ITEMS = "(UID FLAGS INTERNALDATE BODY.PEEK[])"
MAX_UID = 2**32 - 1

Progress = Callable[[str], None]

_LIST = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"(?P<sep>[^"\\]|\\.)"|NIL) (?P<name>.*)$')
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_DATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')


class MigrationError(Exception):
    """The source cannot be reached, refuses the sign-in, or answers what we cannot use."""


@dataclass(frozen=True, slots=True)
class Source:
    host: str
    port: int
    user: str
    tls: bool  # imaps: TLS from the start; imap: STARTTLS when offered

    @classmethod
    def parse(cls, url: str) -> Source:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
            raise MigrationError(f"want imaps://user@host[:port] (or imap://), not {url!r}")
        tls = parts.scheme == "imaps"
        try:
            port = parts.port or (993 if tls else 143)
        except ValueError:
            raise MigrationError(f"bad port in {url!r}") from None
        return cls(parts.hostname, port, unquote(parts.username), tls)


@dataclass(slots=True)
class MigrationReport:
    folders: dict[str, int] = field(default_factory=dict)  # target name → messages copied
    skipped: int = 0  # already copied by an earlier run
    bytes: int = 0
    dropped_keywords: set[str] = field(default_factory=set)


class State:
    """The per-folder high-water marks, in a JSON file written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.folders: dict[str, dict[str, Any]] = {}
        if path.exists():
            self.folders = json.loads(path.read_text())["folders"]

    def folder(self, name: str, uidvalidity: int) -> dict[str, Any]:
        entry = self.folders.get(name)
        if entry is None or entry.get("uidvalidity") != uidvalidity:
            entry = {"uidvalidity": uidvalidity, "copied_up_to": 0, "pending": None}
            self.folders[name] = entry
        return entry

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w") as file:
            json.dump({"version": 1, "folders": self.folders}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)


def state_path(data_dir: Path, user: str) -> Path:
    return data_dir / "migrate" / f"{user}.json"


def connect(source: Source, password: str, *, insecure: bool = False) -> imaplib.IMAP4:
    """A signed-in imaplib connection. ``insecure`` skips certificate checks (a test
    server, a self-signed old server); never is a password sent without TLS unless
    the server is on loopback."""
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        client: imaplib.IMAP4
        if source.tls:
            client = imaplib.IMAP4_SSL(source.host, source.port, ssl_context=context, timeout=60)
        else:
            client = imaplib.IMAP4(source.host, source.port, timeout=60)
            if "STARTTLS" in client.capabilities:
                client.starttls(context)
            elif source.host not in ("127.0.0.1", "::1", "localhost"):
                raise MigrationError(f"{source.host} offers no STARTTLS: use imaps://")
        client.login(source.user, password)
    except (OSError, imaplib.IMAP4.error) as error:
        raise MigrationError(f"{source.host}:{source.port}: {error}") from None
    return client


def list_folders(client: imaplib.IMAP4) -> list[tuple[str, str]]:
    """(source name as sent, Roost name) of every selectable folder, INBOX first."""
    status, lines = client.list()
    if status != "OK":
        raise MigrationError(f"LIST failed: {lines}")
    folders = []
    for item in list[Any](lines):
        if isinstance(item, tuple):  # a name sent as a literal
            line = item[0].rsplit(b"{", 1)[0] + b'"' + item[1].replace(b'"', b'\\"') + b'"'
        elif isinstance(item, bytes):
            line = item
        else:
            continue
        found = _LIST.match(line)
        if found is None or b"\\noselect" in found["flags"].lower():
            continue
        raw = found["name"]
        if raw.startswith(b'"'):
            raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
        separator = found["sep"].decode() if found["sep"] else "/"
        separator = separator.replace("\\", "") or "\\"
        name = decode_mutf7(raw)
        target = "INBOX" if name.upper() == "INBOX" else name.replace(separator, "/")
        quoted = (
            '"' + raw.decode("ascii", "replace").replace("\\", "\\\\").replace('"', '\\"') + '"'
        )
        folders.append((quoted, target))
    folders.sort(key=lambda folder: (folder[1] != "INBOX", folder[1]))
    return folders


def _parse_date(text: bytes) -> datetime:
    return datetime.strptime(text.decode().strip(), "%d-%b-%Y %H:%M:%S %z")


def fetch_batch(
    client: imaplib.IMAP4, uids: list[int]
) -> list[tuple[int, frozenset[str], datetime, bytes]]:
    """(uid, flags, internal date, bytes) of each message, ascending UID."""
    uid_set = ",".join(str(uid) for uid in uids)
    status, data = client.uid("FETCH", uid_set, FETCH_ITEMS)
    if status != "OK":
        raise MigrationError(f"UID FETCH failed: {data}")
    found: list[tuple[int, frozenset[str], datetime, bytes]] = []
    items: list[Any] = list(data)
    for index, item in enumerate(items):
        if not isinstance(item, tuple):
            continue
        after = items[index + 1] if index + 1 < len(items) else b""
        attributes = item[0] + (after if isinstance(after, bytes) else b"")
        uid, flags, date = (
            _UID.search(attributes),
            _FLAGS.search(attributes),
            _DATE.search(attributes),
        )
        if uid is None or flags is None or date is None:
            raise MigrationError(f"unexpected FETCH response: {attributes[:200]!r}")
        names = frozenset(flag.decode() for flag in flags.group(1).split())
        found.append((int(uid.group(1)), names, _parse_date(date.group(1)), item[1]))
    found.sort(key=lambda message: message[0])
    return found


async def _pending_committed(account: Account, target: str, pending: dict[str, Any]) -> bool:
    """Whether the batch recorded as pending was stored before an interruption: its
    messages, with their internal dates in order, after the UIDNEXT it recorded."""
    box = await account.get_mailbox(target)
    after = await account.search(box.id, SearchQuery(MatchUids(((pending["uidnext"], MAX_UID),))))
    metas = await account.fetch_meta(box.id, after.uids, with_model=False)
    dates = [int(meta.internaldate.timestamp()) for meta in metas]
    wanted = pending["dates"]
    return any(dates[i : i + len(wanted)] == wanted for i in range(len(dates) - len(wanted) + 1))


async def migrate(
    client: imaplib.IMAP4,
    account: Account,
    state: State,
    *,
    progress: Progress | None = None,
    batch_messages: int = BATCH_MESSAGES,
    batch_bytes: int = BATCH_BYTES,
    stop_after: int | None = None,
) -> MigrationReport:
    """Copy every folder not yet copied. ``stop_after``: return after that many
    batches (for tests of the resume)."""
    report = MigrationReport()
    say = progress or (lambda line: None)
    existing = {info.name for info in await account.list_mailboxes() if not info.noselect}
    batches = 0
    for quoted, target in await asyncio.to_thread(list_folders, client):
        status, data = await asyncio.to_thread(client.select, quoted, True)
        if status != "OK":
            say(f"skipped {target}: {data}")
            continue
        _, values = client.response("UIDVALIDITY")  # from SELECT's [UIDVALIDITY n]
        uidvalidity = int(values[-1] or 0) if values and isinstance(values[-1], bytes) else 0
        name = await _ensure_folder(account, existing, target)
        report.folders.setdefault(name, 0)
        entry = state.folder(quoted, uidvalidity)
        if entry["pending"] is not None:
            if await _pending_committed(account, name, entry["pending"]):
                entry["copied_up_to"] = entry["pending"]["last"]
            entry["pending"] = None
            state.save()
        status, data = await asyncio.to_thread(client.uid, "SEARCH", "ALL")
        if status != "OK":
            raise MigrationError(f"UID SEARCH in {target} failed: {data}")
        all_uids = sorted(int(uid) for uid in (data[0] or b"").split())
        uids = [uid for uid in all_uids if uid > entry["copied_up_to"]]
        report.skipped += len(all_uids) - len(uids)
        done = len(all_uids) - len(uids)
        say(f"{target}: {len(all_uids)} messages, {len(uids)} to copy")
        for start in range(0, len(uids), batch_messages):
            if stop_after is not None and batches >= stop_after:
                return report
            messages = await asyncio.to_thread(
                fetch_batch, client, uids[start : start + batch_messages]
            )
            await _store(account, state, entry, name, messages, report, batch_bytes)
            batches += 1
            done += len(messages)
            say(f"{target}: {done}/{len(all_uids)}")
    return report


async def _store(
    account: Account,
    state: State,
    entry: dict[str, Any],
    name: str,
    messages: list[tuple[int, frozenset[str], datetime, bytes]],
    report: MigrationReport,
    batch_bytes: int,
) -> None:
    """Store ``messages`` in pieces of at most ``batch_bytes``, recording each."""
    while messages:
        size, cut = 0, 0
        while cut < len(messages) and (cut == 0 or size + len(messages[cut][3]) <= batch_bytes):
            size += len(messages[cut][3])
            cut += 1
        piece, messages = messages[:cut], messages[cut:]
        box = await account.get_mailbox(name)
        entry["pending"] = {
            "uidnext": box.uidnext,
            "last": piece[-1][0],
            "dates": [int(date.timestamp()) for _, _, date, _ in piece],
        }
        state.save()
        await account.append(
            name,
            [
                NewMessage(
                    MessageSource(data=data), _storable(flags, report.dropped_keywords), date
                )
                for _, flags, date, data in piece
            ],
        )
        entry["copied_up_to"] = piece[-1][0]
        entry["pending"] = None
        state.save()
        report.folders[name] += len(piece)
        report.bytes += size


def close(client: imaplib.IMAP4) -> None:
    with contextlib.suppress(Exception):
        client.logout()
