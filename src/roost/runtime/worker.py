"""One worker process of ``roost serve --workers N``: a whole server on sockets it was
given, sharing the data directory with the other workers.

The supervisor (supervisor.py) starts each worker as ``python -m roost worker N`` with
the listening sockets open at the descriptors the spec names (``pass_fds``) and the
``WorkerSpec`` as JSON on standard input. The worker then

1. asks the kernel to send it SIGTERM when the supervisor dies (Linux, PR_SET_PDEATHSIG)
   and, everywhere, checks every second that its parent is still the supervisor;
2. links its event hub to the supervisor's bus (runtime/event_bus.py) before it opens
   the store, so that no change it commits is missed by the others;
3. serves from the inherited sockets with a shared ``Coordination`` (limits and POP3
   locks agree across workers), writes its PID to ``run/worker-N.pid`` (for operators
   and tests: which process is worker N), and writes ``ready`` on standard output,
   which it then points at /dev/null;
4. on SIGTERM or SIGINT shuts down gracefully (``server.run_server``), and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.config import Settings
from roost.runtime.app import run, run_server
from roost.runtime.coordination import Coordination, run_dir, worker_pid_file
from roost.runtime.event_bus import EventBusClient
from roost.runtime.listeners import BoundAddress, ListenSocket
from roost.runtime.opening import open_store
from roost.store.events import EventHub

log = logging.getLogger("roost.worker")

READY = b"ready\n"
HEARTBEAT = b"."  # then, every server.heartbeat_interval, on the same pipe
PARENT_CHECK_INTERVAL = 1.0  # seconds between checks that the supervisor lives
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class InheritedListener:
    fd: int
    protocol: str  # server.IMAP or server.POP3
    implicit_tls: bool


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    index: int  # 1 to N; a replacement takes the number of the worker it replaces
    supervisor_pid: int
    bus_path: str
    listeners: tuple[InheritedListener, ...]
    serve: dict[str, Any]  # cli.ServeOptions as JSON: the settings, made the same way

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "index": self.index,
                "supervisor_pid": self.supervisor_pid,
                "bus_path": self.bus_path,
                "listeners": [[ls.fd, ls.protocol, ls.implicit_tls] for ls in self.listeners],
                "serve": self.serve,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> WorkerSpec:
        """Raise ValueError (or KeyError, TypeError) on anything malformed."""
        raw = json.loads(data)
        return cls(
            index=int(raw["index"]),
            supervisor_pid=int(raw["supervisor_pid"]),
            bus_path=str(raw["bus_path"]),
            listeners=tuple(
                InheritedListener(int(fd), str(protocol), bool(tls))
                for fd, protocol, tls in raw["listeners"]
            ),
            serve=dict(raw["serve"]),
        )


def run_worker(
    settings: Settings,
    spec: WorkerSpec,
    tls_context: ssl.SSLContext | None,
    reload_settings: Callable[[], Settings] | None = None,
) -> None:
    """Serve until told to stop (or the supervisor is gone). Raises ServerError or
    ConfigError when the worker cannot start."""
    _die_with_parent()
    # A SIGHUP (certificate reload) that comes while this worker is still starting must
    # not kill it: it is ignored until the server installs its handler. The worker's
    # certificate is then the one read at its start.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if os.getppid() != spec.supervisor_pid:
        log.warning("the supervisor is gone before worker %d started", spec.index)
        return
    run(_serve(settings, spec, tls_context, reload_settings))


async def _serve(
    settings: Settings,
    spec: WorkerSpec,
    tls_context: ssl.SSLContext | None,
    reload_settings: Callable[[], Settings] | None = None,
) -> None:
    listen_sockets = [
        ListenSocket(socket.socket(fileno=listener.fd), listener.protocol, listener.implicit_tls)
        for listener in spec.listeners
    ]
    pid_file = run_dir(settings) / worker_pid_file(spec.index)
    hub = EventHub()
    bus = EventBusClient(hub, Path(spec.bus_path))
    await bus.start()
    watchdog = asyncio.create_task(_watch_parent(spec.supervisor_pid))
    heartbeats: list[asyncio.Task[None]] = []
    try:
        store = await open_store(
            settings.server.data_dir,
            hub=hub,
            quota=settings.quota.limits,
            limits=settings.limits,
            special_folders=settings.imap.special_use_names,
            url=settings.store.postgresql_url,
            fsync=settings.store.fsync,
        )
        try:

            def ready(addresses: list[BoundAddress]) -> None:
                log.info("worker %d serving (pid %d)", spec.index, os.getpid())
                _write_pid_file(pid_file)
                channel = _report_ready()
                interval = settings.server.heartbeat_interval
                heartbeats.append(asyncio.create_task(_send_heartbeats(channel, interval)))

            await run_server(
                settings,
                store=store,
                tls_context=tls_context,
                ready=ready,
                listen_sockets=listen_sockets,
                coordination=Coordination.shared(settings, spec.index),
                reload_settings=reload_settings,
            )
        finally:
            await store.close()
    finally:
        for task in (watchdog, *heartbeats):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await bus.close()
        for listen in listen_sockets:
            listen.sock.close()
        with contextlib.suppress(OSError):  # unless a replacement wrote its own meanwhile
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()


def _write_pid_file(path: Path) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(f"{os.getpid()}\n")
    temporary.replace(path)


def _report_ready() -> int:
    """Tell the supervisor on standard output; then standard output goes to /dev/null
    and the pipe, kept as the returned descriptor, carries only heartbeats."""
    os.write(sys.stdout.fileno(), READY)
    channel = os.dup(sys.stdout.fileno())
    os.set_inheritable(channel, False)
    os.set_blocking(channel, False)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return channel


async def _send_heartbeats(channel: int, interval: float) -> None:
    """One byte every ``interval`` seconds, from the event loop: a stopped process or a
    loop that does not come round stops them, and the supervisor replaces the worker."""
    try:
        while True:
            try:
                os.write(channel, HEARTBEAT)
            except BlockingIOError:
                pass  # the supervisor is behind reading; it has heard from us anyway
            except OSError:
                return  # the supervisor is gone: _watch_parent ends this worker
            await asyncio.sleep(interval)
    finally:
        os.close(channel)


async def _watch_parent(supervisor_pid: int) -> None:
    """SIGTERM to this process once the supervisor is gone (where PR_SET_PDEATHSIG is
    missing, or was set too late): a worker never outlives its supervisor for long."""
    while True:  # polled: there is no event for a parent's death
        if os.getppid() != supervisor_pid:
            break
        await asyncio.sleep(PARENT_CHECK_INTERVAL)
    log.warning("the supervisor is gone; shutting down")
    os.kill(os.getpid(), signal.SIGTERM)


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this process when its parent exits."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        log.debug("PR_SET_PDEATHSIG is not available; watching the parent only")
