"""``roost backup`` and ``roost restore`` for the embedded SQLite store, while serving.

A backup directory mirrors a data directory::

    roost-backup.json            manifest; "complete": true is written last
    users.db                     copied with SQLite's online backup API
    accounts/<dir>/mail.db       the same, one per account in that users.db copy
    accounts/<dir>/blobs/ab/...  message files: hard links where DEST is on the same
                                 filesystem, else copies; kept from the last backup

Consistency without stopping the server: users.db is copied first and names the
accounts; each account's mail.db is copied in one read transaction (a snapshot); then
every message file that snapshot refers to is linked or copied. Message files never
change once written (store/blobs.py), so a file present is the right one; one missing
was expunged after the snapshot, and the account is copied again (a new snapshot no
longer refers to it). After ``UNLOCKED_ATTEMPTS`` such rounds the last one holds the
account's write lock (writers wait, never fail), so a backup always finishes. Every
message acknowledged before the backup started and not deleted since is in it.

Incremental: message files already in DEST are kept (content-addressed: same name,
same bytes), those no longer referenced are removed; databases are copied whole.
The manifest says "complete": false from the start until the end, so an interrupted
backup is never restored (``restore`` refuses it).

Restore refuses a data directory a server is using: the supervisor's lock
(``run/supervisor.lock``), or any process holding users.db open (SQLite keeps a
shared lock on byte 128 of ``users.db-shm`` for each open connection, see
``_db_in_use``) — which covers the single-process server and admin commands.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import sqlite3
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from roost.store.sqlite.db import WRITERS_LOCK

MANIFEST = "roost-backup.json"
FORMAT = 1
UNLOCKED_ATTEMPTS = 3
BUSY_TIMEOUT_S = 30.0
SUPERVISOR_LOCK = Path("run") / "supervisor.lock"
# os_unix.c: UNIX_SHM_BASE (120) + SQLITE_SHM_NLOCK (8): the "dead man switch" byte,
# share-locked by every connection that has the WAL index open.
_SHM_DMS_BYTE = 128

Notice = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot be done (said in one line to the operator)."""


@dataclass
class AccountCopy:
    name: str
    dirname: str
    messages: int = 0
    files_linked: int = 0
    files_copied: int = 0
    files_kept: int = 0
    files_removed: int = 0
    rounds: int = 0


@dataclass
class BackupReport:
    accounts: list[AccountCopy] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.errors


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S
    )
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of the database ``source`` (live, WAL) at ``target``, written
    beside it and renamed into place."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = _connect(source)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one snapshot
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()
    os.chmod(partial, 0o600)
    os.replace(partial, target)


def blob_path(account_dir: Path, blob_id: str) -> Path:
    return account_dir / "blobs" / blob_id[:2] / blob_id[2:]


def file_blobs(mail_db: Path) -> set[str]:
    """Blobs the messages of a (copied, quiescent) mail.db keep as files."""
    conn = sqlite3.connect(mail_db)
    try:
        rows = conn.execute(
            "SELECT DISTINCT blob_id FROM messages"
            " WHERE blob_id NOT IN (SELECT blob_id FROM blob_data)"
        )
        return {blob_id for (blob_id,) in rows}
    finally:
        conn.close()


def present_blobs(account_dir: Path) -> set[str]:
    root = account_dir / "blobs"
    found: set[str] = set()
    if not root.is_dir():
        return found
    for fan in os.scandir(root):
        if len(fan.name) == 2 and fan.is_dir():
            found.update(fan.name + entry.name for entry in os.scandir(fan.path))
    return found


