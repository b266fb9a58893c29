"""Running as a service: sd_notify (observability/sd_notify.py) from a real ``roost
serve``, and the systemd unit in contrib/ checked by ``systemd-analyze verify``."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from roost.observability import sd_notify
from tests.support.server_process import RoostProcess, write_config

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "contrib" / "systemd" / "roost.service"


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> socket.socket:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    monkeypatch.setenv(sd_notify.ENVIRONMENT, str(path))
    return sock


def test_notify_does_nothing_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sd_notify.ENVIRONMENT, raising=False)
    assert sd_notify.ready() is False


def test_notify_sends_states(notify_socket: socket.socket) -> None:
    assert sd_notify.notify("READY=1", "STATUS=serving")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=serving"


def test_notify_to_a_missing_socket_is_only_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sd_notify.ENVIRONMENT, str(tmp_path / "absent.sock"))
    assert sd_notify.stopping() is False


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_says_ready_reloading_then_stopping(
    tmp_path: Path, notify_socket: socket.socket, workers: int
) -> None:
    """sd_notify(3) as Type=notify (and notify-reload) expect: READY=1 once listening; on SIGHUP
    RELOADING=1 with MONOTONIC_USEC, then READY=1 when the reload is done; STOPPING=1."""
    config = write_config(tmp_path / "roost.toml", tmp_path / "data", workers=workers)
    server = RoostProcess(config, tmp_path / "server.log")
    server.start()
    try:
        ready = notify_socket.recv(4096).decode()
        assert ready.splitlines() == ["READY=1", f"MAINPID={server.pid}"]
        os.kill(server.pid, signal.SIGHUP)
        reloading = notify_socket.recv(4096).decode().splitlines()
        assert reloading[0] == "RELOADING=1"
        assert re.fullmatch(r"MONOTONIC_USEC=\d+", reloading[1]), reloading
        assert notify_socket.recv(4096) == b"READY=1"
    finally:
        assert server.stop() == 0
    assert notify_socket.recv(4096) == b"STOPPING=1"


def test_unit_has_the_hardening() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/roost",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    ):
        assert line in text.splitlines(), line


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # The unit names the installed /usr/local/bin/roost; verify checks that the command
    # exists, so point it at this checkout's instead, and change nothing else.
    roost = str(Path(sys.executable).with_name("roost"))
    unit = tmp_path / "roost.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/roost", roost))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path
    )
    complaints = [line for line in result.stderr.splitlines() if "roost.service" in line]
    assert result.returncode == 0 and complaints == [], result.stderr
