"""Listening sockets and the accept loop: what a ``Server`` (``app.py``) does with sockets.

``Listeners`` binds every configured address (or serves sockets the supervisor bound,
``bind_listeners``), accepts connections and runs each as a task through the ``serve``
callback it is given; it knows nothing of protocols beyond the name of each listener's.

Invariants:

* All listeners are bound before any accepts a connection; if one cannot be bound,
  ``bind`` raises ``ListenError`` naming the address (the caller closes what was bound).
* A client address (IPv6 by /64) never holds more than ``max_connections_per_ip``
  connections, IMAP and POP3 together (and, as a worker of several, across every
  worker: ``coordination.Coordination``): the next one is told ``* BYE [UNAVAILABLE]
  ...`` (POP3: ``-ERR [SYS/TEMP] ...``) and closed, and that is logged.
* Every accepted socket has TCP keepalive on (CLIENTS.md: idling clients behind NAT).
* Once ``close`` has begun, a connection still accepted is aborted at once.
* LMTP listeners may be Unix sockets (``unix_sockets.py``), bound with the rest and
  removed by whoever created them; the private socket of ``roost deliver``
  (``LOCAL_DELIVERY``) is bound alongside but not reported as a listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, NamedTuple

from roost.auth.throttle import address_key
from roost.config import ConfigError, ListenAddress, Settings
from roost.runtime.coordination import Coordination
from roost.runtime.unix_sockets import UnixSocketError, bind_unix_socket

# The logger keeps the name it had before app.py and listeners.py were one module,
# so log lines (and the filters people wrote for them) stay the same.
log = logging.getLogger("roost.server")

TOO_MANY_CONNECTIONS = b"* BYE [UNAVAILABLE] Too many connections from your address\r\n"
POP3_TOO_MANY_CONNECTIONS = b"-ERR [SYS/TEMP] Too many connections from your address\r\n"
LMTP_TOO_MANY_CONNECTIONS = b"421 4.7.0 Too many connections from your address\r\n"

IMAP = "imap"
POP3 = "pop3"
LMTP = "lmtp"
LOCAL_DELIVERY = "deliver"  # the private socket of ``roost deliver`` (lmtp/local.py)

# TCP keepalive on accepted sockets: first probe after a minute of silence, then every
# 15 s, give up after 4 — well inside the 5-15 minutes after which NATs forget a flow.
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 15
KEEPALIVE_COUNT = 4

# Seconds a refused client gets to receive its BYE before the socket is dropped.
_REFUSAL_WRITE_TIMEOUT = 5.0

# Pending connections per listening socket (the kernel caps it at somaxconn).
LISTEN_BACKLOG = 511

# serve(reader, writer, protocol, implicit_tls, remote_ip): one accepted connection.
Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter, str, bool, str], Awaitable[None]]


class ServerError(Exception):
    """The server cannot start; the message is one line naming the cause."""


class ListenError(ServerError):
    """A listen address cannot be bound (in use, not permitted, not local)."""


class BoundAddress(NamedTuple):
    host: str
    port: int  # the real port, also when 0 was configured
    implicit_tls: bool  # True: TLS from the first byte (993, 995); False: plain + STARTTLS
    protocol: str = IMAP  # IMAP, POP3 or LMTP

    def __str__(self) -> str:
        if self.host.startswith("unix:"):  # a Unix socket: host is "unix:PATH", port 0
            return self.host
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class ListenSocket(NamedTuple):
    """A bound, listening, non-blocking socket and what it serves."""

    sock: socket.socket
    protocol: str  # IMAP, POP3 or LMTP
    implicit_tls: bool
    path: str = ""  # a Unix socket's file, where it was created


class Listeners:
    """The asyncio servers of every listen address and a task per accepted connection."""

    def __init__(
        self,
        settings: Settings,
        coordination: Coordination,
        serve: Serve,
        listen_sockets: Sequence[ListenSocket] | None = None,
    ) -> None:
        self.settings = settings
        self.coordination = coordination
        self._serve_connection = serve
        self._listen_sockets = list(listen_sockets) if listen_sockets is not None else None
        self._servers: list[asyncio.Server] = []
        self._bound: list[BoundAddress] = []
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._closing = False
        self._unix_paths: list[str] = []  # socket files this process made (not a worker)

    @property
    def bound_addresses(self) -> list[BoundAddress]:
        return list(self._bound)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def bind(self, tls_context: ssl.SSLContext | None) -> None:
        """Bind every listener (not yet accepting); implicit-TLS ones use ``tls_context``."""
        if self._listen_sockets is not None:
            await self._serve_sockets(self._listen_sockets, tls_context)
            return
        handshake_timeout = self._handshake_timeout()
        for key, address in self.settings.listeners():
            protocol, _, kind = key.partition(".")
            implicit_tls = kind == "tls_listen"
            if implicit_tls and tls_context is None:
                raise ConfigError(f"no TLS certificate for {address} ('{key}')")
            try:
                server = await asyncio.start_server(
                    self._on_accept(implicit_tls, protocol),
                    host=address.host,
                    port=address.port,
                    ssl=tls_context if implicit_tls else None,
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
        try:
            unix_sockets = bind_unix_listeners(self.settings)
        except BaseException:
            await self.close()
            raise
        for listen in unix_sockets:
            await self._serve_sockets([listen], tls_context)
            self._unix_paths.append(listen.path)

    async def start_serving(self) -> None:
        for server in self._servers:
            await server.start_serving()

    async def close(self) -> None:
        """Stop accepting: close every listening socket (open connections stay)."""
        self._closing = True
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            # From Python 3.12 this also waits for open connections; they are
            # cancelled separately, so do not wait long here.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=1.0)
        paths, self._unix_paths = self._unix_paths, []
        for path in paths:
            with contextlib.suppress(OSError):
                os.unlink(path)

    async def end_connections(self, grace: float) -> None:
        """Cancel every connection task, give them ``grace`` seconds, abort the rest."""
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            if pending:
                log.warning("%d connections did not close in time; dropping them", len(pending))
                self.abort_connections()
                await asyncio.wait(pending, timeout=1.0)

    def abort_connections(self) -> None:
        for writer in list(self._connections.values()):
            writer.transport.abort()

    async def _serve_sockets(
        self, listen_sockets: Sequence[ListenSocket], tls_context: ssl.SSLContext | None
    ) -> None:
        """Serve sockets bound elsewhere (by the supervisor, shared with other workers)."""
        handshake_timeout = self._handshake_timeout()
        for listen in listen_sockets:
            if listen.implicit_tls and tls_context is None:
                raise ConfigError(f"no TLS certificate for {_sock_address(listen.sock)}")
            server = await asyncio.start_server(
                self._on_accept(listen.implicit_tls, listen.protocol),
                sock=listen.sock,
                ssl=tls_context if listen.implicit_tls else None,
                ssl_handshake_timeout=handshake_timeout if listen.implicit_tls else None,
                start_serving=False,
            )
            self._servers.append(server)
            if listen.protocol == LOCAL_DELIVERY:  # internal: not a listener to report
                log.debug("roost deliver socket at %s", bound_address(listen))
            else:
                self._bound.append(bound_address(listen))

    def _handshake_timeout(self) -> float:
        return max(10.0, min(60.0, self.settings.limits.imap.preauth_timeout))

    def _on_accept(
        self, implicit_tls: bool, protocol: str
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], None]:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self._closing:
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
            await self._serve_connection(reader, writer, protocol, implicit_tls, remote_ip)
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
            refusals = {POP3: POP3_TOO_MANY_CONNECTIONS, LMTP: LMTP_TOO_MANY_CONNECTIONS}
            writer.write(refusals.get(protocol, TOO_MANY_CONNECTIONS))
            await asyncio.wait_for(writer.drain(), _REFUSAL_WRITE_TIMEOUT)
        except (OSError, TimeoutError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


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
        bound.extend(bind_unix_listeners(settings, backlog))
    except BaseException:
        for listen in bound:
            listen.sock.close()
        raise
    return bound


def bind_unix_listeners(settings: Settings, backlog: int = LISTEN_BACKLOG) -> list[ListenSocket]:
    """The LMTP Unix sockets (``Settings.unix_listeners``); all or none."""
    bound: list[ListenSocket] = []
    try:
        for address, mode, group in settings.unix_listeners():
            try:
                sock = bind_unix_socket(address.path, mode, group, backlog)
            except UnixSocketError as error:
                if address.path != settings.private_lmtp_socket:
                    raise ListenError(str(error)) from None
                # Not fatal: ``roost deliver`` then writes to the store itself, and
                # sessions hear of its messages at their next command, not at once.
                log.warning("no private LMTP socket for roost deliver: %s", error)
                continue
            private = address.path == settings.private_lmtp_socket
            protocol = LOCAL_DELIVERY if private else LMTP
            bound.append(ListenSocket(sock, protocol, False, str(address.path)))
    except BaseException:
        for listen in bound:
            listen.sock.close()
            with contextlib.suppress(OSError):
                os.unlink(listen.path)
        raise
    return bound


def bound_address(listen: ListenSocket) -> BoundAddress:
    """What a listening socket is bound to (a Unix socket: ``unix:PATH``, port 0)."""
    name = listen.sock.getsockname()
    if isinstance(name, str | bytes):
        path = listen.path or os.fsdecode(name)
        return BoundAddress(f"unix:{path}", 0, listen.implicit_tls, listen.protocol)
    return BoundAddress(name[0], name[1], listen.implicit_tls, listen.protocol)


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
