"""The HTTP listener of a real ``roost serve``: with one process it serves its own
metrics; with several workers the supervisor serves the sums of theirs (the workers
write prometheus-client's multiprocess files under run/metrics). Also /readyz and the
autoconfig document built from the configured listeners."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.e2e.test_workers import PASSWORD, USER, Workers, create_account
from tests.support.imap_client import ImapClient
from tests.support.server_process import RoostProcess, write_config

Start = Callable[[int], Awaitable[Workers]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    started: list[Workers] = []

    async def go(workers: int) -> Workers:
        data_dir = tmp_path / "data"
        await create_account(data_dir)
        config = write_config(tmp_path / "roost.toml", data_dir, workers=workers, http=True)
        process = RoostProcess(config, tmp_path / "server.log")
        started.append(running := Workers(process, data_dir))
        await asyncio.to_thread(process.start)
        assert process.http_port, "no HTTP listener in the banner"
        return running

    try:
        yield go
    finally:
        for running in started:
            for client in running.clients:
                with contextlib.suppress(Exception):
                    await client.close()
            running.process.stop()


async def get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: mail.example.org\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


def value(text: str, name: str, **labels: str) -> float:
    """The value of one series in the text format (labels in any order)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(key) == wanted for key, wanted in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in:\n{text[:3000]}")


async def test_one_process_serves_its_own_metrics(start: Start) -> None:
    server = await start(1)
    client = await ImapClient.connect("127.0.0.1", server.process.port)
    server.clients.append(client)
    await client.login(USER, PASSWORD)
    for _ in range(3):
        await client.ok("NOOP")
    status, text = await get(server.process.http_port, "/metrics")
    assert status == 200
    assert value(text, "roost_commands_total", command="NOOP", result="ok") == 3
    assert value(text, "roost_sign_ins_total", method="password", result="ok") == 1
    assert value(text, "roost_connections_total", protocol="imap", outcome="accepted") == 1
    assert value(text, "roost_open_connections", protocol="imap") == 1
    assert value(text, "roost_store_operation_duration_seconds_count") > 0
    assert await get(server.process.http_port, "/readyz") == (200, "ready\n")
    await client.ok("LOGOUT")
    # The bytes are counted as the session ends, just after its BYE: look a few times.
    for _ in range(100):
        _, text = await get(server.process.http_port, "/metrics")
        if value(text, "roost_bytes_total", protocol="imap", direction="out") > 0:
            break
        await asyncio.sleep(0.05)
    assert value(text, "roost_bytes_total", protocol="imap", direction="in") > 0
    assert value(text, "roost_bytes_total", protocol="imap", direction="out") > 0


async def test_the_supervisor_sums_the_workers_metrics(start: Start) -> None:
    server = await start(2)
    first = await server.login(worker=1)
    second = await server.login(worker=2)
    await first.ok("NOOP")
    await second.ok("NOOP")
    await second.ok("NOOP")
    status, text = await get(server.process.http_port, "/metrics")
    assert status == 200
    assert value(text, "roost_commands_total", command="NOOP", result="ok") == 3
    assert value(text, "roost_sign_ins_total", method="password", result="ok") == 2
    assert await get(server.process.http_port, "/readyz") == (200, "ready\n")
    port = server.process.port
    status, xml = await get(server.process.http_port, "/mail/config-v1.1.xml?emailaddress=a@b.c")
    assert status == 200
    assert f"<port>{port}</port>" not in xml  # the plain listener offers no STARTTLS here
