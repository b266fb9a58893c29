"""Where the sign-in throttle keeps its state (issue 13 items 5 and 12).

* The owner's known addresses are kept in the store (users.db): after a restart, an
  account locked by guesses from many addresses still lets its usual device in.
* With two worker processes the failures are counted once for both: a guesser whose
  connections land on both workers meets one budget, not two.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from roost.auth.known_addresses import StoreKnownAddresses
from roost.auth.throttle import LoginThrottle, ThrottlePolicy
from roost.runtime.shared_failures import SqliteSharedFailures
from roost.store.sqlite import SqliteStore
from tests.e2e.test_workers import PASSWORD, USER, Workers, alive, create_account
from tests.support.server_process import RoostProcess, write_config

LOCK_AFTER = 5  # failures per account, from any addresses
OWNER = "203.0.113.7"


def lock_policy() -> ThrottlePolicy:
    return ThrottlePolicy(
        base_delay=0.0, max_delay=0.0, max_account_delay=0.0, max_failures_per_ip=0,
        max_failures_per_account=LOCK_AFTER,
    )  # fmt: skip


async def test_known_addresses_survive_a_restart(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path, durable=False)
    try:
        await store.create_account("alice", "hash")
        throttle = LoginThrottle(lock_policy(), known=StoreKnownAddresses(store))
        assert await throttle.wait_turn(OWNER, "alice")
        await throttle.succeeded(OWNER, "Alice")
    finally:
        await store.close()

    store = await SqliteStore.open(tmp_path, durable=False)  # a restart: memory is gone
    try:
        throttle = LoginThrottle(lock_policy(), known=StoreKnownAddresses(store))
        for n in range(LOCK_AFTER):
            await throttle.failed(f"198.51.100.{n}", "alice")
        assert not await throttle.wait_turn("198.51.100.200", "alice")  # locked to strangers
        assert await throttle.wait_turn(OWNER, "ALICE")  # the usual device is still let in
        assert not await throttle.wait_turn("203.0.113.8", "alice")
    finally:
        await store.close()


async def test_known_addresses_expire_and_are_bounded(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = await SqliteStore.open(tmp_path, durable=False)
    try:
        known = StoreKnownAddresses(store, clock=lambda: now[0])
        for n in range(20):
            now[0] += 1
            await known.remember("alice", f"192.0.2.{n}")
        assert not await known.known_within("alice", "192.0.2.0", 60)  # 16 are kept
        assert await known.known_within("alice", "192.0.2.19", 60)
        now[0] += 61
        assert not await known.known_within("alice", "192.0.2.19", 60)
    finally:
        await store.close()


async def test_shared_failures_count_for_every_throttle(tmp_path: Path) -> None:
    """Two throttles on one file, as two workers have: one budget."""
    policy = ThrottlePolicy(
        base_delay=0.0, max_delay=0.0, max_account_delay=0.0, max_failures_per_ip=4,
        max_failures_per_account=0,
    )  # fmt: skip
    first = LoginThrottle(policy, shared=SqliteSharedFailures(tmp_path / "failures.db"))
    second = LoginThrottle(policy, shared=SqliteSharedFailures(tmp_path / "failures.db"))
    for throttle in (first, second, first, second):
        assert await throttle.wait_turn("192.0.2.1", "alice")
        await throttle.failed("192.0.2.1", "alice")
    assert not await first.wait_turn("192.0.2.1", "bob")
    assert not await second.wait_turn("192.0.2.1", "bob")
    assert await second.wait_turn("192.0.2.2", "bob")  # another address is not refused


async def test_two_workers_share_one_failure_budget(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await create_account(data_dir)
    config = write_config(tmp_path / "roost.toml", data_dir, workers=2)
    text = config.read_text().replace("max_failures_per_ip = 0", "max_failures_per_ip = 4")
    config.write_text(text)
    server = Workers(RoostProcess(config, tmp_path / "server.log"), data_dir)
    try:
        await asyncio.to_thread(server.process.start)
        for worker in (1, 2, 1, 2):  # four failures, two on each worker
            client, _ = await server.connect(worker)
            reply = await client.no(f'LOGIN "{USER}" "wrong"')
            assert b"[AUTHENTICATIONFAILED]" in reply.line
        for worker in (1, 2):  # one process allows 4: so do both together
            client, _ = await server.connect(worker)
            reply = await client.no(f'LOGIN "{USER}" "{PASSWORD}"')
            assert b"[UNAVAILABLE]" in reply.line, reply.line
    finally:
        for client in server.clients:
            with contextlib.suppress(Exception):
                await client.close()
        server.process.stop()
        for pid in server.seen_pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert server.process.errors_logged() == []


class CountingKnown:
    def __init__(self) -> None:
        self.remembered: list[tuple[str, str]] = []

    async def remember(self, account_key: str, ip_key: str) -> None:
        self.remembered.append((account_key, ip_key))

    async def known_within(self, account_key: str, ip_key: str, period: float) -> bool:
        return (account_key, ip_key) in self.remembered


async def test_a_known_address_is_written_once_an_hour_not_per_sign_in() -> None:
    now = [0.0]
    known = CountingKnown()
    throttle = LoginThrottle(lock_policy(), clock=lambda: now[0], known=known)
    for _ in range(3):
        await throttle.succeeded(OWNER, "alice")
    assert known.remembered == [("alice", OWNER)]
    now[0] += 3601
    await throttle.succeeded(OWNER, "alice")
    assert len(known.remembered) == 2


async def test_shared_counts_read_in_a_thread_when_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counts are read on the loop; a "database is locked" there sends that read to
    the writers' thread, which waits its turn; any other error is not hidden."""
    failures = SqliteSharedFailures(tmp_path / "failures.db")
    try:
        await failures.add("192.0.2.1", "alice")
        assert await failures.counts("192.0.2.1", "bob", 60) == (1, 0)

        class Refusing:
            def __init__(self, message: str) -> None:
                self.message = message

            def execute(self, *args: object) -> None:
                raise sqlite3.OperationalError(self.message)

        monkeypatch.setattr(failures, "_read_connection", lambda: Refusing("database is locked"))
        assert await failures.counts("192.0.2.1", "alice", 60) == (1, 1)
        monkeypatch.setattr(failures, "_read_connection", lambda: Refusing("disk I/O error"))
        with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
            await failures.counts("192.0.2.1", "alice", 60)
    finally:
        failures.close()
