"""What the sessions of every worker process must agree on, and where it is kept.

With one process (``[server] workers = 1``) all of it is in memory. With several
(``roost serve --workers N``) it lives in the run directory, ``data_dir/run`` (mode
0700), made by the supervisor:

    supervisor.lock     held (fcntl) by the running supervisor: one per data directory
    worker-N.pid        the PID of worker N, written by the worker once it serves
    events-<pid>.sock   the event bus (runtime/event_bus.py), mode 0600
    ip-slots            connections per client address, IMAP and POP3 together
    account-slots       sessions per account, IMAP and POP3 together
    user-ip-slots       sessions per account and client address
    connections         connections each worker holds (accept_balance.py)
    maildrop-locks      POP3 maildrop locks, one slot per account and mailbox
    pop3-sign-ins.db    when each account last signed in over POP3 (LOGIN-DELAY)
    sign-in-failures.db failed sign-ins, for the throttle (shared_failures.py)

The three slot tables are ``slots.FileSlots``: the limits hold exactly across workers,
and the kernel frees the slots of a worker that dies. The mail itself needs nothing
here: SQLite (WAL, write transactions) is safe across processes, and change events
cross between workers through the bus.

The failed sign-in throttle (auth/throttle.py) counts failures in
``sign-in-failures.db``, so its delays and refusals hold over all workers.

With the PostgreSQL backend the connection limits and the maildrop locks are counted
in the database instead, over every node and every worker (``across_nodes``,
node_limits.py); the run directory then keeps only the POP3 sign-in times.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from roost.auth.throttle import SharedFailures
from roost.config import LimitSettings, Settings
from roost.pop3.locks import (
    InProcessLocks,
    InProcessSignInTimes,
    MaildropLocks,
    SharedLocks,
    SharedSignInTimes,
    SignInTimes,
)
from roost.runtime.accept_balance import CONNECTIONS_FILE, AcceptBalance
from roost.runtime.account_limits import AccountConnections, SessionLimits
from roost.runtime.node_limits import (
    NodeAddressSlots,
    NodeMaildropLocks,
    NodeSessionLimits,
    NodeSlotStore,
)
from roost.runtime.shared_failures import SqliteSharedFailures
from roost.runtime.slots import AddressSlots, FileSlots, InstantSlots, LocalSlots

RUN_DIR = "run"
SUPERVISOR_LOCK = "supervisor.lock"
IP_SLOTS = "ip-slots"
ACCOUNT_SLOTS = "account-slots"
USER_IP_SLOTS = "user-ip-slots"
MAILDROP_LOCKS = "maildrop-locks"
POP3_SIGN_INS = "pop3-sign-ins.db"
SIGN_IN_FAILURES = "sign-in-failures.db"


def run_dir(settings: Settings) -> Path:
    return settings.server.data_dir / RUN_DIR


def worker_pid_file(index: int) -> str:
    return f"worker-{index}.pid"


@dataclass(frozen=True, slots=True)
class Coordination:
    ip_slots: AddressSlots  # connections per client address (roost.auth.throttle.address_key)
    account_connections: SessionLimits
    maildrop_locks: MaildropLocks
    sign_in_times: SignInTimes
    worker: int | None = None  # this worker's number, 1 to N; None in a single process
    # Failed sign-ins shared with the other workers; None: the throttle's own memory.
    sign_in_failures: SharedFailures | None = None
    # How many connections each worker holds, to spread new ones; None: one process.
    accept_balance: AcceptBalance | None = None

    @classmethod
    def local(cls, limits: LimitSettings) -> Coordination:
        """Everything in this process: ``workers = 1``."""
        return cls(
            ip_slots=InstantSlots(LocalSlots(limits.max_connections_per_ip)),
            account_connections=AccountConnections(
                limits.max_connections_per_account,
                per_user_ip=limits.max_connections_per_user_ip,
            ),
            maildrop_locks=InProcessLocks(),
            sign_in_times=InProcessSignInTimes(),
        )

    @classmethod
    def shared(cls, settings: Settings, worker: int) -> Coordination:
        """Shared with the other workers through the run directory, which exists."""
        directory = run_dir(settings)
        limits = settings.limits
        return cls(
            ip_slots=InstantSlots(FileSlots(directory / IP_SLOTS, limits.max_connections_per_ip)),
            account_connections=AccountConnections(
                slots=FileSlots(directory / ACCOUNT_SLOTS, limits.max_connections_per_account),
                user_ip_slots=FileSlots(
                    directory / USER_IP_SLOTS, limits.max_connections_per_user_ip
                ),
            ),
            maildrop_locks=SharedLocks(FileSlots(directory / MAILDROP_LOCKS, 1)),
            sign_in_times=SharedSignInTimes(
                directory / POP3_SIGN_INS, keep=float(settings.pop3.login_delay)
            ),
            worker=worker,
            sign_in_failures=SqliteSharedFailures(directory / SIGN_IN_FAILURES),
            accept_balance=AcceptBalance(
                directory / CONNECTIONS_FILE, worker, max(worker, settings.server.workers)
            ),
        )

    def across_nodes(self, slots: NodeSlotStore, limits: LimitSettings) -> Coordination:
        """The same, with the connection limits and maildrop locks counted in ``slots``
        (the PostgreSQL store's), over every node."""
        return replace(
            self,
            ip_slots=NodeAddressSlots(slots, limits.max_connections_per_ip),
            account_connections=NodeSessionLimits(
                slots, limits.max_connections_per_account, limits.max_connections_per_user_ip
            ),
            maildrop_locks=NodeMaildropLocks(slots),
        )
