"""The Dockerfile and its configuration, checked without a Docker daemon: the image
runs as a non-root user with volumes for data and configuration, its HEALTHCHECK
command tells a serving Roost from a dead one, and its roost.toml is valid."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from roost.cli import main
from roost.runtime.tls import ensure_self_signed
from tests.support.server_process import RoostProcess, write_config

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_image_shape() -> None:
    lines = instructions()
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert bases and all(re.fullmatch(r"python:3\.\d+-slim-\w+", base) for base in bases)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users == ["roost"]
    [volume] = [line for line in lines if line.startswith("VOLUME ")]
    assert json.loads(volume.removeprefix("VOLUME ")) == ["/var/lib/roost", "/etc/roost"]
    assert any(line.startswith("HEALTHCHECK ") for line in lines)


def healthcheck(port: int) -> int:
    [line] = [line for line in instructions() if line.startswith("HEALTHCHECK ")]
    command = json.loads(line.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"]
    code = command[2].replace("143", str(port))
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode


def test_healthcheck_tells_serving_from_dead(tmp_path: Path) -> None:
    config = write_config(tmp_path / "roost.toml", tmp_path / "data")
    server = RoostProcess(config, tmp_path / "server.log")
    port = server.start()
    try:
        assert healthcheck(port) == 0
    finally:
        server.stop()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert healthcheck(free) != 0


def test_image_configuration_is_valid(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path / "tls")
    text = (ROOT / "contrib" / "docker" / "roost.toml").read_text()
    text = text.replace("/etc/roost/tls/fullchain.pem", str(cert))
    text = text.replace("/etc/roost/tls/privkey.pem", str(key))
    text = text.replace("/var/lib/roost", str(tmp_path / "data"))
    config = tmp_path / "roost.toml"
    config.write_text(re.sub(r"0\.0\.0\.0:\d+", "127.0.0.1:0", text))
    result = CliRunner().invoke(main, ["check-config", "--config", str(config)])
    assert result.exit_code == 0, result.output
