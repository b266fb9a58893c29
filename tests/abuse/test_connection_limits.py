"""Connection limits at accept and at sign-in (issue 13 item 2, issue 14 part 2).

* Implicit-TLS sockets are counted at accept, before the handshake: a client that opens
  IMAPS/POP3S sockets and never sends a ClientHello cannot escape the per-address limit,
  and is dropped after ``tls_handshake_timeout``.
* ``max_connections`` caps one process below its descriptor limit.
* ``trusted_networks`` are exempt from the per-address limit.
* ``max_connections_per_user_ip`` is checked at sign-in.
* On defaults, 500 long-lived connections from one address all work.

Every refusal names its limit, on the wire and in the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from roost.auth.passwords import hash_password
from roost.config import AuthSettings, LimitSettings, Settings
from roost.runtime.app import Server
from roost.runtime.coordination import Coordination
from roost.runtime.descriptors import MIN_RESERVE, connection_cap
from roost.runtime.listeners import POP3
from roost.store.errors import StoreBusy
from tests.conftest import FAST_HASHER, PASSWORD
from tests.support.imap_client import ImapClient

StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """``await start_server(**limits)``: a real server (IMAP, IMAPS, POP3, POP3S on
    loopback) with the account alice; the limits not given keep their defaults."""
    servers: list[Server] = []

    async def start(**limits: Any) -> Server:
        data_dir = tmp_path / f"data{len(servers)}"
        settings = Settings.for_dev(data_dir, *[["127.0.0.1:0"]] * 4)
        settings = settings.replace(
            auth=AuthSettings.without_delays(),
            limits=dataclasses.replace(settings.limits, **limits),
            server=dataclasses.replace(settings.server, data_dir=data_dir, shutdown_timeout=0.5),
        )
        server = Server(settings)
        await server.start()
        servers.append(server)
        await server.store.create_account("alice", hash_password(PASSWORD, hasher=FAST_HASHER))
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.shutdown()


async def silent_socket(address: tuple[str, int]) -> asyncio.StreamWriter:
    """A TCP connection that never says anything (no ClientHello)."""
    _, writer = await asyncio.open_connection(*address)
    return writer


async def first_line(address: tuple[str, int]) -> bytes:
    reader, writer = await asyncio.open_connection(*address)
    try:
        return await reader.readline()
    finally:
        writer.close()


async def test_silent_tls_sockets_count_against_the_address_limit(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(max_connections_per_ip=3)
    silent = [
        await silent_socket(server.address(implicit_tls=True)),
        await silent_socket(server.address(implicit_tls=True)),
        await silent_socket(server.address(implicit_tls=True, protocol=POP3)),
    ]
    try:
        with caplog.at_level(logging.WARNING, logger="roost.server"):
            line = await first_line(server.address())
        assert line == (
            b"* BYE [UNAVAILABLE] Too many connections from your address"
            b" (max_connections_per_ip)\r\n"
        )
        assert "reason=max_connections_per_ip" in caplog.text
        assert await first_line(server.address(protocol=POP3)) == (
            b"-ERR [SYS/TEMP] Too many connections from your address (max_connections_per_ip)\r\n"
        )
        # Beyond the limit an implicit-TLS socket is closed at once, without a handshake.
        reader, writer = await asyncio.open_connection(*server.address(implicit_tls=True))
        assert await reader.read() == b""
        writer.close()
    finally:
        for writer in silent:
            writer.close()


async def test_a_silent_tls_client_is_dropped_after_the_handshake_timeout(
    start_server: StartServer,
) -> None:
    server = await start_server(max_connections_per_ip=1, tls_handshake_timeout=0.2)
    reader, writer = await asyncio.open_connection(*server.address(implicit_tls=True))
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # closed by the server, not by this test
    writer.close()
    # Its slot is given back: the address may connect again.
    assert (await first_line(server.address())).startswith(b"* OK")


async def test_the_process_wide_cap_refuses_with_its_name(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(max_connections=2)
    held = [
        await silent_socket(server.address()),
        await silent_socket(server.address(implicit_tls=True)),
    ]
    try:
        with caplog.at_level(logging.WARNING, logger="roost.server"):
            line = await first_line(server.address())
        assert line == b"* BYE [UNAVAILABLE] Server connection limit reached (max_connections)\r\n"
        assert "reason=max_connections limit=2" in caplog.text
    finally:
        for writer in held:
            writer.close()


def test_max_connections_must_fit_the_descriptor_limit() -> None:
    from roost.config import ConfigError

    assert connection_cap(0, descriptor_limit=1024) == 1024 - MIN_RESERVE
    assert connection_cap(0, descriptor_limit=20000) == 15000
    assert connection_cap(500, descriptor_limit=1024) == 500
    with pytest.raises(ConfigError, match="max_connections = 900"):
        connection_cap(900, descriptor_limit=1024)


async def test_trusted_networks_are_exempt_from_the_address_limit(
    start_server: StartServer,
) -> None:
    server = await start_server(
        max_connections_per_ip=1, trusted_networks=(ipaddress.ip_network("127.0.0.0/8"),)
    )
    held = await silent_socket(server.address())
    try:
        assert (await first_line(server.address())).startswith(b"* OK")
    finally:
        held.close()


class UnreachableSlots:
    """An address count kept in a store that cannot be reached (``AddressSlots``)."""

    limit = 1

    async def acquire(self, key: str) -> bool:
        raise StoreBusy("database unavailable: connection refused")

    def release(self, key: str) -> None:
        raise AssertionError("nothing was counted, so nothing is given back")


async def test_a_connection_the_store_cannot_count_is_let_in_uncounted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the limits kept in the database (PostgreSQL, runtime/node_limits.py), an
    unreachable database neither refuses every client nor hangs accept: the
    connection is served uncounted, and the log says so."""
    data_dir = tmp_path / "data"
    settings = Settings.for_dev(data_dir, *[["127.0.0.1:0"]] * 4)
    settings = settings.replace(
        server=dataclasses.replace(settings.server, data_dir=data_dir, shutdown_timeout=0.5)
    )
    coordination = dataclasses.replace(
        Coordination.local(settings.limits), ip_slots=UnreachableSlots()
    )
    server = Server(settings, coordination=coordination)
    await server.start()
    try:
        with caplog.at_level(logging.WARNING, logger="roost.server"):
            for _ in range(2):  # more than the limit: none of them counted
                assert (await first_line(server.address())).startswith(b"* OK")
        assert "not counted per address" in caplog.text
    finally:
        await server.shutdown()


