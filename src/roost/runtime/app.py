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
a shared ``Coordination``; everything else is the same.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

from roost.auth.authenticator import StoreAuthenticator
from roost.auth.base import Authenticator
from roost.auth.known_addresses import StoreKnownAddresses
from roost.auth.throttle import LoginThrottle
from roost.config import ConfigError, LimitSettings, Settings
from roost.imap.context import ImapContext
from roost.lmtp.context import LmtpContext
from roost.pop3.context import Pop3Context
from roost.runtime.coordination import Coordination
from roost.runtime.data_dir import DataDirError, secure_data_dir, sweep_spool
from roost.runtime.listeners import (
    IMAP,
    LMTP,
    LOCAL_DELIVERY,
    POP3,
    BoundAddress,
    Listeners,
    ListenSocket,
    ServerError,
)
from roost.runtime.tls import TlsError, ensure_self_signed, reload_certificate, server_context
from roost.store.base import QuotaLimits, Store, StoreError
from roost.store.events import EventHub
from roost.store.values import DEFAULT_SPECIAL_FOLDERS

log = logging.getLogger("roost.server")

_T = TypeVar("_T")


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


async def open_store(
    data_dir: Path,
    *,
    hub: EventHub | None = None,
    quota: QuotaLimits | None = None,
    limits: LimitSettings | None = None,
    special_folders: Sequence[tuple[str, str]] = DEFAULT_SPECIAL_FOLDERS,
) -> Store:
    """Open the store in ``data_dir``, creating the directory (mode 0700) if needed, or
    making an existing one private (``data_dir.secure_data_dir``); its change events go
    through ``hub`` when given (a worker's, linked to the others). ``quota`` is every
    account's default limits (``[quota]``; None: unlimited). From ``limits``: how long a
    write waits for another process's, how deep messages are analysed.
    ``special_folders``: a new account's folders besides INBOX (``[imap]
    special_use_names``)."""
    from roost.store.sqlite import SqliteStore

    try:
        _make_private_dir(data_dir)
        secure_data_dir(data_dir)
        if limits is None:
            return await SqliteStore.open(
                data_dir, hub=hub, quota=quota or QuotaLimits(), special_folders=special_folders
            )
        return await SqliteStore.open(
            data_dir,
            hub=hub,
            quota=quota or QuotaLimits(),
            busy_timeout=limits.store_busy_timeout,
            mime_limits=limits.mime_limits(),
            special_folders=special_folders,
        )
    except DataDirError as error:
        raise ServerError(str(error)) from None
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
        self._lmtp_context: LmtpContext | None = None
        self.coordination = coordination or Coordination.local(settings.limits)
        self._listeners = Listeners(settings, self.coordination, self._serve, listen_sockets)
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
        return self._listeners.bound_addresses

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
            )
        try:
            self._context = self._build_context(self._store)
            self._pop3_context = self._build_pop3_context(self._context)
            self._lmtp_context = self._build_lmtp_context(self._context)
            await self._listeners.bind(self._tls_context)
        except BaseException:
            await self._listeners.close()
            if self._owns_store:
                await self._store.close()
            raise
        await self._listeners.start_serving()
        for bound in self._listeners.bound_addresses:
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
            await self._listeners.close()
            await self._listeners.end_connections(self.settings.server.shutdown_timeout)
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
        if bound.protocol == LMTP:
            return "LMTP"
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

    def _build_lmtp_context(self, imap: ImapContext) -> LmtpContext:
        settings = self.settings
        return LmtpContext(
            store=imap.store,
            lmtp=settings.lmtp,
            delivery=settings.delivery,
            server_name=settings.server.hostname,
            spool_dir=settings.server.data_dir / "spool",
            over_quota_tempfail=settings.quota.over_quota_tempfail,
        )

    def _build_context(self, store: Store) -> ImapContext:
        settings = self.settings
        authenticator = self._authenticator or StoreAuthenticator(
            store,
            LoginThrottle(
                settings.auth.throttle_policy(),
                known=StoreKnownAddresses(store),
                shared=self.coordination.sign_in_failures,
            ),
            tokens=settings.auth.token_validator(),
            scram=settings.auth.scram,
            cache=settings.auth.sign_in_cache(),
        )
        spool_dir = settings.server.data_dir / "spool"
        spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.coordination.worker is None:
            sweep_spool(spool_dir)  # alone: nothing is using them (workers: supervisor.py)
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
        elif protocol == LOCAL_DELIVERY:
            assert self._lmtp_context is not None
            from roost.lmtp.local import serve_local_delivery

            await serve_local_delivery(reader, writer, self._lmtp_context)
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


def _make_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


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
