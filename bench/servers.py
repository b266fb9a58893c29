"""The two servers under test, as child processes with private data, and their seeding.

Roost runs as ``python -m roost serve --config FILE`` (embedded store, plain IMAP on
127.0.0.1, port from the banner; bench/hooks/sitecustomize.py turns off hash upgrades).
Dovecot runs as ``dovecot -F -c FILE`` with a private base_dir, Maildir mail and
passwd-file users, on a free loopback port.

Both get the same accounts with the same password hash, and the same messages from
``corpus.generate``: Roost's store is written directly through the Store API (no
fsync while seeding), Dovecot's Maildirs are written as files with a dovecot-uidlist,
which is what Dovecot would have made of the same deliveries.

Every process is started by this module, remembered by PID and stopped by PID;
children get PR_SET_PDEATHSIG so that they go too if the benchmark is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import pwd
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import corpus

BENCH_DIR = Path(__file__).resolve().parent
PASSWORD = "bench-password-1"
PLAIN_PASSWORD = "{PLAIN}" + PASSWORD  # Dovecot only: the cheapest check it can make
SEED_BATCH = 500
BANNER_TIMEOUT = 60.0
SEED_FORMAT = 1  # bump when the seeded bytes change without corpus.py changing

# A cheap argon2id for the accounts that sign in thousands of times (see hooks/)
CHEAP_HASH_PARAMETERS = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
# A fixed salt: the same hash strings every run, so seeded data can be cached.
HASH_SALT = b"roost-bench-salt"


@dataclass(frozen=True, slots=True)
class AccountPlan:
    name: str
    messages: int  # the first ``messages`` of corpus.generate(seed)
    password_hash: str  # argon2id, PHC string


def cheap_hash(password: str = PASSWORD) -> str:
    return _argon2id(password, **CHEAP_HASH_PARAMETERS)


def default_hash(password: str = PASSWORD) -> str:
    """A hash with Roost's default parameters (those of ``roost user add``)."""
    from roost.auth.passwords import DEFAULT_HASHER

    return _argon2id(
        password,
        time_cost=DEFAULT_HASHER.time_cost,
        memory_cost=DEFAULT_HASHER.memory_cost,
        parallelism=DEFAULT_HASHER.parallelism,
    )


def _argon2id(password: str, *, time_cost: int, memory_cost: int, parallelism: int) -> str:
    from argon2.low_level import Type, hash_secret

    encoded = hash_secret(
        password.encode(),
        HASH_SALT,
        time_cost=time_cost,
        memory_cost=memory_cost,
        parallelism=parallelism,
        hash_len=32,
        type=Type.ID,
    )
    return encoded.decode()


