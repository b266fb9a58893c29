"""The session registry, its end-of-session log line (text and JSON), and the control
socket's exchange (greeting, requests, errors, long paths, no server)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from roost.observability import sessions
from roost.observability.logs import JsonFormatter
from roost.runtime.control import (
    ControlError,
    ControlServer,
    NoServer,
    request_all,
    request_one,
    socket_name,
)


def test_kick_asks_only_that_users_sessions_and_end_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = sessions.SessionRegistry(worker=2)
    kicked: list[str] = []
    alice = registry.open(
        "imap",
        "192.0.2.1",
        user_of=lambda: "Alice",
        state_of=lambda: "selected",
        kick=lambda: kicked.append("alice"),
    )
    registry.open(
        "pop3",
        "192.0.2.2",
        user_of=lambda: "bob",
        state_of=lambda: "transaction",
        kick=lambda: kicked.append("bob"),
    )
    registry.open(
        "imap",
        "192.0.2.3",
        user_of=lambda: None,
        state_of=lambda: "not authenticated",
        kick=lambda: kicked.append("anonymous"),
    )
    assert [entry["user"] for entry in registry.describe()] == ["Alice", "bob", None]
    assert registry.describe()[0]["worker"] == 2
    assert registry.kick("alice") == 1 and kicked == ["alice"]
    alice.commands, alice.bytes_in, alice.bytes_out = 3, 40, 900
    alice.closing()
    with caplog.at_level(logging.INFO, "roost.session"):
        alice.end(sessions.CLOSED)  # a kick is the better reason: it stays
        alice.end(sessions.ERROR)
    assert len(registry) == 2
    [record] = caplog.records
    assert record.getMessage().startswith(
        "session end protocol=imap user=Alice address=192.0.2.1 duration="
    )
    assert record.getMessage().endswith("commands=3 bytes_in=40 bytes_out=900 reason=kicked")
    entry = json.loads(JsonFormatter().format(record))
    assert {key: entry[key] for key in ("protocol", "user", "commands", "reason")} == {
        "protocol": "imap",
        "user": "Alice",
        "commands": 3,
        "reason": "kicked",
    }
    assert entry["bytes_in"] == 40 and entry["bytes_out"] == 900 and entry["duration"] >= 0


async def _serve(path: Path, handlers: dict[str, Any]) -> ControlServer:
    server = ControlServer(path, handlers, worker=None)
    await server.start()
    return server


async def test_requests_answers_and_errors(tmp_path: Path) -> None:
    async def echo(request: dict[str, Any]) -> Any:
        return request["value"]

    async def broken(request: dict[str, Any]) -> Any:
        raise ControlError("nope")

    run = tmp_path / "run"
    server = await _serve(run / socket_name(None), {"echo": echo, "broken": broken})
    try:
        assert os.stat(run / "control.sock").st_mode & 0o777 == 0o600
        assert await asyncio.to_thread(request_one, run, {"op": "echo", "value": [1]}) == [1]
        with pytest.raises(ControlError, match="nope"):
            await asyncio.to_thread(request_one, run, {"op": "broken"})
        with pytest.raises(ControlError, match="unknown op 'other'"):
            await asyncio.to_thread(request_one, run, {"op": "other"})
        # The raw exchange: greeting, then a line per request, in order.
        reader, writer = await asyncio.open_unix_connection(str(run / "control.sock"))
        greeting = json.loads(await reader.readline())
        assert greeting == {"roost-control": 1, "pid": os.getpid(), "worker": None}
        writer.write(b'not json\n{"op": "echo", "value": 2}\n')
        assert json.loads(await reader.readline())["ok"] is False
        assert json.loads(await reader.readline()) == {"ok": True, "result": 2}
        writer.close()
    finally:
        await server.close()
    assert not (run / "control.sock").exists()
    with pytest.raises(NoServer):
        await asyncio.to_thread(request_all, run, {"op": "echo", "value": 1})


async def test_every_process_answers_and_a_leftover_socket_is_skipped(tmp_path: Path) -> None:
    # A directory deep enough that its socket paths pass sun_path's 108 bytes.
    run = tmp_path / ("d" * 60) / ("e" * 60) / "run"

    def handler(worker: int) -> Any:
        async def who(request: dict[str, Any]) -> Any:
            return [worker]

        return who

    first = await _serve(run / socket_name(1), {"who": handler(1)})
    second = await _serve(run / socket_name(2), {"who": handler(2)})
    stale = await _serve(run / socket_name(3), {"who": handler(3)})
    stale._server.close()  # type: ignore[union-attr]  # gone without cleaning up
    await stale._server.wait_closed()  # type: ignore[union-attr]
    try:
        assert (run / "control-3.sock").exists()
        answers = await asyncio.to_thread(request_all, run, {"op": "who"})
        assert sorted(answers) == [[1], [2]]
    finally:
        await first.close()
        await second.close()


def test_end_fields_in_text_quote_spaces() -> None:
    registry = sessions.SessionRegistry()
    record = registry.open("pop3", "::1", user_of=lambda: None, state_of=lambda: "")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("roost.session")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        record.end(sessions.CLOSED)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert "user=- address=::1" in stream.getvalue()
    assert stream.getvalue().rstrip().endswith('reason="closed by client"')


def test_a_socket_of_another_user_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not "no server": the socket is there but refused (its mode is 0600; the kernel
    answers EACCES to another user — simulated, as the tests may run as root)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "control.sock").touch()

    def refuse(self: socket.socket, address: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    with pytest.raises(ControlError, match=r"permission denied.*run this as that user or root"):
        request_all(run, {"op": "who"})
