"""Prometheus metrics of a Roost process, served at ``/metrics`` by the HTTP listener.

Labels are bounded by construction (STYLE: never a user, an address or a mailbox): a
protocol, a command name from the dispatch table (anything else counts as ``other``), a
result class, a mechanism from the SASL list. Every series a dashboard expects is made at
zero when the process starts, so a rate over a quiet period reads 0, not "no data".

Several worker processes. prometheus-client's multiprocess mode keeps each process's
values in files under one directory; the supervisor names it in the workers'
environment (``PROMETHEUS_MULTIPROC_DIR``, set before they import this module), serves
``/metrics`` itself by merging the files, and removes a dead worker's gauge files. With
one process the values live in memory and that process serves them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The result classes of a command (STYLE §6: syntax, a user's mistake, anything else).
RESULTS = ("ok", "no", "bad", "error")

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)

CONNECTIONS = Gauge(
    "roost_open_connections",
    "Connections open now, by protocol",
    ["protocol"],
    multiprocess_mode="livesum",
)
CONNECTIONS_TOTAL = Counter(
    "roost_connections_total",
    "Connections accepted, or refused by a limit",
    ["protocol", "outcome"],
)
SIGN_INS = Counter(
    "roost_sign_ins_total",
    "Sign-ins by protocol, method (password, app_password, scram, token; any for a"
    " failure) and result (ok, failed, throttled)",
    ["protocol", "method", "result"],
)
SIGN_IN_METHODS = ("password", "password+totp", "app_password", "scram", "token")
COMMANDS = Counter(
    "roost_commands_total",
    "Commands answered, by protocol, name and result class",
    ["protocol", "command", "result"],
)
COMMAND_SECONDS = Histogram(
    "roost_command_duration_seconds",
    "Time from a command's arrival to its final reply",
    ["protocol", "command"],
    buckets=_LATENCY_BUCKETS,
)
DELIVERIES = Counter(
    "roost_deliveries_total",
    "Deliveries to one recipient (LMTP, roost deliver), by result",
    ["result"],
)
EVENT_BUS_LAG = Histogram(
    "roost_event_bus_lag_seconds",
    "Time from a change event's publication in one worker to its arrival in another",
    buckets=_LATENCY_BUCKETS,
)
BYTES = Counter(
    "roost_bytes_total",
    "Bytes read from and written to clients, counted when a session ends",
    ["protocol", "direction"],
)
STORE_SECONDS = Histogram(
    "roost_store_operation_duration_seconds",
    "Time a store operation took, queueing on the account's thread included",
    ["operation"],
    buckets=_LATENCY_BUCKETS,
)


def declare(protocol: str, commands: Iterable[str]) -> None:
    """Make a protocol's series at zero: its commands with every result, its sign-ins
    and connections."""
    for command in (*commands, "other"):
        for result in RESULTS:
            COMMANDS.labels(protocol, command, result)
        COMMAND_SECONDS.labels(protocol, command)
    for method in SIGN_IN_METHODS:
        SIGN_INS.labels(protocol, method, "ok")
    for result in ("failed", "throttled"):
        SIGN_INS.labels(protocol, "any", result)
    for outcome in ("accepted", "refused"):
        CONNECTIONS_TOTAL.labels(protocol, outcome)
    for direction in ("in", "out"):
        BYTES.labels(protocol, direction)
    CONNECTIONS.labels(protocol)


def command_label(name: str, known: frozenset[str]) -> str:
    """The label of a command name: itself when the table knows it, else ``other``
    (a stranger's garbage must not grow the series)."""
    upper = name.upper()
    return upper if upper in known else "other"


def multiprocess_directory() -> Path | None:
    value = os.environ.get(MULTIPROCESS_ENV)
    return Path(value) if value else None


def prepare_multiprocess_directory(path: Path) -> None:
    """An empty directory for the workers' metric files (a past run's are stale)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def worker_exited(pid: int, directory: Path) -> None:
    """Drop a dead worker's live gauges; its counters stay in the sums."""
    multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def exposition(directory: Path | None = None) -> bytes:
    """The text format of every metric: merged from ``directory``'s files when the
    workers write there, else this process's own."""
    if directory is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)
