"""``roost backup DEST`` and ``roost restore SRC`` on the PostgreSQL store: a
``pg_dump`` of the database, put back by ``pg_restore``.

Everything of a PostgreSQL site is in its database (message bytes included), so the
backup is the database's: PostgreSQL's own tools make it consistent while every node
keeps writing (pg_dump reads one snapshot). Roost only runs ``pg_dump`` in its custom
format to ``DEST/roost.pgdump`` (restored with ``pg_restore``); for point-in-time
recovery, use base backups with WAL archiving (``pg_basebackup``) instead.

Invariants: the dump is written to a temporary name and renamed when ``pg_dump``
succeeds, so ``DEST/roost.pgdump`` is always a whole dump (the previous one until the
new one is complete). A restore runs in one transaction (``--single-transaction``,
``--exit-on-error``): the database ends as it was or as the dump, never between; it
goes into an empty database unless the caller says to replace what is there. The
password of the URL goes to ``pg_dump`` and ``pg_restore`` in their environment
(``PGPASSWORD``), not their command line, which every local user can read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

DUMP_NAME = "roost.pgdump"


class DumpError(Exception):
    """No dump was made; the text says why and what to do instead."""


@dataclass(frozen=True, slots=True)
class DumpReport:
    path: Path
    size: int
    seconds: float


def dump(url: str, dest: Path) -> DumpReport:
    """Dump the database at ``url`` to ``dest``/roost.pgdump (``dest`` is made if
    needed)."""
    program = shutil.which("pg_dump")
    if program is None:
        raise DumpError(
            "the store is a PostgreSQL database: back it up with pg_dump or pg_basebackup"
            " (pg_dump is not installed here; Debian's postgresql-client has it)"
        )
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = dest / DUMP_NAME
    partial = dest / (DUMP_NAME + ".partial")
    address, password = _split_password(url)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    started = time.monotonic()
    completed = subprocess.run(
        [program, "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={address}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        partial.unlink(missing_ok=True)
        lines = completed.stderr.strip().splitlines()
        raise DumpError(f"pg_dump failed: {lines[-1] if lines else completed.returncode}")
    os.replace(partial, target)
    return DumpReport(target, target.stat().st_size, time.monotonic() - started)


async def table_count(url: str) -> int:
    """How many tables the database at ``url`` holds: 0 for a new one to restore into."""
    conn = await asyncpg.connect(url)
    try:
        found: int = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        )
        return found
    finally:
        await conn.close()


def restore(url: str, src: Path, *, replace: bool) -> float:
    """Restore ``src``/roost.pgdump into the database at ``url``; seconds taken. With
    ``replace``, the dump's objects replace those already there (``--clean``); the
    caller has checked that the database is empty otherwise."""
    program = shutil.which("pg_restore")
    if program is None:
        raise DumpError("pg_restore is not installed here (Debian's postgresql-client has it)")
    source = src / DUMP_NAME
    if not source.is_file():
        raise DumpError(f"no {DUMP_NAME} in {src}: not a backup of a PostgreSQL store")
    address, password = _split_password(url)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    command = [program, "--no-owner", "--single-transaction", "--exit-on-error"]
    if replace:
        command += ["--clean", "--if-exists"]
    started = time.monotonic()
    completed = subprocess.run(
        [*command, f"--dbname={address}", str(source)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines()
        raise DumpError(f"pg_restore failed: {lines[-1] if lines else completed.returncode}")
    return time.monotonic() - started


def _split_password(url: str) -> tuple[str, str | None]:
    """``url`` without its password, and the password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    netloc = f"{user}@{host}" if user else host
    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.password)
