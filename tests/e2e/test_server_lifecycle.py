"""The server around sessions: listeners (IMAP and POP3), TLS policy, per-address
limits, keepalive, graceful shutdown, and ``roost serve --dev`` as a real process.

Most tests inject a tiny connection handler and an in-memory store, so they check the
server's own duties whatever the state of the IMAP layer; the last ones run the real
thing. Every server listens on port 0 on 127.0.0.1, in a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import imaplib
import importlib
import os
import poplib
import re
import signal
import socket
import ssl
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from roost.config import AuthSettings, ConfigError, LimitSettings, Settings
from roost.imap.context import ImapContext
from roost.runtime import app as app_module
from roost.runtime import listeners as listeners_module
from roost.runtime.app import Server, run_server
from roost.runtime.listeners import POP3, ListenError


class FakeStore:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    async def get_password_hash(self, name: str) -> str | None:
        return None

    async def list_accounts(self) -> list[str]:
        return []


class Handler:
    """Greets, echoes lines, says BYE when cancelled; remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.stubborn = False  # ignore cancellation (to test the shutdown time-out)

    async def __call__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: ImapContext,
        *,
        tls_active: bool,
        remote_ip: str,
    ) -> None:
        sock = writer.get_extra_info("socket")
        self.calls.append(
            {
                "tls_active": tls_active,
                "remote_ip": remote_ip,
                "context": context,
                "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                "keepidle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
                if hasattr(socket, "TCP_KEEPIDLE")
                else None,
            }
        )
        writer.write(f"* OK hello tls={tls_active}\r\n".encode())
        try:
            while line := await reader.readline():
                writer.write(b"echo " + line)
                await writer.drain()
        except asyncio.CancelledError:
            writer.write(b"* BYE Server shutting down\r\n")
            if self.stubborn:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.Event().wait()
            raise
        finally:
            writer.close()


def dev_settings(data_dir: Path, **limits: int) -> Settings:
    settings = Settings.for_dev(data_dir, *[["127.0.0.1:0"]] * 4)
    return settings.replace(
        auth=AuthSettings.without_delays(),
        limits=LimitSettings(**limits),  # type: ignore[arg-type]
        server=settings.server.__class__(data_dir=data_dir, shutdown_timeout=0.5),
    )


