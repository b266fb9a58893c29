"""``roost who`` and ``roost kick`` against a running ``roost serve`` (one process and
two workers), through the control sockets; and the end-of-session log line."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from roost.auth.passwords import hash_password
from roost.cli import main
from roost.store.sqlite import SqliteStore
from tests.support.server_process import RoostProcess, write_config

pytestmark = pytest.mark.timeout(120)

PASSWORD = "correct horse"


def create_account(data_dir: Path, name: str) -> None:
    async def go() -> None:
        store = await SqliteStore.open(data_dir, durable=False)
        try:
            hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            await store.create_account(name, hash_password(PASSWORD, hasher=hasher))
        finally:
            await store.close()

    asyncio.run(go())


class LineClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.file = self.sock.makefile("rwb")

    def line(self) -> bytes:
        return self.file.readline()

    def send(self, text: str) -> bytes:
        self.file.write(text.encode() + b"\r\n")
        self.file.flush()
        return self.line()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("workers", [1, 2])
def test_who_lists_and_kick_closes_sessions(tmp_path: Path, workers: int) -> None:
    data = tmp_path / "data"
    create_account(data, "alice")
    create_account(data, "bob")
    config = write_config(
        tmp_path / "roost.toml", data, workers=workers, pop3=True, log_level="info"
    )
    log_path = tmp_path / "server.log"
    server = RoostProcess(config, log_path)
    server.start()
    clients: list[LineClient] = []
    try:
        imap = LineClient(server.port)
        clients.append(imap)
        assert imap.line().startswith(b"* OK")
        assert imap.send(f'a LOGIN alice "{PASSWORD}"').startswith(b"a OK")
        pop3 = LineClient(server.pop3_port)
        clients.append(pop3)
        assert pop3.line().startswith(b"+OK")
        assert pop3.send("USER alice").startswith(b"+OK")
        assert pop3.send(f"PASS {PASSWORD}").startswith(b"+OK")
        other = LineClient(server.port)
        clients.append(other)
        assert other.line().startswith(b"* OK")
        assert other.send(f'b LOGIN bob "{PASSWORD}"').startswith(b"b OK")

        code, output = cli("who", "--format", "json", "--data-dir", str(data))
        assert code == 0, output
        sessions = json.loads(output)
        seen = sorted((s["user"], s["protocol"], s["address"]) for s in sessions)
        assert seen == [
            ("alice", "imap", "127.0.0.1"),
            ("alice", "pop3", "127.0.0.1"),
            ("bob", "imap", "127.0.0.1"),
        ]
        if workers > 1:
            assert all(s["worker"] in (1, 2) for s in sessions)
        code, output = cli("who", "alice", "--data-dir", str(data))
        assert code == 0 and output.splitlines()[0].split()[:3] == ["USER", "ADDRESS", "PROTOCOL"]
        assert len(output.splitlines()) == 3 and "bob" not in output

        code, output = cli("kick", "ALICE", "--data-dir", str(data))
        assert (code, output) == (0, "Kicked 2 sessions of ALICE.\n")
        assert imap.line() == b"* BYE Administrator kicked you\r\n"
        assert imap.line() == b""
        assert pop3.line() == b"-ERR Administrator kicked you\r\n"
        assert pop3.line() == b""
        assert other.send("c NOOP").startswith(b"c OK")  # bob's session goes on
        code, output = cli("who", "--format", "json", "--data-dir", str(data))
        assert [s["user"] for s in json.loads(output)] == ["bob"]
        assert other.send("d LOGOUT").startswith(b"* BYE")
    finally:
        for client in clients:
            client.close()
        server.stop()
    assert server.errors_logged() == []
    log = log_path.read_text()
    assert "session end protocol=imap user=alice address=127.0.0.1" in log
    assert "reason=kicked" in log and "reason=logout" in log
    code, output = cli("who", "--data-dir", str(data))
    assert code == 1 and "no running Roost server" in output
