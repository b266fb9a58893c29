"""New connections spread over the workers that share a listening socket
(runtime/accept_balance.py, runtime/listeners.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.config import Settings
from roost.runtime.accept_balance import AcceptBalance
from roost.runtime.coordination import Coordination
from roost.runtime.listeners import Listeners, ListenSocket


def test_a_worker_defers_only_to_a_less_loaded_one(tmp_path: Path) -> None:
    path = tmp_path / "connections"
    first, second, third = (AcceptBalance(path, n, 3) for n in (1, 2, 3))
    assert not first.should_defer()  # all at zero: nobody steps back
    first.publish(2)
    second.publish(2)
    third.publish(1)
    assert first.should_defer() and second.should_defer()
    assert not third.should_defer()
    third.publish(2)
    assert not first.should_defer()  # even: each may take the next


def test_a_replacement_starts_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "connections"
    AcceptBalance(path, 1, 2).publish(40)  # a worker that died holding 40
    other = AcceptBalance(path, 2, 2)
    other.publish(3)
    assert not other.should_defer()
    AcceptBalance(path, 1, 2)  # its replacement
    assert other.should_defer()


def test_a_worker_number_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        AcceptBalance(tmp_path / "connections", 3, 2)


@pytest.fixture
async def shared_socket() -> AsyncIterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    yield sock
    sock.close()


async def test_new_connections_go_to_the_less_loaded_worker(
    tmp_path: Path, shared_socket: socket.socket
) -> None:
    """Two Listeners on one socket, as two workers. The first serves four connections
    alone; once the second starts, the next four go to it, and then they share."""
    settings = Settings.for_dev(tmp_path / "data")
    held: dict[int, list[asyncio.StreamWriter]] = {1: [], 2: []}
    stop = asyncio.Event()

    def serving(worker: int):  # type: ignore[no-untyped-def]
        async def serve(
            reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter,
            protocol: str,
            implicit_tls: bool,
            remote_ip: str,
        ) -> None:
            held[worker].append(writer)
            writer.write(b"hello\r\n")
            await stop.wait()

        return serve

    async def start(worker: int) -> Listeners:
        coordination = dataclasses.replace(
            Coordination.local(settings.limits),
            worker=worker,
            accept_balance=AcceptBalance(tmp_path / "connections", worker, 2),
        )
        sock = socket.socket(fileno=socket.dup(shared_socket.fileno()))
        listeners = Listeners(
            settings, coordination, serving(worker), [ListenSocket(sock, "lmtp", False)]
        )
        await listeners.bind(None)
        await listeners.start_serving()
        return listeners

    port = shared_socket.getsockname()[1]
    clients: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def connect(count: int) -> None:
        opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
        for reader, _ in opened:
            assert await reader.readline() == b"hello\r\n"
        clients.extend(opened)

    workers = [await start(1)]
    for _ in range(4):
        await connect(1)
    workers.append(await start(2))
    for _ in range(4):
        await connect(1)
    assert (len(held[1]), len(held[2])) == (4, 4)
    await connect(2)
    assert (len(held[1]), len(held[2])) == (5, 5)
    stop.set()
    for _, writer in clients:
        writer.close()
    for listeners in workers:
        await listeners.close()
        await listeners.end_connections(1.0)