def client_tls(data_dir: Path, **options: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(data_dir / "tls" / "cert.pem"))
    for name, value in options.items():
        setattr(context, name, value)
    return context


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
async def server(tmp_path: Path, handler: Handler) -> AsyncIterator[Server]:
    instance = Server(dev_settings(tmp_path), store=FakeStore(), handler=handler)  # type: ignore[arg-type]
    await instance.start()
    try:
        yield instance
    finally:
        await instance.shutdown()


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds: no timed waits."""
    for _ in range(100_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def connect(
    address: tuple[str, int], tls: ssl.SSLContext | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection(
        *address, ssl=tls, server_hostname="localhost" if tls else None
    )
    greeting = await reader.readline()
    return reader, writer, greeting


# ---- listeners -----------------------------------------------------------------------


async def test_listeners_bind_and_report_real_ports(server: Server) -> None:
    bound = server.bound_addresses
    assert [(b.host, b.implicit_tls, b.protocol) for b in bound] == [
        ("127.0.0.1", False, "imap"),
        ("127.0.0.1", True, "imap"),
        ("127.0.0.1", False, "pop3"),
        ("127.0.0.1", True, "pop3"),
    ]
    assert all(b.port > 0 for b in bound)
    assert server.address() == (bound[0].host, bound[0].port)
    assert server.address(implicit_tls=True) == (bound[1].host, bound[1].port)
    assert server.address(protocol=POP3) == (bound[2].host, bound[2].port)
    assert server.address(implicit_tls=True, protocol=POP3) == (bound[3].host, bound[3].port)
    assert str(bound[0]) == f"127.0.0.1:{bound[0].port}"


async def test_pop3_connections_reach_the_pop3_handler(tmp_path: Path, handler: Handler) -> None:
    pop3_handler = Handler()
    settings = dev_settings(tmp_path)
    async with Server(
        settings,
        store=FakeStore(),  # type: ignore[arg-type]
        handler=handler,
        pop3_handler=pop3_handler,  # type: ignore[arg-type]
    ) as instance:
        _, plain, greeting = await connect(instance.address(protocol=POP3))
        assert greeting == b"* OK hello tls=False\r\n"
        _, secure, greeting = await connect(
            instance.address(protocol=POP3, implicit_tls=True), client_tls(tmp_path)
        )
        assert greeting == b"* OK hello tls=True\r\n"
        assert handler.calls == []
        context = pop3_handler.calls[0]["context"]
        assert context is instance.pop3_context
        assert pop3_handler.calls[0]["keepalive"] == 1
        # One count of sessions per account for both protocols, one store, one throttle.
        assert context.account_connections is instance.context.account_connections
        assert context.store is instance.context.store
        assert context.authenticator is instance.context.authenticator
        assert context.tls_context is not None  # STLS offered
        assert context.allow_plaintext_auth  # --dev on loopback
        plain.close()
        secure.close()


async def test_pop3_is_refused_in_its_own_words(tmp_path: Path, handler: Handler) -> None:
    settings = dev_settings(tmp_path, max_connections_per_ip=1)
    async with Server(settings, store=FakeStore(), handler=handler) as instance:  # type: ignore[arg-type]
        _, writer, _ = await connect(instance.address())
        reader, refused, line = await connect(instance.address(protocol=POP3))
        assert (
            line == b"-ERR [SYS/TEMP] Too many connections from your address"
            b" (max_connections_per_ip)\r\n"
        )
        assert await reader.read() == b""
        refused.close()
        writer.close()


async def test_plain_connection_reaches_the_handler(server: Server, handler: Handler) -> None:
    reader, writer, greeting = await connect(server.address())
    assert greeting == b"* OK hello tls=False\r\n"
    writer.write(b"a NOOP\r\n")
    assert await reader.readline() == b"echo a NOOP\r\n"
    (call,) = handler.calls
    assert call["remote_ip"] == "127.0.0.1"
    context = call["context"]
    assert context is server.context
    assert context.tls_context is not None  # STARTTLS offered
    assert context.allow_plaintext_auth  # --dev on loopback
    assert context.spool_dir == server.settings.server.data_dir / "spool"
    writer.close()


async def test_accepted_sockets_have_tcp_keepalive(server: Server, handler: Handler) -> None:
    """CLIENTS.md: idling clients behind NAT need TCP keepalive."""
    _, writer, _ = await connect(server.address())
    assert handler.calls[0]["keepalive"] == 1
    if handler.calls[0]["keepidle"] is not None:
        assert handler.calls[0]["keepidle"] == listeners_module.KEEPALIVE_IDLE
    writer.close()


async def test_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings.for_dev(
            tmp_path, ["127.0.0.1:0"], [f"127.0.0.1:{port}"], ["127.0.0.1:0"], ["127.0.0.1:0"]
        )
        store = FakeStore()
        instance = Server(settings, store=store, handler=Handler())  # type: ignore[arg-type]
        with pytest.raises(ListenError) as info:
            await instance.start()
    assert str(info.value) == f"cannot listen on 127.0.0.1:{port}: the address is already in use"
    assert not store.closed  # not ours to close


async def test_failed_start_closes_what_it_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FakeStore()

    async def open_store(data_dir: Path, **options: object) -> FakeStore:
        return store

    monkeypatch.setattr(app_module, "open_store", open_store)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings.for_dev(
            tmp_path, ["127.0.0.1:0"], [f"127.0.0.1:{port}"], ["127.0.0.1:0"], ["127.0.0.1:0"]
        )
        instance = Server(settings, handler=Handler())
        with pytest.raises(ListenError):
            await instance.start()
    assert store.closed
    # The plain listener bound first was closed again.
    plain_port = instance.bound_addresses[0].port
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", plain_port)) != 0


async def test_missing_certificate_names_the_file(tmp_path: Path) -> None:
    settings = Settings.from_toml(
        '[server]\ndata_dir = "d"\n[imap]\nlisten = ["127.0.0.1:0"]\ntls_listen = []\n'
        '[pop3]\nlisten = []\ntls_listen = []\n[tls]\ncert = "cert.pem"\nkey = "key.pem"\n',
        source="roost.toml",
        base_dir=tmp_path,
    )
    instance = Server(settings, store=FakeStore(), handler=Handler())  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        await instance.start()
    assert str(info.value) == (
        f"TLS certificate file {tmp_path / 'cert.pem'} does not exist ('tls.cert' in roost.toml)"
    )


async def test_without_tls_no_certificate_is_needed(tmp_path: Path, handler: Handler) -> None:
    settings = Settings.from_toml(
        '[imap]\nlisten = ["127.0.0.1:0"]\ntls_listen = []\nstarttls = false\n'
        '[pop3]\nlisten = ["127.0.0.1:0"]\ntls_listen = []\nstarttls = false\n',
        base_dir=tmp_path,
    ).replace(server=Settings().server.__class__(data_dir=tmp_path))
    async with Server(settings, store=FakeStore(), handler=handler) as instance:  # type: ignore[arg-type]
        _, writer, greeting = await connect(instance.address())
        assert greeting == b"* OK hello tls=False\r\n"
        assert instance.context.tls_context is None
        writer.close()


# ---- TLS -----------------------------------------------------------------------------


async def test_implicit_tls_handshake(server: Server, tmp_path: Path) -> None:
    _, writer, greeting = await connect(server.address(implicit_tls=True), client_tls(tmp_path))
    assert greeting == b"* OK hello tls=True\r\n"
    ssl_object = writer.get_extra_info("ssl_object")
    assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
    writer.close()


async def test_tls12_uses_forward_secret_aead_suites(server: Server, tmp_path: Path) -> None:
    tls = client_tls(tmp_path, maximum_version=ssl.TLSVersion.TLSv1_2)
    _, writer, _ = await connect(server.address(implicit_tls=True), tls)
    name, version, _ = writer.get_extra_info("ssl_object").cipher()
    assert version == "TLSv1.2"
    assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name)
    writer.close()


async def test_tls12_cbc_suites_are_refused(server: Server, tmp_path: Path) -> None:
    tls = client_tls(tmp_path, maximum_version=ssl.TLSVersion.TLSv1_2)
    tls.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await connect(server.address(implicit_tls=True), tls)


async def test_tls11_is_refused(server: Server, tmp_path: Path) -> None:
    tls = client_tls(tmp_path)
    with warnings.catch_warnings(), contextlib.suppress(ValueError, ssl.SSLError):
        warnings.simplefilter("ignore", DeprecationWarning)
        tls.minimum_version = ssl.TLSVersion.TLSv1
        tls.maximum_version = ssl.TLSVersion.TLSv1_1
    if tls.maximum_version != ssl.TLSVersion.TLSv1_1:
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await connect(server.address(implicit_tls=True), tls)


def test_self_signed_certificate_and_key_mode(tmp_path: Path) -> None:
    from cryptography import x509

    from roost.runtime.tls import ensure_self_signed

    cert, key = ensure_self_signed(tmp_path / "tls")
    assert (key.stat().st_mode & 0o777) == 0o600
    assert (tmp_path / "tls").stat().st_mode & 0o077 == 0
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime.days >= 3650
    # A second call keeps the existing pair.
    before = cert.read_bytes()
    assert ensure_self_signed(tmp_path / "tls") == (cert, key)
    assert cert.read_bytes() == before


def test_server_context_policy(tmp_path: Path) -> None:
    from roost.runtime.tls import TlsError, ensure_self_signed, server_context

    cert, key = ensure_self_signed(tmp_path)
    context = server_context(cert, key, "1.3")
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    context = server_context(cert, key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and all(c["aead"] and c["kea"] == "kx-ecdhe" for c in tls12)
    other_key = tmp_path / "other"
    ensure_self_signed(other_key)
    with pytest.raises(TlsError, match="cannot use TLS certificate"):
        server_context(cert, other_key / "key.pem")
    with pytest.raises(TlsError, match="does not exist"):
        server_context(tmp_path / "nope.pem", key)


# ---- per-address limit ---------------------------------------------------------------


async def test_connections_per_address_are_limited(tmp_path: Path, handler: Handler) -> None:
    settings = dev_settings(tmp_path, max_connections_per_ip=2)
    async with Server(settings, store=FakeStore(), handler=handler) as instance:  # type: ignore[arg-type]
        first = await connect(instance.address())
        second = await connect(instance.address(implicit_tls=True), client_tls(tmp_path))
        reader, writer, line = await connect(instance.address())
        assert (
            line == b"* BYE [UNAVAILABLE] Too many connections from your address"
            b" (max_connections_per_ip)\r\n"
        )
        assert await reader.read() == b""
        writer.close()
        assert len(handler.calls) == 2
        # When one closes, the address may connect again.
        first[1].close()
        await until(lambda: instance.connection_count < 2)
        third = await connect(instance.address())
        assert third[2] == b"* OK hello tls=False\r\n"
        second[1].close()
        third[1].close()


# ---- shutdown ------------------------------------------------------------------------


async def test_shutdown_says_bye_and_stops_listening(
    tmp_path: Path, handler: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FakeStore()

    async def open_store(data_dir: Path, **options: object) -> FakeStore:
        return store

    monkeypatch.setattr(app_module, "open_store", open_store)
    instance = Server(dev_settings(tmp_path), handler=handler)
    await instance.start()
    plain = await connect(instance.address())
    secure = await connect(instance.address(implicit_tls=True), client_tls(tmp_path))
    address = instance.address()
    await instance.shutdown()
    for reader, _, _ in (plain, secure):
        assert await reader.readline() == b"* BYE Server shutting down\r\n"
        assert await reader.read() == b""
    assert store.closed
    assert instance.connection_count == 0
    with pytest.raises(OSError) as info:
        await asyncio.open_connection(*address)
    assert info.value.errno == errno.ECONNREFUSED
    await instance.shutdown()  # idempotent


async def test_shutdown_drops_connections_that_do_not_finish(
    tmp_path: Path, handler: Handler
) -> None:
    handler.stubborn = True
    instance = Server(dev_settings(tmp_path), store=FakeStore(), handler=handler)  # type: ignore[arg-type]
    await instance.start()
    reader, _, _ = await connect(instance.address())
    await instance.shutdown()  # waits shutdown_timeout (0.5 s), then aborts
    assert instance.connection_count == 0
    assert await reader.read() in (b"", b"* BYE Server shutting down\r\n")


async def test_run_server_stops_on_sigterm(tmp_path: Path, handler: Handler) -> None:
    seen: list[list[Any]] = []

    def ready(addresses: list[Any]) -> None:
        seen.append(addresses)
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)

    await asyncio.wait_for(
        run_server(dev_settings(tmp_path), handler=handler, store=FakeStore(), ready=ready),  # type: ignore[arg-type]
        timeout=30,
    )
    assert len(seen) == 1 and len(seen[0]) == 4


# ---- the real thing ------------------------------------------------------------------


def _real_store_available() -> bool:
    try:
        sqlite = importlib.import_module("roost.store.sqlite")
        importlib.import_module("roost.imap.connection")
    except ImportError:
        return False
    return hasattr(sqlite, "SqliteStore")


needs_real_server = pytest.mark.skipif(
    not _real_store_available(), reason="the SQLite store or IMAP connection is not there yet"
)


def _find(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text)
    return found.group(1) if found else None


class DevServer:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "roost",
                "serve",
                "--dev",
                "--data-dir",
                str(data_dir),
                "--imap-listen",
                "127.0.0.1:0",
                "--imaps-listen",
                "127.0.0.1:0",
                "--pop3-listen",
                "127.0.0.1:0",
                "--pop3s-listen",
                "127.0.0.1:0",
                "--lmtp-listen",
                "127.0.0.1:0",
                "--managesieve-listen",
                "127.0.0.1:0",
                *("--submission-listen", "127.0.0.1:0", "--submissions-listen", "none"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.banner: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.banner.append(line.rstrip("\n"))
            if line.startswith("Stop with Ctrl-C"):
                break
        else:
            raise AssertionError("no banner: " + self.process.stderr.read())  # type: ignore[union-attr]
        text = "\n".join(self.banner)
        self.plain_port = int(_find(r"IMAP with STARTTLS\s+127\.0\.0\.1:(\d+)", text) or 0)
        self.tls_port = int(_find(r"IMAP over TLS \(SSL/TLS\)\s+127\.0\.0\.1:(\d+)", text) or 0)
        self.pop3_port = int(_find(r"POP3 with STLS\s+127\.0\.0\.1:(\d+)", text) or 0)
        self.pop3s_port = int(_find(r"POP3 over TLS \(SSL/TLS\)\s+127\.0\.0\.1:(\d+)", text) or 0)
        self.password = _find(r"Created account demo with password (\w+); it is not shown", text)

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=30)
        return self.process.returncode, stderr


@needs_real_server
def test_roost_serve_dev_end_to_end(tmp_path: Path) -> None:
    data_dir = tmp_path / "roost-data"
    first = DevServer(data_dir)
    try:
        assert first.password is not None
        assert (data_dir / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600
        assert data_dir.stat().st_mode & 0o077 == 0
        tls = client_tls(data_dir)
        with imaplib.IMAP4_SSL("127.0.0.1", first.tls_port, ssl_context=tls) as client:
            client.login("demo", first.password)
            assert client.select("INBOX")[0] == "OK"
        tls.check_hostname = False  # the banner says 127.0.0.1; the SAN has it too
        with imaplib.IMAP4("127.0.0.1", first.plain_port) as client:
            client.starttls(ssl_context=client_tls(data_dir))
            client.login("demo", first.password)
        pop = poplib.POP3_SSL("127.0.0.1", first.pop3s_port, context=client_tls(data_dir))
        pop.user("demo")
        pop.pass_(first.password)
        assert pop.stat() == (0, 0)
        pop.quit()
        pop = poplib.POP3("127.0.0.1", first.pop3_port)
        pop.stls(client_tls(data_dir))
        pop.user("demo")
        pop.pass_(first.password)
        pop.quit()
    finally:
        code, stderr = first.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    # Restarting keeps the account and does not print a password again.
    second = DevServer(data_dir)
    try:
        assert second.password is None
    finally:
        code, _ = second.stop()
    assert code == 0
