"""Listeners, connection bookkeeping and graceful shutdown: the server around sessions.

``Server`` owns everything a running Roost has: the store (unless given one), the
``ImapContext`` and ``Pop3Context`` shared by every connection of their protocol (and
one ``AccountConnections`` shared by both), one asyncio server per listen address, and
a task per connection. It does no protocol work: each accepted connection is handed to
the connection handler of its listener's protocol
(``roost.imap.connection.serve_imap_connection`` and
``roost.pop3.connection.serve_pop3_connection`` by default).

Invariants:

* All listeners are bound before any accepts a connection; if one cannot be bound,
  none is left open and ``start`` raises ``ListenError`` naming the address.
* A client address (IPv6 by /64) never holds more than ``max_connections_per_ip``
  connections, IMAP and POP3 together (and, as a worker of several, across every
  worker: ``coordination.Coordination``): the next one is told ``* BYE [UNAVAILABLE]
  ...`` (POP3: ``-ERR [SYS/TEMP] ...``) and closed, and that is logged.
* Every accepted socket has TCP keepalive on (CLIENTS.md: idling clients behind NAT).
* ``shutdown`` stops accepting, cancels every connection task (the handler answers
  cancellation with ``* BYE Server shutting down``, POP3 with ``-ERR``), waits
  ``server.shutdown_timeout`` seconds, aborts what is left, then closes the store it
  opened. It is idempotent.

As one worker of several (``supervisor.py``), a ``Server`` is given listening sockets
that the supervisor bound (``bind_listeners``) instead of binding its own, and a shared
``Coordination``; everything else is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import signal
import socket
import sqlite3
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Protocol, TypeVar

from roost.auth.authenticator import StoreAuthenticator
from roost.auth.base import Authenticator
from roost.auth.throttle import LoginThrottle, address_key
from roost.config import ConfigError, ListenAddress, Settings
from roost.imap.context import ImapContext
from roost.pop3.context import Pop3Context
from roost.runtime.coordination import Coordination
from roost.runtime.tls import TlsError, ensure_self_signed, reload_certificate, server_context
from roost.store.base import Store, StoreError
from roost.store.events import EventHub

log = logging.getLogger("roost.server")

_T = TypeVar("_T")

TOO_MANY_CONNECTIONS = b"* BYE [UNAVAILABLE] Too many connections from your address\r\n"
POP3_TOO_MANY_CONNECTIONS = b"-ERR [SYS/TEMP] Too many connections from your address\r\n"

IMAP = "imap"
POP3 = "pop3"

# TCP keepalive on accepted sockets: first probe after a minute of silence, then every
# 15 s, give up after 4 — well inside the 5-15 minutes after which NATs forget a flow.
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 15
KEEPALIVE_COUNT = 4

# Seconds a refused client gets to receive its BYE before the socket is dropped.
_REFUSAL_WRITE_TIMEOUT = 5.0

# Pending connections per listening socket (the kernel caps it at somaxconn).
LISTEN_BACKLOG = 511


class ConnectionHandler(Protocol):
    def __call__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: ImapContext,
        *,
        tls_active: bool,
        remote_ip: str,
    ) -> Awaitable[None]: ...


class Pop3ConnectionHandler(Protocol):
    def __call__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: Pop3Context,
        *,
        tls_active: bool,
        remote_ip: str,
    ) -> Awaitable[None]: ...


class ServerError(Exception):
    """The server cannot start; the message is one line naming the cause."""


class ListenError(ServerError):
    """A listen address cannot be bound (in use, not permitted, not local)."""


class BoundAddress(NamedTuple):
    host: str
    port: int  # the real port, also when 0 was configured
    implicit_tls: bool  # True: TLS from the first byte (993, 995); False: plain + STARTTLS
    protocol: str = IMAP  # IMAP or POP3

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class ListenSocket(NamedTuple):
    """A bound, listening, non-blocking socket and what it serves."""

    sock: socket.socket
    protocol: str  # IMAP or POP3
    implicit_tls: bool


async def open_store(data_dir: Path, *, hub: EventHub | None = None) -> Store:
    """Open the store in ``data_dir``, creating the directory (mode 0700) if needed;
    its change events go through ``hub`` when given (a worker's, linked to the others)."""
    from roost.store.sqlite import SqliteStore

    try:
        _make_private_dir(data_dir)
        return await SqliteStore.open(data_dir, hub=hub)
    except (OSError, sqlite3.Error, StoreError) as error:
        raise ServerError(f"cannot open the data directory {data_dir}: {error}") from None


def build_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's SSLContext, or None when no listener needs TLS. For --dev, a missing
    certificate is generated first. Raises ConfigError naming the file at fault."""
    if not settings.tls_needed:
        return None
    tls = settings.tls
    if tls.self_signed and tls.cert is not None and tls.key is not None:
        try:
            _make_private_dir(settings.server.data_dir)
            ensure_self_signed(tls.cert.parent, settings.server.hostname)
        except OSError as error:
            raise ConfigError(
                f"cannot create a self-signed certificate in {tls.cert.parent}: {error.strerror}"
            ) from None
    settings.check_files()
    assert tls.cert is not None and tls.key is not None  # Settings.validate checked
    try:
        return server_context(tls.cert, tls.key, tls.min_version)
    except TlsError as error:
        raise ConfigError(str(error)) from None


class Server:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        handler: ConnectionHandler | None = None,
        authenticator: Authenticator | None = None,
        tls_context: ssl.SSLContext | None = None,
        pop3_handler: Pop3ConnectionHandler | None = None,
        listen_sockets: Sequence[ListenSocket] | None = None,
        coordination: Coordination | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._owns_store = store is None
        self._handler = handler
        self._pop3_handler = pop3_handler
        self._authenticator = authenticator
        self._tls_context = tls_context
        self._context: ImapContext | None = None
        self._pop3_context: Pop3Context | None = None
        self._listen_sockets = list(listen_sockets) if listen_sockets is not None else None
        self.coordination = coordination or Coordination.local(settings.limits)
        self._servers: list[asyncio.Server] = []
        self._bound: list[BoundAddress] = []
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._stop_requested = asyncio.Event()
        self._shutdown_started = False
        self._shutdown_done = asyncio.Event()

    # ---- facts -----------------------------------------------------------------------

    @property
    def context(self) -> ImapContext:
        if self._context is None:
            raise RuntimeError("Server.start() has not run")
        return self._context

    @property
    def pop3_context(self) -> Pop3Context:
        if self._pop3_context is None:
            raise RuntimeError("Server.start() has not run")
        return self._pop3_context

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("Server.start() has not run")
        return self._store

    @property
    def bound_addresses(self) -> list[BoundAddress]:
        return list(self._bound)

    def address(self, *, implicit_tls: bool = False, protocol: str = IMAP) -> tuple[str, int]:
        """(host, port) of the first listener of that kind: handy for tests."""
        for bound in self._bound:
            if bound.implicit_tls == implicit_tls and bound.protocol == protocol:
                return bound.host, bound.port
        kind = "implicit TLS" if implicit_tls else "plain"
        raise LookupError(f"no {kind} {protocol.upper()} listener")

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # ---- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, build the context, bind every listener, start accepting."""
        settings = self.settings
        if self._tls_context is None:
            self._tls_context = build_tls_context(settings)
        if self._handler is None:
            self._handler = _default_handler()
        if self._pop3_handler is None:
            self._pop3_handler = _default_pop3_handler()
        if self._store is None:
            self._store = await open_store(settings.server.data_dir)
        try:
            self._context = self._build_context(self._store)
            self._pop3_context = self._build_pop3_context(self._context)
            await self._bind_all()
        except BaseException:
            await self._close_listeners()
            if self._owns_store:
                await self._store.close()
            raise
        for server in self._servers:
            await server.start_serving()
        for bound in self._bound:
            log.info("listening on %s (%s)", bound, self._kind(bound))
        self._warn_about_sign_in()

    async def serve_forever(self) -> None:
        """Run until ``request_shutdown`` (e.g. from a signal), then shut down."""
        await self._stop_requested.wait()
        await self.shutdown()

    @property
    def shutdown_requested(self) -> bool:
        return self._stop_requested.is_set()

    def reload_tls(self, reason: str = "SIGHUP") -> None:
        """Load the (renewed) certificate and key into the live context: handshakes
        from now on use them, open connections keep theirs. A file that does not load
        leaves the old certificate serving."""
        tls = self.settings.tls
        if self._tls_context is None or tls.cert is None or tls.key is None:
            log.info("%s: no TLS certificate to reload", reason)
            return
        try:
            reload_certificate(self._tls_context, tls.cert, tls.key)
        except TlsError as error:
            log.warning("%s: certificate not reloaded, the old one stays: %s", reason, error)
            return
        log.info("%s: certificate reloaded from %s", reason, tls.cert)

    def request_shutdown(self, reason: str = "requested") -> None:
        if self._stop_requested.is_set():
            log.warning("shutdown %s again: closing every connection now", reason)
            self._abort_connections()
            return
        log.info("shutting down (%s)", reason)
        self._stop_requested.set()

    async def shutdown(self) -> None:
        if self._shutdown_started:
            await self._shutdown_done.wait()
            return
        self._shutdown_started = True
        self._stop_requested.set()
        try:
            await self._close_listeners()
            tasks = list(self._connections)
            for task in tasks:
                task.cancel()
            if tasks:
                _, pending = await asyncio.wait(
                    tasks, timeout=self.settings.server.shutdown_timeout
                )
                if pending:
                    log.warning("%d connections did not close in time; dropping them", len(pending))
                    self._abort_connections()
                    await asyncio.wait(pending, timeout=1.0)
            if self._owns_store and self._store is not None:
                await self._store.close()
        finally:
            self._shutdown_done.set()
        log.info("stopped")

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.shutdown()

    # ---- internals -------------------------------------------------------------------

    def _kind(self, bound: BoundAddress) -> str:
        if bound.protocol == POP3:
            if bound.implicit_tls:
                return "POP3 over TLS"
            starttls = self.pop3_context.tls_context is not None
            return "POP3 with STLS" if starttls else "POP3"
        if bound.implicit_tls:
            return "IMAP over TLS"
        return "IMAP with STARTTLS" if self.context.tls_context is not None else "IMAP"

    def _warn_about_sign_in(self) -> None:
        settings = self.settings
        protocols = (
            ("imap", settings.imap, self.context.tls_context, "STARTTLS"),
            ("pop3", settings.pop3, self.pop3_context.tls_context, "STLS"),
        )
        for name, section, tls_context, starttls in protocols:
            if not section.listen and not section.tls_listen:
                continue
            if not section.tls_listen and tls_context is None and not section.allow_plaintext_auth:
                log.warning(
                    "no %s TLS listener, no %s and %s.allow_plaintext_auth is false: "
                    "%s clients cannot sign in",
                    name.upper(),
                    starttls,
                    name,
                    name.upper(),
                )
            if section.allow_plaintext_auth and not all(
                address.is_loopback for address in section.listen
            ):
                log.warning(
                    "%s.allow_plaintext_auth is on for a non-loopback listener: "
                    "passwords may cross the network unencrypted",
                    name,
                )

    def _build_pop3_context(self, imap: ImapContext) -> Pop3Context:
        """Shares the store, the authenticator (so its throttle) and the per-account
        session count with IMAP."""
        pop3 = self.settings.pop3
        return Pop3Context(
            store=imap.store,
            authenticator=imap.authenticator,
            limits=self.settings.limits.pop3,
            policy=pop3.policy(),
            tls_context=self._tls_context if pop3.starttls else None,
            allow_plaintext_auth=pop3.allow_plaintext_auth,
            account_connections=imap.account_connections,
            locks=self.coordination.maildrop_locks,
            sign_in_times=self.coordination.sign_in_times,
            worker=self.coordination.worker,
        )

    def _build_context(self, store: Store) -> ImapContext:
        settings = self.settings
        authenticator = self._authenticator or StoreAuthenticator(
            store,
            LoginThrottle(settings.auth.throttle_policy()),
            tokens=settings.auth.token_validator(),
            scram=settings.auth.scram,
        )
        spool_dir = settings.server.data_dir / "spool"
        spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return ImapContext(
            store=store,
            authenticator=authenticator,
            limits=settings.imap_limits(),
            tls_context=self._tls_context if settings.imap.starttls else None,
            allow_plaintext_auth=settings.imap.allow_plaintext_auth,
            spool_dir=spool_dir,
            account_connections=self.coordination.account_connections,
            worker=self.coordination.worker,
        )

    async def _bind_all(self) -> None:
        if self._listen_sockets is not None:
            await self._serve_sockets(self._listen_sockets)
            return
        handshake_timeout = self._handshake_timeout()
        for key, address in self.settings.listeners():
            protocol, _, kind = key.partition(".")
            implicit_tls = kind == "tls_listen"
            if implicit_tls and self._tls_context is None:
                raise ConfigError(f"no TLS certificate for {address} ('{key}')")
            try:
                server = await asyncio.start_server(
                    self._on_accept(implicit_tls, protocol),
                    host=address.host,
                    port=address.port,
                    ssl=self._tls_context if implicit_tls else None,
                    ssl_handshake_timeout=handshake_timeout if implicit_tls else None,
                    reuse_address=True,
                    start_serving=False,
                )
            except OSError as error:
                raise ListenError(_bind_failure(address, error)) from None
            self._servers.append(server)
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                self._bound.append(BoundAddress(host, port, implicit_tls, protocol))

    async def _serve_sockets(self, listen_sockets: Sequence[ListenSocket]) -> None:
        """Serve sockets bound elsewhere (by the supervisor, shared with other workers)."""
        handshake_timeout = self._handshake_timeout()
        for listen in listen_sockets:
            if listen.implicit_tls and self._tls_context is None:
                raise ConfigError(f"no TLS certificate for {_sock_address(listen.sock)}")
            server = await asyncio.start_server(
                self._on_accept(listen.implicit_tls, listen.protocol),
                sock=listen.sock,
                ssl=self._tls_context if listen.implicit_tls else None,
                ssl_handshake_timeout=handshake_timeout if listen.implicit_tls else None,
                start_serving=False,
            )
            self._servers.append(server)
            host, port = listen.sock.getsockname()[:2]
            self._bound.append(BoundAddress(host, port, listen.implicit_tls, listen.protocol))

    def _handshake_timeout(self) -> float:
        return max(10.0, min(60.0, self.settings.limits.imap.preauth_timeout))

    async def _close_listeners(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            # From Python 3.12 this also waits for open connections; they are
            # cancelled separately, so do not wait long here.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=1.0)

    def _on_accept(
        self, implicit_tls: bool, protocol: str
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], None]:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self._shutdown_started:
                writer.transport.abort()
                return
            _enable_keepalive(writer)
            remote_ip = _remote_ip(writer)
            key = address_key(remote_ip)
            if not self.coordination.ip_slots.acquire(key):
                limit = self.coordination.ip_slots.limit
                log.warning(
                    "connection refused ip=%s reason=too_many_connections limit=%d",
                    remote_ip,
                    limit,
                    extra={"event": "connection_refused", "ip": remote_ip, "limit": limit},
                )
                self._track(self._refuse(writer, protocol), writer)
                return
            coroutine = self._serve(reader, writer, key, remote_ip, implicit_tls, protocol)
            self._track(coroutine, writer)

        return accepted

    def _track(self, coroutine: Coroutine[Any, Any, None], writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._connections[task] = writer
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._connections.pop(task, None)

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        key: str,
        remote_ip: str,
        implicit_tls: bool,
        protocol: str,
    ) -> None:
        log.debug("%s connection from %s (tls=%s)", protocol, remote_ip, implicit_tls)
        try:
            if protocol == POP3:
                assert self._pop3_handler is not None and self._pop3_context is not None
                await self._pop3_handler(
                    reader, writer, self._pop3_context, tls_active=implicit_tls, remote_ip=remote_ip
                )
            else:
                assert self._handler is not None and self._context is not None
                await self._handler(
                    reader, writer, self._context, tls_active=implicit_tls, remote_ip=remote_ip
                )
        except asyncio.CancelledError:
            pass  # shutdown: the handler has said BYE where it could
        except (ConnectionError, ssl.SSLError, TimeoutError) as error:
            log.debug("connection from %s ended: %r", remote_ip, error)
        except Exception:
            log.exception("unhandled error in the connection from %s", remote_ip)
        finally:
            self.coordination.ip_slots.release(key)
            if not writer.is_closing():
                writer.close()

    async def _refuse(self, writer: asyncio.StreamWriter, protocol: str) -> None:
        try:
            writer.write(POP3_TOO_MANY_CONNECTIONS if protocol == POP3 else TOO_MANY_CONNECTIONS)
            await asyncio.wait_for(writer.drain(), _REFUSAL_WRITE_TIMEOUT)
        except (OSError, TimeoutError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _abort_connections(self) -> None:
        for writer in list(self._connections.values()):
            writer.transport.abort()


async def run_server(
    settings: Settings,
    *,
    handler: ConnectionHandler | None = None,
    store: Store | None = None,
    tls_context: ssl.SSLContext | None = None,
    ready: Callable[[list[BoundAddress]], None] | None = None,
    listen_sockets: Sequence[ListenSocket] | None = None,
    coordination: Coordination | None = None,
) -> None:
    """Start a server, call ``ready`` with the bound addresses, run until SIGTERM or
    SIGINT, and shut down gracefully. Raises ServerError/ConfigError when it cannot
    start. A store passed in is left open for the caller to close.

    As a worker (``coordination.worker`` set), SIGTERM and SIGINT only ever ask for a
    graceful shutdown, however often they come (the supervisor forwards what a process
    manager may also send to the whole group); SIGQUIT, which the supervisor sends on a
    second signal, closes every connection at once. Alone, a second SIGTERM or SIGINT
    does that."""
    server = Server(
        settings,
        store=store,
        handler=handler,
        tls_context=tls_context,
        listen_sockets=listen_sockets,
        coordination=coordination,
    )
    await server.start()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    handlers: list[tuple[signal.Signals, Callable[[str], None]]]
    if server.coordination.worker is None:
        handlers = [
            (signal.SIGTERM, server.request_shutdown),
            (signal.SIGINT, server.request_shutdown),
            (signal.SIGHUP, server.reload_tls),
        ]
    else:

        def graceful(reason: str) -> None:
            if not server.shutdown_requested:
                server.request_shutdown(reason)

        def abort(reason: str) -> None:
            if not server.shutdown_requested:
                server.request_shutdown(reason)
            server.request_shutdown(reason)  # a repeated request closes every connection

        handlers = [
            (signal.SIGTERM, graceful),
            (signal.SIGINT, graceful),
            (signal.SIGQUIT, abort),
            (signal.SIGHUP, server.reload_tls),
        ]
    for signum, callback in handlers:
        try:
            loop.add_signal_handler(signum, callback, signum.name)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread, or no signals on this platform
        installed.append(signum)
    try:
        if ready is not None:
            ready(server.bound_addresses)
        await server.serve_forever()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await server.shutdown()


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """Run ``main`` on uvloop when it is installed, else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def bind_listeners(settings: Settings, backlog: int = LISTEN_BACKLOG) -> list[ListenSocket]:
    """Bind and listen on every configured address, as ``Server.start`` does (address
    reuse, IPv6 sockets IPv6 only, every address a name resolves to); for the supervisor,
    whose workers share the sockets. All or none: raises ListenError naming the address."""
    bound: list[ListenSocket] = []
    try:
        for key, address in settings.listeners():
            protocol, _, kind = key.partition(".")
            for sock in _bind_address(address, backlog):
                bound.append(ListenSocket(sock, protocol, kind == "tls_listen"))
    except BaseException:
        for listen in bound:
            listen.sock.close()
        raise
    return bound


def _bind_address(address: ListenAddress, backlog: int) -> list[socket.socket]:
    try:
        infos = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise ListenError(f"cannot listen on {address}: {error.strerror}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, sockaddr in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError as error:
        for sock in sockets:
            sock.close()
        raise ListenError(_bind_failure(address, error)) from None
    return sockets


def _sock_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return str(BoundAddress(host, port, implicit_tls=False))


def _make_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def _default_handler() -> ConnectionHandler:
    from roost.imap.connection import serve_imap_connection

    return serve_imap_connection


def _default_pop3_handler() -> Pop3ConnectionHandler:
    from roost.pop3.connection import serve_pop3_connection

    return serve_pop3_connection


def _enable_keepalive(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):  # Linux; macOS has TCP_KEEPALIVE instead
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
        if hasattr(socket, "TCP_KEEPINTVL"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
        if hasattr(socket, "TCP_KEEPCNT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)
    except OSError as error:
        log.debug("cannot set TCP keepalive: %s", error)


def _remote_ip(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if not peer:
        return "unknown"
    host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host.split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
    return host


def _bind_failure(address: ListenAddress, error: OSError) -> str:
    reasons = {
        errno.EADDRINUSE: "the address is already in use",
        errno.EACCES: "permission denied (ports below 1024 need privileges)",
        errno.EADDRNOTAVAIL: "the address is not available on this host",
    }
    reason = reasons.get(error.errno or 0) or error.strerror or str(error)
    return f"cannot listen on {address}: {reason}"