def link_or_copy(source: Path, target: Path) -> bool:
    """Hard-link ``source`` at ``target``, or copy it where links cannot be made;
    True when linked. FileNotFoundError when ``source`` is gone."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        return True
    except FileExistsError:
        return True
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    partial = target.with_name(target.name + ".partial")
    shutil.copy2(source, partial)
    with open(partial, "rb") as copied:
        os.fsync(copied.fileno())
    os.replace(partial, target)
    return False


@contextlib.contextmanager
def write_locked(account_dir: Path) -> Iterator[None]:
    """Hold the account's write lock: the writers' turn lock, then SQLite's, so that
    writers wait in the kernel (no busy time-out) until it is released."""
    fd = os.open(account_dir / WRITERS_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        conn = _connect(account_dir / "mail.db")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.close()
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def backup_account(source: Path, target: Path, copy: AccountCopy) -> None:
    """Copy one account directory consistently (see the module docstring)."""
    (target / "blobs").mkdir(parents=True, exist_ok=True)
    already = present_blobs(target)
    for attempt in range(UNLOCKED_ATTEMPTS + 1):
        copy.rounds = attempt + 1
        locked = attempt == UNLOCKED_ATTEMPTS
        with write_locked(source) if locked else contextlib.nullcontext():
            copy_database(source / "mail.db", target / "mail.db")
            wanted = file_blobs(target / "mail.db")
            missing = False
            for blob_id in sorted(wanted - already):
                try:
                    linked = link_or_copy(blob_path(source, blob_id), blob_path(target, blob_id))
                except FileNotFoundError:
                    missing = True  # expunged after the snapshot: take another
                    continue
                already.add(blob_id)
                if linked:
                    copy.files_linked += 1
                else:
                    copy.files_copied += 1
        if not missing:
            break
    else:  # pragma: no cover - the locked round cannot miss a file
        raise BackupError(f"message files of {copy.name} kept disappearing")
    copy.files_kept = len(wanted & present_blobs(target)) - copy.files_linked - copy.files_copied
    for blob_id in already - wanted:
        blob_path(target, blob_id).unlink(missing_ok=True)
        copy.files_removed += 1
    conn = sqlite3.connect(target / "mail.db")
    try:
        copy.messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    finally:
        conn.close()


def _write_manifest(dest: Path, body: dict[str, object]) -> None:
    partial = dest / (MANIFEST + ".partial")
    partial.write_text(json.dumps(body, indent=2) + "\n")
    with open(partial, "rb") as written:
        os.fsync(written.fileno())
    os.replace(partial, dest / MANIFEST)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def backup(data_dir: Path, dest: Path, *, notice: Notice | None = None) -> BackupReport:
    """Back up ``data_dir`` into ``dest`` (new, or an earlier backup to update)."""
    if not (data_dir / "users.db").is_file():
        raise BackupError(f"{data_dir} holds no Roost data (no users.db)")
    if dest.exists() and any(dest.iterdir()) and not (dest / MANIFEST).exists():
        raise BackupError(f"{dest} is neither empty nor an earlier backup")
    report = BackupReport()
    started = time.monotonic()
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    header: dict[str, object] = {"format": FORMAT, "started": _now(), "complete": False}
    _write_manifest(dest, header)
    copy_database(data_dir / "users.db", dest / "users.db")
    conn = sqlite3.connect(dest / "users.db")
    try:
        accounts = conn.execute("SELECT name, dirname FROM accounts ORDER BY name_key").fetchall()
    finally:
        conn.close()
    for name, dirname in accounts:
        copy = AccountCopy(name, dirname)
        source = data_dir / "accounts" / dirname
        try:
            backup_account(source, dest / "accounts" / dirname, copy)
        except (OSError, sqlite3.Error, BackupError) as error:
            report.errors.append(f"{name}: {error}")
            if notice is not None:
                notice(f"account {name}: {error}")
            continue
        report.accounts.append(copy)
        if notice is not None:
            notice(f"account {name}: {copy.messages} messages")
    wanted = {dirname for _, dirname in accounts}
    if (dest / "accounts").is_dir():
        for entry in os.scandir(dest / "accounts"):
            if entry.name not in wanted:  # deleted since the last backup
                shutil.rmtree(entry.path)
    report.seconds = time.monotonic() - started
    _write_manifest(
        dest,
        {
            **header,
            "finished": _now(),
            "complete": report.complete,
            "errors": report.errors,
            "accounts": {
                copy.name: {"directory": copy.dirname, "messages": copy.messages}
                for copy in report.accounts
            },
        },
    )
    return report


# ---- restore ------------------------------------------------------------------------


def read_manifest(source: Path) -> dict[str, object]:
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{source} is not a Roost backup (no {MANIFEST})") from None
    except (OSError, ValueError) as error:
        raise BackupError(f"cannot read {source / MANIFEST}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source / MANIFEST} is not a backup this Roost can restore")
    if manifest.get("complete") is not True:
        raise BackupError(f"the backup in {source} is incomplete; it cannot be restored")
    return manifest


def in_use_by(data_dir: Path) -> str | None:
    """Why ``data_dir`` is in use by a running Roost (or another program), or None."""
    lock = data_dir / SUPERVISOR_LOCK
    if lock.exists():
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = lock.read_text().strip() or "?"
            return f"a Roost server (pid {holder}) is serving it"
        else:
            fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    if _db_in_use(data_dir / "users.db"):
        return "a process has its users.db open (a running server or admin command)"
    return None


def _db_in_use(database: Path) -> bool:
    """True when another process has the WAL database open: each connection holds a
    shared lock on the WAL index's dead-man-switch byte, so a write lock test fails."""
    shm = database.with_name(database.name + "-shm")
    try:
        fd = os.open(shm, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        probe = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, _SHM_DMS_BYTE, 1, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
        lock_type: int = struct.unpack("hhqqi", answer)[0]
        return lock_type != fcntl.F_UNLCK
    finally:
        os.close(fd)


def restore(source: Path, data_dir: Path, *, force: bool = False) -> dict[str, object]:
    """Put the backup in ``source`` into ``data_dir`` (new or empty; with ``force``,
    its present users.db and accounts are replaced). Message files are hard-linked
    from the backup where possible (they never change), databases copied."""
    manifest = read_manifest(source)
    if data_dir.exists():
        reason = in_use_by(data_dir)
        if reason is not None:
            raise BackupError(f"will not restore into {data_dir}: {reason}")
        if (data_dir / "users.db").exists() or (data_dir / "accounts").exists():
            if not force:
                raise BackupError(f"{data_dir} already holds data; --force replaces it")
            for name in ("users.db", "users.db-wal", "users.db-shm"):
                (data_dir / name).unlink(missing_ok=True)
            shutil.rmtree(data_dir / "accounts", ignore_errors=True)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    accounts = data_dir / "accounts"
    # Accounts first, users.db last: an account exists once users.db names it.
    backed_up = list(os.scandir(source / "accounts")) if (source / "accounts").is_dir() else []
    for entry in sorted(backed_up, key=lambda e: e.name):
        target = accounts / entry.name
        (target / "tmp").mkdir(parents=True, exist_ok=True)
        (target / "blobs").mkdir(exist_ok=True)
        shutil.copy2(Path(entry.path) / "mail.db", target / "mail.db")
        for blob_id in present_blobs(Path(entry.path)):
            link_or_copy(blob_path(Path(entry.path), blob_id), blob_path(target, blob_id))
    shutil.copy2(source / "users.db", data_dir / "users.db")
    os.chmod(data_dir / "users.db", 0o600)
    return manifest
