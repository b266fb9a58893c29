"""The data directory is private: what Roost creates there is its user's alone.

``mail.db`` holds every message up to 64 KiB and the search text, ``users.db`` the
password hashes: readable by another local user, they give away everyone's mail. So:

* ``private_umask`` sets the process umask to 077 at start (CLI and every worker):
  whatever is created — SQLite's ``-wal`` and ``-shm``, blobs, spooled literals, the
  TLS key — is 0600, every directory 0700, whatever the umask Roost was started with.
  (The store also creates its own files and directories with those modes.)
* ``secure_data_dir`` checks an existing data directory at start: modes opened to the
  group or others, on what Roost made, are closed again (0700 / 0600) with a warning
  naming how many; anything owned by another user makes Roost refuse to start — it
  cannot fix that, and someone else may be using the directory.

The check covers the directory itself, ``users.db``, ``spool/``, ``run/``, ``tls/``,
``accounts/`` and in every account directory its files and directories down to the
blob fan-out directories; the blob files below need no visit once those are 0700.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("roost.server")

PRIVATE_UMASK = 0o077
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


class DataDirError(Exception):
    """The data directory cannot be made private; the message says what to do."""


def private_umask() -> int:
    """Make everything this process creates private; the previous umask."""
    return os.umask(PRIVATE_UMASK)


def secure_data_dir(data_dir: Path) -> int:
    """Close group and other permissions under ``data_dir`` (see the module docstring);
    the number of entries fixed. Raises DataDirError for an entry of another owner."""
    if not data_dir.exists():
        return 0
    uid = os.geteuid()
    fixed = 0
    for path in _entries(data_dir):
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue  # removed meanwhile (a spool file, a WAL at checkpoint)
        if stat.S_ISLNK(info.st_mode):
            continue
        if info.st_uid != uid:
            raise DataDirError(
                f"{path} belongs to uid {info.st_uid}, not to the user Roost runs as "
                f"(uid {uid}): refusing to serve a data directory others may use; "
                f"chown -R it to Roost's user"
            )
        wanted = PRIVATE_DIR if stat.S_ISDIR(info.st_mode) else PRIVATE_FILE
        if info.st_mode & 0o077:
            try:
                os.chmod(path, stat.S_IMODE(info.st_mode) & wanted)
            except FileNotFoundError:
                continue  # removed meanwhile (another worker serves already)
            fixed += 1
    if fixed:
        log.warning(
            "data directory %s: %d files and directories were readable by other users; "
            "made private (0600 files, 0700 directories)",
            data_dir,
            fixed,
        )
    return fixed


def _entries(data_dir: Path) -> Iterator[Path]:
    yield data_dir
    for top in _children(data_dir):
        yield top
        if top.name == "accounts":
            for account in _children(top):
                yield account
                for item in _children(account):
                    yield item
                    if item.name == "blobs":
                        yield from (fan for fan in _children(item) if fan.is_dir())
        elif top.name in ("spool", "run", "tls"):
            yield from _children(top)


def _children(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir()) if directory.is_dir() else []
    except FileNotFoundError:
        return []


def sweep_spool(spool_dir: Path) -> int:
    """Remove the literals a killed process left in ``spool_dir`` (a spooled literal is
    deleted when its command ends, but not by SIGKILL); the number removed. Call only
    while no process of this data directory serves: at single-process start, or in the
    supervisor before its workers start."""
    removed = 0
    for path in _children(spool_dir):
        try:
            if path.is_file() and not path.is_symlink():
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    if removed:
        log.info("removed %d spooled literals left by an earlier run in %s", removed, spool_dir)
    return removed
