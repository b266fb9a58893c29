"""Issue 13 item 10: a process that stops while holding an account's write lock.

* Another writer gives up at ``store_busy_timeout`` with ``NO [UNAVAILABLE]`` and
  nothing changed — whether the holder holds the writers' turn (flock) or SQLite's own
  write lock — and writes work again once the holder lets go.
* The supervisor notices a worker that stops answering (a real SIGSTOP: no heartbeat),
  kills it, which frees every lock it held, and starts another in its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import os
import signal
import sqlite3
import time
from pathlib import Path

from roost.auth.passwords import hash_password
from roost.config import AuthSettings, Settings
from roost.runtime.app import Server
from roost.store.sqlite.db import WRITERS_LOCK
from tests.conftest import FAST_HASHER, PASSWORD
from tests.e2e.test_workers import Workers, alive, create_account
from tests.support.imap_client import ImapClient, message
from tests.support.server_process import RoostProcess, write_config


async def test_a_write_gives_up_when_another_process_holds_the_lock(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings.for_dev(data_dir, ["127.0.0.1:0"], [], [], [])
    settings = settings.replace(
        auth=AuthSettings.without_delays(),
        limits=dataclasses.replace(settings.limits, store_busy_timeout=0.3),
        server=dataclasses.replace(settings.server, data_dir=data_dir),
    )
    async with Server(settings) as server:
        await server.store.create_account("alice", hash_password(PASSWORD, hasher=FAST_HASHER))
        client = await ImapClient.connect(*server.address())
        try:
            await client.login("alice", PASSWORD)
            await client.ok("SELECT INBOX")
            (account_dir,) = (data_dir / "accounts").iterdir()

            # A stopped holder of the writers' turn, as another worker would be.
            holder = os.open(account_dir / WRITERS_LOCK, os.O_RDWR)
            try:
                fcntl.flock(holder, fcntl.LOCK_EX)
                reply = await client.no(append_command(message("one")))
                assert b"[UNAVAILABLE]" in reply.line, reply.line
            finally:
                os.close(holder)  # the kernel frees the lock, as for a killed process
            await client.ok("NOOP")
            assert (await client.ok("SEARCH ALL")).untagged == [b"* SEARCH"]  # nothing added

            # A holder of SQLite's own write lock (a tool that takes no turn).
            conn = sqlite3.connect(account_dir / "mail.db", isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                reply = await client.no(append_command(message("two")))
                assert b"[UNAVAILABLE]" in reply.line, reply.line
            finally:
                conn.close()
            reply = await client.append("INBOX", message("three"))
            assert reply.status == "OK"
            assert (await client.ok("SEARCH ALL")).untagged == [b"* SEARCH 1"]
        finally:
            await client.close()


def append_command(data: bytes) -> bytes:
    return f"APPEND INBOX {{{len(data)}+}}\r\n".encode() + data


def wait_for_replacement(pid_file: Path, old_pid: int, timeout: float) -> int:
    """The supervisor, another process, writes the file: poll it."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            if pid != old_pid:
                return pid
        assert time.monotonic() < deadline, "the stopped worker was not replaced"
        time.sleep(0.05)


async def test_the_supervisor_replaces_a_stopped_worker(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await create_account(data_dir)
    config = write_config(tmp_path / "roost.toml", data_dir, workers=2)
    text = config.read_text().replace("[server]\n", "[server]\nworker_heartbeat_timeout = 1.0\n")
    config.write_text(text)
    server = Workers(RoostProcess(config, tmp_path / "server.log"), data_dir)
    try:
        await asyncio.to_thread(server.process.start)
        stopped = server.worker_pid(1)
        other = server.worker_pid(2)
        os.kill(stopped, signal.SIGSTOP)
        pid_file = data_dir / "run" / "worker-1.pid"
        replacement = await asyncio.to_thread(wait_for_replacement, pid_file, stopped, 30.0)
        server.seen_pids.add(replacement)
        assert not alive(stopped)
        assert server.worker_pid(2) == other  # the other one was left alone
        client, _ = await server.connect(1)  # the new worker 1 serves
        await client.ok("NOOP")
    finally:
        for client in server.clients:
            with contextlib.suppress(Exception):
                await client.close()
        server.process.stop()
        for pid in server.seen_pids:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
    errors = server.process.errors_logged()
    assert errors and all("sent no heartbeat" in line or "was killed by SIGKILL" in line
                          for line in errors), errors  # fmt: skip