# ---- processes ------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM… of ``pid`` in KiB (empty if it is gone)."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Vm"):
                    key, _, rest = line.partition(":")
                    values[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


def proc_pss(pid: int) -> int:
    """Proportional set size in KiB: shared pages divided among their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (write 5 to clear_refs, Linux ≥ 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip()
    except OSError:
        return ""


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time of the given processes, with that of the children they
    have waited for (Dovecot's finished session processes)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])
    return total / ticks


def _socket_inode(server_port: int, client_port: int) -> int | None:
    """The inode of the server's end of a loopback TCP connection, from /proc/net/tcp."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                return int(fields[9])
    return None


class Server:
    """What the scenarios need of a server under test."""

    label = ""
    host = "127.0.0.1"
    port = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        return process_tree(self.pid) if self.running() else []

    def memory(self) -> dict[str, int]:
        """RSS and PSS (KiB) summed over the server's processes, and their count."""
        pids = self.pids()
        rss = sum(proc_status(pid).get("VmRSS", 0) for pid in pids)
        pss = sum(proc_pss(pid) for pid in pids)
        return {"rss_kib": rss, "pss_kib": pss, "processes": len(pids)}

    def session_pid(self, client_port: int) -> int:
        """The process holding the server side of the connection from ``client_port``
        (a Roost worker, a Dovecot imap process)."""
        inode = _socket_inode(self.port, client_port)
        if inode is not None:
            target = f"socket:[{inode}]"
            for pid in self.pids():
                try:
                    descriptors = os.listdir(f"/proc/{pid}/fd")
                except OSError:
                    continue
                for descriptor in descriptors:
                    try:
                        if os.readlink(f"/proc/{pid}/fd/{descriptor}") == target:
                            return pid
                    except OSError:
                        continue
        raise RuntimeError(f"no {self.label} process holds the connection from {client_port}")

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
        self.process = None


# ---- Roost ----------------------------------------------------------------------------

_PORT = re.compile(r"^\s*IMAP (?:\(no TLS\)|with STARTTLS)\s+127\.0\.0\.1:(\d+)\s*$", re.MULTILINE)
_TLS_PORT = re.compile(r"^\s*IMAP over TLS\b.*?127\.0\.0\.1:(\d+)\s*$", re.MULTILINE)
_LMTP_PORT = re.compile(r"^\s*LMTP\s+127\.0\.0\.1:(\d+)\s*$", re.MULTILINE)


def bench_certificate(workdir: Path) -> tuple[Path, Path]:
    """One self-signed certificate for both servers' TLS listeners."""
    from roost.runtime.tls import ensure_self_signed

    directory = workdir / "tls"
    cert, key = ensure_self_signed(directory)
    directory.chmod(0o755)
    return cert, key


_SEEDING_INDEX = "bench_seeding_message_id"


class Roost(Server):
    label = "roost"

    def __init__(
        self,
        workdir: Path,
        workers: int | None = None,
        *,
        defaults: bool = False,
        name: str | None = None,
    ) -> None:
        """``defaults``: Roost as installed — default limits, sign-in cache, hash
        upgrades, LOGIN only over TLS — with an implicit-TLS listener; otherwise the
        protocol-only setup (limits raised, no hash upgrades, plain IMAP, LMTP).
        ``name``: the directory under ``workdir`` (one node of RoostNodes)."""
        self.workers_setting = workers  # None: Roost's default (the core count)
        self.defaults = defaults
        self.root = workdir / (name or ("roost-defaults" if defaults else "roost"))
        self.data_dir = self.root / "data"
        self.config = self.root / "roost.toml"
        self.log = self.root / "roost.log"
        self.root.mkdir(parents=True)
        self.auth_cache_size: int | None = None  # None: Roost's default
        self.tls_port = 0
        self.lmtp_port = 0

    def write_config(self) -> None:
        if self.defaults:
            self._write_defaults_config()
            return
        from roost.config import Settings

        lines = [
            "[server]",
            f"data_dir = {str(self.data_dir)!r}",
            "shutdown_timeout = 2.0",
            *([f"workers = {self.workers_setting}"] if self.workers_setting else []),
            "[imap]",
            'listen = ["127.0.0.1:0"]',
            "tls_listen = []",
            "starttls = false",
            "allow_plaintext_auth = true",
        ]
        if "pop3" in Settings.__dataclass_fields__:
            lines += ["[pop3]", "listen = []", "tls_listen = []", "starttls = false"]
        lines += [
            "[limits]",
            "max_connections_per_ip = 1000000",
            "max_connections_per_account = 1000000",
            "max_connections_per_user_ip = 1000000",
            "[auth]",
            "failure_delay = 0.0",
            "max_failures_per_ip = 0",
            *([f"cache_size = {self.auth_cache_size}"] if self.auth_cache_size is not None else []),
            "[log]",
            'level = "warning"',
        ]
        if "lmtp" in Settings.__dataclass_fields__:
            lines += ["[lmtp]", 'listen = ["127.0.0.1:0"]', "[delivery]", "strip_domain = true"]
        self.config.write_text("\n".join(lines) + "\n")

    def _write_defaults_config(self) -> None:
        """Only what a site must say: where, which listeners, which certificate."""
        cert, key = bench_certificate(self.root.parent)
        lines = [
            "[server]",
            f"data_dir = {str(self.data_dir)!r}",
            "shutdown_timeout = 2.0",
            *([f"workers = {self.workers_setting}"] if self.workers_setting else []),
            "[imap]",
            'listen = ["127.0.0.1:0"]',
            'tls_listen = ["127.0.0.1:0"]',
            "[pop3]",
            "listen = []",
            "tls_listen = []",
            "[tls]",
            f"cert = {str(cert)!r}",
            f"key = {str(key)!r}",
            "[log]",
            'level = "warning"',
        ]
        self.config.write_text("\n".join(lines) + "\n")

    def create_accounts(self, plans: Sequence[AccountPlan]) -> None:
        self.write_config()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        asyncio.run(_roost_create_accounts(self.data_dir, plans))
        self._seeding_index(create=True)

    def seeded(self) -> None:
        """Call once the seeders are done: the data is then exactly Roost's."""
        self._seeding_index(create=False)

    def _seeding_index(self, *, create: bool) -> None:
        """A plain index on ``analyses.message_id`` while seeding, dropped afterwards.

        Delivery looks up the THREADID of a message's parent with ``WHERE message_id =
        ?``, which cannot use Roost's partial index (``WHERE message_id != ''``: SQLite
        cannot prove that a bound parameter is not ''), so every stored message scans
        the whole table and seeding 100,000 messages takes hours instead of minutes.
        The extra index changes no stored value, only the speed of seeding; the
        benchmark's own APPENDs run on Roost's schema as it is. Harmless once fixed."""
        statement = (
            f"CREATE INDEX IF NOT EXISTS {_SEEDING_INDEX} ON analyses (message_id)"
            if create
            else f"DROP INDEX IF EXISTS {_SEEDING_INDEX}"
        )
        for path in sorted(self.data_dir.glob("accounts/*/mail.db")):
            with contextlib.closing(sqlite3.connect(path)) as connection:
                try:
                    connection.execute(statement)
                    connection.commit()
                except sqlite3.Error:  # no such table or column: nothing to help
                    pass

    def seeders(self, groups: Sequence[Sequence[AccountPlan]], seed: int) -> list[_Seeder]:
        """One child process per group of accounts, each filling its accounts."""
        return [
            _Seeder(
                multiprocessing.get_context("fork").Process(
                    target=_roost_seed_process, args=(self.data_dir, list(group), seed), daemon=True
                )
            )
            for group in groups
            if group
        ]

    def start(self) -> None:
        assert not self.running()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "roost", "serve", "--config", str(self.config)],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
                env=self._environment(),
            )
        banner = self._read_banner()
        found = _PORT.search(banner)
        if found is None:
            self.stop()
            raise RuntimeError(f"no IMAP port in Roost's banner:\n{banner}")
        self.port = int(found.group(1))
        tls = _TLS_PORT.search(banner)
        self.tls_port = int(tls.group(1)) if tls else 0
        lmtp = _LMTP_PORT.search(banner)
        self.lmtp_port = int(lmtp.group(1)) if lmtp else 0

    def _environment(self) -> dict[str, str]:
        """bench/hooks on PYTHONPATH, so that the supervisor and every worker load its
        sitecustomize, which turns off password-hash upgrades (see there); not for the
        Roost on defaults."""
        if self.defaults:
            return dict(os.environ)
        hooks = str(BENCH_DIR / "hooks")
        path = os.environ.get("PYTHONPATH")
        return {
            **os.environ,
            "PYTHONPATH": f"{hooks}{os.pathsep}{path}" if path else hooks,
            "ROOST_BENCH_NO_REHASH": "1",
        }

    def workers(self) -> int:
        """Worker processes serving connections (0: the supervisor serves them)."""
        return len(self.pids()) - 1

    def _read_banner(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        out = self.process.stdout
        deadline = time.monotonic() + BANNER_TIMEOUT
        text = b""
        while b"Stop with Ctrl-C" not in text:
            ready, _, _ = select.select([out], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(out.fileno(), 4096) if ready else b""
            if not chunk:
                log = self.log.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"Roost gave no banner: {text!r}\n{log}")
            text += chunk
        return text.decode(errors="replace")

    def errors_logged(self) -> list[str]:
        if not self.log.exists():
            return []
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if "ERROR" in line or "CRITICAL" in line or "Traceback" in line
        ]