NO_TLS = "[imap]\ntls_listen = []\nstarttls = false\n[pop3]\ntls_listen = []\nstarttls = false\n"


def test_trusted_networks_are_read_as_cidr() -> None:
    settings = Settings.from_toml(
        NO_TLS + '[limits]\ntrusted_networks = ["10.1.0.0/16", "2001:db8::/32", "192.0.2.7"]\n'
    )
    limits = settings.limits
    assert limits.is_trusted("10.1.200.3")
    assert limits.is_trusted("::ffff:10.1.0.1")  # IPv4-mapped
    assert limits.is_trusted("2001:db8:1::5")
    assert limits.is_trusted("192.0.2.7")
    assert not limits.is_trusted("10.2.0.1")
    assert not LimitSettings().is_trusted("127.0.0.1")
    from roost.config import ConfigError

    with pytest.raises(ConfigError, match=r"limits\.trusted_networks"):
        Settings.from_toml(NO_TLS + '[limits]\ntrusted_networks = ["10.0.0.0/33"]\n')


async def test_sessions_per_user_and_address_are_limited_at_sign_in(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(max_connections_per_user_ip=2)
    host, port = server.address()
    first = await ImapClient.connect(host, port)
    second = await ImapClient.connect(host, port)
    third = await ImapClient.connect(host, port)
    try:
        await first.login("alice", PASSWORD)
        await second.login("alice", PASSWORD)
        with caplog.at_level(logging.WARNING):
            reply = await third.command(f'LOGIN alice "{PASSWORD}"')
        assert reply.status == "NO"
        assert b"[LIMIT]" in reply.line and b"max_connections_per_user_ip" in reply.line
        assert "limit=max_connections_per_user_ip" in caplog.text
        await first.ok("LOGOUT")
        await first.expect_eof()
        await third.login("alice", PASSWORD)  # a session ended: there is room again
    finally:
        for client in (first, second, third):
            await client.close()


async def test_500_long_lived_connections_from_one_address_on_defaults(
    start_server: StartServer,
) -> None:
    """Issue 14: an office behind one NAT address, or a webmail, on default limits."""
    server = await start_server()
    host, port = server.address()
    clients = await asyncio.gather(*(ImapClient.connect(host, port) for _ in range(500)))
    try:
        replies = await asyncio.gather(*(client.command("NOOP") for client in clients))
        assert [reply.status for reply in replies] == ["OK"] * 500
        replies = await asyncio.gather(*(client.command("NOOP") for client in clients))
        assert [reply.status for reply in replies] == ["OK"] * 500
    finally:
        await asyncio.gather(*(client.close() for client in clients))
