"""The live sessions of one process, and the one log line each writes at its end.

Every IMAP and POP3 connection (later LMTP and submission) opens a ``SessionRecord`` in
the process's ``SessionRegistry`` when it starts and ends it when it stops; ``roost who``
lists the records and ``roost kick`` asks the connections of one user to close
(``runtime/control.py`` serves both). The record also counts what the connection did —
commands, bytes in and out — so that its end is one structured log line (logger
``roost.session``): protocol, user, address, duration, commands, bytes in/out and why
it ended. With ``[log] format = "json"`` the same fields are JSON keys
(observability/logs.py puts a record's ``extra`` fields there).

Invariants:

* A record is in the registry from ``open`` until ``end``; ``end`` is idempotent and
  writes the log line exactly once.
* The registry holds no protocol objects: the user and state are read through the
  callables the connection gave (``describe`` reads them at listing time), and kicking
  calls the connection's ``kick`` callback, which must only schedule the close.
* Nothing here keeps a user name or address in a metric label: they are log fields.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from roost.observability import metrics

log = logging.getLogger("roost.session")

# Why a session ended: the values of the log line's ``reason`` field.
LOGOUT = "logout"
CLOSED = "closed by client"
TIMEOUT = "timeout"
KICKED = "kicked"
SHUTDOWN = "shutdown"
ERROR = "error"
TOO_MANY_ERRORS = "too many bad commands"
TOO_BIG = "literal too large"

_ids = itertools.count(1)


@dataclass(slots=True)
class SessionRecord:
    protocol: str  # "imap", "pop3", ...
    remote_ip: str
    worker: int | None
    user_of: Callable[[], str | None] = lambda: None
    state_of: Callable[[], str] = lambda: ""
    kick: Callable[[], None] | None = None
    id: int = field(default_factory=lambda: next(_ids))
    since: float = field(default_factory=time.time)  # wall clock, for listing
    started: float = field(default_factory=time.monotonic)  # for the duration
    commands: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    reason: str = CLOSED
    registry: SessionRegistry | None = None
    ended: bool = False

    @property
    def user(self) -> str | None:
        return self.user_of()

    def describe(self) -> dict[str, Any]:
        """The record as ``roost who`` shows it (JSON-ready)."""
        return {
            "id": self.id,
            "protocol": self.protocol,
            "user": self.user_of(),
            "address": self.remote_ip,
            "worker": self.worker,
            "since": round(self.since, 3),
            "state": self.state_of(),
        }

    def end_fields(self) -> dict[str, Any]:
        """The fields of the end-of-session log line."""
        return {
            "protocol": self.protocol,
            "user": self.user_of() or "-",
            "address": self.remote_ip,
            "duration": round(time.monotonic() - self.started, 3),
            "commands": self.commands,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "reason": self.reason,
        }

    def closing(self) -> None:
        """The connection is closing: keep the user it had (the session forgets it as
        it closes) and accept no more kicks."""
        user = self.user_of()
        self.user_of = lambda: user
        self.kick = None

    def end(self, reason: str | None = None) -> None:
        """Leave the registry and write the log line (once). ``reason`` replaces the
        one noted so far, unless the session was kicked (that says more)."""
        if self.ended:
            return
        self.ended = True
        if reason is not None and self.reason != KICKED:
            self.reason = reason
        if self.registry is not None:
            self.registry.remove(self)
        fields = self.end_fields()
        text = " ".join(f"{key}={_quoted(value)}" for key, value in fields.items())
        log.info("session end %s", text, extra=fields)
        metrics.BYTES.labels(self.protocol, "in").inc(self.bytes_in)
        metrics.BYTES.labels(self.protocol, "out").inc(self.bytes_out)


def _quoted(value: object) -> str:
    text = str(value)
    return f'"{text}"' if not text or " " in text else text


class SessionRegistry:
    """The sessions of this process, by id."""

    def __init__(self, worker: int | None = None) -> None:
        self.worker = worker
        self._sessions: dict[int, SessionRecord] = {}

    def open(
        self,
        protocol: str,
        remote_ip: str,
        *,
        user_of: Callable[[], str | None],
        state_of: Callable[[], str],
        kick: Callable[[], None] | None = None,
    ) -> SessionRecord:
        record = SessionRecord(
            protocol, remote_ip, self.worker, user_of=user_of, state_of=state_of, kick=kick
        )
        record.registry = self
        self._sessions[record.id] = record
        return record

    def remove(self, record: SessionRecord) -> None:
        self._sessions.pop(record.id, None)

    def __iter__(self) -> Iterator[SessionRecord]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    def describe(self) -> list[dict[str, Any]]:
        return [record.describe() for record in self]

    def kick(self, user: str) -> int:
        """Ask every session signed in as ``user`` (case-insensitive) to close; the
        number asked."""
        wanted = user.casefold()
        kicked = 0
        for record in self:
            name = record.user_of()
            if name is None or name.casefold() != wanted or record.kick is None:
                continue
            record.reason = KICKED
            record.kick()
            kicked += 1
        return kicked
