"""LMTP delivery rate and wake-up time of Roost alone, on loopback: a quick check while
working (``make bench``'s "lmtp" rows measure the same beside Dovecot's LMTP).

Starts ``roost serve`` (one process, durable store: every 250 waits for fsync) on a
temporary data directory, then measures deliveries per second with 1 and 10
connections, one recipient and 10 recipients per message, and the time from the LMTP
``250`` to ``* n EXISTS`` in an IMAP session idling on the recipient's INBOX.

    .venv/bin/python bench/lmtp_rate.py [--messages 400]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

USERS = [f"user{n}" for n in range(10)]
PASSWORD = "bench password"
MESSAGE = b"From: bench@example.net\r\nSubject: bench\r\n\r\n" + b"Body line of text.\r\n" * 100


class Lmtp:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Lmtp:
        client = cls(*await asyncio.open_connection("127.0.0.1", port))
        await client.reply()
        client.writer.write(b"LHLO bench\r\n")
        await client.reply()
        return client

    async def reply(self) -> bytes:
        while True:
            line = await self.reader.readline()
            if line[3:4] != b"-":
                return line

    async def send(self, recipients: list[str]) -> None:
        lines = b"MAIL FROM:<bench@example.net>\r\n"
        lines += b"".join(b"RCPT TO:<%s@example.org>\r\n" % r.encode() for r in recipients)
        self.writer.write(lines + b"DATA\r\n")
        for _ in range(len(recipients) + 2):
            await self.reply()
        self.writer.write(MESSAGE + b".\r\n")
        for _ in recipients:
            reply = await self.reply()
            assert reply.startswith(b"250"), reply


async def rate(port: int, connections: int, recipients: int, messages: int) -> float:
    per_connection = messages // connections

    async def run(index: int) -> None:
        client = await Lmtp.open(port)
        for n in range(per_connection):
            first = (index + n) % len(USERS)
            await client.send([USERS[(first + k) % len(USERS)] for k in range(recipients)])
        client.writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(connections)))
    return per_connection * connections / (time.perf_counter() - started)


async def wake_up(port: int, imap_port: int, rounds: int) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", imap_port)
    await reader.readline()
    writer.write(f'a LOGIN user0 "{PASSWORD}"\r\nb SELECT INBOX\r\n'.encode())
    while not (await reader.readline()).startswith(b"b OK"):
        pass
    writer.write(b"c IDLE\r\n")
    await reader.readline()
    client = await Lmtp.open(port)
    times = []
    for _ in range(rounds):
        await client.send(["user0"])
        acknowledged = time.perf_counter()
        while not re.match(rb"\* \d+ EXISTS", await reader.readline()):
            pass
        times.append((time.perf_counter() - acknowledged) * 1000)
    writer.write(b"DONE\r\n")
    writer.close()
    return times


def start(data_dir: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    config = data_dir.parent / "roost.toml"
    config.write_text(
        f"[server]\ndata_dir = {str(data_dir)!r}\nworkers = 1\n"
        '[imap]\nlisten = ["127.0.0.1:0"]\ntls_listen = []\nstarttls = false\n'
        "allow_plaintext_auth = true\n"
        "[pop3]\nlisten = []\ntls_listen = []\nstarttls = false\n"
        '[lmtp]\nlisten = ["127.0.0.1:0"]\n[delivery]\nstrip_domain = true\n'
        '[log]\nlevel = "warning"\n'
    )
    roost = [sys.executable, "-m", "roost"]
    for user in USERS:
        subprocess.run(
            [*roost, "user", "add", "--config", str(config), user, "--password-stdin"],
            input=PASSWORD.encode(),
            check=True,
            capture_output=True,
        )
    process = subprocess.Popen([*roost, "serve", "--config", str(config)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    banner = b""
    while b"Stop with" not in banner:
        banner += process.stdout.readline()
    lmtp = re.search(rb"LMTP\s+127\.0\.0\.1:(\d+)", banner)
    imap = re.search(rb"IMAP[^\n]*127\.0\.0\.1:(\d+)", banner)
    assert lmtp and imap, banner
    return process, int(lmtp.group(1)), int(imap.group(1))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=400)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="roost-lmtp-bench-"))
    process, port, imap_port = start(root / "data")
    try:
        for connections in (1, 10):
            for recipients in (1, 10):
                count = args.messages // recipients
                per_second = await rate(port, connections, recipients, count)
                print(
                    f"connections={connections:2d} recipients={recipients:2d} "
                    f"messages/s={per_second:7.1f} deliveries/s={per_second * recipients:7.1f}"
                )
        times = sorted(await wake_up(port, imap_port, 200))
        p99 = times[int(len(times) * 0.99) - 1]
        print(f"250 -> EXISTS ms: p50={statistics.median(times):.2f} p99={p99:.2f}")
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
