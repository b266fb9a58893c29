"""The pieces of ``roost serve --workers N`` that need no running server: the options
a worker gets (and the settings it makes of them), the worker spec, binding the
listeners once, and log lines that name their worker. The processes themselves are
tested in tests/e2e/test_workers.py."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from roost.cli import ServeOptions
from roost.cli import serve as cli
from roost.config import ListenAddress, LmtpSettings, Settings
from roost.observability.logs import setup_logging
from roost.runtime.listeners import IMAP, POP3, ListenError, bind_listeners
from roost.runtime.worker import InheritedListener, WorkerSpec

CONFIG = """
[server]
data_dir = "data"
workers = 3
[imap]
listen = ["127.0.0.1:0"]
tls_listen = []
starttls = false
[pop3]
listen = ["127.0.0.1:0"]
tls_listen = []
starttls = false
"""


def test_a_worker_makes_the_supervisors_settings(tmp_path: Path) -> None:
    config = tmp_path / "roost.toml"
    config.write_text(CONFIG)
    options = ServeOptions(
        config_path=config, imap_listen=("127.0.0.1:1143",), log_level="DEBUG"
    ).read_config()
    settings = options.settings()
    assert settings.server.workers == 3
    assert settings.server.data_dir == tmp_path / "data"
    assert settings.imap.listen == (ListenAddress("127.0.0.1", 1143),)
    assert settings.log.level == "debug"
    config.write_text(CONFIG.replace("workers = 3", "workers = 5"))  # edited meanwhile
    shipped = ServeOptions.from_json(json.loads(json.dumps(options.to_json())))
    assert shipped.settings() == settings  # the text as read at start, not the file now
    assert ServeOptions(config_path=config, workers=7).read_config().settings().server.workers == 7


def test_dev_runs_one_process_unless_told(tmp_path: Path) -> None:
    assert ServeOptions(dev=True, data_dir=tmp_path).settings().server.workers == 1
    two = ServeOptions(dev=True, data_dir=tmp_path, workers=2)
    assert ServeOptions.from_json(two.to_json()).settings() == two.settings()
    assert Settings().server.workers >= 1  # the number of cores


def test_serve_has_workers_and_worker_is_hidden() -> None:
    runner = CliRunner()
    assert "--workers N" in runner.invoke(cli.main, ["serve", "--help"]).output
    assert " worker " not in runner.invoke(cli.main, ["--help"]).output
    result = runner.invoke(cli.main, ["worker", "1"], input="not json")
    assert result.exit_code == 2
    assert "roost: worker 1: no valid worker spec" in result.output


def test_worker_spec_round_trip() -> None:
    spec = WorkerSpec(
        index=2,
        supervisor_pid=1234,
        bus_path="/run/events.sock",
        listeners=(InheritedListener(5, IMAP, False), InheritedListener(6, POP3, True)),
        serve={"dev": True},
    )
    assert WorkerSpec.from_json(spec.to_json()) == spec
    with pytest.raises((ValueError, KeyError, TypeError)):
        WorkerSpec.from_json(b'{"index": 1}')


@pytest.fixture
def occupied() -> Iterator[int]:
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_listeners_are_bound_once_all_or_none(occupied: int) -> None:
    settings = Settings.for_dev(Path("unused"), ["127.0.0.1:0"], [], ["127.0.0.1:0"], [])
    settings = settings.replace(lmtp=LmtpSettings(private_socket=False))  # no file in ./unused
    bound = bind_listeners(settings)
    try:
        assert [(b.protocol, b.implicit_tls) for b in bound] == [(IMAP, False), (POP3, False)]
        for listen in bound:
            assert not listen.sock.getblocking()
            assert listen.sock.getsockname()[1] != 0
    finally:
        for listen in bound:
            listen.sock.close()
    clash = Settings.for_dev(Path("unused"), ["127.0.0.1:0"], [f"127.0.0.1:{occupied}"], [], [])
    clash = clash.replace(lmtp=LmtpSettings(private_socket=False))
    with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{occupied}: .*in use"):
        bind_listeners(clash)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_lines_name_their_worker(fmt: str) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    setup_logging("info", fmt, stream, worker=2)
    try:
        logging.getLogger("roost.test").info("hello")
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
    line = stream.getvalue().strip()
    if fmt == "text":
        assert line.endswith(" INFO [worker 2] roost.test hello")
    else:
        assert json.loads(line)["worker"] == 2
