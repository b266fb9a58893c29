#!/usr/bin/env python3
"""IDLE wake-up latency with one worker process and with two (issue 4).

    .venv/bin/python bench/idle_latency.py                 # 50 idlers x 200 appends
    .venv/bin/python bench/idle_latency.py --idlers 20 --appends 50 --workers 2

For each worker count, starts ``roost serve`` as a child process on a fresh data
directory in a temporary directory (loopback, port 0, durable storage as in production),
signs in ``--idlers`` connections that SELECT INBOX and IDLE — spread evenly over the
workers, using the worker number the ID response names — and one more connection that
APPENDs ``--appends`` small messages, one at a time. After each APPEND the appender
waits until every idler has heard ``* n EXISTS``.

Latency of one sample = when an idler read ``* n EXISTS`` minus when the appender read
the APPEND's tagged OK, both on this process's monotonic clock; an idler that hears
before the appender's OK arrives (the server publishes the change as soon as it is
committed) counts as 0. With two workers the samples are also shown split by whether
the idler shares the appender's worker or hears through the event bus.

Client and server share the machine: the figures include this script's own reading of
10,000 lines. The server is stopped with SIGTERM (by its PID) at the end of each run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher

from roost.auth.passwords import hash_password
from roost.store.sqlite import SqliteStore

USER = "bench"
PASSWORD = "bench password"
HOST = "127.0.0.1"
BANNER_TIMEOUT = 60.0
REPLY_TIMEOUT = 30.0
_PORT = re.compile(rb"^\s*IMAP\b.*?127\.0\.0\.1:(\d+)\s*$", re.MULTILINE)
_WORKER = re.compile(rb'"x-roost-worker" "(\d+)"')
_EXISTS = re.compile(rb"\* (\d+) EXISTS")
MESSAGE = (
    b"From: bench@example.org\r\nTo: bench@example.org\r\nSubject: idle latency\r\n"
    b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <idle@bench>\r\n\r\n"
    + b"Lorem ipsum dolor sit amet.\r\n"
    * 30
)


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.serial = 0
        self.worker = 0

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        connection = cls(reader, writer)
        await connection.line()  # greeting
        return connection

    async def line(self) -> bytes:
        async with asyncio.timeout(REPLY_TIMEOUT):
            data = await self.reader.readline()
        if not data:
            raise ConnectionError("the server closed the connection")
        return data.rstrip(b"\r\n")

    async def command(self, text: bytes, literal: bytes | None = None) -> list[bytes]:
        """Send a command (with a non-synchronizing literal), return the lines up to
        and including its tagged OK."""
        self.serial += 1
        tag = b"b%d" % self.serial
        if literal is None:
            self.writer.write(tag + b" " + text + b"\r\n")
        else:
            self.writer.write(tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        lines = []
        while True:
            line = await self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text!r} failed: {line!r}")
                return lines

    async def identify(self) -> None:
        """Learn which worker serves this connection (1 when the server is one process)."""
        reply = await self.command(b"ID NIL")
        found = _WORKER.search(reply[0])
        self.worker = int(found.group(1)) if found else 1

    async def sign_in(self) -> None:
        await self.command(f'LOGIN "{USER}" "{PASSWORD}"'.encode())
        await self.command(b"ENABLE IMAP4rev2")  # no RECENT lines to read past

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@dataclass
class Idler:
    connection: Connection
    heard: dict[int, float] = field(default_factory=dict)  # EXISTS count -> when


@dataclass
class Run:
    workers: int
    same: list[float] = field(default_factory=list)  # seconds, idler on the appender's worker
    other: list[float] = field(default_factory=list)
    appender_worker: int = 0
    idlers_per_worker: dict[int, int] = field(default_factory=dict)


async def create_account(data_dir: Path) -> None:
    store = await SqliteStore.open(data_dir)
    try:
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        await store.create_account(USER, hash_password(PASSWORD, hasher=hasher))
    finally:
        await store.close()


def write_config(data_dir: Path, config: Path, workers: int, idlers: int) -> None:
    config.write_text(
        "\n".join(
            [
                "[server]",
                f"data_dir = {str(data_dir)!r}",
                f"workers = {workers}",
                "shutdown_timeout = 5.0",
                "[imap]",
                'listen = ["127.0.0.1:0"]',
                "tls_listen = []",
                "starttls = false",
                "allow_plaintext_auth = true",
                "[pop3]",
                "listen = []",
                "tls_listen = []",
                "[limits]",
                f"max_connections_per_ip = {idlers * 4 + 100}",
                f"max_connections_per_account = {idlers + 10}",
                "[log]",
                'level = "warning"',
            ]
        )
        + "\n"
    )


def start_server(config: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "roost", "serve", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
        )
    assert process.stdout is not None
    deadline = time.monotonic() + BANNER_TIMEOUT
    banner = b""
    while b"Stop with Ctrl-C" not in banner:
        if time.monotonic() > deadline or process.poll() is not None:
            stop_server(process)
            raise RuntimeError(f"no banner from roost serve; see {log}")
        banner += os.read(process.stdout.fileno(), 4096)
    found = _PORT.search(banner)
    if found is None:
        stop_server(process)
        raise RuntimeError(f"no IMAP port in the banner: {banner!r}")
    return process, int(found.group(1))


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


async def spread_connections(port: int, count: int, workers: int) -> list[Connection]:
    """``count`` signed-in connections, as evenly spread over the workers as asked."""
    wanted = {n: count // workers + (n <= count % workers) for n in range(1, workers + 1)}
    kept: list[Connection] = []
    attempts = 0
    while any(wanted.values()):
        attempts += 1
        if attempts > count * 50:
            raise RuntimeError(f"could not spread {count} connections over {workers} workers")
        connection = await Connection.open(port)
        await connection.identify()
        if wanted.get(connection.worker, 0) > 0:
            wanted[connection.worker] -= 1
            await connection.sign_in()
            kept.append(connection)
        else:
            await connection.close()
    return kept


async def measure(port: int, workers: int, idler_count: int, appends: int) -> Run:
    run = Run(workers)
    connections = await spread_connections(port, idler_count, workers)
    appender = await Connection.open(port)
    await appender.identify()
    await appender.sign_in()
    run.appender_worker = appender.worker
    idlers = [Idler(connection) for connection in connections]
    for idler in idlers:
        run.idlers_per_worker[idler.connection.worker] = (
            run.idlers_per_worker.get(idler.connection.worker, 0) + 1
        )
        await idler.connection.command(b"SELECT INBOX")
        idler.connection.writer.write(b"idle IDLE\r\n")
        if not (await idler.connection.line()).startswith(b"+"):
            raise RuntimeError("IDLE was refused")
    progress = asyncio.Condition()

    async def listen(idler: Idler) -> None:
        while True:
            line = await idler.connection.reader.readline()
            if not line:
                return
            found = _EXISTS.match(line)
            if found:
                idler.heard[int(found.group(1))] = time.monotonic()
                async with progress:
                    progress.notify_all()

    readers = [asyncio.create_task(listen(idler)) for idler in idlers]
    try:
        for count in range(1, appends + 1):
            await appender.command(b"APPEND INBOX", MESSAGE)
            acknowledged = time.monotonic()

            def everyone_heard(n: int = count) -> bool:
                return all(n in idler.heard for idler in idlers)

            async with progress, asyncio.timeout(REPLY_TIMEOUT):
                await progress.wait_for(everyone_heard)
            for idler in idlers:
                latency = max(0.0, idler.heard[count] - acknowledged)
                same = idler.connection.worker == appender.worker
                (run.same if same else run.other).append(latency)
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for connection in [*connections, appender]:
            await connection.close()
    return run


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def row(label: str, samples: list[float]) -> str:
    if not samples:
        return f"  {label:<34} {'-':>8}"
    ms = [s * 1000 for s in samples]
    return (
        f"  {label:<34} {len(ms):>8} {statistics.median(ms):>8.2f} "
        f"{percentile(ms, 0.99):>8.2f} {max(ms):>8.2f}"
    )


async def bench_one(workers: int, idlers: int, appends: int, keep: bool) -> Run:
    directory = Path(tempfile.mkdtemp(prefix="roost-idle-"))
    config = directory / "roost.toml"
    log = directory / "server.log"
    await create_account(directory / "data")
    write_config(directory / "data", config, workers, idlers)
    process, port = await asyncio.to_thread(start_server, config, log)
    try:
        return await measure(port, workers, idlers, appends)
    finally:
        stop_server(process)
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"kept {directory}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idlers", type=int, default=50)
    parser.add_argument("--appends", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", action="store_true", help="keep the data and the log")
    args = parser.parse_args()
    print(
        f"IDLE wake-up latency: APPEND tagged OK -> '* n EXISTS' at each idler "
        f"({args.idlers} idlers, {args.appends} appends, {os.cpu_count()} CPUs)"
    )
    print(f"  {'':<34} {'samples':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for workers in args.workers:
        run = asyncio.run(bench_one(workers, args.idlers, args.appends, args.keep))
        spread = ", ".join(f"{n} on worker {w}" for w, n in sorted(run.idlers_per_worker.items()))
        print(
            f"{workers} worker{'s' if workers > 1 else ''} ({spread}; appender on worker "
            f"{run.appender_worker})"
        )
        print(row("all idlers", run.same + run.other))
        if workers > 1:
            print(row("idlers on the appender's worker", run.same))
            print(row("idlers on another worker (bus)", run.other))


if __name__ == "__main__":
    main()
