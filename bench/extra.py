"""Scenarios added by issue 14: many long-lived connections from one address, LMTP
delivery and its wake-up time, and the import rate.

Like ``scenarios.py``, each runs against one server and returns its figures with the
load generator's and the server's CPU (``Meter``).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import subprocess
import sys
import time
from typing import Any

import imapc
from scenarios import HOST, Meter, summary
from servers import BENCH_DIR, PASSWORD, Server

# ---- many long-lived connections from one address -------------------------------------

SETUP_TIMEOUT = 60.0  # a LOGIN or command unanswered this long counts as an error


async def many_connections(
    server: Server,
    users: list[str],
    per_user: int,
    duration: float,
    tls: ssl.SSLContext | None,
    port: int,
) -> dict[str, Any]:
    """``len(users) * per_user`` connections from 127.0.0.1 (as from a webmail or an
    office NAT), each signed in over TLS and kept open, then every connection loops
    ``STATUS INBOX (MESSAGES UIDNEXT)`` and ``NOOP`` for ``duration`` seconds.

    They are opened in rounds of one per user, as a webmail's users come and go: 20
    simultaneous first sign-ins of one account would each pay Roost's full argon2id
    (hash upgrade, sign-in cache not yet filled), which is not what this measures."""
    meter = Meter(server)
    errors: list[str] = []
    connections: list[imapc.Connection] = []
    started = time.perf_counter()
    slots = asyncio.Semaphore(50)

    async def open_one(user: str) -> None:
        async with slots:
            try:
                connection = await imapc.connect(HOST, port, tls=tls)
                async with asyncio.timeout(SETUP_TIMEOUT):
                    reply = await connection.command(f'LOGIN "{user}" "{PASSWORD}"'.encode())
                if not reply.ok:
                    errors.append(f"LOGIN: {reply.line[:120]!r}")
                    connection.close()
                    return
                connections.append(connection)
            except (imapc.ImapError, ConnectionError, TimeoutError, OSError) as error:
                errors.append(f"connect/LOGIN: {type(error).__name__}: {error}"[:200])

    for _ in range(per_user):
        await asyncio.gather(*(open_one(user) for user in users))
    setup = time.perf_counter() - started
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def loop(connection: imapc.Connection) -> None:
        n = 0
        while time.perf_counter() < deadline:
            text = b"STATUS INBOX (MESSAGES UIDNEXT)" if n % 2 == 0 else b"NOOP"
            n += 1
            began = time.perf_counter()
            try:
                async with asyncio.timeout(SETUP_TIMEOUT):
                    reply = await connection.command(text)
            except (ConnectionError, TimeoutError) as error:
                errors.append(f"{text[:6]!r}: {type(error).__name__}")
                return
            latencies.append(reply.done_at - began)
            if not reply.ok:
                errors.append(f"{text[:6]!r}: {reply.line[:120]!r}")

    began = time.perf_counter()
    await asyncio.gather(*(loop(connection) for connection in connections))
    window = time.perf_counter() - began
    held = sum(1 for connection in connections if not connection.closed)
    for connection in connections:
        connection.close()
    return {
        "asked": len(users) * per_user,
        "held": held,
        "errors": len(errors),
        "error_samples": errors[:5],
        "setup_s": round(setup, 2),
        "commands_per_s": round(len(latencies) / window, 1) if window else 0.0,
        "command": summary(latencies),
        **meter.result(),
    }


# ---- LMTP -----------------------------------------------------------------------------

LMTP_MESSAGE = (
    b"From: bench@example.net\r\nTo: someone@example.org\r\nSubject: lmtp bench\r\n"
    b"Date: Mon, 07 Dec 2026 06:00:00 +0000\r\nMessage-ID: <lmtp@bench>\r\n\r\n"
    + b"Body line of text, nothing special about it.\r\n"
    * 50
)


class Lmtp:
    """One LMTP client connection (RFC 2033), commands pipelined per transaction."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Lmtp:
        client = cls(*await asyncio.open_connection(HOST, port))
        await client.reply()
        client.writer.write(b"LHLO bench.example.net\r\n")
        await client.reply()
        return client

    async def reply(self) -> bytes:
        while True:
            async with asyncio.timeout(60):
                line = await self.reader.readline()
            if not line:
                raise ConnectionError("LMTP server closed the connection")
            if line[3:4] != b"-":
                return line

    async def send(self, recipients: list[str]) -> None:
        lines = b"MAIL FROM:<bench@example.net>\r\n"
        lines += b"".join(b"RCPT TO:<%s@example.org>\r\n" % r.encode() for r in recipients)
        self.writer.write(lines + b"DATA\r\n")
        for _ in range(len(recipients) + 2):
            reply = await self.reply()
            if reply[:1] not in (b"2", b"3"):
                raise ConnectionError(f"LMTP: {reply[:120]!r}")
        self.writer.write(LMTP_MESSAGE + b".\r\n")
        for _ in recipients:
            reply = await self.reply()
            if not reply.startswith(b"250"):
                raise ConnectionError(f"LMTP: {reply[:120]!r}")

    def close(self) -> None:
        self.writer.close()


