"""Submissions per second through Roost to a relay, against the same client sending
straight to that relay, on loopback (the "submission" rows of ``make bench``).

Starts ``roost serve`` (one process, durable store, ``save_sent`` on and off) with
submission on a loopback port (AUTH allowed in the clear there, to time Roost rather
than TLS) relaying to the suite's fake relay (tests/support/fake_relay.py), which runs
in this process and accepts everything. Each client connection signs in once, then
sends messages of about 2 KB one after another.

    .venv/bin/python bench/submission_rate.py [--messages 400]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.fake_relay import FakeRelay

USERS = [f"user{n}" for n in range(10)]
PASSWORD = "bench password"


def message(user: str) -> bytes:
    return (
        f"From: {user}@example.org\r\nTo: x@elsewhere.test\r\nSubject: bench\r\n\r\n".encode()
        + b"Body line of text.\r\n" * 100
    )


class Smtp:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, user: str | None) -> Smtp:
        client = cls(*await asyncio.open_connection("127.0.0.1", port))
        await client.reply()
        await client.command(b"EHLO bench")
        if user is not None:
            token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode())
            reply = await client.command(b"AUTH PLAIN " + token)
            assert reply.startswith(b"235"), reply
        return client

    async def reply(self) -> bytes:
        while True:
            line = await self.reader.readline()
            if line[3:4] != b"-":
                return line

    async def command(self, line: bytes) -> bytes:
        self.writer.write(line + b"\r\n")
        return await self.reply()

    async def send(self, user: str) -> None:
        self.writer.write(
            f"MAIL FROM:<{user}@example.org>\r\nRCPT TO:<x@elsewhere.test>\r\nDATA\r\n".encode()
        )
        for _ in range(3):
            await self.reply()
        self.writer.write(message(user) + b".\r\n")
        reply = await self.reply()
        assert reply.startswith(b"250"), reply


async def rate(port: int, connections: int, messages: int, *, sign_in: bool) -> float:
    """Messages per second once every connection is open and signed in (argon2id at
    sign-in is not what this measures)."""
    per_connection = messages // connections
    users = [USERS[index % len(USERS)] for index in range(connections)]
    clients = await asyncio.gather(*(Smtp.open(port, u if sign_in else None) for u in users))

    async def run(client: Smtp, user: str) -> None:
        for _ in range(per_connection):
            await client.send(user)

    started = time.perf_counter()
    await asyncio.gather(*(run(client, user) for client, user in zip(clients, users, strict=True)))
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.command(b"QUIT")
        client.writer.close()
    return per_connection * connections / elapsed


def start(
    root: Path, relay_port: int, save_sent: bool, per_hour: int
) -> tuple[subprocess.Popen[bytes], int]:
    data_dir = root / f"data-{save_sent}-{per_hour}"
    config = root / f"roost-{save_sent}-{per_hour}.toml"
    config.write_text(
        f"[server]\ndata_dir = {str(data_dir)!r}\nworkers = 1\n"
        "[imap]\nlisten = []\ntls_listen = []\nstarttls = false\n"
        "[pop3]\nlisten = []\ntls_listen = []\nstarttls = false\n"
        '[submission]\nlisten = ["127.0.0.1:0"]\nallow_plaintext_auth = true\n'
        f'relay = "smtp://127.0.0.1:{relay_port}"\nmax_messages_per_hour = {per_hour}\n'
        f"save_sent = {str(save_sent).lower()}\n"
        '[delivery]\ndomains = ["example.org"]\n[log]\nlevel = "warning"\n'
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
    found = re.search(rb"submission, STARTTLS\s+127\.0\.0\.1:(\d+)", banner)
    assert found, banner
    return process, int(found.group(1))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=400)
    args = parser.parse_args()
    relay = FakeRelay()
    relay_port = await relay.start()
    root = Path(tempfile.mkdtemp(prefix="roost-submission-bench-"))
    try:
        for connections in (1, 10):
            direct = await rate(relay_port, connections, args.messages, sign_in=False)
            print(f"connections={connections:2d} straight to the relay     msg/s={direct:7.1f}")
        # The hourly limit counts each message in users.db (a durable write).
        for save_sent, per_hour in ((False, 0), (False, 1_000_000), (True, 1_000_000)):
            process, port = await asyncio.to_thread(start, root, relay_port, save_sent, per_hour)
            try:
                for connections in (1, 10):
                    through = await rate(port, connections, args.messages, sign_in=True)
                    print(
                        f"connections={connections:2d} through Roost save_sent={save_sent!s:<5} "
                        f"hourly limit={'on ' if per_hour else 'off'} msg/s={through:7.1f}"
                    )
            finally:
                os.kill(process.pid, signal.SIGTERM)
                process.wait()
    finally:
        await relay.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
