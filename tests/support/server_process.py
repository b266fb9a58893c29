"""``roost serve --config FILE`` as a child process, for tests that must kill it.

The configuration listens on one plain IMAP port chosen by the kernel (port 0), on
127.0.0.1, with plaintext sign-in allowed there and no TLS; the port is read from the
banner. The process is only ever signalled by its own PID, and ``stop`` is safe to
call whatever state it is in, so a test can always clean up in ``finally``.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from roost.config import Settings

BANNER_TIMEOUT = 30.0
_RECORD = re.compile(r"^\S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")  # the text log format
_PORT = re.compile(r"^\s*IMAP\b.*?127\.0\.0\.1:(\d+)\s*$", re.MULTILINE)
_POP3_PORT = re.compile(r"^\s*POP3\b.*?127\.0\.0\.1:(\d+)\s*$", re.MULTILINE)
_LMTP_PORT = re.compile(r"^\s*LMTP\b.*?127\.0\.0\.1:(\d+)\s*$", re.MULTILINE)
_HTTP_PORT = re.compile(r"^\s*HTTP\b.*?127\.0\.0\.1:(\d+)\s*$", re.MULTILINE)
_MANAGESIEVE_PORT = re.compile(r"^\s*ManageSieve\b.*?127\.0\.0\.1:(\d+)\s*$", re.MULTILINE)


def write_config(
    path: Path,
    data_dir: Path,
    *,
    limits: dict[str, object] | None = None,
    workers: int = 1,
    pop3: bool = False,
    log_level: str = "warning",
    http: bool = False,
) -> Path:
    """A configuration for a test server: loopback only, no TLS, no sign-in delays; one
    process unless ``workers`` says otherwise; a POP3 listener too with ``pop3``."""
    lines = [
        "[server]",
        f"data_dir = {str(data_dir)!r}",
        "shutdown_timeout = 2.0",
        f"workers = {workers}",
        "[imap]",
        'listen = ["127.0.0.1:0"]',
        "tls_listen = []",
        "starttls = false",
        "allow_plaintext_auth = true",
    ]
    if pop3:
        lines += ["[pop3]", 'listen = ["127.0.0.1:0"]', "tls_listen = []", "starttls = false"]
        lines.append("allow_plaintext_auth = true")
    elif "pop3" in Settings.__dataclass_fields__:  # no POP3 listener on 110/995
        lines += ["[pop3]", "listen = []", "tls_listen = []", "starttls = false"]
    lines += ["[auth]", "failure_delay = 0.0", "max_failures_per_ip = 0"]
    if limits:
        lines.append("[limits]")
        lines += [f"{key} = {value!r}" for key, value in limits.items()]
    if http:
        lines += ["[http]", 'listen = ["127.0.0.1:0"]']
    lines += ["[log]", f"level = {log_level!r}"]
    path.write_text("\n".join(lines) + "\n")
    return path


class RoostProcess:
    def __init__(self, config: Path, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.pop3_port = 0  # when the configuration has a POP3 listener
        self.lmtp_port = 0  # when it has a TCP LMTP listener
        self.http_port = 0  # when it has an HTTP listener
        self.managesieve_port = 0  # when it has a ManageSieve listener

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> int:
        """Start the server and wait for its banner; return the IMAP port."""
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "roost", "serve", "--config", str(self.config)],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        banner = self._read_banner()
        found = _PORT.search(banner)
        if found is None:
            self.kill()
            raise AssertionError(f"no IMAP port in the banner:\n{banner}")
        self.port = int(found.group(1))
        pop3 = _POP3_PORT.search(banner)
        self.pop3_port = int(pop3.group(1)) if pop3 else 0
        lmtp = _LMTP_PORT.search(banner)
        self.lmtp_port = int(lmtp.group(1)) if lmtp else 0
        http = _HTTP_PORT.search(banner)
        self.http_port = int(http.group(1)) if http else 0
        managesieve = _MANAGESIEVE_PORT.search(banner)
        self.managesieve_port = int(managesieve.group(1)) if managesieve else 0
        return self.port

    def _read_banner(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        out = self.process.stdout
        deadline = time.monotonic() + BANNER_TIMEOUT
        text = b""
        while b"Stop with Ctrl-C" not in text:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([out], [], [], max(0.0, remaining))
            chunk = os.read(out.fileno(), 4096) if ready else b""
            if not chunk:
                self.kill()
                log = self.log_path.read_text(errors="replace")[-3000:]
                raise AssertionError(f"server gave no banner: {text!r}\n{log}")
            text += chunk
        return text.decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a power cut would; wait for it to be gone."""
        process = self.process
        if process is None:
            return
        if process.poll() is not None:
            if process.stdout is not None:
                process.stdout.close()
            return
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()

    def stop(self) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not go. The exit code (None if never
        started)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode

    def errors_logged(self) -> list[str]:
        """Log records at ERROR or above, and tracebacks that no lower record explains
        (an uncaught exception prints one with no record before it)."""
        if not self.log_path.exists():
            return []
        found, level = [], ""
        for line in self.log_path.read_text(errors="replace").splitlines():
            record = _RECORD.match(line)
            if record is not None:
                level = record.group(1)
                if level in ("ERROR", "CRITICAL"):
                    found.append(line)
            elif line.startswith("Traceback") and level not in ("DEBUG", "INFO", "WARNING"):
                found.append(line)
        return found


def integrity_check(data_dir: Path) -> int:
    """``PRAGMA integrity_check`` on every SQLite file, read-only; how many. In each
    mail.db, the quota usage kept by the store must equal the one recalculated from
    the messages (ARCHITECTURE.md decision 10: counters exact after any crash)."""
    databases = sorted(data_dir.rglob("*.db"))
    assert databases, f"no SQLite files in {data_dir}"
    for path in databases:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = connection.execute("PRAGMA integrity_check").fetchall()
            if path.name == "mail.db":
                kept = connection.execute("SELECT storage, messages FROM counters").fetchone()
                counted = connection.execute(
                    "SELECT coalesce(sum(size), 0), count(*) FROM messages"
                ).fetchone()
                if kept != counted:
                    raise AssertionError(f"{path}: quota usage {kept}, recounted {counted}")
        finally:
            connection.close()
        if result != [("ok",)]:
            raise AssertionError(f"{path}: integrity_check says {result}")
    return len(databases)


async def start_all(processes: Sequence[RoostProcess]) -> None:
    """Start the nodes side by side (each waits for its own banner)."""
    await asyncio.gather(*(asyncio.to_thread(process.start) for process in processes))


def stop_all_clean(processes: Sequence[RoostProcess]) -> None:
    """Stop every node, then require that none logged an error (its log if one did)."""
    for process in processes:
        process.stop()
    for process in processes:
        assert process.errors_logged() == [], process.log_path.read_text()
