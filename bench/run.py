#!/usr/bin/env python3
"""``make bench``: Roost and Dovecot side by side, same users, same mail (issue 5).

    .venv/bin/python bench/run.py            # the whole set, under 10 minutes
    .venv/bin/python bench/run.py --quick    # smaller sizes, about 5 minutes
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
import extra
import imapc
import scenarios
import seedcache
import servers
from servers import AccountPlan, Dovecot, Roost, RoostNodes, Server
from table import build_rows, print_details, print_table

RESULTS = servers.BENCH_DIR / "results"
CACHE = RESULTS / "seed-cache"
SEED = 1
# The mixed workload on defaults starts with this many seconds uncounted: the first
# sign-in of each account in each Roost worker is a full argon2id check (~150 ms of CPU).
TLS_WARMUP = 4.0
# LMTP rows: (connections, recipients per message); 1x100 is the cost of one message
# to 100 accounts of this server (stored once, a copy in each mailbox).
LMTP_SHAPES = ((1, 1), (1, 10), (10, 1), (10, 10), (1, 100))
GROUPS = (
    "login",
    "mixed",
    "defaults",
    "append",
    "wake",
    "lmtp",
    "mbsync",
    "large",
    "idle",
    "import",
    "sieve",
    "submission",
)


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
    tls_accounts: int  # the mixed workload on defaults, over TLS
    tls_messages: int
    many_users: int  # long-lived connections from one address: users x per user
    many_per_user: int
    many_duration: float
    lmtp_deliveries: int
    lmtp_wake_rounds: int
    import_messages: int
    sieve_runs: int
    submission_messages: int
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
    tls_accounts=10,
    tls_messages=200,
    many_users=25,
    many_per_user=20,
    many_duration=10.0,
    lmtp_deliveries=2000,
    lmtp_wake_rounds=50,
    import_messages=100_000,
    sieve_runs=7_000,
    submission_messages=400,
    budget=900.0,
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
    tls_accounts=10,
    tls_messages=200,
    many_users=25,
    many_per_user=20,
    many_duration=4.0,
    lmtp_deliveries=500,
    lmtp_wake_rounds=20,
    import_messages=5_000,
    sieve_runs=2_000,
    submission_messages=200,
    budget=330.0,
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
        # Roost on defaults: the web accounts have Roost's default argon2id; the same
        # mail for Dovecot with that string and, as "plain…", with {PLAIN} passwords.
        "defaults": [
            *(
                AccountPlan(f"web{i}", sizes.tls_messages, servers.default_hash())
                for i in range(sizes.tls_accounts)
            ),
            *(AccountPlan(f"many{i}", 0, cheap) for i in range(sizes.many_users)),
        ],
        "plain": [
            AccountPlan(f"plainweb{i}", sizes.tls_messages, servers.PLAIN_PASSWORD)
            for i in range(sizes.tls_accounts)
        ]
        if "defaults" in groups
        else [],
        # 100 so that one message can go to 100 different accounts (lmtp-1x100).
        "lmtp": [AccountPlan(f"lmtp{i}", 0, cheap) for i in range(100)],
    }
    wanted = groups | {"plain"}
    return {
        group: plans[group] for group in (*GROUPS, "plain") if group in plans and group in wanted
    }


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
        self.lmtp_shapes = LMTP_SHAPES
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
        self.pg_database: str | None = None  # --backend postgresql: Roost's store

    # -- setting up --

    def prepare(self, workdir: Path) -> None:
        self.workdir = workdir
        plans_by_group = account_plans(self.sizes, self.groups)
        plans = [plan for group in plans_by_group.values() for plan in group]
        self.plans = plans_by_group
        roost = Roost(workdir, self.args.roost_workers)
        roost.write_config()
        self.servers.append(roost)
        self.roost_defaults: Roost | None = None
        if plans_by_group.get("defaults"):
            self.roost_defaults = Roost(workdir, self.args.roost_workers, defaults=True)
            self.roost_defaults.write_config()
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
        if self.roost_defaults is not None:
            targets["roost-defaults"] = self.roost_defaults.data_dir
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
        if self.pg_database is not None:
            self.seeding["postgresql"] = self.copy_to_postgresql(roost, self.pg_database)

    def copy_to_postgresql(self, roost: Roost, url: str) -> dict[str, Any]:
        """--backend postgresql: the seeded data directories (the very ones the SQLite
        runs use, cache and all) moved into the database by `roost store copy`, as a
        site moving to PostgreSQL would; from then on the servers use the database."""
        directories = [roost.data_dir]
        if self.roost_defaults is not None:
            directories.append(self.roost_defaults.data_dir)
        started = time.perf_counter()
        messages = sum(servers.copy_into_postgresql(d, url) for d in directories)
        seconds = time.perf_counter() - started
        os.environ["ROOST_STORE"] = url  # the servers inherit it
        rate = messages / seconds if seconds else 0.0
        log(f"copied {messages:,} messages into PostgreSQL in {seconds:.1f}s ({rate:,.0f}/s)")
        return {"messages": messages, "seconds": round(seconds, 1), "per_second": round(rate)}

    def seed(
        self,
        roost: Roost,
        dovecot: Dovecot | None,
        plans: list[AccountPlan],
        large: list[AccountPlan],
    ) -> dict[str, Any]:
        log(f"creating {len(plans)} accounts")
        on_defaults = {plan.name for plan in self.plans.get("defaults", [])}
        dovecot_only = {plan.name for plan in self.plans.get("plain", [])}
        mine = [plan for plan in plans if plan.name not in on_defaults | dovecot_only]
        roost.create_accounts(mine)
        seeded = [plan for plan in mine if plan.messages]
        largest = max(seeded, key=lambda plan: plan.messages, default=None)
        groups = [[largest] if largest else [], [p for p in seeded if p is not largest]]
        seeders = roost.seeders(groups, SEED)
        if self.roost_defaults is not None:
            theirs = [plan for plan in plans if plan.name in on_defaults]
            self.roost_defaults.create_accounts(theirs)
            seeders += self.roost_defaults.seeders([[p for p in theirs if p.messages]], SEED)
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
                dovecot.seed([p for p in plans if p.messages], SEED, observe)
                log("Dovecot Maildirs written")
            else:
                counts = list(expected_search(large_count))
            for seeder in seeders:
                seeder.join()
        finally:
            for seeder in seeders:
                seeder.kill()
        roost.seeded()
        if self.roost_defaults is not None:
            self.roost_defaults.seeded()
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

    def restart_servers(self, which: list[Server] | None = None) -> None:
        which = self.servers if which is None else which
        for server in which:
            began = time.perf_counter()
            server.stop()
            log(f"{server.label} stopped in {time.perf_counter() - began:.1f}s")
        for server in which:
            server.start()
            log(f"{server.label} listening on {server.port} (pid {server.pid})")

    # -- running --

    async def each_server(
        self,
        key: str,
        run: Callable[[Server], Awaitable[dict[str, Any]]],
        among: list[Server] | None = None,
        *,
        keep: bool = False,
    ) -> None:
        """``run`` against each server; ``keep``: add to the key's results so far."""
        if not keep or key not in self.details:
            self.details[key] = {}
        for server in self.servers if among is None else among:
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
            roost = self.servers[0]
            assert isinstance(roost, Roost)
            roost.auth_cache_size = 0  # the same, without the sign-in cache
            roost.write_config()
            self.restart_servers([roost])
            await self.each_server(
                "login-nocache",
                lambda s: scenarios.login_cost(
                    s, "login", sizes.login_clients, sizes.login_duration
                ),
            )
            roost.auth_cache_size = None
            roost.write_config()
            self.restart_servers([roost])
        if "mixed" in self.groups:
            users = [plan.name for plan in plans["mixed"]]
            for clients in sizes.mixed_clients:
                await self.each_server(
                    f"mixed-{clients}",
                    lambda s, c=clients: scenarios.mixed(
                        s, users, c, sizes.mixed_duration, sizes.mixed_warmup
                    ),
                )
        if "mixed" in self.groups and self.args.nodes > 1:
            await self.on_nodes(self.args.nodes)
        if "defaults" in self.groups and self.roost_defaults is not None:
            await self.on_defaults(self.roost_defaults)
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
        if "lmtp" in self.groups:
            users = [plan.name for plan in plans["lmtp"]]
            for connections, recipients in LMTP_SHAPES:
                await self.each_server(
                    f"lmtp-{connections}x{recipients}",
                    lambda s, c=connections, r=recipients: extra.lmtp_rate(
                        s, users, c, r, sizes.lmtp_deliveries
                    ),
                )
            await self.each_server(
                "lmtp-wake", lambda s: extra.lmtp_wake(s, users[0], sizes.lmtp_wake_rounds)
            )
        if "import" in self.groups:
            log(f"import: roost ({sizes.import_messages:,} messages)")
            result = await asyncio.to_thread(extra.import_rate, sizes.import_messages)
            self.details["import"] = {"roost": result}
        if "sieve" in self.groups:
            log("sieve: roost (100-rule script)")
            result = await asyncio.to_thread(extra.sieve_eval, sizes.sieve_runs)
            self.details["sieve"] = {"roost": result}
        if "submission" in self.groups:
            log(f"submission: roost ({sizes.submission_messages} messages per figure)")
            result = await asyncio.to_thread(extra.submission_rate, sizes.submission_messages)
            self.details["submission"] = {"roost": result}
        if "mbsync" in self.groups:
            await self.each_server(
                "mbsync", lambda s: scenarios.mbsync_initial(s, "sync", sizes.sync, time_limit=240)
            )
            await self.each_server(
                "mbsync-compress",
                lambda s: scenarios.mbsync_initial(
                    s, "sync", sizes.sync, time_limit=240, compress=s.label == "roost"
                ),
            )
            await self.each_server(
                "mbsync-compress-both",
                lambda s: scenarios.mbsync_initial(
                    s, "sync", sizes.sync, time_limit=240, compress=True
                ),
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

    async def on_nodes(self, count: int) -> None:
        """The mixed workload on one PostgreSQL node and on ``count``, one worker each,
        clients spread round-robin (servers.RoostNodes)."""
        users = [plan.name for plan in self.plans["mixed"]]
        sets = [RoostNodes(self.workdir, n, workers=1) for n in (1, count)]
        self.notes.append(
            f"PostgreSQL nodes: 1 and {count} `roost serve` processes of one worker each on"
            f" one database; nodes, PostgreSQL and the load generator share this machine's"
            f" {os.cpu_count()} cores"
        )
        for clients in self.sizes.mixed_clients:
            for nodes in sets:
                nodes.write_config()
                nodes.start()
                try:
                    await self.each_server(
                        f"mixed-{clients}-nodes",
                        lambda s, c=clients, n=nodes: scenarios.mixed(
                            s,
                            users,
                            c,
                            self.sizes.mixed_duration,
                            self.sizes.mixed_warmup,
                            ports=n.ports,
                        ),
                        [nodes],
                        keep=True,
                    )
                finally:
                    self.node_errors = [*getattr(self, "node_errors", []), *nodes.errors_logged()]
                    nodes.stop()

    async def on_defaults(self, roost: Roost) -> None:
        """The runs against Roost as installed (its own process, started for them)."""
        sizes = self.sizes
        roost.start()
        log(f"roost on defaults listening on {roost.port}, TLS {roost.tls_port}")
        tls = imapc.client_tls()
        dovecot = [server for server in self.servers if server.label == "dovecot"]
        webs = [p.name for p in self.plans["defaults"] if p.name.startswith("web")]
        plain = [p.name for p in self.plans["plain"]]
        many = [p.name for p in self.plans["defaults"] if p.name.startswith("many")]
        clients = sizes.mixed_clients[0]
        try:

            def mixed_tls(users: list[str]) -> Callable[[Server], Awaitable[dict[str, Any]]]:
                return lambda s: scenarios.mixed(
                    s,
                    users,
                    clients,
                    sizes.mixed_duration,
                    TLS_WARMUP,
                    port=s.tls_port,
                    tls=tls,
                )

            await self.each_server(f"tls-mixed-{clients}", mixed_tls(webs), [roost, *dovecot])
            if dovecot:
                await self.each_server(f"tls-mixed-{clients}-plain", mixed_tls(plain), dovecot)
            await self.each_server(
                "many-connections",
                lambda s: extra.many_connections(
                    s, many, sizes.many_per_user, sizes.many_duration, tls, s.tls_port
                ),
                [roost, *dovecot],
            )
        finally:
            self.defaults_errors = roost.errors_logged()[-20:]
            roost.stop()

    def errors_logged(self) -> dict[str, list[str]]:
        errors = {server.label: server.errors_logged()[-20:] for server in self.servers}
        if getattr(self, "node_errors", None):
            errors["roost nodes"] = self.node_errors[-20:]
        if getattr(self, "defaults_errors", None):
            errors["roost on defaults"] = self.defaults_errors
        return errors


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
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about 5 minutes")
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
        "database on --pg-url's server, filled by `roost store copy` from the seeded data "
        "directory and dropped at the end",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "ROOST_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server's URL, of a role that may create databases",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=2,
        metavar="N",
        help="with --backend postgresql: the mixed workload also on 1 and on N nodes "
        "(one worker each, clients round-robin); 1: not (default 2)",
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
    if args.backend != "postgresql":
        args.nodes = 1
    if args.backend == "postgresql":
        database = servers.create_pg_database(args.pg_url)
        bench.pg_database = database  # filled from the seeded SQLite data directories
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