def create_pg_database(server_url: str) -> str:
    """A new database on ``server_url``'s server with Roost's schema; its URL."""
    import asyncpg

    from roost.store.postgres.schema import migrate

    name = f"roost_bench_{os.getpid()}"
    url = server_url.rpartition("/")[0] + "/" + name

    async def create() -> None:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(create())
    return url


def copy_into_postgresql(data_dir: Path, url: str) -> int:
    """``roost store copy`` of a seeded data directory into the database at ``url``,
    then VACUUM ANALYZE, as after any bulk load: the planner's statistics, and the
    trigram indexes' pending entries merged (a search would otherwise scan them);
    the number of messages copied."""
    import asyncpg

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "roost",
            "store",
            "copy",
            "--from",
            f"sqlite:{data_dir}",
            "--to",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
        preexec_fn=_die_with_parent,
    )
    found = re.search(r"\((\d+) messages\)", done.stdout)
    if found is None:
        raise RuntimeError(f"roost store copy said: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    async def vacuum() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()

    asyncio.run(vacuum())
    return int(found.group(1))


def drop_pg_database(server_url: str, url: str) -> None:
    import asyncpg

    async def drop() -> None:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(drop())


async def _open_roost_store(data_dir: Path) -> Any:
    """The store the benchmarked server uses: PostgreSQL when ``$ROOST_STORE`` names one
    (``run.py --backend postgresql``, inherited by the server and the seeders), else the
    data directory's SQLite store."""
    url = os.environ.get("ROOST_STORE")
    if url:
        from roost.store.postgres import PostgresStore

        return await PostgresStore.open(url, listen=False)
    from roost.store.sqlite import SqliteStore

    return await SqliteStore.open(data_dir, durable=False)


async def _roost_create_accounts(data_dir: Path, plans: Sequence[AccountPlan]) -> None:
    store = await _open_roost_store(data_dir)
    try:
        for plan in plans:
            await store.create_account(plan.name, plan.password_hash)
    finally:
        await store.close()


def _roost_seed_process(data_dir: Path, plans: list[AccountPlan], seed: int) -> None:
    asyncio.run(_roost_seed(data_dir, plans, seed))


async def _roost_seed(data_dir: Path, plans: list[AccountPlan], seed: int) -> None:
    from roost.store.base import MessageSource, NewMessage

    store = await _open_roost_store(data_dir)
    try:
        accounts = [await store.open_account(plan.name) for plan in plans]
        inboxes = [(await account.get_mailbox("INBOX")).id for account in accounts]
        batches: list[list[NewMessage]] = [[] for _ in plans]
        for n, message in enumerate(corpus.generate(max(p.messages for p in plans), seed)):
            flags = set()
            if message.seen:
                flags.add("\\Seen")
            if message.flagged:
                flags.add("\\Flagged")
            new = NewMessage(MessageSource(data=message.data), frozenset(flags), message.date)
            for index, plan in enumerate(plans):
                if n < plan.messages:
                    batches[index].append(new)
                    if len(batches[index]) >= SEED_BATCH:
                        await accounts[index].append(inboxes[index], batches[index])
                        batches[index] = []
        for account, inbox, batch in zip(accounts, inboxes, batches, strict=True):
            if batch:
                await account.append(inbox, batch)
        for account in accounts:
            await account.close()
    finally:
        await store.close()


class _Seeder:
    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self.process = process

    def start(self) -> None:
        self.process.start()

    def join(self) -> None:
        self.process.join()
        if self.process.exitcode != 0:
            raise RuntimeError(f"a seeding process failed (exit code {self.process.exitcode})")

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# ---- Dovecot --------------------------------------------------------------------------

DOVECOT_MAIL_UID = 61_000  # a uid of its own: no real user's files or limits


def dovecot_available() -> bool:
    return shutil.which("dovecot") is not None or Path("/usr/sbin/dovecot").exists()


class Dovecot(Server):
    label = "dovecot"
    tls_port = 0
    lmtp_port = 0

    def __init__(self, workdir: Path, max_connections: int, login_performance: bool) -> None:
        self.root = workdir / "dovecot"
        self.mail = self.root / "mail"
        self.config = self.root / "dovecot.conf"
        self.passwd = self.root / "passwd"
        self.log = self.root / "dovecot.log"
        self.max_connections = max_connections
        self.login_performance = login_performance
        self.root.mkdir(parents=True)
        self.root.chmod(0o755)  # login processes (dovenull) reach base_dir below it
        if os.geteuid() == 0:
            self.uid = self.gid = DOVECOT_MAIL_UID
            self.internal_user, self.login_user = "dovecot", "dovenull"
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            self.internal_user = self.login_user = pwd.getpwuid(self.uid).pw_name

    def write_config(self) -> None:
        limit = self.max_connections + 100
        self.port = free_port()
        self.tls_port = free_port()
        self.lmtp_port = free_port()
        cert, key = bench_certificate(self.root.parent)
        login_mode = ""
        if self.login_performance:  # Dovecot's "high-performance mode" for login
            login_mode = f"  service_count = 0\n  process_min_avail = {os.cpu_count() or 1}\n"
        self.config.write_text(
            f"""# Dovecot for the Roost benchmark: Dovecot's defaults (no FTS plugin, default
# fsync and index settings), except for where it listens, where its files are, and the
# process/connection limits that 10,000 simultaneous sessions need.
instance_name = roost-bench-{os.getpid()}
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log}
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {self.internal_user}
default_login_user = {self.login_user}
mail_location = maildir:~/Maildir
first_valid_uid = {min(self.uid, 500)}
mail_max_userip_connections = {limit}
default_process_limit = {limit}
default_client_limit = {min(limit + 2000, 19000)}
default_vsz_limit = 256M
passdb {{
  driver = passwd-file
  args = {self.passwd}
}}
userdb {{
  driver = passwd-file
  args = {self.passwd}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
  }}
  process_limit = 1000
{login_mode}}}
service imap-urlauth-login {{
  process_limit = 10
}}
service imap {{
  process_limit = {limit}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
# LMTP recipients are user@example.org; the passwd-file names users without domain
protocol lmtp {{
  auth_username_format = %Ln
}}
# COMPRESS=DEFLATE (RFC 4978) at Dovecot's default level 6, as Roost offers it; on by
# default from Dovecot 2.4. Only the mbsync-compress-both scenario asks for it.
protocol imap {{
  mail_plugins = $mail_plugins imap_zlib
}}
"""
        )
        (self.root / "state").mkdir(exist_ok=True)

    def write_accounts(self, plans: Sequence[AccountPlan]) -> None:
        lines = []
        for plan in plans:
            home = self.mail / plan.name
            stored = plan.password_hash
            if not stored.startswith("{"):
                stored = "{ARGON2ID}" + stored
            lines.append(f"{plan.name}:{stored}:{self.uid}:{self.gid}::{home}::")
        self.passwd.write_text("\n".join(lines) + "\n")
        self.passwd.chmod(0o644)

    def seed(
        self,
        plans: Sequence[AccountPlan],
        seed: int,
        observe: Callable[[int, corpus.Message], None] | None = None,
    ) -> None:
        """Write every account's Maildir INBOX (cur/ files and dovecot-uidlist);
        ``observe`` sees every generated message."""
        self.mail.mkdir(exist_ok=True)
        os.chown(self.mail, self.uid, self.gid)
        writers = []
        for plan in plans:
            home = self.mail / plan.name
            home.mkdir(mode=0o700)
            os.chown(home, self.uid, self.gid)
            writers.append(_MaildirWriter(home / "Maildir", self.uid, self.gid))
        wanted = max((plan.messages for plan in plans), default=0)
        for n, message in enumerate(corpus.generate(wanted, seed)):
            if observe is not None:
                observe(n, message)
            flags = ("F" if message.flagged else "") + ("S" if message.seen else "")
            data = message.data.replace(b"\r\n", b"\n")  # Dovecot saves with LF (default)
            stamp = int(message.date.timestamp())
            for plan, writer in zip(plans, writers, strict=True):
                if n < plan.messages:
                    writer.add(data, len(message.data), flags, stamp)
        for writer in writers:
            writer.finish()

    def start(self) -> None:
        assert not self.running()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.config)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"Dovecot exited:\n{self.log.read_text()[-3000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as probe:
                    if probe.recv(200).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Dovecot did not listen:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def errors_logged(self) -> list[str]:
        if not self.log.exists():
            return []
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if ("Error:" in line or "Fatal:" in line or "Panic:" in line)
            and "setrlimit(RLIMIT_NPROC" not in line
        ]


