#!/usr/bin/env python3
"""``make bench``: Roost and Dovecot side by side, same users, same mail (issue 5).

    .venv/bin/python bench/run.py            # the whole set, under 10 minutes
    .venv/bin/python bench/run.py --quick    # smaller sizes, under 2 minutes
    .venv/bin/python bench/run.py --only large --profile large

Prints a table (scenario, Roost, Dovecot, ratio) and writes bench/results/latest.json
(and a timestamped copy). bench/README.md explains every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import corpus
import scenarios
import seedcache
import servers
from servers import AccountPlan, Dovecot, Roost, Server

RESULTS = servers.BENCH_DIR / "results"
CACHE = RESULTS / "seed-cache"
SEED = 1
GROUPS = ("login", "mixed", "append", "wake", "mbsync", "large", "idle")


@dataclass(frozen=True)
class Sizes:
    large: int
    sync: int
    idle_connections: int
    idle_concurrency: int
    idle_notify_timeout: float
    idle_setup_limit: float
    idle_mailbox: int
    mixed_clients: tuple[int, ...]
    mixed_duration: float
    mixed_warmup: float
    mixed_accounts: int
    mixed_messages: int
    wake_idlers: int
    wake_appends: int
    append_clients: tuple[int, ...]
    append_duration: float
    login_clients: int
    login_duration: float
    budget: float  # seconds the whole run should stay under


FULL = Sizes(
    large=100_000,
    sync=10_000,
    idle_connections=10_000,
    idle_concurrency=100,
    idle_notify_timeout=45.0,
    idle_setup_limit=150.0,
    idle_mailbox=500,
    mixed_clients=(10, 100),
    mixed_duration=10.0,
    mixed_warmup=2.0,
    mixed_accounts=10,
    mixed_messages=1000,
    wake_idlers=50,
    wake_appends=100,
    append_clients=(1, 10),
    append_duration=6.0,
    login_clients=4,
    login_duration=4.0,
    budget=600.0,
)
QUICK = Sizes(
    large=10_000,
    sync=2_000,
    idle_connections=1_000,
    idle_concurrency=100,
    idle_notify_timeout=40.0,
    idle_setup_limit=40.0,
    idle_mailbox=200,
    mixed_clients=(10,),
    mixed_duration=5.0,
    mixed_warmup=1.0,
    mixed_accounts=10,
    mixed_messages=200,
    wake_idlers=20,
    wake_appends=30,
    append_clients=(1, 10),
    append_duration=3.0,
    login_clients=4,
    login_duration=2.0,
    budget=120.0,
)


def log(message: str) -> None:
    elapsed = time.monotonic() - _STARTED
    print(f"[{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)


_STARTED = time.monotonic()


# ---- accounts -------------------------------------------------------------------------


def account_plans(sizes: Sizes, groups: set[str]) -> dict[str, list[AccountPlan]]:
    """Accounts by scenario group. All but the LOGIN-cost account share one cheap hash."""
    cheap = servers.cheap_hash()
    plans: dict[str, list[AccountPlan]] = {
        "login": [AccountPlan("login", 0, servers.default_hash())] if "login" in groups else [],
        "mixed": [
            AccountPlan(f"mixed{i}", sizes.mixed_messages, cheap)
            for i in range(sizes.mixed_accounts)
        ],
        "append": [AccountPlan(f"append{i}", 0, cheap) for i in range(max(sizes.append_clients))],
        "wake": [AccountPlan("wake", 100, cheap)],
        "mbsync": [AccountPlan("sync", sizes.sync, cheap)],
        "large": [AccountPlan("large", sizes.large, cheap)],
        "idle": [AccountPlan("idle", sizes.idle_mailbox, cheap)],
    }
    return {group: plans[group] for group in GROUPS if group in groups}


def expected_search(count: int) -> tuple[int, int]:
    text = from_ = 0
    for message in corpus.generate(count, SEED):
        text += message.has_rare_word
        from_ += message.from_matches
    return text, from_


# ---- profiling ------------------------------------------------------------------------


class Profiler:
    """py-spy record on the Roost process for the duration of one scenario."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.process: subprocess.Popen[bytes] | None = None
        self.output = RESULTS / f"profile-{key}.txt"

    def start(self, pid: int) -> None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(py_spy).exists():
            log("py-spy not found (pip install py-spy into .venv): no profile")
            return
        RESULTS.mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [
                py_spy,
                "record",
                "-p",
                str(pid),
                "-r",
                "200",
                "-f",
                "raw",
                "--threads",
                "--subprocesses",
                # e.g. BENCH_PYSPY_ARGS=--gil: only the thread holding the GIL, i.e.
                # Python CPU time rather than wall-clock time of every busy thread.
                *os.environ.get("BENCH_PYSPY_ARGS", "").split(),
                "-o",
                str(self.output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # py-spy attaches

    def stop(self) -> dict[str, Any] | None:
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        return summarize_profile(self.output)


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any] | None:
    """Top frames by own samples and by inclusive samples, from py-spy's raw output."""
    if not path.exists():
        return None
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count

    def ranked(table: dict[str, int]) -> list[list[Any]]:
        best = sorted(table.items(), key=lambda item: -item[1])[:top]
        return [[round(100 * n / total, 1), frame] for frame, n in best]

    return {
        "samples": total,
        "self": ranked(own),
        "inclusive": ranked(inclusive),
        "file": str(path),
    }


# ---- the run --------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = QUICK if args.quick else FULL
        self.groups = set(args.only.split(",")) if args.only else set(GROUPS)
        unknown = self.groups - set(GROUPS)
        if unknown:
            raise SystemExit(f"unknown scenario group(s) {sorted(unknown)}; known: {GROUPS}")
        if "mbsync" in self.groups and not scenarios.mbsync_available():
            log("mbsync not installed (Debian package isync): skipping that scenario")
            self.groups.discard("mbsync")
        self.servers: list[Server] = []
        self.details: dict[str, dict[str, Any]] = {}
        self.profiles: dict[str, Any] = {}
        self.notes: list[str] = []
        self.expected = (0, 0)
        self.roost_workers = 0

    # -- setting up --

    def prepare(self, workdir: Path) -> None:
        plans_by_group = account_plans(self.sizes, self.groups)
        plans = [plan for group in plans_by_group.values() for plan in group]
        self.plans = plans_by_group
        roost = Roost(workdir, self.args.roost_workers)
        roost.write_config()
        self.servers.append(roost)
        dovecot = None
        if self.args.no_dovecot:
            self.notes.append("Dovecot skipped (--no-dovecot)")
        elif not servers.dovecot_available():
            self.notes.append("Dovecot not installed (dovecot-imapd): Roost only")
            log("dovecot not installed: Roost only")
        else:
            dovecot = Dovecot(
                workdir, self.sizes.idle_connections, self.args.dovecot_login == "performance"
            )
            dovecot.write_config()
            dovecot.write_accounts(plans)
            self.servers.append(dovecot)
        large = plans_by_group.get("large", [])
        key = seedcache.cache_key(
            (plans, SEED, servers.SEED_BATCH, servers.SEED_FORMAT, dovecot is not None)
        )
        targets = {"roost": roost.data_dir}
        if dovecot is not None:
            targets["dovecot"] = dovecot.mail
        started = time.perf_counter()
        meta = None if self.args.no_cache else seedcache.restore(CACHE, key, targets)
        if meta is not None:
            log(f"seeded mail restored from {CACHE / key}")
        else:
            meta = self.seed(roost, dovecot, plans, large)
            if not self.args.no_cache:
                log("saving the seeded mail for later runs")
                seedcache.save(CACHE, key, targets, meta)
        self.expected = (meta["expected_text"], meta["expected_from"])
        seconds = time.perf_counter() - started
        self.seeding = {**meta, "seconds": round(seconds, 1), "from_cache": key}
        log(f"mail ready in {seconds:.1f}s")

    def seed(
        self,
        roost: Roost,
        dovecot: Dovecot | None,
        plans: list[AccountPlan],
        large: list[AccountPlan],
    ) -> dict[str, Any]:
        log(f"creating {len(plans)} accounts")
        roost.create_accounts(plans)
        seeded = [plan for plan in plans if plan.messages]
        largest = max(seeded, key=lambda plan: plan.messages, default=None)
        groups = [[largest] if largest else [], [p for p in seeded if p is not largest]]
        seeders = roost.seeders(groups, SEED)
        total = sum(plan.messages for plan in seeded)
        log(f"seeding {total:,} messages into each server (takes minutes; cached afterwards)")
        large_count = large[0].messages if large else 0
        counts = [0, 0]

        def observe(n: int, message: corpus.Message) -> None:
            if n < large_count:
                counts[0] += message.has_rare_word
                counts[1] += message.from_matches

        for seeder in seeders:
            seeder.start()
        try:
            if dovecot is not None:
                dovecot.seed(seeded, SEED, observe)
                log("Dovecot Maildirs written")
            else:
                counts = list(expected_search(large_count))
            for seeder in seeders:
                seeder.join()
        finally:
            for seeder in seeders:
                seeder.kill()
        roost.seeded()
        return {
            "messages_per_server": total,
            "expected_text": counts[0],
            "expected_from": counts[1],
        }

    def start_servers(self) -> None:
        for server in self.servers:
            server.start()
            log(f"{server.label} listening on {server.port} (pid {server.pid})")
            if isinstance(server, Roost):
                self.roost_workers = server.workers()

    def restart_servers(self) -> None:
        for server in self.servers:
            began = time.perf_counter()
            server.stop()
            log(f"{server.label} stopped in {time.perf_counter() - began:.1f}s")
        self.start_servers()

    # -- running --

    async def each_server(
        self, key: str, run: Callable[[Server], Awaitable[dict[str, Any]]]
    ) -> None:
        self.details[key] = {}
        for server in self.servers:
            profiler = None
            if self.args.profile == key and server.label == "roost":
                profiler = Profiler(key)
                profiler.start(server.pid)
            load = os.getloadavg()[0]
            log(f"{key}: {server.label} (load average {load:.2f})")
            try:
                result = await run(server)
            except Exception as error:  # one failure must not lose the others
                log(f"{key}: {server.label} failed: {type(error).__name__}: {error}")
                result = {"failed": f"{type(error).__name__}: {error}"[:500]}
            finally:
                if profiler is not None:
                    self.profiles[key] = profiler.stop()
            result["load_average_before"] = round(load, 2)
            self.details[key][server.label] = result
            if not server.running():
                raise RuntimeError(f"{server.label} died during {key}")
            log(f"{key}: {server.label} done")

    async def run(self) -> None:
        sizes = self.sizes
        plans = self.plans
        if "login" in self.groups:
            await self.each_server(
                "login",
                lambda s: scenarios.login_cost(
                    s, "login", sizes.login_clients, sizes.login_duration
                ),
            )
        if "mixed" in self.groups:
            users = [plan.name for plan in plans["mixed"]]
            for clients in sizes.mixed_clients:
                await self.each_server(
                    f"mixed-{clients}",
                    lambda s, c=clients: scenarios.mixed(
                        s, users, c, sizes.mixed_duration, sizes.mixed_warmup
                    ),
                )
        if "append" in self.groups:
            users = [plan.name for plan in plans["append"]]
            for clients in sizes.append_clients:
                await self.each_server(
                    f"append-{clients}",
                    lambda s, c=clients: scenarios.append_throughput(
                        s, users, c, sizes.append_duration, 1_000_000 * c
                    ),
                )
        if "wake" in self.groups:
            await self.each_server(
                "idle-latency",
                lambda s: scenarios.idle_latency(s, "wake", sizes.wake_idlers, sizes.wake_appends),
            )
        if "mbsync" in self.groups:
            await self.each_server(
                "mbsync", lambda s: scenarios.mbsync_initial(s, "sync", sizes.sync, time_limit=240)
            )
        if "large" in self.groups:
            self.restart_servers()  # fresh processes: peak RSS is this scenario's
            text, from_ = self.expected
            await self.each_server(
                "large", lambda s: scenarios.large_mailbox(s, "large", text, from_)
            )
        if "idle" in self.groups:
            self.restart_servers()  # fresh processes: no freed memory to reuse
            await self.each_server(
                "idle",
                lambda s: scenarios.many_idle(
                    s,
                    "idle",
                    sizes.idle_connections,
                    sizes.idle_concurrency,
                    sizes.idle_notify_timeout,
                    sizes.idle_setup_limit,
                ),
            )

    def errors_logged(self) -> dict[str, list[str]]:
        return {server.label: server.errors_logged()[-20:] for server in self.servers}


# ---- the table ----------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    metric: str
    unit: str
    better: str  # "higher" or "lower"
    roost: float | None
    dovecot: float | None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.roost is None or self.dovecot is None or self.dovecot == 0:
            return None
        return self.roost / self.dovecot


def _get(details: dict[str, Any], key: str, label: str, *path: str) -> Any:
    value: Any = details.get(key, {}).get(label)
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def build_rows(bench: Bench) -> list[Row]:
    d = bench.details
    rows: list[Row] = []

    def add(key: str, scenario: str, metric: str, unit: str, better: str, *path: str) -> Row:
        row = Row(
            scenario,
            metric,
            unit,
            better,
            _get(d, key, "roost", *path),
            _get(d, key, "dovecot", *path),
        )
        rows.append(row)
        return row

    def ratio_target(row: Row, text: str, test: Callable[[float], bool]) -> None:
        row.target = text
        if row.ratio is not None:
            row.met = test(row.ratio)

    if "login" in d:
        add("login", "LOGIN, default argon2id hash", "logins/s", "/s", "higher", "logins_per_s")
    for clients in bench.sizes.mixed_clients:
        key = f"mixed-{clients}"
        if key in d:
            row = add(
                key, f"mixed workload, {clients} clients", "commands/s", "/s", "higher", "ops_per_s"
            )
            ratio_target(row, "≥ 1.0×", lambda r: r >= 1.0)
    if "large" in d:
        size = bench.sizes.large
        for step, target in (
            ("SELECT", True),
            ("UID FETCH 1:* (UID FLAGS)", True),
            ("UID FETCH 1:* (ENVELOPE BODYSTRUCTURE)", True),
            ("UID FETCH 1:* (ENVELOPE BODYSTRUCTURE) again", False),
            ("UID SEARCH TEXT rare word", False),
            ("UID SEARCH FROM", False),
        ):
            row = add(
                "large", f"{size:,} msgs: {step}", "time", "s", "lower", "steps", step, "seconds"
            )
            if target:
                ratio_target(row, "≤ 1.5×", lambda r: r <= 1.5)
            if step.startswith("UID SEARCH TEXT"):
                ratio_target(row, "≥ 10× faster", lambda r: r <= 0.1)
    if "idle" in d:
        n = bench.sizes.idle_connections
        row = add("idle", f"{n:,} IDLE connections", "held", "", "higher", "connections_held")
        row.target = f"{n:,}, no errors"
        held = row.roost
        errors = _get(d, "idle", "roost", "errors")
        row.met = held == n and errors == 0 if held is not None else None
        row = add(
            "idle",
            f"{n:,} IDLE: memory per connection (RSS)",
            "KiB",
            "KiB",
            "lower",
            "rss_per_connection_kib",
        )
        row.target = "≤ 64 KiB"
        row.met = row.roost <= 64 if row.roost is not None else None
        add(
            "idle",
            f"{n:,} IDLE: memory per connection (PSS)",
            "KiB",
            "KiB",
            "lower",
            "pss_per_connection_kib",
        )
        add("idle", f"{n:,} IDLE: all told of a new message", "time", "s", "lower", "notify_all_s")
        add("idle", f"{n:,} IDLE: connect+login+select+idle all", "time", "s", "lower", "setup_s")
    if "idle-latency" in d:
        for name in ("p50_ms", "p99_ms"):
            add(
                "idle-latency",
                f"IDLE wake-up latency {name[:3]} ({bench.sizes.wake_idlers} idlers)",
                "ms",
                "ms",
                "lower",
                "latency",
                name,
            )
    for clients in bench.sizes.append_clients:
        key = f"append-{clients}"
        if key in d:
            row = add(
                key,
                f"durable APPEND, {clients} client{'s' * (clients > 1)}",
                "appends/s",
                "/s",
                "higher",
                "appends_per_s",
            )
            ratio_target(row, "≥ 1.0×", lambda r: r >= 1.0)
    if "mbsync" in d:
        add(
            "mbsync",
            f"mbsync initial sync, {bench.sizes.sync:,} msgs",
            "time",
            "s",
            "lower",
            "seconds",
        )
    return rows


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" + (f" {unit}" if unit else "")
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def print_table(rows: list[Row], out: Any = sys.stdout) -> None:
    header = ("scenario", "Roost", "Dovecot", "Roost÷Dovecot", "target")
    lines = []
    for row in rows:
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "–"
        target = row.target + (" ✓" if row.met else " ✗" if row.met is False else "")
        lines.append(
            (
                row.scenario,
                _format(row.roost, row.unit),
                _format(row.dovecot, row.unit),
                ratio,
                target,
            )
        )
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=True)]
    rule = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), file=out)
    print(rule, file=out)
    for line in lines:
        cells = [line[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(line[1:4], widths[1:4], strict=True)
        ]
        cells.append(line[4].ljust(widths[4]))
        print("  ".join(cells).rstrip(), file=out)


def print_details(bench: Bench, out: Any = sys.stdout) -> None:
    """Per-command latencies of the mixed workload, peak RSS of the large mailbox, and
    the generator's CPU share per scenario."""
    for key, by_server in bench.details.items():
        if key.startswith("mixed-"):
            print(f"\n{key}: latency per command, p50 / p99 ms", file=out)
            for label, result in by_server.items():
                commands = result.get("commands", {})
                cells = [
                    f"{name} {c['p50_ms']}/{c['p99_ms']}"
                    for name, c in commands.items()
                    if c["count"]
                ]
                print(f"  {label:8} " + ", ".join(cells), file=out)
                if result.get("errors"):
                    print(
                        f"  {label:8} errors: {result['errors']} e.g. "
                        f"{result['error_samples'][:2]}",
                        file=out,
                    )
        if key == "large":
            print("\nlarge mailbox: peak RSS of the serving process (MiB) per step", file=out)
            for label, result in by_server.items():
                first = result.get("steps", {}).get("first SELECT (index build)", {})
                print(f"  {label:8} first SELECT after seeding: {first.get('seconds')} s", file=out)
            for label, result in by_server.items():
                steps = result.get("steps", {})
                cells = []
                for name, step in steps.items():
                    peak = step.get("peak_rss_kib")
                    extra = f" [{step['status']}]" if step.get("status") not in ("OK",) else ""
                    match = (
                        f" {step['matches']}/{step['expected']} hits" if "matches" in step else ""
                    )
                    cells.append(
                        f"{name}: {'n/a' if peak is None else round(peak / 1024, 1)}{extra}{match}"
                    )
                print(f"  {label:8} " + "; ".join(cells), file=out)
    print("\nload generator CPU (share of one core) / server CPU, per scenario", file=out)
    for key, by_server in bench.details.items():
        cells = [
            f"{label} {r.get('client_cpu', '?')}/{r.get('server_cpu', '?')}"
            for label, r in by_server.items()
        ]
        print(f"  {key:14} " + ", ".join(cells), file=out)


# ---- main -----------------------------------------------------------------------------


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 1_048_576:
        hard = 1_048_576
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def versions() -> dict[str, str]:
    def output(*command: str) -> str:
        try:
            return (
                subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
                .stdout.strip()
                .splitlines()[0]
            )
        except (OSError, IndexError, subprocess.SubprocessError):
            return "absent"

    repo = servers.BENCH_DIR.parent
    commit = output("git", "-C", str(repo), "rev-parse", "--short", "HEAD")
    dirty = output("git", "-C", str(repo), "status", "--porcelain", "--", "src")
    return {
        "roost_commit": commit + ("+uncommitted src changes" if dirty != "absent" else ""),
        "dovecot": output("dovecot", "--version"),
        "mbsync": output("mbsync", "--version"),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under 2 minutes")
    parser.add_argument("--only", metavar="GROUPS", help=f"comma-separated subset of {GROUPS}")
    parser.add_argument(
        "--profile",
        metavar="SCENARIO",
        help="py-spy record Roost during one scenario "
        "(e.g. large, mixed-100, idle); summary in the JSON",
    )
    parser.add_argument("--no-dovecot", action="store_true", help="Roost only")
    parser.add_argument(
        "--roost-workers",
        type=int,
        metavar="N",
        help="Roost's [server] workers (default: Roost's own default, the core count)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the temporary data goes (default: the system temp dir)",
    )
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="Roost's store: its data directory (the default) or a fresh PostgreSQL "
        "database on --pg-url's server, dropped at the end (no seed cache)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "ROOST_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server's URL, of a role that may create databases",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--no-cache", action="store_true", help="seed from scratch; do not use or fill the cache"
    )
    parser.add_argument(
        "--dovecot-login",
        choices=("security", "performance"),
        default="performance",
        help="Dovecot's login processes: 'performance' (shared and pre-started, as "
        "recommended for busy servers; the default here) or 'security' (Dovecot's own "
        "default: a new login process for every connection)",
    )
    args = parser.parse_args()

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    open_files = raise_open_files()
    bench = Bench(args)
    if bench.sizes.idle_connections + 1000 > open_files:
        log(f"RLIMIT_NOFILE is {open_files}: fewer idle connections than asked will work")
    workdir = Path(tempfile.mkdtemp(prefix="roost-bench-", dir=args.workdir))
    workdir.chmod(0o755)
    log(f"{'quick' if args.quick else 'full'} run in {workdir}")
    started = datetime.now(UTC)
    interrupted = False
    database = None
    if args.backend == "postgresql":
        database = servers.create_pg_database(args.pg_url)
        os.environ["ROOST_STORE"] = database  # the server and the seeders inherit it
        args.no_cache = True
        bench.notes.append("Roost on PostgreSQL (--backend postgresql)")
        log(f"Roost's store: {database}")
    try:
        bench.prepare(workdir)
        bench.start_servers()
        asyncio.run(bench.run())
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping the servers")
    finally:
        errors = bench.errors_logged()
        for server in bench.servers:
            began = time.perf_counter()
            with contextlib.suppress(Exception):
                server.stop()
            log(f"{server.label} stopped in {time.perf_counter() - began:.1f}s")
        if database is not None:
            servers.drop_pg_database(args.pg_url, database)
        if args.keep:
            log(f"data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            log("data removed")
    elapsed = time.monotonic() - _STARTED

    rows = build_rows(bench)
    print()
    print_table(rows)
    print_details(bench)
    for label, lines in errors.items():
        if lines:
            print(f"\n{label} logged errors (last {len(lines)}):")
            for line in lines[-5:]:
                print(f"  {line[:200]}")
    if bench.args.dovecot_login == "security":
        bench.notes.append("Dovecot's login processes in its default high-security mode")
    for note in bench.notes:
        print(f"note: {note}")
    print(f"\ntotal {elapsed:.0f}s (budget {bench.sizes.budget:.0f}s)")

    report = {
        "format": 1,
        "mode": "quick" if args.quick else "full",
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "interrupted": interrupted,
        "host": {"cpus": os.cpu_count(), **versions()},
        "sizes": dataclasses.asdict(bench.sizes),
        "groups": sorted(bench.groups),
        "seeding": getattr(bench, "seeding", None),
        "rows": [{**dataclasses.asdict(row), "ratio": row.ratio} for row in rows],
        "details": bench.details,
        "profiles": bench.profiles,
        "server_errors": errors,
        "notes": bench.notes,
        "dovecot_login": args.dovecot_login,
        "roost_workers": bench.roost_workers,
        "roost_backend": args.backend,
    }
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(report, indent=1, default=str)
    (RESULTS / "latest.json").write_text(text)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}-{report['mode']}.json").write_text(text)
    print(f"wrote {RESULTS / 'latest.json'}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
