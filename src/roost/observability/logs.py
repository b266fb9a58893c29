"""Log setup: one line per event on stderr, as text or as JSON.

Text lines read ``2025-01-31T12:00:00.123Z WARNING roost.auth auth failure ip=...``.
JSON lines carry the same fields plus every ``extra={...}`` value a call site passed
(``event``, ``ip``, ``user``...), so log processors need no parsing of the message.
Times are UTC. In a worker process of several, every line names the worker: text lines
read ``... INFO [worker 2] roost.server ...``, JSON lines carry ``"worker": 2``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)

_HANDLER_NAME = "roost"


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class TextFormatter(_UtcFormatter):
    def __init__(self, worker: int | None = None) -> None:
        tag = "" if worker is None else f"[worker {worker}] "
        super().__init__(f"%(asctime)s %(levelname)s {tag}%(name)s %(message)s")


class _WorkerTag(logging.Filter):
    def __init__(self, worker: int) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.worker
        return True


class JsonFormatter(_UtcFormatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(
    level: str = "info",
    fmt: str = "text",
    stream: TextIO | None = None,
    *,
    worker: int | None = None,
) -> None:
    """Send every log record at ``level`` or above to ``stream`` (stderr), tagged with
    ``worker`` when given. Calling it again replaces the handler it installed before."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(worker))
    if worker is not None:
        handler.addFilter(_WorkerTag(worker))
    root.addHandler(handler)
    root.setLevel(level.upper())
