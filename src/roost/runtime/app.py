"""The server around sessions, wired from settings: store, TLS, contexts, signals.

``Server`` owns everything a running Roost has: the store (unless given one), the
``ImapContext`` and ``Pop3Context`` shared by every connection of their protocol (and
one ``AccountConnections`` shared by both), its ``Listeners`` (``listeners.py``: the
sockets and a task per connection), and the shutdown. It does no protocol work: each
accepted connection is handed to the connection handler of its listener's protocol
(``roost.imap.connection.serve_imap_connection`` and
``roost.pop3.connection.serve_pop3_connection`` by default).

Invariants:

* All listeners are bound before any accepts a connection; if one cannot be bound,
  none is left open and ``start`` raises ``ListenError`` naming the address.
* ``shutdown`` stops accepting, cancels every connection task (the handler answers
  cancellation with ``* BYE Server shutting down``, POP3 with ``-ERR``), waits
  ``server.shutdown_timeout`` seconds, aborts what is left, then closes the store it
  opened. It is idempotent.

As one worker of several (``supervisor.py``), a ``Server`` is given listening sockets
that the supervisor bound (``listeners.bind_listeners``) instead of binding its own, and
a shared ``Coordination``; everything else is the same. On a store shared by several
nodes (PostgreSQL), the connection limits and POP3 locks are counted in the store
(``node_limits.py``) from ``start`` until ``shutdown`` has ended every connection.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, Protocol, TypeVar

from roost.auth.base import Authenticator
from roost.config import ConfigError, Settings
from roost.imap.context import ImapContext
from roost.lmtp.context import LmtpContext
from roost.managesieve.context import ManageSieveContext
from roost.observability import metrics, sd_notify
from roost.observability.sessions import SessionRegistry
from roost.pop3.context import Pop3Context
from roost.runtime import contexts
from roost.runtime import reload as config_reload
from roost.runtime.control import ControlServer, server_handlers, socket_name
from roost.runtime.coordination import RUN_DIR, Coordination
from roost.runtime.http import HttpApp, HttpListener, client_settings
from roost.runtime.listeners import (
    HTTP,
    IMAP,
    LMTP,
    LOCAL_DELIVERY,
    MANAGESIEVE,
    POP3,
    SUBMISSION,
    BoundAddress,
    Listeners,
    ListenSocket,
)
from roost.runtime.node_limits import NodeSlotStore, NodeStore
from roost.runtime.opening import build_tls_context, open_store
from roost.runtime.tls import TlsError, reload_certificate
from roost.store.base import Store
from roost.submission.context import SubmissionContext

log = logging.getLogger("roost.server")

_T = TypeVar("_T")

READY_TIMEOUT = 2.0  # seconds the store has to answer /readyz


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
        reload_settings: Callable[[], Settings] | None = None,
    ) -> None:
        self.settings = settings
        self._reload_settings = reload_settings  # reads the configuration again (SIGHUP)
        self._store = store
        self._owns_store = store is None
        self._handler = handler
        self._pop3_handler = pop3_handler
        self._authenticator = authenticator
        self._tls_context = tls_context
        self._context: ImapContext | None = None
        self._pop3_context: Pop3Context | None = None
        self._lmtp_context: LmtpContext | None = None
        self._managesieve_context: ManageSieveContext | None = None
        self._submission_context: SubmissionContext | None = None
        self.coordination = coordination or Coordination.local(settings.limits)
        self._listeners = Listeners(settings, self.coordination, self._serve, listen_sockets)
        self._http: HttpListener | None = None
        self._stop_requested = asyncio.Event()
        self._shutdown_started = False
        self._shutdown_done = asyncio.Event()
        # Live sessions of this process, for `roost who` and `kick` (control socket).
        self.sessions = SessionRegistry(self.coordination.worker)
        self._control: ControlServer | None = None
        # A store shared by several nodes: its count of their connections.
        self._node_slots: NodeSlotStore | None = None

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
        http = [] if self._http is None else self._http.bound
        return self._listeners.bound_addresses + [
            BoundAddress(host, port, False, HTTP) for host, port in http
        ]

    def address(self, *, implicit_tls: bool = False, protocol: str = IMAP) -> tuple[str, int]:
        """(host, port) of the first listener of that kind: handy for tests."""
        for bound in self._listeners.bound_addresses:
            if bound.implicit_tls == implicit_tls and bound.protocol == protocol:
                return bound.host, bound.port
        kind = "implicit TLS" if implicit_tls else "plain"
        raise LookupError(f"no {kind} {protocol.upper()} listener")

    @property
    def connection_count(self) -> int:
        return self._listeners.connection_count

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
            self._store = await open_store(
                settings.server.data_dir,
                quota=settings.quota.limits,
                limits=settings.limits,
                special_folders=settings.imap.special_use_names,
                url=settings.store.postgresql_url,
                fsync=settings.store.fsync,
            )
        try:
            if isinstance(self._store, NodeStore):
                self._node_slots = await self._store.node_slots(settings.store.node_lease)
                self.coordination = self.coordination.across_nodes(
                    self._node_slots, settings.limits
                )
                self._listeners.coordination = self.coordination
            imap = contexts.imap_context(
                settings,
                self._store,
                self._authenticator,
                self._tls_context,
                self.coordination,
                self.sessions,
            )
            self._context = imap
            self._pop3_context = contexts.pop3_context(
                settings, imap, self._tls_context, self.coordination, self.sessions
            )
            self._lmtp_context = contexts.lmtp_context(settings, imap)
            self._managesieve_context = contexts.managesieve_context(
                settings, imap, self._tls_context
            )
            self._submission_context = contexts.submission_context(
                settings, imap, self._tls_context
            )
            await self._listeners.bind(self._tls_context)
        except BaseException:
            await self._listeners.close()
            await self._close_node_slots()
            if self._owns_store:
                await self._store.close()
            raise
        await self._listeners.start_serving()
        for bound in self._listeners.bound_addresses:
            log.info("listening on %s (%s)", bound, self._kind(bound))
        await self._start_control()
        self._warn_about_sign_in()
        if settings.http.listen and self.coordination.worker is None:
            # With several workers the supervisor serves HTTP, merging their metrics.
            app = HttpApp(metrics.exposition, self.ready, client_settings(settings))
            self._http = HttpListener(app)
            try:
                await self._http.start(settings.http.listen)
            except BaseException:
                await self.shutdown()
                raise

    async def ready(self) -> bool:
        """/readyz: listening, not shutting down, and the store answers promptly."""
        if self._stop_requested.is_set() or self._store is None:
            return False
        try:
            await asyncio.wait_for(self._store.instance_secret(), READY_TIMEOUT)
        except Exception:
            log.warning("readiness check: the store did not answer", exc_info=True)
            return False
        return True

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

    def reload(self, reason: str = "SIGHUP") -> None:
        """Read the configuration again and apply what can change without dropping a
        session (runtime/reload.py); without a way to read it, reload the certificate."""
        if self.coordination.worker is None:
            sd_notify.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            if self._reload_settings is None:
                self.reload_tls(reason)
                return
            try:
                new = self._reload_settings()
            except ConfigError as error:
                log.warning("%s: configuration not reloaded, the old one stays: %s", reason, error)
                return
            config_reload.apply(self, new, reason)
        finally:
            if self.coordination.worker is None:
                sd_notify.notify("READY=1")

    @property
    def worker(self) -> int | None:
        return self.coordination.worker

    def apply_limits(self, settings: Settings) -> None:
        """New protocol limits for connections accepted from now on."""
        self.context.limits = settings.imap_limits()
        self.pop3_context.limits = settings.limits.pop3

    def apply_delivery(self, settings: Settings) -> None:
        """New delivery settings ([delivery], [sieve], LMTP's limits, over-quota replies)
        for LMTP connections and ``roost deliver`` hand-overs accepted from now on."""
        if self._lmtp_context is not None:
            self._lmtp_context = contexts.lmtp_context(settings, self.context)

    def default_quota_store(self) -> config_reload.DefaultQuotaStore | None:
        store = self._store
        return store if isinstance(store, config_reload.DefaultQuotaStore) else None

    def request_shutdown(self, reason: str = "requested") -> None:
        if self._stop_requested.is_set():
            log.warning("shutdown %s again: closing every connection now", reason)
            self._listeners.abort_connections()
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
            if self._http is not None:
                await self._http.close()
            if self._control is not None:
                await self._control.close()
            await self._listeners.close()
            await self._listeners.end_connections(self.settings.server.shutdown_timeout)
            await self._close_node_slots()
            if self._owns_store and self._store is not None:
                await self._store.close()
        finally:
            self._shutdown_done.set()
        log.info("stopped")

    async def _close_node_slots(self) -> None:
        """Give back every slot of this node at once (not at the lease's end)."""
        if self._node_slots is not None:
            slots, self._node_slots = self._node_slots, None
            await slots.close()

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

    async def _start_control(self) -> None:
        """The control socket (runtime/control.py); without it the server still serves."""
        worker = self.coordination.worker
        path = self.settings.server.data_dir / RUN_DIR / socket_name(worker)
        control = ControlServer(path, server_handlers(self.sessions, self.store), worker=worker)
        try:
            await control.start()
        except OSError as error:
            log.warning("no control socket (roost who, kick, mailbox): %s: %s", path, error)
            return
        self._control = control

    def _kind(self, bound: BoundAddress) -> str:
        if bound.protocol == HTTP:
            return "HTTP"
        if bound.protocol == LMTP:
            return "LMTP"
        if bound.protocol == MANAGESIEVE:
            return "ManageSieve"
        if bound.protocol == SUBMISSION:
            return "submission over TLS" if bound.implicit_tls else "submission with STARTTLS"
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

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        protocol: str,
        implicit_tls: bool,
        remote_ip: str,
    ) -> None:
        """Hand one accepted connection to its protocol's handler (``Listeners`` calls it)."""
        if protocol == LMTP:
            assert self._lmtp_context is not None
            await serve_lmtp_connection(reader, writer, self._lmtp_context, remote_ip=remote_ip)
        elif protocol == SUBMISSION:
            assert self._submission_context is not None
            from roost.submission.connection import serve_submission_connection

            await serve_submission_connection(
                reader,
                writer,
                self._submission_context,
                tls_active=implicit_tls,
                remote_ip=remote_ip,
            )
        elif protocol == LOCAL_DELIVERY:
            assert self._lmtp_context is not None
            from roost.lmtp.local import serve_local_delivery

            await serve_local_delivery(reader, writer, self._lmtp_context)
        elif protocol == MANAGESIEVE:
            assert self._managesieve_context is not None
            from roost.managesieve.connection import serve_managesieve_connection

            await serve_managesieve_connection(
                reader, writer, self._managesieve_context, remote_ip=remote_ip
            )
        elif protocol == POP3:
            assert self._pop3_handler is not None and self._pop3_context is not None
            await self._pop3_handler(
                reader, writer, self._pop3_context, tls_active=implicit_tls, remote_ip=remote_ip
            )
        else:
            assert self._handler is not None and self._context is not None
            await self._handler(
                reader, writer, self._context, tls_active=implicit_tls, remote_ip=remote_ip
            )


async def run_server(
    settings: Settings,
    *,
    handler: ConnectionHandler | None = None,
    store: Store | None = None,
    tls_context: ssl.SSLContext | None = None,
    ready: Callable[[list[BoundAddress]], None] | None = None,
    listen_sockets: Sequence[ListenSocket] | None = None,
    coordination: Coordination | None = None,
    reload_settings: Callable[[], Settings] | None = None,
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
        reload_settings=reload_settings,
    )
    await server.start()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    handlers: list[tuple[signal.Signals, Callable[[str], None]]]
    if server.coordination.worker is None:
        handlers = [
            (signal.SIGTERM, server.request_shutdown),
            (signal.SIGINT, server.request_shutdown),
            (signal.SIGHUP, server.reload),
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
            (signal.SIGHUP, server.reload),
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


def _default_handler() -> ConnectionHandler:
    from roost.imap.connection import serve_imap_connection

    return serve_imap_connection


async def serve_lmtp_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: LmtpContext,
    *,
    remote_ip: str,
) -> None:
    from roost.lmtp.connection import serve_lmtp_connection as serve

    await serve(reader, writer, context, remote_ip=remote_ip)


def _default_pop3_handler() -> Pop3ConnectionHandler:
    from roost.pop3.connection import serve_pop3_connection

    return serve_pop3_connection