class _MaildirWriter:
    """Maildir files named as Dovecot names them (``S=`` file size, ``W=`` size with
    CRLF), mtime = INTERNALDATE, and a dovecot-uidlist giving UIDs in order."""

    def __init__(self, path: Path, uid: int, gid: int) -> None:
        self.path = path
        self.uid, self.gid = uid, gid
        for sub in ("", "cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
            os.chown(path / sub, uid, gid)
        self.names: list[str] = []
        self.uidvalidity = 1_700_000_000

    def add(self, data: bytes, virtual_size: int, flags: str, stamp: int) -> None:
        base = f"{stamp}.M{len(self.names) + 1}P1.bench,S={len(data)},W={virtual_size}"
        name = f"{base}:2,{flags}"
        target = f"{self.path}/cur/{name}"
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, data)
            os.fchown(descriptor, self.uid, self.gid)
        finally:
            os.close(descriptor)
        os.utime(target, (stamp, stamp))
        self.names.append(base)

    def finish(self) -> None:
        lines = [f"3 V{self.uidvalidity} N{len(self.names) + 1} G{os.urandom(16).hex()}"]
        lines += [f"{uid} :{name}" for uid, name in enumerate(self.names, 1)]
        uidlist = self.path / "dovecot-uidlist"
        uidlist.write_text("\n".join(lines) + "\n")
        os.chown(uidlist, self.uid, self.gid)


# ---- several Roost nodes on one PostgreSQL database -----------------------------------


class RoostNodes(Server):
    """``count`` ``roost serve`` processes on the one PostgreSQL database ``$ROOST_STORE``
    names (run.py --backend postgresql --nodes N), each with its own configuration and
    runtime directory: what a site with several machines behind one database runs.
    Scenarios that take ``ports`` spread their clients over the nodes round-robin;
    CPU and memory are summed over every node."""

    def __init__(self, workdir: Path, count: int, workers: int) -> None:
        self.label = f"roost-{count}-nodes"
        self.nodes = [
            Roost(workdir / f"nodes-{count}", workers, name=f"node{n + 1}") for n in range(count)
        ]

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    def write_config(self) -> None:
        for node in self.nodes:
            node.write_config()

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        self.port = self.nodes[0].port

    def running(self) -> bool:
        return all(node.running() for node in self.nodes)

    def pids(self) -> list[int]:
        return [pid for node in self.nodes for pid in node.pids()]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def errors_logged(self) -> list[str]:
        return [line for node in self.nodes for line in node.errors_logged()]