async def lmtp_rate(
    server: Server, users: list[str], connections: int, recipients: int, deliveries: int
) -> dict[str, Any]:
    """Deliveries per second: ``connections`` LMTP sessions each sending messages to
    ``recipients`` of ``users`` at a time, ``deliveries`` recipient-deliveries in all."""
    port = server.lmtp_port
    per_connection = max(1, deliveries // (connections * recipients))
    meter = Meter(server)

    async def run(index: int) -> None:
        client = await Lmtp.open(port)
        for n in range(per_connection):
            first = (index + n) % len(users)
            await client.send([users[(first + k) % len(users)] for k in range(recipients)])
        client.close()

    await asyncio.gather(*(run(i) for i in range(connections)))
    result = meter.result()
    done = per_connection * connections * recipients
    return {"deliveries": done, "deliveries_per_s": round(done / result["wall_s"], 1), **result}


_EXISTS = re.compile(rb"\* \d+ EXISTS")


async def lmtp_wake(server: Server, user: str, rounds: int) -> dict[str, Any]:
    """Time from the LMTP ``250`` to ``* n EXISTS`` in a session idling on the
    recipient's INBOX; one message at a time."""
    meter = Meter(server)
    idler = await imapc.connect(HOST, server.port)
    await idler.login(user, PASSWORD)
    await idler.check(b"SELECT INBOX")
    await idler.idle()
    client = await Lmtp.open(server.lmtp_port)
    times: list[float] = []
    try:
        for _ in range(rounds):
            told = idler.expect_exists()
            await client.send([user])
            accepted = time.perf_counter()
            async with asyncio.timeout(10):
                seen = await told
            times.append(max(0.0, seen - accepted))
    finally:
        client.close()
        await idler.done()
        await idler.logout()
    return {"latency": summary(times), **meter.result()}


# ---- import ---------------------------------------------------------------------------


def import_rate(messages: int) -> dict[str, Any]:
    """``roost import`` of an mbox of ``messages`` small messages (bench/import_rate.py),
    durable store, default batch size. Roost only: Dovecot has no like-for-like command
    (``doveadm import`` copies between mailbox formats it already indexes)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / "import_rate.py"), "--messages", str(messages)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    found = re.search(r"in ([\d.]+) s = ([\d,]+) messages/s", done.stdout)
    if done.returncode or not found:
        return {"failed": (done.stdout + done.stderr)[-500:]}
    return {
        "messages": messages,
        "seconds": float(found.group(1)),
        "messages_per_s": float(found.group(2).replace(",", "")),
        "wall_s": round(time.perf_counter() - started, 2),
    }


# ---- Sieve and submission (Roost only) ---------------------------------------------------


def _run_script(name: str, *args: str, timeout: float = 600) -> tuple[str, str | None]:
    """Run ``bench/NAME`` with this Python; its stdout, or the failure's tail."""
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        return done.stdout, (done.stdout + done.stderr)[-500:]
    return done.stdout, None


def sieve_eval(runs: int) -> dict[str, Any]:
    """Sieve at delivery: µs of CPU per message against a 100-rule script
    (bench/sieve_eval.py: the message parsed once, then evaluated; and both)."""
    out, failed = _run_script("sieve_eval.py", "--runs", str(runs))
    evaluate = re.search(r"evaluate one message: best ([\d.]+) µs, median ([\d.]+)", out)
    both = re.search(r"parse message header \+ evaluate: best ([\d.]+) µs, median ([\d.]+)", out)
    compiled = re.search(r"compile once: ([\d.]+) µs", out)
    if failed or not evaluate or not both or not compiled:
        return {"failed": failed or out[-500:]}
    return {
        "evaluate_us": float(evaluate.group(2)),
        "parse_evaluate_us": float(both.group(2)),
        "compile_us": float(compiled.group(1)),
    }


_SUBMISSION_LINE = re.compile(
    r"connections=\s*(\d+) (straight to the relay|through Roost save_sent=(\w+)\s+"
    r"hourly limit=(on|off))\s+msg/s=\s*([\d.]+)"
)


def submission_rate(messages: int) -> dict[str, Any]:
    """Submissions per second through Roost to a relay that accepts everything, beside
    the same client sending straight to that relay (bench/submission_rate.py)."""
    out, failed = _run_script("submission_rate.py", "--messages", str(messages))
    figures: dict[str, float] = {}
    for found in _SUBMISSION_LINE.finditer(out):
        connections, how, save_sent, limit, rate = found.groups()
        if how.startswith("straight"):
            key = f"direct-{connections}"
        else:
            key = f"roost-{connections}-sent_{save_sent.lower()}-limit_{limit}"
        figures[key] = float(rate)
    if failed or not figures:
        return {"failed": failed or out[-500:]}
    return figures
