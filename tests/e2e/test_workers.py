"""Several worker processes: ``roost serve`` with ``workers = 2`` as a real process tree.

Which worker serves a connection is told by the server itself, as documented: IMAP's
ID response carries ``"x-roost-worker" "N"`` and POP3's CAPA ``IMPLEMENTATION Roost
worker-N``; ``data_dir/run/worker-N.pid`` holds worker N's PID. A test that needs a
connection on worker N connects until the kernel hands one to that worker.

* The three-device QRESYNC scenario with the devices spread over both workers, and
  IDLE and NOTIFY in one worker hearing changes committed in the other.
* Two writers in two workers appending, flagging and expunging one mailbox at once:
  UIDs unique and increasing, and watchers in both workers, built only from what they
  were told in IDLE, end equal to the store (nothing lost, nothing told twice).
* SIGKILL of one worker: the other keeps serving its open connections, a replacement
  takes the number, SIGTERM ends everything with exit status 0 and no process left.
* Limits across workers: the POP3 maildrop lock ([IN-USE]), freed by the kernel when
  its worker dies; sessions per account, and per account and address; connections
  per address.

Every process is started here and stopped by its own PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from roost.auth.passwords import hash_password
from roost.store.sqlite import SqliteStore
from tests.support.imap_client import ImapClient, message
from tests.support.mailbox_model import MailboxModel
from tests.support.pop3_client import Pop3Client
from tests.support.server_process import RoostProcess, write_config
from tests.transcripts.test_multidevice import Truth, three_devices

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes need POSIX")

USER = "alice"
PASSWORD = "secret pass"
HOST = "127.0.0.1"
# How long to keep connecting to reach one given worker: the kernel picks the worker,
# and a replacement worker may take seconds to start serving on a loaded machine.
FIND_SECONDS = 60.0
_WORKER_ID = re.compile(rb'"x-roost-worker" "(\d+)"')
_POP3_WORKER = re.compile(rb"IMPLEMENTATION Roost worker-(\d+)")


class Workers:
    """A running ``roost serve`` with two workers, and its clients."""

    def __init__(self, process: RoostProcess, data_dir: Path) -> None:
        self.process = process
        self.data_dir = data_dir
        self.clients: list[ImapClient | Pop3Client] = []
        self.seen_pids: set[int] = set()

    def worker_pid(self, index: int) -> int:
        pid = int((self.data_dir / "run" / f"worker-{index}.pid").read_text())
        self.seen_pids.add(pid)
        return pid

    async def connect(self, worker: int | None = None) -> tuple[ImapClient, int]:
        """A connection (to ``worker`` if given) and the number of its worker."""
        deadline = asyncio.get_running_loop().time() + FIND_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            client = await ImapClient.connect(HOST, self.process.port)
            reply = await client.ok("ID NIL")
            found = _WORKER_ID.search(reply.untagged[0])
            assert found is not None, reply.untagged
            number = int(found.group(1))
            if worker is None or number == worker:
                self.clients.append(client)
                return client, number
            await client.close()
            await asyncio.sleep(0.01)  # let the kernel's choice move on (a replacement)
        raise AssertionError(f"no connection reached worker {worker}")

    async def login(self, worker: int | None = None) -> ImapClient:
        client, _ = await self.connect(worker)
        await client.login(USER, PASSWORD)
        return client

    async def pop3(self, worker: int | None = None) -> tuple[Pop3Client, int]:
        deadline = asyncio.get_running_loop().time() + FIND_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            client = await Pop3Client.connect(HOST, self.process.pop3_port)
            await client.ok("CAPA")
            capabilities = await client.read_multiline()
            found = next(filter(None, map(_POP3_WORKER.fullmatch, capabilities)), None)
            assert found is not None, capabilities
            number = int(found.group(1))
            if worker is None or number == worker:
                self.clients.append(client)
                return client, number
            await client.close()
            await asyncio.sleep(0.01)
        raise AssertionError(f"no POP3 connection reached worker {worker}")

    async def truth(self, mailbox: str = "INBOX") -> Truth:
        """The mailbox as the store has it, read in this process."""
        store = await SqliteStore.open(self.data_dir, durable=False)
        try:
            account = await store.open_account(USER)
            try:
                info = await account.get_mailbox(mailbox)
                snapshot = await account.snapshot(info.id)
                found = await account.fetch_flags(info.id, snapshot.uids)
                return [(uid, flags) for uid, flags, _ in found.states()]
            finally:
                await account.close()
        finally:
            await store.close()


StartWorkers = Callable[..., Awaitable[Workers]]


@pytest.fixture
async def start_workers(tmp_path: Path) -> AsyncIterator[StartWorkers]:
    started: list[Workers] = []

    async def start(**limits: Any) -> Workers:
        data_dir = tmp_path / "data"
        await create_account(data_dir)
        config = write_config(
            tmp_path / "roost.toml",
            data_dir,
            workers=2,
            pop3=True,
            limits={"max_connections_per_ip": 1000, **limits},
        )
        process = RoostProcess(config, tmp_path / "server.log")
        started.append(workers := Workers(process, data_dir))
        await asyncio.to_thread(process.start)
        for index in (1, 2):
            workers.worker_pid(index)  # remembered, to be sure none is left at the end
        return workers

    try:
        yield start
    finally:
        for workers in started:
            for client in workers.clients:
                with contextlib.suppress(Exception):
                    await client.close()
            workers.process.stop()
            for pid in workers.seen_pids:  # none should be left; never leave one behind
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


async def create_account(data_dir: Path) -> None:
    store = await SqliteStore.open(data_dir, durable=False)
    try:
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        await store.create_account(USER, hash_password(PASSWORD, hasher=hasher))
    finally:
        await store.close()


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by its new parent, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    with contextlib.suppress(OSError):
        return "\nState:\tZ" not in status.read_text()
    return True


# ---- one mailbox, many devices, two workers -----------------------------------------


async def test_three_devices_spread_over_two_workers(start_workers: StartWorkers) -> None:
    server = await start_workers()
    # The phone's second connection comes back on the other worker.
    plan = {"laptop": [1], "tablet": [2], "phone": [1, 2]}

    async def login(device: str) -> ImapClient:
        return await server.login(plan[device].pop(0))

    await three_devices(login, server.truth)
    assert not any(plan.values())


async def test_idle_and_notify_hear_the_other_worker(start_workers: StartWorkers) -> None:
    server = await start_workers()
    idler = await server.login(2)
    await idler.ok("ENABLE IMAP4rev2")  # no RECENT to read past
    await idler.ok("SELECT INBOX")
    notified = await server.login(2)
    await notified.ok("NOTIFY SET (personal (MessageNew MessageExpunge))")
    writer = await server.login(1)
    tag = await idler.idle()

    await writer.append("INBOX", message("one"))
    assert await idler.read_response() == b"* 1 EXISTS"
    line = await notified.read_response()
    assert line.startswith(b"* STATUS INBOX (MESSAGES 1 UIDNEXT 2 "), line
    await writer.append("Archive", message("two"))
    line = await notified.read_response()
    assert line.startswith(b"* STATUS Archive (MESSAGES 1 UIDNEXT 2 "), line
    await writer.ok("SELECT INBOX")
    await writer.ok("STORE 1 +FLAGS (\\Flagged)")
    assert await idler.read_response() == b"* 1 FETCH (UID 1 FLAGS (\\Flagged))"
    reply = await idler.done(tag)
    assert reply.status == "OK" and not reply.untagged


async def test_concurrent_writers_in_two_workers(start_workers: StartWorkers) -> None:
    """Both workers write INBOX at once; a watcher in each worker (one plain, told by
    EXPUNGE, one QRESYNC, told by VANISHED) idles throughout and must end with exactly
    the store's messages and flags, UID by UID."""
    server = await start_workers()
    rng = random.Random(20261122)
    seeder = await server.login(1)
    for i in range(10):
        await seeder.append("INBOX", message(f"seed {i}"))
    watchers: list[tuple[ImapClient, MailboxModel, str]] = []
    for worker, enable in ((1, None), (2, "QRESYNC")):
        watcher = await server.login(worker)
        if enable:
            await watcher.ok(f"ENABLE {enable}")
        model = MailboxModel()
        model.apply((await watcher.ok("SELECT INBOX")).untagged)
        model.apply((await watcher.ok("FETCH 1:* (UID FLAGS)")).untagged)
        watchers.append((watcher, model, await watcher.idle()))
    known = set(range(1, 11))
    appended: dict[int, list[int]] = {1: [], 2: []}

    async def write(worker: int, seed: int) -> None:
        local = random.Random(seed)
        client = await server.login(worker)
        await client.ok("SELECT INBOX")
        for step in range(60):
            choice = local.random()
            if choice < 0.4 or not known:
                reply = await client.append("INBOX", message(f"w{worker} {step}"))
                found = re.search(rb"\[APPENDUID \d+ (\d+)\]", reply.line)
                assert found is not None, reply.line
                uid = int(found.group(1))
                appended[worker].append(uid)
                known.add(uid)
            elif choice < 0.8:
                uid = local.choice(sorted(known))
                flag = local.choice(("\\Seen", "\\Flagged", "$Work"))
                await client.ok(f"UID STORE {uid} {local.choice('+-')}FLAGS ({flag})")
            else:  # both writers may expunge the same message: one of them wins
                uid = local.choice(sorted(known))
                known.discard(uid)
                await client.ok(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
                await client.ok(f"UID EXPUNGE {uid}")

    await asyncio.gather(write(1, rng.getrandbits(32)), write(2, rng.getrandbits(32)))

    for worker_uids in appended.values():
        assert worker_uids == sorted(worker_uids)
    every_uid = appended[1] + appended[2]
    assert len(set(every_uid)) == len(every_uid), "a UID was given twice"
    assert min(every_uid) == 11 and max(every_uid) == 10 + len(every_uid)
    truth = await server.truth()
    for watcher, model, tag in watchers:
        # Whatever the IDLE told, in order; then the UIDs of the new messages.
        reply = await watcher.done(tag)
        model.apply(reply.untagged)
        model.apply((await watcher.ok("NOOP")).untagged)
        if None in model.uids:
            first = model.uids.index(None) + 1
            model.apply((await watcher.ok(f"FETCH {first}:* (UID FLAGS)")).untagged)
        assert model.state() == truth


# ---- a worker dies -------------------------------------------------------------------


async def test_killed_worker_is_replaced_while_the_other_serves(
    start_workers: StartWorkers,
) -> None:
    server = await start_workers()
    doomed = await server.login(1)
    survivor = await server.login(2)
    await doomed.ok("SELECT INBOX")
    await survivor.ok("SELECT INBOX")
    victim = server.worker_pid(1)

    os.kill(victim, signal.SIGKILL)
    with pytest.raises(ConnectionError):
        await doomed.command("NOOP")
    # The other worker's connection is untouched.
    await survivor.append("INBOX", message("after the kill"))
    assert (await survivor.ok("NOOP")).untagged == []

    # A new worker 1 serves, and is linked to the others' changes.
    newcomer = await server.login(1)
    assert server.worker_pid(1) != victim
    await newcomer.ok("SELECT INBOX")
    tag = await newcomer.idle()
    await survivor.append("INBOX", message("heard by the newcomer"))
    assert await newcomer.read_response() == b"* 2 EXISTS"
    await newcomer.done(tag)

    pids = {server.worker_pid(1), server.worker_pid(2), victim}
    assert server.process.stop() == 0
    assert not any(alive(pid) for pid in pids)
    errors = server.process.errors_logged()
    assert len(errors) == 1 and f"worker 1 (pid {victim}) was killed by SIGKILL" in errors[0]


async def test_workers_follow_a_killed_supervisor(start_workers: StartWorkers) -> None:
    """The supervisor killed outright: each worker gets SIGTERM (PR_SET_PDEATHSIG, or
    its check of its parent) and shuts down gracefully, telling its clients."""
    server = await start_workers()
    client = await server.login()
    pids = [server.worker_pid(1), server.worker_pid(2)]
    server.process.kill()
    assert await client.read_response() == b"* BYE Server shutting down"
    async with asyncio.timeout(30):  # polled: these processes are not this test's children
        while True:
            if not any(alive(pid) for pid in pids):
                break
            await asyncio.sleep(0.05)


# ---- limits across workers -----------------------------------------------------------


async def test_pop3_maildrop_lock_holds_across_workers(start_workers: StartWorkers) -> None:
    """RFC 2449 §8.1.1: one POP3 session per maildrop, whichever worker serves it; the
    lock goes with QUIT, and with its worker's death."""
    server = await start_workers()
    first, holder = await server.pop3()
    other = 3 - holder
    await first.ok(f"USER {USER}")
    await first.ok(f"PASS {PASSWORD}")

    second, _ = await server.pop3(other)
    await second.ok(f"USER {USER}")
    assert (await second.err(f"PASS {PASSWORD}")).startswith(b"-ERR [IN-USE] ")
    await first.ok("QUIT")
    await second.ok(f"USER {USER}")
    await second.ok(f"PASS {PASSWORD}")  # unlocked before QUIT's +OK

    third, _ = await server.pop3(holder)
    await third.ok(f"USER {USER}")
    assert (await third.err(f"PASS {PASSWORD}")).startswith(b"-ERR [IN-USE] ")
    os.kill(server.worker_pid(other), signal.SIGKILL)  # the holder of the lock dies
    assert await second.expect_eof() == b""
    deadline = asyncio.get_running_loop().time() + FIND_SECONDS
    while True:  # the kernel frees the lock as the process ends
        await third.ok(f"USER {USER}")
        line = await third.command(f"PASS {PASSWORD}")
        if line.startswith(b"+OK"):
            break
        assert line.startswith(b"-ERR [IN-USE] "), line
        assert asyncio.get_running_loop().time() < deadline, "the dead lock was never freed"
        await asyncio.sleep(0.01)
    await third.ok("QUIT")


async def test_sessions_per_account_are_counted_across_workers(
    start_workers: StartWorkers,
) -> None:
    server = await start_workers(max_connections_per_account=2)
    one, _ = await server.connect(1)
    two, _ = await server.connect(2)
    extra, _ = await server.connect()
    await one.login(USER, PASSWORD)
    await two.login(USER, PASSWORD)
    reply = await extra.no(f'LOGIN "{USER}" "{PASSWORD}"')
    assert b"[LIMIT]" in reply.line


async def test_sessions_per_account_and_address_are_counted_across_workers(
    start_workers: StartWorkers,
) -> None:
    server = await start_workers(max_connections_per_user_ip=2)
    one, _ = await server.connect(1)
    two, _ = await server.connect(2)
    extra, _ = await server.connect()
    await one.login(USER, PASSWORD)
    await two.login(USER, PASSWORD)
    reply = await extra.no(f'LOGIN "{USER}" "{PASSWORD}"')
    assert b"[LIMIT]" in reply.line and b"max_connections_per_user_ip" in reply.line


async def test_connections_per_address_are_counted_across_workers(
    start_workers: StartWorkers,
) -> None:
    server = await start_workers(max_connections_per_ip=4)
    clients = [await ImapClient.connect(HOST, server.process.port) for _ in range(5)]
    server.clients.extend(clients)
    assert [c.greeting.startswith(b"* OK") for c in clients] == [True] * 4 + [False]
    assert clients[4].greeting.startswith(b"* BYE [UNAVAILABLE] ")


# ---- starting ------------------------------------------------------------------------


async def test_one_supervisor_per_data_directory(start_workers: StartWorkers) -> None:
    server = await start_workers()
    second = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "roost",
        "serve",
        "--config",
        str(server.process.config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await second.communicate()
    assert second.returncode == 1, (out, err)
    supervisor = server.process.pid
    assert f"roost: another Roost (pid {supervisor}) is serving".encode() in err
    client = await server.login()  # the first one is unharmed
    await client.ok("NOOP")


async def test_dev_server_with_two_workers_over_tls(tmp_path: Path) -> None:
    """``roost serve --dev --workers 2``: the supervisor makes the certificate and the
    demo account before any worker starts; both protocols over implicit TLS."""
    data_dir = tmp_path / "data"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "roost",
        "serve",
        "--dev",
        "--workers",
        "2",
        "--data-dir",
        str(data_dir),
        *("--imap-listen", "127.0.0.1:0", "--imaps-listen", "127.0.0.1:0"),
        *("--pop3-listen", "none", "--pop3s-listen", "127.0.0.1:0"),
        *("--lmtp-listen", "none", "--managesieve-listen", "none"),
        *("--submission-listen", "none", "--submissions-listen", "none"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        stdin=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    pids = []
    try:
        banner = b""
        async with asyncio.timeout(60):
            while b"Stop with Ctrl-C" not in banner:
                line = await process.stdout.readline()
                assert line, banner
                banner += line
        assert re.search(rb"worker processes\s+2\n", banner)
        password = re.search(rb"with password (\S+);", banner).group(1).decode()  # type: ignore[union-attr]
        imaps = re.search(rb"IMAP over TLS.*?:(\d+)\n", banner).group(1)  # type: ignore[union-attr]
        pop3s = re.search(rb"POP3 over TLS.*?:(\d+)\n", banner).group(1)  # type: ignore[union-attr]
        pids = [int((data_dir / "run" / f"worker-{n}.pid").read_text()) for n in (1, 2)]
        tls = ssl.create_default_context(cafile=str(data_dir / "tls" / "cert.pem"))
        client = await ImapClient.connect(HOST, int(imaps), tls=tls)
        reply = await client.ok("ID NIL")
        assert _WORKER_ID.search(reply.untagged[0])
        await client.login("demo", password)
        await client.ok("LOGOUT")
        await client.close()
        pop3 = await Pop3Client.connect(HOST, int(pop3s), tls=tls)
        await pop3.ok("CAPA")
        assert any(map(_POP3_WORKER.fullmatch, await pop3.read_multiline()))
        await pop3.ok("QUIT")
        await pop3.close()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            assert await process.wait() == 0
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert not any(alive(pid) for pid in pids)
