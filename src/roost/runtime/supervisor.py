"""The supervisor of ``roost serve --workers N`` (N > 1): one process that binds the
listeners, relays change events, and keeps N worker processes serving.

Life of a server:

1. Take ``data_dir/run/supervisor.lock`` (one supervisor per data directory), clear
   what belonged to an earlier run (the event socket, worker PID files, POP3 sign-in
   times; coordination.py lists the run directory).
2. Bind every listener once (``listeners.bind_listeners``): a port in use fails here,
   before any worker starts. Start the event bus on a Unix socket in the run directory
   (mode 0600; in a private temporary directory when that path is too long for a
   socket address).
3. Start workers 1 to N (worker.py), each inheriting every listening socket; the kernel
   hands each new connection to one of the workers waiting on it. Wait until each says
   it is ready; a worker that fails to start fails the server (exit 1).
4. Supervise. Each worker's event loop writes a heartbeat byte to its standard output
   every ``server.heartbeat_interval``; one silent for ``server.worker_heartbeat_timeout``
   (stopped by SIGSTOP, or a loop that no longer comes round — it may hold an account's
   write lock) is logged and killed with SIGKILL, which frees its locks. A worker that
   exits unexpectedly (a crash, SIGKILL, the OOM killer) is
   logged and replaced under the same number, after a delay that starts at
   ``RESTART_DELAY`` and doubles while replacements keep dying young, up to
   ``MAX_RESTART_DELAY``; the others go on serving, their connections untouched.
5. On SIGTERM or SIGINT: close the supervisor's copies of the listening sockets,
   forward SIGTERM to every worker (each stops accepting, says BYE, waits up to
   ``server.shutdown_timeout``), wait for them, SIGKILL any still running after
   ``shutdown_timeout + STOP_MARGIN`` seconds, close the bus, release the lock, and
   return (``roost serve`` exits 0). A second signal sends SIGQUIT: every worker closes
   its connections at once.

Workers never outlive the supervisor: each asks for SIGTERM on its parent's death and
watches its parent (worker.py). The supervisor itself touches no mail and no session.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.config import Settings
from roost.observability import metrics, sd_notify
from roost.runtime.coordination import POP3_SIGN_INS, SUPERVISOR_LOCK, run_dir
from roost.runtime.data_dir import sweep_spool
from roost.runtime.event_bus import EventBus
from roost.runtime.http import HttpApp, HttpListener, client_settings
from roost.runtime.listeners import (
    HTTP,
    LOCAL_DELIVERY,
    BoundAddress,
    ListenSocket,
    ServerError,
    bind_listeners,
    bound_address,
)
from roost.runtime.worker import READY, InheritedListener, WorkerSpec

log = logging.getLogger("roost.supervisor")

READY_TIMEOUT = 60.0  # seconds a worker gets to open the store and start serving
RESTART_DELAY = 0.1  # seconds before the first replacement of a worker
MAX_RESTART_DELAY = 10.0
STABLE_AFTER = 30.0  # a worker that served this long resets the restart delay
STOP_MARGIN = 5.0  # seconds beyond shutdown_timeout before workers are killed
_MAX_SOCKET_PATH = 100  # bytes; sun_path holds 104 (macOS) or 108 (Linux)


class WorkerFailed(ServerError):
    """A worker could not start."""


@dataclass(slots=True)
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    started: float  # loop time


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        serve_options: dict[str, Any],
        listen_sockets: list[ListenSocket] | None = None,
    ) -> None:
        self.settings = settings
        # Bound by the caller already (as root, before dropping privileges), or here.
        self._given_listeners = listen_sockets
        self.count = settings.server.workers
        self._serve_options = serve_options
        self._run_dir = run_dir(settings)
        self._listeners: list[ListenSocket] = []
        self._bus: EventBus | None = None
        self._bus_dir: Path | None = None  # a temporary directory of our own, if used
        self._lock_fd: int | None = None
        self._workers: dict[int, _Worker] = {}
        self._keepers: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._signals = 0
        self._watchers: set[asyncio.Task[None]] = set()
        self._http: HttpListener | None = None
        self._metrics_dir: Path | None = None

    async def run(self, ready: Callable[[list[BoundAddress]], None] | None = None) -> None:
        """Serve until SIGTERM or SIGINT; raise ServerError when the server cannot start."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        try:
            try:
                self._prepare_run_dir()
                self._listeners = self._given_listeners or bind_listeners(self.settings)
                self._bus = EventBus(self._bus_path())
                await self._bus.start()
            except OSError as error:
                raise ServerError(f"cannot prepare {self._run_dir}: {error}") from None
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.request_stop, signum.name)
                installed.append(signum)
            # Certificate renewal: every worker reloads its own TLS context.
            loop.add_signal_handler(signal.SIGHUP, self._reload)
            installed.append(signal.SIGHUP)
            self._prepare_metrics()
            await self._start_all()
            await self._start_http()
            if ready is not None and not self._stopping.is_set():
                ready(self._bound())
            self._keepers = [
                asyncio.create_task(self._keep(index), name=f"keep-worker-{index}")
                for index in self._workers
            ]
            await self._stopping.wait()
        finally:
            if self._http is not None:
                await self._http.close()
            await self._stop_all()
            for signum in installed:
                loop.remove_signal_handler(signum)
            await self._release()
        log.info("stopped")

    def _reload(self) -> None:
        """SIGHUP: every worker reads the configuration again (runtime/reload.py)."""
        sd_notify.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        log.info("reloading: SIGHUP sent to every worker")
        self._signal_workers(signal.SIGHUP)
        sd_notify.notify("READY=1")

    def request_stop(self, reason: str = "requested") -> None:
        self._signals += 1
        if self._signals == 1:
            log.info("shutting down (%s)", reason)
            self._stopping.set()
            self._close_listeners()
            self._signal_workers(signal.SIGTERM)
        else:
            log.warning("shutdown %s again: workers close every connection now", reason)
            self._signal_workers(signal.SIGQUIT)

    # ---- starting ------------------------------------------------------------------

    def _prepare_run_dir(self) -> None:
        directory = self._run_dir
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.chmod(0o700)
        fd = os.open(directory / SUPERVISOR_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            holder = (directory / SUPERVISOR_LOCK).read_text().strip() or "?"
            raise ServerError(
                f"another Roost (pid {holder}) is serving {self.settings.server.data_dir}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        stale = (
            *directory.glob("events-*.sock"),
            *directory.glob("worker-*.pid"),
            *directory.glob("control-*.sock"),
            *directory.glob(POP3_SIGN_INS + "*"),
        )
        for path in stale:
            path.unlink(missing_ok=True)
        # No worker runs yet: literals in the spool are left by a killed one.
        sweep_spool(self.settings.server.data_dir / "spool")

    def _prepare_metrics(self) -> None:
        """With an HTTP listener, the workers keep their metrics in files under
        run/metrics (prometheus-client's multiprocess mode, chosen by the environment
        they inherit) and the supervisor serves the sums."""
        if not self.settings.http.listen:
            return
        self._metrics_dir = self._run_dir / "metrics"
        metrics.prepare_multiprocess_directory(self._metrics_dir)

    def _worker_environment(self) -> dict[str, str]:
        environment = dict(os.environ)
        environment.pop(metrics.MULTIPROCESS_ENV, None)
        if self._metrics_dir is not None:
            environment[metrics.MULTIPROCESS_ENV] = str(self._metrics_dir)
        return environment

    async def _start_http(self) -> None:
        if not self.settings.http.listen or self._stopping.is_set():
            return
        directory = self._metrics_dir
        app = HttpApp(
            lambda: metrics.exposition(directory), self._ready, client_settings(self.settings)
        )
        self._http = HttpListener(app)
        await self._http.start(self.settings.http.listen)

    async def _ready(self) -> bool:
        """/readyz: not stopping, and every worker has started and still runs."""
        if self._stopping.is_set() or len(self._workers) < self.count:
            return False
        return all(worker.process.returncode is None for worker in self._workers.values())

    def _bus_path(self) -> Path:
        path = self._run_dir / f"events-{os.getpid()}.sock"
        if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
            return path
        self._bus_dir = Path(tempfile.mkdtemp(prefix="roost-"))  # mode 0700
        return self._bus_dir / "events.sock"

    async def _start_all(self) -> None:
        for index in range(1, self.count + 1):
            try:
                self._workers[index] = await self._spawn(index)
            except OSError as error:
                raise WorkerFailed(f"cannot start worker {index}: {error}") from None
        for worker in list(self._workers.values()):
            if not await self._wait_ready(worker) and not self._stopping.is_set():
                raise WorkerFailed(
                    f"worker {worker.index} did not start ({await self._describe_exit(worker)});"
                    " see the log above"
                )

    async def _spawn(self, index: int) -> _Worker:
        assert self._bus is not None
        spec = WorkerSpec(
            index=index,
            supervisor_pid=os.getpid(),
            bus_path=str(self._bus.path),
            listeners=tuple(
                InheritedListener(listen.sock.fileno(), listen.protocol, listen.implicit_tls)
                for listen in self._listeners
            ),
            serve=self._serve_options,
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "roost",
            "worker",
            str(index),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            pass_fds=[listen.sock.fileno() for listen in self._listeners],
            env=self._worker_environment(),
        )
        assert process.stdin is not None
        with contextlib.suppress(ConnectionError):  # it died at once: _wait_ready tells
            process.stdin.write(spec.to_json())
            await process.stdin.drain()
        process.stdin.close()
        return _Worker(index, process, asyncio.get_running_loop().time())

    async def _wait_ready(self, worker: _Worker) -> bool:
        """True once the worker said it serves; False when it died or hung first (a hung
        one is killed)."""
        stdout = worker.process.stdout
        assert stdout is not None
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                line = await stdout.readline()
        except TimeoutError:
            log.error("worker %d (pid %d) did not start in time", worker.index, worker.process.pid)
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            return False
        if line != READY:
            return False
        log.info("worker %d started (pid %d)", worker.index, worker.process.pid)
        watcher = asyncio.create_task(self._watch_heartbeats(worker))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return True

    async def _watch_heartbeats(self, worker: _Worker) -> None:
        """Kill ``worker`` when its heartbeats stop (its exit is then seen by _keep)."""
        stdout = worker.process.stdout
        assert stdout is not None
        timeout = self.settings.server.worker_heartbeat_timeout
        while True:
            try:
                async with asyncio.timeout(timeout):
                    beats = await stdout.read(4096)
            except TimeoutError:
                if self._stopping.is_set() or worker.process.returncode is not None:
                    return
                log.error(
                    "worker %d (pid %d) sent no heartbeat for %.1f s (stopped or stuck); "
                    "killing it",
                    worker.index,
                    worker.process.pid,
                    timeout,
                )
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                return
            if not beats:
                return  # it exited: _keep takes over

    # ---- supervising ---------------------------------------------------------------

    async def _keep(self, index: int) -> None:
        """Replace worker ``index`` whenever it exits, until the server stops."""
        loop = asyncio.get_running_loop()
        delay = RESTART_DELAY
        while True:
            worker = self._workers[index]
            await worker.process.wait()
            if self._metrics_dir is not None:
                metrics.worker_exited(worker.process.pid, self._metrics_dir)
            if self._stopping.is_set():
                return
            if loop.time() - worker.started >= STABLE_AFTER:
                delay = RESTART_DELAY
            log.error(
                "worker %d (pid %d) %s; starting another in %.1f s",
                index,
                worker.process.pid,
                await self._describe_exit(worker),
                delay,
            )
            while True:
                if await self._stops_within(delay):
                    return
                delay = min(delay * 2, MAX_RESTART_DELAY)
                try:
                    replacement = await self._spawn(index)
                except OSError as error:  # out of processes or memory, for now
                    log.error(
                        "cannot start worker %d: %s; trying again in %.1f s", index, error, delay
                    )
                    continue
                break
            self._workers[index] = replacement
            await self._wait_ready(replacement)  # if not, its exit comes round again

    async def _stops_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()

    async def _describe_exit(self, worker: _Worker) -> str:
        code = await worker.process.wait()
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    # ---- stopping ------------------------------------------------------------------

    def _signal_workers(self, signum: signal.Signals) -> None:
        for worker in self._workers.values():
            if worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signum)

    def _close_listeners(self) -> None:
        listeners, self._listeners = self._listeners, []
        for listen in listeners:
            listen.sock.close()
            if listen.path:  # a Unix socket's file: the workers' copies close with them
                with contextlib.suppress(OSError):
                    os.unlink(listen.path)

    async def _stop_all(self) -> None:
        self._stopping.set()
        self._close_listeners()
        for task in (*self._keepers, *self._watchers):
            task.cancel()
        await asyncio.gather(*self._keepers, *self._watchers, return_exceptions=True)
        self._signal_workers(signal.SIGTERM)  # again for any started meanwhile: harmless
        waits = [worker.process.wait() for worker in self._workers.values()]
        if not waits:
            return
        limit = self.settings.server.shutdown_timeout + STOP_MARGIN
        _, pending = await asyncio.wait(
            [asyncio.ensure_future(wait) for wait in waits], timeout=limit
        )
        if pending:
            log.warning("%d workers did not stop in time; killing them", len(pending))
            self._signal_workers(signal.SIGKILL)
            await asyncio.wait(pending)

    async def _release(self) -> None:
        if self._bus is not None:
            await self._bus.close()
            self._bus = None
        if self._bus_dir is not None:
            shutil.rmtree(self._bus_dir, ignore_errors=True)
            self._bus_dir = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _bound(self) -> list[BoundAddress]:
        bound = []
        for listen in self._listeners:
            if listen.protocol != LOCAL_DELIVERY:  # internal: not a listener to report
                bound.append(bound_address(listen))
        if self._http is not None:
            bound += [BoundAddress(host, port, False, HTTP) for host, port in self._http.bound]
        return bound
