"""The scenarios of issue 5, each run against one server at a time.

Each returns a dict of figures (seconds, per second, KiB) plus ``client_cpu`` — the
load generator's own CPU use over the scenario, as a share of one core — so a reader
can tell whether the generator, not the server, was the limit.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import resource
import shutil
import ssl
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import corpus
import imapc
from servers import PASSWORD, Server, proc_status, reset_peak

HOST = "127.0.0.1"
COMMAND_TIMEOUT = 300.0


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def summary(values: list[float]) -> dict[str, Any]:
    """Count, p50, p99 and max of latencies, in milliseconds."""
    p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
    return {
        "count": len(values),
        "p50_ms": None if p50 is None else round(p50 * 1000, 3),
        "p99_ms": None if p99 is None else round(p99 * 1000, 3),
        "max_ms": round(max(values) * 1000, 3) if values else None,
    }


class Meter:
    """Wall time, the generator's CPU, and the server's CPU over a scenario."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.wall = time.perf_counter()
        self.client = _own_cpu()
        self.server_cpu = server.cpu()

    def result(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        client = _own_cpu() - self.client
        served = self.server.cpu() - self.server_cpu
        return {
            "wall_s": round(wall, 3),
            "client_cpu": round(client / wall, 3) if wall else 0.0,
            "server_cpu": round(served / wall, 3) if wall else 0.0,
        }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def signed_in(server: Server, user: str) -> imapc.Connection:
    connection = await imapc.connect(HOST, server.port)
    await connection.login(user, PASSWORD)
    return connection


def _exists(reply: imapc.Reply) -> int:
    for line in reply.untagged:
        if line.endswith(b" EXISTS"):
            return int(line.split()[1])
    return 0


# ---- 0. the cost of LOGIN with full-strength hashes ------------------------------------


async def login_cost(
    server: Server, user: str, clients: int, duration: float, warmup: float = 1.0
) -> dict[str, Any]:
    """``clients`` connections in a loop of connect, LOGIN, LOGOUT, against an account
    whose argon2id hash has Roost's default parameters (the same string for both).
    ``warmup`` seconds of the same loop go first, uncounted: each Roost worker process
    has its own sign-in cache, and its first LOGINs (all clients at once) miss it."""
    latencies: list[float] = []

    async def client(deadline: float, timed: bool) -> None:
        while time.perf_counter() < deadline:
            connection = await imapc.connect(HOST, server.port)
            started = time.perf_counter()
            await connection.login(user, PASSWORD)
            if timed:
                latencies.append(time.perf_counter() - started)
            await connection.logout()

    if warmup > 0:
        deadline = time.perf_counter() + warmup
        await asyncio.gather(*(client(deadline, False) for _ in range(clients)))
    meter = Meter(server)
    deadline = time.perf_counter() + duration
    await asyncio.gather(*(client(deadline, True) for _ in range(clients)))
    result = meter.result()
    return {
        "logins_per_s": round(len(latencies) / result["wall_s"], 2),
        "login": summary(latencies),
        **result,
    }


# ---- 1. mixed workload --------------------------------------------------------------

MIXED_COMMANDS = (
    "CONNECT",
    "LOGIN",
    "SELECT",
    "FETCH headers",
    "FETCH body",
    "STORE",
    "EXPUNGE",
    "APPEND",
    "LOGOUT",
)
_HEADER_FETCH = (
    b"UID FETCH %d:* (UID FLAGS RFC822.SIZE "
    b"BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID)])"
)
_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")


@dataclass
class _Mixed:
    started: float  # measured window start
    deadline: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    sessions: int = 0
    appended: int = 0


async def mixed(
    server: Server,
    users: list[str],
    clients: int,
    duration: float,
    warmup: float,
    *,
    port: int | None = None,
    tls: ssl.SSLContext | None = None,
    ports: list[int] | None = None,
) -> dict[str, Any]:
    """``clients`` concurrent clients, client i on account ``users[i % len(users)]``,
    each looping: connect, LOGIN, SELECT INBOX, fetch the headers of the 20 newest
    messages, fetch one whole message, STORE \\Deleted on the message it appended last
    time, EXPUNGE, APPEND a new one, LOGOUT. Only commands that complete inside the
    measured window (after ``warmup``) count. ``port``/``tls``: another listener (implicit
    TLS), for the run on defaults. ``ports``: several nodes' listeners, client i on
    ``ports[i % len(ports)]`` (round-robin, as a load balancer would spread them)."""
    spread = ports or [port or server.port]

    async def connect(index: int) -> imapc.Connection:
        return await imapc.connect(HOST, spread[index % len(spread)], tls=tls)

    # each client starts with one message of its own to delete in its first round
    own: list[int | None] = [None] * clients
    serial = [0]

    async def prepare(index: int) -> None:
        connection = await connect(index)
        await connection.login(users[index % len(users)], PASSWORD)
        serial[0] += 1
        reply = await connection.append(b"INBOX", corpus.new_message(serial[0], "mixed"))
        own[index] = imapc.appenduid(reply)
        await connection.logout()

    for start in range(0, clients, 50):
        await asyncio.gather(*(prepare(i) for i in range(start, min(clients, start + 50))))

    now = time.perf_counter()
    state = _Mixed(started=now + warmup, deadline=now + warmup + duration)
    for name in MIXED_COMMANDS:
        state.latencies[name] = []
    rng = random.Random(5)
    meter = Meter(server)

    def note(name: str, began: float, ended: float) -> None:
        if state.started <= ended <= state.deadline and began >= state.started - 1.0:
            state.latencies[name].append(ended - began)

    async def timed(name: str, call: Awaitable[imapc.Reply]) -> imapc.Reply:
        began = time.perf_counter()
        reply = await call
        note(name, began, reply.done_at)
        if not reply.ok:
            state.errors.append(f"{name}: {reply.line[:120]!r}")
        return reply

    async def client(index: int) -> None:
        user = users[index % len(users)]
        while time.perf_counter() < state.deadline:
            began = time.perf_counter()
            connection = await connect(index)
            note("CONNECT", began, time.perf_counter())
            try:
                await timed("LOGIN", connection.command(f'LOGIN "{user}" "{PASSWORD}"'.encode()))
                selected = await timed("SELECT", connection.command(b"SELECT INBOX"))
                exists = _exists(selected)
                found = _UIDNEXT.search(b"\n".join(selected.untagged))
                uidnext = int(found.group(1)) if found else exists + 1
                headers = await timed(
                    "FETCH headers", connection.command(_HEADER_FETCH % max(1, uidnext - 20))
                )
                # Other clients' EXPUNGEs may be reported after a UID FETCH (RFC 9051
                # §7.5.1): the number chosen must be one the session still has.
                exists -= sum(1 for line in headers.untagged if line.endswith(b" EXPUNGE"))
                if exists > 0:
                    number = rng.randint(1, exists)
                    await timed(
                        "FETCH body", connection.command(b"FETCH %d (BODY.PEEK[])" % number)
                    )
                if own[index] is not None:
                    await timed(
                        "STORE",
                        connection.command(b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % own[index]),
                    )
                await timed("EXPUNGE", connection.command(b"EXPUNGE"))
                serial[0] += 1
                message = corpus.new_message(serial[0], "mixed")
                began = time.perf_counter()
                reply = await connection.append(b"INBOX", message)
                note("APPEND", began, reply.done_at)
                own[index] = imapc.appenduid(reply)
                state.appended += 1
                began = time.perf_counter()
                await connection.logout()
                note("LOGOUT", began, time.perf_counter())
                state.sessions += 1
            except (imapc.ImapError, ConnectionError, TimeoutError) as error:
                state.errors.append(f"{type(error).__name__}: {error}"[:200])
                connection.close()
                await asyncio.sleep(0.05)

    await asyncio.gather(*(client(i) for i in range(clients)))
    result = meter.result()
    window = duration
    commands = sum(len(v) for k, v in state.latencies.items() if k != "CONNECT")
    return {
        "clients": clients,
        "nodes": len(spread),
        "ops_per_s": round(commands / window, 1),
        "sessions_per_s": round(len(state.latencies["LOGOUT"]) / window, 2),
        "commands": {name: summary(values) for name, values in state.latencies.items()},
        "errors": len(state.errors),
        "error_samples": state.errors[:5],
        **result,
    }


# ---- 2. large mailbox ---------------------------------------------------------------

_COMMAND_TIMEOUT_LARGE = 240.0


async def large_mailbox(
    server: Server, user: str, expected_text: int, expected_from: int
) -> dict[str, Any]:
    """SELECT, then whole-mailbox FETCH and SEARCH, one at a time, each timed, with the
    serving process's peak RSS (VmHWM reset before each command)."""
    meter = Meter(server)
    steps: dict[str, dict[str, Any]] = {}

    # The first SELECT after seeding: Dovecot builds its index from the Maildir here.
    started = time.perf_counter()
    first = await signed_in(server, user)
    reply = await first.command(b"SELECT INBOX")
    steps["first SELECT (index build)"] = {
        "seconds": round(time.perf_counter() - started, 3),
        "status": reply.status.decode(),
    }
    await first.logout()

    connection = await signed_in(server, user)
    pid = server.session_pid(connection.local_port)
    commands = [
        ("SELECT", b"SELECT INBOX", None),
        ("UID FETCH 1:* (UID FLAGS)", b"UID FETCH 1:* (UID FLAGS)", None),
        ("UID FETCH 1:* (ENVELOPE BODYSTRUCTURE)", b"UID FETCH 1:* (ENVELOPE BODYSTRUCTURE)", None),
        (
            "UID FETCH 1:* (ENVELOPE BODYSTRUCTURE) again",
            b"UID FETCH 1:* (ENVELOPE BODYSTRUCTURE)",
            None,
        ),
        (
            "UID SEARCH TEXT rare word",
            b'UID SEARCH TEXT "' + corpus.RARE_WORD.encode() + b'"',
            expected_text,
        ),
        (
            "UID SEARCH FROM",
            b'UID SEARCH FROM "' + corpus.FROM_QUERY.encode() + b'"',
            expected_from,
        ),
    ]
    for name, text, expected in commands:
        reset_peak(pid)
        before = proc_status(pid)
        began = time.perf_counter()
        try:
            reply = await asyncio.wait_for(
                connection.command(text, keep=expected is not None or name == "SELECT"),
                _COMMAND_TIMEOUT_LARGE,
            )
        except TimeoutError:
            steps[name] = {"seconds": None, "status": "timeout", "note": "no reply in time"}
            connection.close()
            connection = await signed_in(server, user)
            await connection.check(b"SELECT INBOX")
            pid = server.session_pid(connection.local_port)
            continue
        seconds = reply.done_at - began
        after = proc_status(pid)
        step: dict[str, Any] = {
            "seconds": round(seconds, 3) if reply.ok else None,
            "status": reply.status.decode(),
            "responses": reply.untagged_count,
            "peak_rss_kib": after.get("VmHWM"),
            "rss_before_kib": before.get("VmRSS"),
        }
        if not reply.ok:
            step["note"] = reply.line[:160].decode(errors="replace")
        if name == "SELECT":
            step["exists"] = _exists(reply)
        if expected is not None and reply.ok:
            found = [line for line in reply.untagged if line.startswith(b"* SEARCH")]
            count = len(found[0].split()) - 2 if found else 0
            step["matches"], step["expected"] = count, expected
        steps[name] = step
    await connection.logout()
    return {"steps": steps, **meter.result()}


# ---- 3. many idle clients -----------------------------------------------------------


async def many_idle(
    server: Server,
    user: str,
    connections: int,
    concurrency: int,
    notify_timeout: float,
    setup_limit: float,
) -> dict[str, Any]:
    """``connections`` sessions on one account, INBOX selected, in IDLE — as many as
    get there within ``setup_limit`` seconds. Then one APPEND from another connection,
    and the time until every idler has read its EXISTS."""
    meter = Meter(server)
    warm = await signed_in(server, user)  # opens the account, so it is not counted
    await warm.check(b"SELECT INBOX")
    await asyncio.sleep(0.5)
    baseline = server.memory()

    idlers: list[imapc.Connection] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    phases: dict[str, list[float]] = {"connect": [], "login": [], "select": [], "idle": []}

    give_up = time.perf_counter() + setup_limit

    async def open_one() -> None:
        async with gate:
            if time.perf_counter() > give_up:
                return
            try:
                t0 = time.perf_counter()
                connection = await imapc.connect(HOST, server.port, within=60)
                t1 = time.perf_counter()
                await connection.login(user, PASSWORD)
                t2 = time.perf_counter()
                await connection.check(b"SELECT INBOX", keep=False)
                t3 = time.perf_counter()
                await connection.idle()
                t4 = time.perf_counter()
                for name, began, ended in (
                    ("connect", t0, t1),
                    ("login", t1, t2),
                    ("select", t2, t3),
                    ("idle", t3, t4),
                ):
                    phases[name].append(ended - began)
                idlers.append(connection)
            except (imapc.ImapError, ConnectionError, OSError, TimeoutError) as error:
                errors.append(f"{type(error).__name__}: {error}"[:200])

    began = time.perf_counter()
    openers = [asyncio.ensure_future(open_one()) for _ in range(connections)]
    _, late = await asyncio.wait(openers, timeout=setup_limit + 30)
    for opener in late:  # stuck past the limit: give up on those
        opener.cancel()
    setup = time.perf_counter() - began
    await asyncio.sleep(2.0)  # let every session settle into IDLE
    held = server.memory()

    waiters = [idler.expect_exists() for idler in idlers]
    sent = time.perf_counter()
    reply = await warm.append(b"INBOX", corpus.new_message(1, "idle"))
    acknowledged = reply.done_at
    done, pending = await asyncio.wait(waiters, timeout=notify_timeout)
    arrivals = sorted(w.result() for w in done if w.exception() is None)
    for waiter in pending:
        waiter.cancel()
    told = len(arrivals)
    result = {
        "connections_requested": connections,
        "connections_held": len(idlers),
        "errors": len(errors),
        "error_samples": errors[:5],
        "setup_s": round(setup, 2),
        "setup_limit_s": setup_limit,
        "setup_complete": len(idlers) == connections,
        "setup_latency": {name: summary(values) for name, values in phases.items()},
        "baseline": baseline,
        "held": held,
        "rss_per_connection_kib": round((held["rss_kib"] - baseline["rss_kib"]) / len(idlers), 1)
        if idlers
        else None,
        "pss_per_connection_kib": round((held["pss_kib"] - baseline["pss_kib"]) / len(idlers), 1)
        if idlers
        else None,
        "notified": told,
        "notify_all_s": round(arrivals[-1] - acknowledged, 3)
        if told == len(idlers) and told
        else None,
        "notify_p50_s": round(percentile(arrivals, 0.5) - acknowledged, 3) if told else None,
        "notify_timeout_s": notify_timeout,
        "append_ok_after_sent_s": round(acknowledged - sent, 4),
    }
    for idler in idlers:
        idler.close()
    warm.close()
    await asyncio.sleep(0.5)
    return {**result, **meter.result()}


# ---- 3b. IDLE wake-up latency -------------------------------------------------------


async def idle_latency(
    server: Server, user: str, idlers_count: int, appends: int
) -> dict[str, Any]:
    """``idlers_count`` clients in IDLE on one INBOX; ``appends`` APPENDs one after
    another from another connection; latency = an idler reading its EXISTS minus the
    appender reading its tagged OK (negative: told before the appender; kept as is in
    ``raw`` and counted as 0 in the percentiles)."""
    meter = Meter(server)
    idlers = []
    for _ in range(idlers_count):
        connection = await signed_in(server, user)
        await connection.check(b"SELECT INBOX", keep=False)
        await connection.idle()
        idlers.append(connection)
    appender = await signed_in(server, user)
    latencies: list[float] = []
    from_sent: list[float] = []
    all_told: list[float] = []
    early = 0
    for n in range(appends):
        waiters = [idler.expect_exists() for idler in idlers]
        sent = time.perf_counter()
        reply = await appender.append(b"INBOX", corpus.new_message(n, "wake"))
        arrivals = await asyncio.wait_for(asyncio.gather(*waiters), 60)
        for arrival in arrivals:
            delta = arrival - reply.done_at
            early += delta < 0
            latencies.append(max(0.0, delta))
            from_sent.append(arrival - sent)
        all_told.append(max(arrivals) - reply.done_at)
    for idler in idlers:
        idler.close()
    await appender.logout()
    return {
        "idlers": idlers_count,
        "appends": appends,
        "latency": summary(latencies),
        "latency_from_append_sent": summary(from_sent),
        "all_told": summary([max(0.0, t) for t in all_told]),
        "told_before_ok": early,
        **meter.result(),
    }


# ---- 4. durable APPEND --------------------------------------------------------------


async def append_throughput(
    server: Server, users: list[str], clients: int, duration: float, serial_base: int
) -> dict[str, Any]:
    """``clients`` connections, each on its own account, APPENDing unique ~2.7 KB
    messages to INBOX back to back (an OK means on disk on both servers)."""
    connections = [await signed_in(server, users[i]) for i in range(clients)]
    meter = Meter(server)
    deadline = time.perf_counter() + duration
    latencies: list[float] = []
    serial = [serial_base]

    async def client(connection: imapc.Connection) -> None:
        while time.perf_counter() < deadline:
            serial[0] += 1
            message = corpus.new_message(serial[0], "durable")
            began = time.perf_counter()
            reply = await connection.append(b"INBOX", message)
            latencies.append(reply.done_at - began)

    await asyncio.gather(*(client(c) for c in connections))
    result = meter.result()
    for connection in connections:
        await connection.logout()
    return {
        "clients": clients,
        "appends_per_s": round(len(latencies) / result["wall_s"], 1),
        "append": summary(latencies),
        **result,
    }


# ---- 5. mbsync ----------------------------------------------------------------------


# mbsync's Maildir goes to tmpfs where there is one. On ext4, creating 10,000 files soon
# after the previous run deleted as many made mbsync's open() scan the inode bitmap
# (recently_deleted, seen with perf): 3-4 s of mbsync's CPU in some runs and not in
# others, with either server, which swung the wall-time ratio from 0.4x to 4.7x.
MBSYNC_SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def mbsync_available() -> bool:
    return shutil.which("mbsync") is not None


async def mbsync_initial(
    server: Server, user: str, expected: int, time_limit: float, *, compress: bool = False
) -> dict[str, Any]:
    """A cold initial sync of INBOX into an empty local Maildir by mbsync (isync).

    mbsync asks for COMPRESS=DEFLATE when offered (both servers offer it: Dovecot's
    imap_zlib plugin is loaded, as COMPRESS is on by default from Dovecot 2.4), so by
    default mbsync is told not to use it and both send the same bytes; ``compress``
    lets mbsync use it."""
    meter = Meter(server)
    with tempfile.TemporaryDirectory(prefix="mbsync-", dir=MBSYNC_SCRATCH) as scratch:
        root = Path(scratch)
        local = root / "mail"
        local.mkdir()
        config = root / "mbsyncrc"
        # FSync no: mbsync's own fsync per message file would dominate the time and
        # hide both servers; what is measured is how fast a server feeds a full sync.
        config.write_text(
            f"""FSync no

IMAPAccount bench
Host {HOST}
Port {server.port}
User {user}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN
{"" if compress else "DisableExtension COMPRESS=DEFLATE"}

IMAPStore far
Account bench

MaildirStore near
Path {local}/
Inbox {local}/INBOX

Channel bench
Far :far:
Near :near:
Patterns INBOX
Create Near
Sync Pull
SyncState *
"""
        )
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            "mbsync",
            "-c",
            str(config),
            "-q",
            "bench",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "HOME": scratch},
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), time_limit)
        except TimeoutError:
            process.kill()
            await process.wait()
            return {"seconds": None, "status": "timeout", **meter.result()}
        seconds = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        mbsync_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        synced = sum(1 for sub in ("cur", "new") for _ in (local / "INBOX" / sub).glob("*"))
    result: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "exit_code": process.returncode,
        "messages": synced,
        "expected": expected,
        "mbsync_cpu_s": round(mbsync_cpu, 2),
        **meter.result(),
    }
    if process.returncode != 0 or synced != expected:
        result["output"] = output.decode(errors="replace")[-600:]
    return result
