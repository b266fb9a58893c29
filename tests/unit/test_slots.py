"""Slot tables (roost/runtime/slots.py) and what is built on them: the counts hold in one
process, across processes (a second Python process holds slots of the same file), and
the kernel frees the slots of a process that dies, even by SIGKILL. Also the POP3
locks and sign-in times that the workers share (roost/pop3/locks.py)."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.pop3.locks import SharedLocks, SharedSignInTimes
from roost.runtime.account_limits import AccountConnections
from roost.runtime.slots import FileSlots, LocalSlots, SlotTable

# Takes a slot of each key named on the command line, prints True/False for each, and
# holds them until its standard input closes (or it is killed).
HOLDER = """
import json, sys
from pathlib import Path
from roost.runtime.slots import FileSlots
slots = FileSlots(Path(sys.argv[1]), int(sys.argv[2]))
for key in json.loads(sys.argv[3]):
    print(slots.acquire(key), flush=True)
sys.stdin.read()
"""


class Holder:
    """Another process holding slots of the same file."""

    def __init__(self, path: Path, limit: int, *keys: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), str(limit), json.dumps(keys)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.results = [self.process.stdout.readline().strip() == "True" for _ in keys]

    def exit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    try:
        yield started
    finally:
        for holder in started:
            holder.kill()


@pytest.fixture
def slots(tmp_path: Path) -> Iterator[FileSlots]:
    table = FileSlots(tmp_path / "slots", 3)
    try:
        yield table
    finally:
        table.close()


def take_all(table: SlotTable, key: str) -> int:
    taken = 0
    while table.acquire(key):
        taken += 1
    return taken


@pytest.mark.parametrize("kind", ["local", "file"])
def test_counts_in_one_process(kind: str, tmp_path: Path) -> None:
    table: SlotTable = LocalSlots(3) if kind == "local" else FileSlots(tmp_path / "slots", 3)
    assert table.limit == 3
    assert take_all(table, "alice") == 3
    assert table.held("alice") == 3
    assert take_all(table, "bob") == 3  # keys are independent
    table.release("alice")
    assert table.held("alice") == 2
    assert table.acquire("alice")
    assert not table.acquire("alice")
    table.release("nobody")  # nothing held: nothing happens
    for _ in range(5):
        table.release("bob")
    assert table.held("bob") == 0
    assert take_all(table, "bob") == 3


def test_another_process_holds_part_of_the_limit(
    slots: FileSlots, tmp_path: Path, holders: list[Holder]
) -> None:
    holders.append(holder := Holder(slots.path, 3, "alice", "alice"))
    assert holder.results == [True, True]
    assert take_all(slots, "alice") == 1
    assert take_all(slots, "bob") == 3
    holder.exit()  # its slots go with it
    assert take_all(slots, "alice") == 2


def test_what_this_process_holds_another_cannot_take(
    slots: FileSlots, holders: list[Holder]
) -> None:
    assert take_all(slots, "alice") == 3
    holders.append(holder := Holder(slots.path, 3, "alice", "carol"))
    assert holder.results == [False, True]
    slots.release("alice")
    holders.append(second := Holder(slots.path, 3, "alice", "alice"))
    assert second.results == [True, False]


def test_a_killed_process_leaks_no_slot(slots: FileSlots, holders: list[Holder]) -> None:
    holders.append(holder := Holder(slots.path, 3, "alice", "alice", "alice"))
    assert holder.results == [True, True, True]
    assert not slots.acquire("alice")
    holder.kill()
    assert take_all(slots, "alice") == 3


def test_acquiring_does_not_probe_every_slot_another_process_holds(
    tmp_path: Path, holders: list[Holder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a large limit (the benchmark's 1,000,000 connections per account) and many
    slots held by another worker, a sign-in must not try each of them in turn."""
    table = FileSlots(tmp_path / "accounts", 1_000_000)
    try:
        holders.append(holder := Holder(table.path, 1_000_000, *["alice"] * 2_000))
        assert all(holder.results)
        calls = 0
        real_lockf = fcntl.lockf

        def counting_lockf(*args: object) -> object:
            nonlocal calls
            calls += 1
            return real_lockf(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(fcntl, "lockf", counting_lockf)
        assert take_all_of(table, "alice", 500) == 500
        # 2,000 of 1,000,000 slots are busy: a probe hits one of them 0.2% of the time.
        assert calls < 520
        assert table.held("alice") == 500
    finally:
        table.close()


def take_all_of(table: SlotTable, key: str, count: int) -> int:
    return sum(table.acquire(key) for _ in range(count))


def test_account_connections_share_a_file(tmp_path: Path, holders: list[Holder]) -> None:
    table = FileSlots(tmp_path / "accounts", 2)
    try:
        connections = AccountConnections(slots=table)
        assert connections.limit == 2
        holders.append(Holder(table.path, 2, "alice"))  # keys are case-folded names
        assert connections.acquire("Alice")
        assert not connections.acquire("ALICE")
        assert connections.count("alice") == 1  # counted here; the other is elsewhere
        connections.release("alice")
        assert connections.count("alice") == 0
    finally:
        table.close()


async def test_maildrop_lock_across_processes(tmp_path: Path, holders: list[Holder]) -> None:
    table = FileSlots(tmp_path / "maildrops", 1)
    try:
        locks = SharedLocks(table)
        holders.append(holder := Holder(table.path, 1, "alice\0INBOX"))
        assert holder.results == [True]
        assert await locks.try_acquire("Alice", "INBOX") is None  # [IN-USE]
        other = await locks.try_acquire("alice", "Other")
        assert other is not None
        await other.release()
        holder.kill()
        lease = await locks.try_acquire("ALICE", "INBOX")
        assert lease is not None
        assert await locks.try_acquire("alice", "INBOX") is None  # one per maildrop here too
        await lease.release()
        await lease.release()  # again: nothing happens
        assert await locks.try_acquire("alice", "INBOX") is not None
    finally:
        table.close()
    with pytest.raises(ValueError):
        SharedLocks(LocalSlots(2))


async def test_shared_sign_in_times(tmp_path: Path) -> None:
    path = tmp_path / "sign-ins.db"
    times = SharedSignInTimes(path, keep=60.0)
    assert await times.last("alice") is None
    await times.record("Alice", 1000.0)
    assert await SharedSignInTimes(path, keep=60.0).last("ALICE") == 1000.0  # same file
    await times.record("alice", 1010.0)
    assert await times.last("alice") == 1010.0
    await times.record("bob", 1100.0)  # alice's time is older than keep: forgotten
    assert await times.last("alice") is None
    assert await times.last("bob") == 1100.0
