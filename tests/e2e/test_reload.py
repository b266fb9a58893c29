"""SIGHUP reloads the configuration: new limits for new connections while open ones go
on unchanged, what cannot change named in the log, a broken file changing nothing;
with workers, every worker reloads. And the pure parts: what is applied, what is not."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from roost.config import Settings
from roost.config.sections import LogSettings, QuotaSettings
from roost.runtime import reload
from tests.support.server_process import RoostProcess, write_config

pytestmark = pytest.mark.timeout(120)


def test_what_a_reload_applies_and_what_it_names() -> None:
    old = Settings()
    new = dataclasses.replace(
        old,
        log=LogSettings("debug", "json"),
        quota=QuotaSettings(storage=1000, over_quota_tempfail=True),
        limits=dataclasses.replace(
            old.limits,
            imap=dataclasses.replace(old.limits.imap, max_bad_commands=3),
            max_connections_per_ip=7,
        ),
        server=dataclasses.replace(old.server, workers=old.server.workers + 1),
    )
    new = dataclasses.replace(
        new,
        delivery=dataclasses.replace(old.delivery, strip_domain=True),
        lmtp=dataclasses.replace(old.lmtp, max_recipients=5, allow_remote=True),
    )
    assert sorted(reload.not_applied(old, new)) == [
        "limits.max_connections_per_ip",
        "lmtp.allow_remote",
        "server.workers",
    ]
    kept = reload.merged(old, new)
    assert kept.log == new.log and kept.limits.imap.max_bad_commands == 3
    assert kept.quota.storage == 1000 and kept.quota.over_quota_tempfail
    assert kept.delivery.strip_domain and kept.lmtp.max_recipients == 5
    assert not kept.lmtp.allow_remote
    assert kept.limits.max_connections_per_ip == old.limits.max_connections_per_ip
    assert kept.server == old.server
    assert reload.not_applied(old, kept) == []


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.file = self.sock.makefile("rwb")
        assert self.file.readline().startswith(b"* OK")

    def send(self, line: str) -> None:
        self.file.write(line.encode() + b"\r\n")
        self.file.flush()

    def line(self) -> bytes:
        return self.file.readline()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def wait_for(log_path: Path, text: str, count: int) -> None:
    deadline = time.monotonic() + 30
    while log_path.read_text().count(text) < count:
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.05)  # the reload happens in another process


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_applies_new_limits_to_new_connections(tmp_path: Path, workers: int) -> None:
    config = write_config(
        tmp_path / "roost.toml", tmp_path / "data", workers=workers, log_level="info"
    )
    log_path = tmp_path / "server.log"
    server = RoostProcess(config, log_path)
    port = server.start()
    clients: list[Client] = []
    try:
        old = Client(port)
        clients.append(old)
        write_config(
            config,
            tmp_path / "data",
            workers=workers,
            log_level="info",
            limits={"max_bad_commands": 1},
        )
        config.write_text(
            config.read_text().replace(
                'listen = ["127.0.0.1:0"]', 'listen = ["127.0.0.1:0", "127.0.0.1:1"]'
            )
        )
        os.kill(server.pid, signal.SIGHUP)
        wait_for(log_path, "not applied, restart to apply: imap.listen changed", workers)
        assert log_path.read_text().count("new IMAP and POP3 limits apply") == workers

        new = Client(port)
        clients.append(new)
        new.send("a FROB")
        assert new.line().startswith(b"a BAD")
        assert new.line() == b"* BYE Too many invalid commands\r\n"
        for tag in ("b", "c"):  # the open connection keeps the limit it started with
            old.send(f"{tag} FROB")
            assert old.line().startswith(f"{tag} BAD".encode())
        old.send("d NOOP")
        assert old.line().startswith(b"d OK")

        config.write_text("[server\n")  # broken: nothing changes
        os.kill(server.pid, signal.SIGHUP)
        wait_for(log_path, "configuration not reloaded, the old one stays", workers)
        old.send("e NOOP")
        assert old.line().startswith(b"e OK")
    finally:
        for client in clients:
            client.close()
        server.stop()
    assert server.errors_logged() == []
