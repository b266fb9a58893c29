"""Listening sockets and the accept loop: what a ``Server`` (``app.py``) does with sockets.

``Listeners`` binds every configured address (or serves sockets the supervisor bound,
``bind_listeners``), accepts connections and runs each as a task through the ``serve``
callback it is given; it knows nothing of protocols beyond the name of each listener's.

Invariants:

* All listeners are bound before any accepts a connection; if one cannot be bound,
  ``bind`` raises ``ListenError`` naming the address (the caller closes what was bound).
* A client address (IPv6 by /64) never holds more than ``max_connections_per_ip``
  connections, IMAP and POP3 together (and, as a worker of several, across every
  worker: ``coordination.Coordination``), unless it lies in ``trusted_networks``; and
  this process never holds more than ``max_connections`` (``descriptors.py``). The
  next one is told ``* BYE [UNAVAILABLE] ...`` (POP3: ``-ERR [SYS/TEMP] ...``) naming
  the limit and closed, and that is logged.
* Both are counted at accept, before an implicit-TLS handshake: a client that opens
  sockets and never sends a ClientHello holds at most its address's share, each for
  at most ``tls_handshake_timeout`` seconds. (A refused implicit-TLS client is closed
  without a word: there is no TLS session to say it in.) The address's count may take
  a round trip (PostgreSQL, every node's: node_limits.py), so it is taken in the
  connection's task, before anything is read or written; while the database cannot
  be reached, connections are let in uncounted (they cannot sign in meanwhile).
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
from typing import Any, NamedTuple, TypeVar

from roost.auth.throttle import address_key
from roost.config import ConfigError, ListenAddress, Settings
from roost.observability import metrics
from roost.runtime.accept_balance import DEFER_SECONDS
from roost.runtime.coordination import Coordination
from roost.runtime.descriptors import connection_cap
from roost.runtime.unix_sockets import UnixSocketError, bind_unix_socket

# The logger keeps the name it had before app.py and listeners.py were one module,
# so log lines (and the filters people wrote for them) stay the same.
log = logging.getLogger("roost.server")

TOO_MANY_CONNECTIONS = (
    b"* BYE [UNAVAILABLE] Too many connections from your address (max_connections_per_ip)\r\n"
)
POP3_TOO_MANY_CONNECTIONS = (
    b"-ERR [SYS/TEMP] Too many connections from your address (max_connections_per_ip)\r\n"
)
SERVER_FULL = b"* BYE [UNAVAILABLE] Server connection limit reached (max_connections)\r\n"
POP3_SERVER_FULL = b"-ERR [SYS/TEMP] Server connection limit reached (max_connections)\r\n"
LMTP_TOO_MANY_CONNECTIONS = (
    b"421 4.7.0 Too many connections from your address (max_connections_per_ip)\r\n"
)
LMTP_SERVER_FULL = b"421 4.3.2 Server connection limit reached (max_connections)\r\n"

IMAP = "imap"
POP3 = "pop3"
LMTP = "lmtp"
HTTP = "http"  # the metrics/autoconfig listener (runtime/http.py), not a mail protocol
MANAGESIEVE = "managesieve"
MANAGESIEVE_FULL = b'BYE (TRYLATER) "Server connection limit reached"\r\n'
MANAGESIEVE_TOO_MANY = b'BYE (TRYLATER) "Too many connections from your address"\r\n'
SUBMISSION = "submission"  # RFC 6409 on 587, RFC 8314 implicit TLS on 465
_T = TypeVar("_T")

LOCAL_DELIVERY = "deliver"  # the private socket of ``roost deliver`` (lmtp/local.py)

# TCP keepalive on accepted sockets: first probe after a minute of silence, then every
# 15 s, give up after 4 — well inside the 5-15 minutes after which NATs forget a flow.
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 15
KEEPALIVE_COUNT = 4

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
    """The listening sockets of every address and a task per accepted connection.

    Every listening socket is accepted on by a task of its own (``_accept``), which
    hands each accepted socket to ``connect_accepted_socket`` only once it is counted:
    an asyncio server with ``ssl=`` calls back after the handshake, too late to count,
    and upgrading an accepted plain stream races the ClientHello into the plain buffer
    (uvloop starts reading before any callback could pause it)."""

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
        self._sockets: list[ListenSocket] = []  # each accepted by an ``_accept`` task
        self._accept_tasks: list[asyncio.Task[None]] = []
        self._bound: list[BoundAddress] = []
        # A writer once the connection has one (after the handshake, for implicit TLS).
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter | None] = {}
        self._closing = False
        self._unix_paths: list[str] = []  # socket files this process made (not a worker)
        self._tls_context: ssl.SSLContext | None = None
        self.max_connections = 0  # set by bind (descriptors.connection_cap)
        self._open = 0  # connections counted and not yet ended (refusals are not)

    @property
    def bound_addresses(self) -> list[BoundAddress]:
        return list(self._bound)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def bind(self, tls_context: ssl.SSLContext | None) -> None:
        """Bind every listener (not yet accepting); implicit-TLS ones use ``tls_context``.
        Raises ConfigError when ``max_connections`` does not fit the descriptor limit."""
        self.max_connections = connection_cap(self.settings.limits.max_connections)
        self._tls_context = tls_context
        if self._listen_sockets is not None:
            await self._serve_sockets(self._listen_sockets, tls_context)
            return
        for key, address in self.settings.listeners():
            protocol, _, kind = key.partition(".")
            implicit_tls = kind == "tls_listen"
            if implicit_tls and tls_context is None:
                raise ConfigError(f"no TLS certificate for {address} ('{key}')")
            for sock in _bind_address(address, LISTEN_BACKLOG):
                self._add_socket(ListenSocket(sock, protocol, implicit_tls))
        try:
            unix_sockets = bind_unix_listeners(self.settings)
        except BaseException:
            await self.close()
            raise
        for listen in unix_sockets:
            await self._serve_sockets([listen], tls_context)
            self._unix_paths.append(listen.path)

    async def start_serving(self) -> None:
        loop = asyncio.get_running_loop()
        for listen in self._sockets:
            self._accept_tasks.append(loop.create_task(self._accept(listen)))

    async def close(self) -> None:
        """Stop accepting: close every listening socket (open connections stay)."""
        self._closing = True
        accepting, self._accept_tasks = self._accept_tasks, []
        for task in accepting:
            task.cancel()
        if accepting:
            await asyncio.wait(accepting)
        sockets, self._sockets = self._sockets, []
        for listen in sockets:
            listen.sock.close()
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
                _, stuck = await asyncio.wait(pending, timeout=1.0)
                for task in stuck:  # its socket is gone: no longer a connection
                    self._connections.pop(task, None)

    def abort_connections(self) -> None:
        for task, writer in list(self._connections.items()):
            if writer is not None:
                writer.transport.abort()
            else:
                task.cancel()  # still in its TLS handshake

    async def _serve_sockets(
        self, listen_sockets: Sequence[ListenSocket], tls_context: ssl.SSLContext | None
    ) -> None:
        """Serve sockets bound elsewhere (by the supervisor, shared with other workers)."""
        for listen in listen_sockets:
            if listen.implicit_tls and tls_context is None:
                raise ConfigError(f"no TLS certificate for {_sock_address(listen.sock)}")
            self._add_socket(listen)

    def _add_socket(self, listen: ListenSocket) -> None:
        self._sockets.append(listen)
        if listen.protocol == LOCAL_DELIVERY:  # internal: not a listener to report
            log.debug("roost deliver socket at %s", bound_address(listen))
        else:
            self._bound.append(bound_address(listen))

    def _admit(self) -> bool:
        """Count one more connection of this process, unless at ``max_connections``."""
        if self._open >= self.max_connections:
            return False
        self._open += 1
        return True

    async def _admit_address(self, remote_ip: str) -> tuple[bool, str | None]:
        """Count one more connection from ``remote_ip``: (admitted, the address slot's
        key, or None when not counted per address)."""
        if self.settings.limits.is_trusted(remote_ip):
            return True, None
        key = address_key(remote_ip)
        try:
            if await self.coordination.ip_slots.acquire(key):
                return True, key
        except Exception as error:  # the store's: unreachable, or failing
            log.warning("connection from %s not counted per address: %r", remote_ip, error)
            return True, None
        return False, None

    async def _count_then_serve(
        self, conn: socket.socket, remote_ip: str, protocol: str, admitted: bool
    ) -> None:
        """A plain connection: refused when this process is full (``admitted`` false),
        else counted per address, then served."""
        try:
            reader, writer = await self._streams(conn, tls=False)
        except BaseException:
            conn.close()
            if admitted:
                self._open -= 1
            raise
        if not admitted:
            self._refuse(writer, remote_ip, "max_connections", protocol)
            return
        try:
            admitted, key = await self._admit_address(remote_ip)
        except BaseException:
            self._open -= 1
            writer.transport.abort()
            raise
        if not admitted:
            self._open -= 1
            self._refuse(writer, remote_ip, "max_connections_per_ip", protocol)
            return
        await self._serve(reader, writer, key, remote_ip, False, protocol)

    def _refuse(
        self, writer: asyncio.StreamWriter, remote_ip: str, refused_by: str, protocol: str
    ) -> None:
        self._log_refusal(remote_ip, refused_by, protocol)
        writer.write(_refusal(protocol, refused_by))
        writer.close()  # the line fits a fresh socket's buffer: freed at once

    async def _accept(self, listen: ListenSocket) -> None:
        """Accept connections one per turn of the event loop, then hand each over: a
        plain one to ``_count_then_serve``, an implicit-TLS one to ``_handshake``.

        One at a time, not every pending one at once (as asyncio's and libuv's servers
        do), and after a look at the other workers' load (``accept_balance.py``): the
        workers share each listening socket, and a burst of connections then spreads
        over them instead of landing on the first to wake."""
        balance = self.coordination.accept_balance
        while True:
            await _readable(listen.sock)
            if balance is not None and balance.should_defer():
                await asyncio.sleep(DEFER_SECONDS)  # a less busy worker may take it
            try:
                conn, peer = listen.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue  # another worker took it, or the client gave up
            except OSError as error:
                # EMFILE, ENFILE, ENOBUFS: wait a moment rather than spin, as asyncio does.
                log.warning("accept failed on %s: %s", _sock_address(listen.sock), error)
                await asyncio.sleep(1.0)
                continue
            conn.setblocking(False)
            if self._closing:
                conn.close()
                return
            remote_ip = _remote_ip(peer)
            admitted = self._admit()
            if listen.implicit_tls and not admitted:
                # No TLS session to say it in: closed without a word, and logged.
                self._log_refusal(remote_ip, "max_connections", listen.protocol)
                conn.close()
                continue
            _enable_keepalive(conn)
            if listen.implicit_tls:
                self._track(self._handshake(conn, remote_ip, listen.protocol))
            else:
                self._track(self._count_then_serve(conn, remote_ip, listen.protocol, admitted))

    async def _handshake(self, conn: socket.socket, remote_ip: str, protocol: str) -> None:
        """An accepted socket, counted per process: count it per address, then the TLS
        handshake, then the connection."""
        assert self._tls_context is not None  # bind refuses TLS listeners without one
        try:
            admitted, key = await self._admit_address(remote_ip)
        except BaseException:
            self._open -= 1
            conn.close()
            raise
        if not admitted:
            self._open -= 1
            self._log_refusal(remote_ip, "max_connections_per_ip", protocol)
            conn.close()
            return
        try:
            reader, writer = await self._streams(conn, tls=True)
        except BaseException as error:
            conn.close()
            self._open -= 1
            if key is not None:
                self.coordination.ip_slots.release(key)
            if isinstance(error, ConnectionError | ssl.SSLError | TimeoutError | OSError):
                log.debug("TLS handshake from %s failed: %r", remote_ip, error)
                return
            if isinstance(error, asyncio.CancelledError):
                return
            raise
        await self._serve(reader, writer, key, remote_ip, True, protocol)

    async def _streams(
        self, conn: socket.socket, *, tls: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Streams over an accepted socket (after the TLS handshake, with ``tls``), the
        writer filed as this task's connection. The protocol is made with a "connected"
        callback, as asyncio's servers make it: it then knows it is the server side,
        which StreamWriter.start_tls (STARTTLS) asks."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        connected: asyncio.Future[asyncio.StreamWriter] = loop.create_future()
        stream = asyncio.StreamReaderProtocol(reader, lambda _, w: _wake(connected, w))
        if tls:
            await loop.connect_accepted_socket(
                lambda: stream,
                conn,
                ssl=self._tls_context,
                ssl_handshake_timeout=self.settings.limits.tls_handshake_timeout,
            )
        else:
            await loop.connect_accepted_socket(lambda: stream, conn)
        writer = await connected
        task = asyncio.current_task()
        if task in self._connections:
            self._connections[task] = writer
        return reader, writer

    def _track(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run one connection as a task; its writer is filed once it has one."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._connections[task] = None
        self._publish_load()
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._connections.pop(task, None)
        self._publish_load()

    def _publish_load(self) -> None:
        if self.coordination.accept_balance is not None:
            self.coordination.accept_balance.publish(len(self._connections))

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        key: str | None,
        remote_ip: str,
        implicit_tls: bool,
        protocol: str,
    ) -> None:
        log.debug("%s connection from %s (tls=%s)", protocol, remote_ip, implicit_tls)
        metrics.CONNECTIONS_TOTAL.labels(protocol, "accepted").inc()
        open_now = metrics.CONNECTIONS.labels(protocol)
        open_now.inc()
        try:
            await self._serve_connection(reader, writer, protocol, implicit_tls, remote_ip)
        except asyncio.CancelledError:
            pass  # shutdown: the handler has said BYE where it could
        except (ConnectionError, ssl.SSLError, TimeoutError) as error:
            log.debug("connection from %s ended: %r", remote_ip, error)
        except Exception:
            log.exception("unhandled error in the connection from %s", remote_ip)
        finally:
            open_now.dec()
            self._open -= 1
            if key is not None:
                self.coordination.ip_slots.release(key)
            if not writer.is_closing():
                writer.close()

    def _log_refusal(self, remote_ip: str, refused_by: str, protocol: str) -> None:
        metrics.CONNECTIONS_TOTAL.labels(protocol, "refused").inc()
        limit = (
            self.max_connections
            if refused_by == "max_connections"
            else self.coordination.ip_slots.limit
        )
        log.warning(
            "connection refused ip=%s reason=%s limit=%d",
            remote_ip,
            refused_by,
            limit,
            extra={
                "event": "connection_refused",
                "ip": remote_ip,
                "reason": refused_by,
                "limit": limit,
            },
        )


def _refusal(protocol: str, refused_by: str) -> bytes:
    full = refused_by == "max_connections"
    if protocol == POP3:
        return POP3_SERVER_FULL if full else POP3_TOO_MANY_CONNECTIONS
    if protocol in (LMTP, LOCAL_DELIVERY, SUBMISSION):
        return LMTP_SERVER_FULL if full else LMTP_TOO_MANY_CONNECTIONS
    if protocol == MANAGESIEVE:
        return MANAGESIEVE_FULL if full else MANAGESIEVE_TOO_MANY
    return SERVER_FULL if full else TOO_MANY_CONNECTIONS


def bind_listeners(
    settings: Settings, backlog: int = LISTEN_BACKLOG, *, unix: bool = True
) -> list[ListenSocket]:
    """Bind and listen on every configured address, as ``Server.start`` does (address
    reuse, IPv6 sockets IPv6 only, every address a name resolves to); for the supervisor,
    whose workers share the sockets. All or none: raises ListenError naming the address.
    ``unix=False`` leaves out the Unix sockets (bound after dropping root, so that the
    files are the serving user's)."""
    bound: list[ListenSocket] = []
    try:
        for key, address in settings.listeners():
            protocol, _, kind = key.partition(".")
            for sock in _bind_address(address, backlog):
                bound.append(ListenSocket(sock, protocol, kind == "tls_listen"))
        if unix:
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


async def _readable(sock: socket.socket) -> None:
    """Wait until ``sock`` has a connection to accept, without accepting it."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, _wake, ready, None)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _wake(future: asyncio.Future[_T], value: _T) -> None:
    if not future.done():
        future.set_result(value)


def _sock_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return str(BoundAddress(host, port, implicit_tls=False))


def _enable_keepalive(sock: socket.socket | None) -> None:
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


def _remote_ip(peer: Any) -> str:
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
