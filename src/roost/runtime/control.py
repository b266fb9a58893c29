"""The local control socket: how ``roost who``, ``kick``, ``mailbox`` and ``index``
reach a running server.

Design. Every serving process has its own Unix socket in the run directory
(``data_dir/run``, mode 0700): ``control.sock`` for a single process, ``control-N.sock``
for worker N of ``serve --workers``. The client (``request_all``, ``request_one``) finds
them with a glob and talks to each: ``who`` and ``kick`` go to every process and the
answers are merged; a mailbox change goes to one process, which performs it on the
store — the other workers hear of it through the event bus like of any change, so
their IDLE sessions are told. No supervisor fan-out to build or get wrong: a worker
that dies takes its socket's listener with it (a leftover file refuses connections
and is skipped), and its replacement binds the same name again.

Access is by the socket file's mode (0600: the server's own user, and root).

Exchange (version 1): on connecting the server sends one JSON line,
``{"roost-control": 1, "pid": P, "worker": N|null}``. Then the client sends requests,
one JSON object per line, ``{"op": "who"}``; the server answers each with one line,
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "text"}``, in order. A
request line is at most ``MAX_REQUEST`` bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from roost.admin import mailboxes
from roost.observability.sessions import SessionRegistry
from roost.store.base import Store, StoreError

log = logging.getLogger("roost.control")

VERSION = 1
MAX_REQUEST = 1 << 20
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, fewer elsewhere
SINGLE = "control.sock"

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class ControlError(Exception):
    """A request failed; the text is for the operator."""


class NoServer(ControlError):
    """No running server answers on the run directory's control sockets."""


def socket_name(worker: int | None) -> str:
    return SINGLE if worker is None else f"control-{worker}.sock"


class _ShortPath:
    """A path usable for bind/connect even when longer than ``sun_path``: through the
    directory's descriptor (``/proc/self/fd/N/name``, Linux) when it must."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> str:
        if len(os.fsencode(self.path)) <= _MAX_SOCKET_PATH:
            return str(self.path)
        self._fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        return f"/proc/self/fd/{self._fd}/{self.path.name}"

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)


class ControlServer:
    """Serves ``handlers`` (op name → coroutine taking the request) on ``path``."""

    def __init__(
        self, path: Path, handlers: Mapping[str, Handler], *, worker: int | None = None
    ) -> None:
        self.path = path
        self.handlers = handlers
        self.worker = worker
        self._server: asyncio.Server | None = None
        self._inode: int | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.unlink(missing_ok=True)  # a leftover of a process that died
        with _ShortPath(self.path) as name:
            self._server = await asyncio.start_unix_server(
                self._serve, path=name, limit=MAX_REQUEST
            )
        os.chmod(self.path, 0o600)
        self._inode = os.stat(self.path).st_ino

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(OSError):  # unless a newer process bound it meanwhile
            if os.stat(self.path).st_ino == self._inode:
                self.path.unlink()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        greeting = {"roost-control": VERSION, "pid": os.getpid(), "worker": self.worker}
        try:
            writer.write(_line(greeting))
            while True:
                try:
                    line = await reader.readline()
                except ValueError:
                    writer.write(_line({"ok": False, "error": "request too long"}))
                    break
                if not line:
                    break
                writer.write(_line(await self._answer(line)))
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
        except ValueError as error:
            return {"ok": False, "error": f"bad request: {error}"}
        handler = self.handlers.get(str(request.get("op")))
        if handler is None:
            return {"ok": False, "error": f"unknown op {request.get('op')!r}"}
        try:
            return {"ok": True, "result": await handler(request)}
        except ControlError as error:
            return {"ok": False, "error": str(error)}
        except Exception as error:
            log.exception("control request %s failed", request.get("op"))
            return {"ok": False, "error": f"failed: {error}"}


def server_handlers(sessions: SessionRegistry, store: Store) -> dict[str, Handler]:
    """The requests a serving process answers: ``who``, ``kick`` (its own sessions)
    and ``mailbox`` (admin/mailboxes.py, on its store)."""

    async def who(request: dict[str, Any]) -> list[dict[str, Any]]:
        return sessions.describe()

    async def kick(request: dict[str, Any]) -> dict[str, int]:
        return {"kicked": sessions.kick(str(request.get("user", "")))}

    async def mailbox(request: dict[str, Any]) -> Any:
        try:
            return await mailboxes.perform(store, request)
        except (mailboxes.RequestError, StoreError) as error:
            raise ControlError(str(error)) from None

    return {"who": who, "kick": kick, "mailbox": mailbox}


def _line(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


# ---- the client side -----------------------------------------------------------------


def control_sockets(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("control*.sock"))


class _Unreachable(Exception):
    """Nobody listens on that socket (a leftover of a process that is gone)."""


def _exchange(path: Path, request: Mapping[str, Any], timeout: float) -> Any:
    """Send one request to one socket; the result, or ControlError with the server's
    text. _Unreachable when nobody listens there (then nothing was done)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            with _ShortPath(path) as name:
                sock.connect(name)
        except PermissionError:
            raise ControlError(
                f"{path}: permission denied (the socket is the server's user's, mode 0600:"
                " run this as that user or root)"
            ) from None
        except OSError as error:
            raise _Unreachable(str(error)) from None
        try:
            with sock.makefile("rwb") as stream:
                greeting = json.loads(stream.readline() or b"null")
                if not isinstance(greeting, dict) or greeting.get("roost-control") != VERSION:
                    raise ControlError(f"{path}: not a Roost control socket of version {VERSION}")
                stream.write(_line(request))
                stream.flush()
                answer = json.loads(stream.readline() or b"null")
        except (OSError, ValueError) as error:
            raise ControlError(f"{path}: {error}") from None
    if not isinstance(answer, dict):
        raise ControlError(f"{path}: the server closed the connection")
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error")))
    return answer.get("result")


def request_all(run_dir: Path, request: Mapping[str, Any], *, timeout: float = 30.0) -> list[Any]:
    """The request's result from every running process; NoServer when none answers."""
    results = []
    for path in control_sockets(run_dir):
        try:
            results.append(_exchange(path, request, timeout))
        except _Unreachable:
            continue  # a leftover socket of a process that is gone
    if not results:
        raise NoServer(f"no running Roost server answers on {run_dir}/control*.sock")
    return results


def request_one(run_dir: Path, request: Mapping[str, Any], *, timeout: float = 600.0) -> Any:
    """The request's result from one running process (the first that answers)."""
    for path in control_sockets(run_dir):
        try:
            return _exchange(path, request, timeout)
        except _Unreachable:
            continue
    raise NoServer(f"no running Roost server answers on {run_dir}/control*.sock")
