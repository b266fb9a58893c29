"""A real server on a loopback port for each abuse test, with the limits it needs, two
accounts (alice and bob), and helpers to see what a connection left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from roost.imap.context import ImapLimits
from tests.conftest import ImapServer, start_imap_server, stop_imap_server

StartServer = Callable[..., Awaitable[ImapServer]]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """``await start_server(**limits)``: a server with alice and bob, stopped after the
    test however it ends."""
    started: list[tuple[ImapServer, asyncio.Server]] = []

    async def start(*, implicit_tls: bool = False, **limits: object) -> ImapServer:
        data_dir = tmp_path / f"server{len(started)}"
        data_dir.mkdir()
        handle, server = await start_imap_server(
            data_dir,
            limits=ImapLimits(**limits),  # type: ignore[arg-type]
            implicit_tls=implicit_tls,
        )
        started.append((handle, server))
        await handle.add_user("alice")
        await handle.add_user("bob")
        return handle

    try:
        yield start
    finally:
        for handle, server in started:
            await stop_imap_server(handle, server)


def spool_files(handle: ImapServer) -> list[Path]:
    """Spooled literals still on disk (conftest's servers spool into data_dir)."""
    return sorted(handle.data_dir.glob("roost-literal-*"))


async def connections_finished(handle: ImapServer) -> None:
    """Wait until the server has finished with every connection it accepted: the
    clean-up after a disconnect has run then."""
    async with asyncio.timeout(10):
        while handle.connection_tasks:
            await asyncio.wait(set(handle.connection_tasks))
