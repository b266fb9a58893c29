"""What one POP3 connection needs from the server around it, passed explicitly."""

from __future__ import annotations

import enum
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from roost.auth.base import Authenticator
from roost.observability.sessions import SessionRegistry
from roost.pop3.locks import InProcessLocks, InProcessSignInTimes, MaildropLocks, SignInTimes
from roost.runtime.account_limits import AccountConnections, SessionLimits
from roost.store.base import Store


@dataclass(frozen=True, slots=True)
class Pop3Limits:
    """Every limit a stranger's input meets. Exceeding one gives ``-ERR`` and a log line."""

    # RFC 2449 §4 allows commands of 255 octets; SASL answers (RFC 5034 §4) and long app
    # passwords need more, so accept more, and refuse beyond this with -ERR.
    max_line_length: int = 8192
    preauth_timeout: float = 60.0  # seconds from connecting to sign-in, in all
    auth_timeout: float = 600.0  # RFC 1939 §3: at least 10 minutes once signed in
    max_bad_commands: int = 10  # close after this many invalid commands in a row
    size_batch_size: int = 500  # messages asked of the store per round trip for sizes
    # A line must be complete this long after its first byte: a byte now and then
    # (slowloris) does not keep a connection open.
    command_timeout: float = 60.0


class DeleteMode(enum.Enum):
    """What QUIT does with the messages a session deleted (DELE)."""

    EXPUNGE = "expunge"  # flag \\Deleted and expunge: gone, as RFC 1939 intends
    FLAG = "flag"  # only flag \\Deleted: kept, hidden from POP3, visible to IMAP
    MOVE = "move"  # move into another folder (Pop3Policy.move_to), e.g. Trash


@dataclass(frozen=True, slots=True)
class Pop3Policy:
    delete_mode: DeleteMode = DeleteMode.EXPUNGE
    move_to: str = "Trash"  # for DeleteMode.MOVE; created if missing
    mark_seen: bool = True  # RETR sets \\Seen at QUIT, as Dovecot does
    expire_days: int | None = None  # advertised as EXPIRE (RFC 2449 §6.7); None: NEVER
    login_delay: int = 0  # seconds between sign-ins of one account (RFC 2449 §6.8)


class SizeCache:
    """Sizes as transmitted (``roost.pop3.wire.message``), by blob id.

    Blob ids name content (a hash), so an entry never goes stale; the cache only saves
    reading a message again to count its line ends. Least recently used entries go first.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._sizes: OrderedDict[str, int] = OrderedDict()

    def get(self, blob_id: str) -> int | None:
        size = self._sizes.get(blob_id)
        if size is not None:
            self._sizes.move_to_end(blob_id)
        return size

    def put(self, blob_id: str, size: int) -> None:
        self._sizes[blob_id] = size
        self._sizes.move_to_end(blob_id)
        while len(self._sizes) > self._capacity:
            self._sizes.popitem(last=False)


@dataclass(slots=True)
class Pop3Context:
    store: Store
    authenticator: Authenticator
    limits: Pop3Limits = field(default_factory=Pop3Limits)
    policy: Pop3Policy = field(default_factory=Pop3Policy)
    # Server-side context for STLS; None means STLS is not offered.
    tls_context: ssl.SSLContext | None = None
    # Allow USER/PASS and AUTH before TLS (RFC 2595 §4; the same rule as IMAP).
    allow_plaintext_auth: bool = False
    server_name: str = "Roost"
    # Shared with IMAP (server.py passes the same instance): sessions per account.
    account_connections: SessionLimits = field(default_factory=AccountConnections)
    locks: MaildropLocks = field(default_factory=InProcessLocks)
    sign_in_times: SignInTimes = field(default_factory=InProcessSignInTimes)
    sizes: SizeCache = field(default_factory=SizeCache)
    clock: Callable[[], float] = time.monotonic  # for LOGIN-DELAY; tests replace it
    # This process's worker number when the server runs several; CAPA's IMPLEMENTATION
    # names it. None in a single process.
    worker: int | None = None
    sessions: SessionRegistry = field(default_factory=SessionRegistry)  # shared with IMAP
