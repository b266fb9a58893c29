"""Scratch PostgreSQL databases for tests: one migrated template per test run, and
databases cloned from it on demand, emptied and reused, dropped at the end.

The server is ``ROOST_TEST_PG_URL`` (default postgresql://postgres@127.0.0.1:5432/postgres,
a role allowed to create databases). Where it cannot be reached, the tests that need it
fail under CI (CI set: .ci/run starts a server) and are skipped with the reason locally.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from roost.store.postgres.schema import migrate

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("ROOST_TEST_PG_URL", DEFAULT_URL)


def url_for(database: str) -> str:
    base, _, _ = admin_url().rpartition("/")
    return f"{base}/{database}"


class ScratchDatabases:
    """Databases named ``roost_test_<run>_<n>``, made from one migrated template."""

    def __init__(self) -> None:
        self._run = f"roost_test_{os.getpid()}_{secrets.token_hex(3)}"
        self._template: str | None = None
        self._made: list[str] = []
        self._free: list[str] = []
        self.unavailable: str | None = None

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(admin_url(), timeout=5)

    async def check(self) -> None:
        """Skip (locally) or fail (CI) when no server answers."""
        if self.unavailable is None:
            try:
                conn = await self._admin()
            except (TimeoutError, OSError, asyncpg.PostgresError) as error:
                self.unavailable = f"no PostgreSQL at {admin_url()}: {error}"
            else:
                await conn.close()
                self.unavailable = ""
        if self.unavailable:
            if os.environ.get("CI"):
                pytest.fail(self.unavailable + " (CI: .ci/run must start one)")
            pytest.skip(self.unavailable + " (set ROOST_TEST_PG_URL)")

    async def acquire(self) -> str:
        """The URL of an empty, migrated database of this run."""
        await self.check()
        if self._free:
            return url_for(self._free.pop())
        conn = await self._admin()
        try:
            if self._template is None:
                template = f"{self._run}_template"
                await conn.execute(f'CREATE DATABASE "{template}"')
                self._made.append(template)
                target = await asyncpg.connect(url_for(template))
                try:
                    await migrate(target)
                finally:
                    await target.close()
                self._template = template
            name = f"{self._run}_{len(self._made)}"
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
            self._made.append(name)
        finally:
            await conn.close()
        return url_for(name)

    def adopt(self, name: str) -> None:
        """Drop database ``name`` (made by a test) with this run's."""
        self._made.append(name)

    async def release(self, url: str) -> None:
        """Empty the database at ``url`` for the next test."""
        name = url.rpartition("/")[2]
        conn = await asyncpg.connect(url)
        try:
            # DELETE, not TRUNCATE: a few rows, and TRUNCATE rewrites every file. One
            # round trip: this runs after every test on PostgreSQL. A shard's ids start
            # high (schema.py SHARD_ID_SPAN); the next test may use this database as
            # another shard, whose range must be its own: the sequences start again.
            await conn.execute(
                "DELETE FROM accounts;"  # the rest cascades
                " DELETE FROM sharers;"  # keyed by name, not by account
                " DELETE FROM blobs;"
                " DELETE FROM known_addresses;"
                " DELETE FROM sign_in_failures;"
                " DELETE FROM node_leases;"  # and their slots
                " DELETE FROM account_shards;"
                " DELETE FROM alias_claims;"
                " SELECT setval(format('%I.%I', schemaname, sequencename), 1, false)"
                " FROM pg_sequences WHERE schemaname = current_schema();"
                " UPDATE settings SET uidvalidity_floor = 0, shard = NULL,"
                " secret = gen_random_uuid()::text::bytea WHERE id = 0"
            )
        finally:
            await conn.close()
        self._free.append(name)

    async def drop_all(self) -> None:
        if not self._made:
            return
        conn = await self._admin()
        try:
            for name in reversed(self._made):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._made.clear()
        self._free.clear()


# The one instance of a test run: tests/conftest.py drops its databases at the end.
SCRATCH = ScratchDatabases()


class PrivateServer:
    """A PostgreSQL cluster of a test's own (initdb + pg_ctl into a new directory under
    the system's temporary one, which the postgres user can reach), for tests that stop
    and start the server — never the shared one. Run as the postgres user when we are
    root (initdb refuses root). ``remove`` stops it and deletes its directory."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="roost-test-pg-"))
        self.data = self.directory / "data"
        self.port = _free_port()
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        self.bin = found[-1].parent if found else None
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        assert self.bin is not None
        done = subprocess.run(
            [*self._as, str(self.bin / args[0]), *args[1:]], capture_output=True, check=False
        )
        if done.returncode != 0:
            log = self.directory / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise subprocess.CalledProcessError(
                done.returncode, done.args, done.stdout, done.stderr + tail.encode()
            )

    def init(self) -> None:
        if self.bin is None:
            pytest.skip("no PostgreSQL server programs (Debian's postgresql package)")
        if self._as:
            shutil.chown(self.directory, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()

    def _pg_ctl_starting(self, *action: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        log = str(self.directory / "log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-o", options, *action)

    def start(self) -> None:
        self._pg_ctl_starting("start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, then the server is back."""
        self._pg_ctl_starting("-m", "fast", "restart")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, AssertionError):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def database_with_account(user: str, password: str) -> AsyncIterator[str]:
    """A database of its own (dropped afterwards) holding account ``user`` with a
    cheap hash of ``password``: for tests whose ``roost serve`` nodes share it."""
    from argon2 import PasswordHasher

    from roost.auth.passwords import hash_password
    from roost.store.postgres import PostgresStore

    scratch = ScratchDatabases()
    url = await scratch.acquire()
    try:
        store = await PostgresStore.open(url, listen=False)
        try:
            hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            await store.create_account(user, hash_password(password, hasher=hasher))
        finally:
            await store.close()
        yield url
    finally:
        await scratch.drop_all()
