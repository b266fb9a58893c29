"""Issue 13 item 11: literals spooled by a process killed with SIGKILL are removed at
the next start — by the single process before it accepts, and by the supervisor before
any worker starts (never while a worker may be using them)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from roost.auth.passwords import hash_password
from roost.store.sqlite import SqliteStore
from tests.support.imap_client import ImapClient
from tests.support.server_process import RoostProcess, write_config

PASSWORD = "secret pass"
LITERAL = 3 * 1024 * 1024  # above the default spool_threshold (1 MiB)


async def create_account(data_dir: Path) -> None:
    store = await SqliteStore.open(data_dir, durable=False)
    try:
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        await store.create_account("alice", hash_password(PASSWORD, hasher=hasher))
    finally:
        await store.close()


async def spool_a_literal(port: int, spool: Path) -> ImapClient:
    """An APPEND whose literal is half sent: it sits in a spool file."""
    client = await ImapClient.connect("127.0.0.1", port)
    await client.login("alice", PASSWORD)
    await client.send(f"A1 APPEND INBOX {{{LITERAL}+}}\r\n".encode() + b"x" * (LITERAL // 2))
    await asyncio.to_thread(wait_for_a_file, spool)
    return client


def wait_for_a_file(directory: Path) -> None:
    """Another process writes it: there is nothing to await but the file itself."""
    deadline = time.monotonic() + 10
    while not any(directory.iterdir()):
        assert time.monotonic() < deadline, f"nothing was spooled in {directory}"
        time.sleep(0.01)


@pytest.mark.parametrize("workers", [1, 2])
async def test_spool_files_of_a_killed_server_are_swept_at_start(
    tmp_path: Path, workers: int
) -> None:
    data_dir = tmp_path / "data"
    await create_account(data_dir)
    config = write_config(tmp_path / "roost.toml", data_dir, workers=workers)
    process = RoostProcess(config, tmp_path / "server.log")
    spool = data_dir / "spool"
    try:
        port = await asyncio.to_thread(process.start)
        client = await spool_a_literal(port, spool)
        if workers == 1:
            process.kill()
        else:
            for index in (1, 2):  # SIGKILL the workers; the supervisor replaces them
                os.kill(int((data_dir / "run" / f"worker-{index}.pid").read_text()), signal.SIGKILL)
            process.stop()
        await client.close()
        left = list(spool.iterdir())
        assert left, "the killed process left no spool file: nothing is tested"
        await asyncio.to_thread(process.start)
        assert list(spool.iterdir()) == []
    finally:
        process.stop()
    assert process.errors_logged() == []
