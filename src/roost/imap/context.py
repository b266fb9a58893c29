"""What one IMAP connection needs from the server around it, passed explicitly."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from roost.auth.base import Authenticator
from roost.imap.wire.receiver import SpoolBudget
from roost.observability.sessions import SessionRegistry
from roost.runtime.account_limits import AccountConnections, SessionLimits
from roost.store.base import Store


@dataclass(frozen=True, slots=True)
class ImapLimits:
    """Every limit a stranger's input meets. Exceeding one gives a protocol error."""

    max_line_length: int = 256 * 1024  # CLIENTS.md: at least 64 KiB for big UID sets
    max_literal_size: int = 64 * 1024 * 1024  # advertised as APPENDLIMIT (RFC 7889)
    max_nesting_depth: int = 32  # parenthesised lists inside one command
    spool_threshold: int = 1024 * 1024  # literals above this go to a temporary file
    preauth_timeout: float = 60.0  # seconds from connecting to sign-in, in all
    auth_timeout: float = 30 * 60.0 + 60.0  # RFC 9051 §5.4: at least 30 minutes
    idle_keepalive_interval: float = 120.0  # "* OK Still here" while idling (CLIENTS.md)
    fetch_batch_size: int = 500  # messages read from the store per round trip
    # FETCH of only UID, FLAGS and MODSEQ: a message costs ~1 us on the loop, not ~10 us
    flag_fetch_batch_size: int = 5000
    max_bad_commands: int = 20  # BYE after this many consecutive BAD replies
    # RFC 9585 INPROGRESS: a long command reports progress at most this often (seconds)
    progress_interval: float = 1.0
    # Before sign-in a command's literals total at most this (LOGIN needs a few bytes):
    # a stranger can neither fill memory nor write to disk.
    max_preauth_literal: int = 8192
    # Spooled literals on disk at once, all connections of a process together.
    max_spool_bytes: int = 1024 * 1024 * 1024
    # A command must be complete this long after its first byte (not only: some byte
    # every so long), plus one second per min_literal_rate bytes of its literals.
    command_timeout: float = 60.0
    min_literal_rate: int = 4096
    # Per connection; beyond it (after a burst of as many) its commands wait their turn.
    max_commands_per_second: int = 10_000
    max_mailbox_name_bytes: int = 1024  # a longer mailbox name is refused (NO/BAD)
    max_mailbox_levels: int = 32  # hierarchy levels of a mailbox name
    max_mailboxes: int = 10_000  # per account; CREATE beyond it is NO [LIMIT]
    # METADATA (RFC 5464): octets of one entry's value; beyond, NO [METADATA MAXSIZE n]
    max_metadata_size: int = 64 * 1024
    # entries of one mailbox, or of the server; beyond, NO [METADATA TOOMANY]
    max_metadata_entries: int = 100


@dataclass(slots=True)
class ImapContext:
    store: Store
    authenticator: Authenticator
    limits: ImapLimits = field(default_factory=ImapLimits)
    # Server-side context for STARTTLS; None means STARTTLS is not offered.
    tls_context: ssl.SSLContext | None = None
    # Allow LOGIN / AUTHENTICATE PLAIN without TLS (LOGINDISABLED otherwise).
    allow_plaintext_auth: bool = False
    spool_dir: Path | None = None
    server_name: str = "Roost"
    # Shared by every session of the process (and by POP3): sessions per account.
    account_connections: SessionLimits = field(default_factory=AccountConnections)
    # This process's worker number when the server runs several; the ID response
    # names it ("x-roost-worker"). None in a single process.
    worker: int | None = None
    # Shared by every connection of this context: bytes of spooled literals on disk.
    # None: made from ``limits.max_spool_bytes``.
    spool_budget: SpoolBudget | None = None
    # The live sessions of the process (``roost who`` and ``kick``), shared with POP3.
    sessions: SessionRegistry = field(default_factory=SessionRegistry)

    def __post_init__(self) -> None:
        if self.spool_budget is None:
            self.spool_budget = SpoolBudget(self.limits.max_spool_bytes)
