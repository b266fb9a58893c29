"""The settings of each configuration section: frozen dataclasses with their defaults,
and the error every configuration problem is reported as. ``loading.py`` fills them from
TOML; ``settings.py`` puts them together."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from roost.auth import cache as auth_cache
from roost.auth.oauth import (
    MAX_TOKEN_LENGTH,
    OAuthIssuer,
    TokenValidator,
)
from roost.auth.throttle import ThrottlePolicy
from roost.imap.context import ImapLimits
from roost.mime.parse import MAX_DEPTH as MAX_MIME_DEPTH
from roost.mime.parse import MAX_PARTS as MAX_MIME_PARTS
from roost.mime.parse import MimeLimits
from roost.pop3.context import DeleteMode, Pop3Limits, Pop3Policy
from roost.store.values import DEFAULT_SPECIAL_FOLDERS, QuotaLimits

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
TLS_MIN_VERSIONS = ("1.2", "1.3")

DEV_DATA_DIR = Path("roost-data")
DEV_IMAP_LISTEN = "127.0.0.1:1143"
DEV_IMAPS_LISTEN = "127.0.0.1:1993"
DEV_POP3_LISTEN = "127.0.0.1:1110"
DEV_POP3S_LISTEN = "127.0.0.1:1995"
DEV_LMTP_LISTEN = "127.0.0.1:1024"
DELETE_MODES = tuple(mode.value for mode in DeleteMode)
MAX_WORKERS = 1024

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """A configuration problem, stated in one line that names the key or file."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str  # an IP address literal, or a name to resolve; IPv6 without brackets
    port: int

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        """Parse ``host:port``, ``[ipv6]:port``; raise ValueError with the reason."""
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{text!r} is not HOST:PORT")
        if host.startswith("["):
            if not host.endswith("]"):
                raise ValueError(f"{text!r}: unbalanced brackets")
            host = host[1:-1]
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
        elif ":" in host:
            raise ValueError(f"{text!r}: write IPv6 addresses in brackets, as [::1]:143")
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ValueError(f"{text!r}: port must be a number from 0 to 65535")
        return cls(host, int(port_text))

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    data_dir: Path = Path("/var/lib/roost")
    hostname: str = field(default_factory=socket.gethostname)
    # Processes serving connections; 1 is one process with no supervisor (README:
    # "Several worker processes").
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    shutdown_timeout: float = 10.0  # seconds connections get to finish on SIGTERM
    # Started as root: bind the listeners, then serve as this user (and group; default
    # the user's own). None: keep the identity it was started with.
    user: str | None = None
    group: str | None = None
    # A worker whose event loop sends no heartbeat for this long (stopped, stuck) is
    # killed and replaced by the supervisor.
    worker_heartbeat_timeout: float = 20.0

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between a worker's heartbeats: several per timeout."""
        return min(1.0, self.worker_heartbeat_timeout / 4)


@dataclass(frozen=True, slots=True)
class ImapSettings:
    listen: tuple[ListenAddress, ...] = (ListenAddress("0.0.0.0", 143),)
    tls_listen: tuple[ListenAddress, ...] = (ListenAddress("0.0.0.0", 993),)
    starttls: bool = True  # offer STARTTLS on the plain listeners
    allow_plaintext_auth: bool = False  # LOGIN / AUTHENTICATE PLAIN before TLS
    # (special use, name) of the folders a new account gets besides INBOX.
    special_use_names: tuple[tuple[str, str], ...] = DEFAULT_SPECIAL_FOLDERS


@dataclass(frozen=True, slots=True)
class Pop3Settings:
    listen: tuple[ListenAddress, ...] = (ListenAddress("0.0.0.0", 110),)
    tls_listen: tuple[ListenAddress, ...] = (ListenAddress("0.0.0.0", 995),)
    starttls: bool = True  # offer STLS on the plain listeners (RFC 2595 §4)
    allow_plaintext_auth: bool = False  # USER/PASS and AUTH before TLS
    delete_mode: DeleteMode = DeleteMode.EXPUNGE  # what QUIT does with DELE'd messages
    move_to: str = "Trash"  # the folder for delete_mode "move"
    mark_seen: bool = True  # RETR sets \\Seen
    expire_days: int | None = None  # advertised as EXPIRE (RFC 2449 §6.7); None: NEVER
    login_delay: int = 0  # seconds between sign-ins of one account; advertised

    def policy(self) -> Pop3Policy:
        return Pop3Policy(
            delete_mode=self.delete_mode,
            move_to=self.move_to,
            mark_seen=self.mark_seen,
            expire_days=self.expire_days,
            login_delay=self.login_delay,
        )


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert: Path | None = None
    key: Path | None = None
    min_version: str = "1.2"
    # Not a file key: --dev sets it, and a missing cert/key pair is then generated.
    self_signed: bool = False


@dataclass(frozen=True, slots=True)
class LimitSettings:
    imap: ImapLimits = field(default_factory=ImapLimits)
    pop3: Pop3Limits = field(default_factory=Pop3Limits)  # [limits.pop3]
    # Connections per client address (IPv6: per /64), IMAP and POP3 together: high
    # enough for an office behind one NAT address, still a bound on one attacker.
    max_connections_per_ip: int = 1000
    max_connections_per_account: int = 100  # sessions of one account, all protocols
    # Sessions of one account from one address (Dovecot's mail_max_userip_connections),
    # checked at sign-in.
    max_connections_per_user_ip: int = 20
    # Connections one process serves at once; 0: the descriptor limit minus a reserve
    # (runtime/descriptors.py), so that accept and the store never run out of descriptors.
    max_connections: int = 0
    # Client networks exempt from max_connections_per_ip (webmail, proxies).
    trusted_networks: tuple[IPNetwork, ...] = ()
    tls_handshake_timeout: float = 10.0  # seconds an implicit-TLS client has to finish it
    # Seconds a write waits for another process holding the account's write lock (one
    # stopped or stuck) before NO [UNAVAILABLE] with nothing changed.
    store_busy_timeout: float = 10.0
    # How deep and how wide message analysis parses MIME (mime/parse.py): parts beyond
    # either bound are kept as leaves, their content unanalysed.
    max_mime_depth: int = MAX_MIME_DEPTH
    max_mime_parts: int = MAX_MIME_PARTS

    def mime_limits(self) -> MimeLimits:
        return MimeLimits(max_depth=self.max_mime_depth, max_parts=self.max_mime_parts)

    def is_trusted(self, ip: str) -> bool:
        """Whether ``ip`` lies in one of ``trusted_networks``."""
        if not self.trusted_networks:
            return False
        try:
            address = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted_networks)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    failure_delay: float = 1.0  # seconds, doubled after each further failure
    max_failure_delay: float = 15.0  # cap of the delay per client address
    max_account_delay: float = 3.0  # cap of the delay per account
    max_failures_per_ip: int = 20  # then the address is refused until failures age out
    failure_window: float = 900.0  # seconds a failure counts
    # Then the account is refused to addresses that have not signed in to it lately.
    max_failures_per_account: int = 100
    trust_period: float = 30 * 86400.0  # how long a successful address stays trusted
    scram: bool = True  # offer AUTHENTICATE SCRAM-SHA-256
    # [[auth.oauth]]: JWT issuers whose tokens OAUTHBEARER and XOAUTH2 accept.
    oauth: tuple[OAuthIssuer, ...] = ()
    # A successful sign-in's secret is recognised for cache_ttl seconds without argon2id,
    # at most cache_size of them (auth/cache.py); 0 disables.
    cache_ttl: float = auth_cache.DEFAULT_TTL
    cache_size: int = auth_cache.DEFAULT_SIZE
    # Longest OAuth token (JWT) accepted by OAUTHBEARER and XOAUTH2, in bytes.
    max_token_size: int = MAX_TOKEN_LENGTH

    @classmethod
    def without_delays(cls) -> AuthSettings:
        """No delays and no refusals: for tests."""
        return cls(0.0, 0.0, 0.0, 0, 900.0, max_failures_per_account=0)

    def token_validator(self) -> TokenValidator | None:
        if not self.oauth:
            return None
        return TokenValidator(self.oauth, max_token_size=self.max_token_size)

    def sign_in_cache(self) -> auth_cache.AuthCache:
        return auth_cache.AuthCache(self.cache_ttl, self.cache_size)

    def throttle_policy(self) -> ThrottlePolicy:
        return ThrottlePolicy(
            base_delay=self.failure_delay,
            max_delay=self.max_failure_delay,
            max_account_delay=self.max_account_delay,
            max_failures_per_ip=self.max_failures_per_ip,
            window=self.failure_window,
            max_failures_per_account=self.max_failures_per_account,
            trust_period=self.trust_period,
        )


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """[http]: the small HTTP listener for /metrics, /healthz, /readyz and mail
    clients' autoconfiguration (runtime/http.py). Off unless an address is given: it
    tells anyone who can reach it how busy the server is, so keep it on loopback or
    behind a proxy that allows only the autoconfig paths from outside."""

    listen: tuple[ListenAddress, ...] = ()


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "info"
    format: str = "text"


@dataclass(frozen=True, slots=True)
class QuotaSettings:
    """[quota]: every account's default limits (``roost user quota set`` overrides them
    per account); 0 is unlimited. ``over_quota_tempfail``: LMTP and ``roost deliver``
    answer an over-quota recipient with a temporary failure (452 4.2.2, exit 75) so the
    MTA retries, instead of a permanent one (552 5.2.2, exit 73)."""

    storage: int = 0  # octets, the sum of the message sizes in every mailbox
    messages: int = 0
    over_quota_tempfail: bool = False

    @property
    def limits(self) -> QuotaLimits:
        return QuotaLimits(self.storage or None, self.messages or None)


@dataclass(frozen=True, slots=True)
class UnixAddress:
    """A Unix-domain socket path to listen on (``unix:/run/roost/lmtp``)."""

    path: Path

    def __str__(self) -> str:
        return f"unix:{self.path}"


LmtpAddress = ListenAddress | UnixAddress


def parse_lmtp_address(text: str, base_dir: Path | None = None) -> LmtpAddress:
    """``unix:PATH`` or ``HOST:PORT``; a relative path is taken relative to ``base_dir``."""
    if text.startswith("unix:"):
        path = Path(text[5:]).expanduser()
        if not text[5:]:
            raise ValueError(f"{text!r}: no path after 'unix:'")
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        return UnixAddress(path)
    return ListenAddress.parse(text)


@dataclass(frozen=True, slots=True)
class LmtpSettings:
    """[lmtp]: mail handed in by a trusted MTA (RFC 2033). No AUTH: who may connect is
    decided by the listeners (a Unix socket's mode and group, loopback addresses)."""

    listen: tuple[LmtpAddress, ...] = ()
    socket_mode: int = 0o660  # of the Unix sockets in ``listen``
    socket_group: str | None = None  # their group (Postfix's lmtp runs as "postfix")
    allow_remote: bool = False  # a TCP listener on a non-loopback address
    # data_dir/run/lmtp (mode 0600): where ``roost deliver`` hands a message to the
    # running server, so that its sessions are told at once.
    private_socket: bool = True
    max_message_size: int = 64 * 1024 * 1024  # advertised as SIZE; beyond: 552 5.3.4
    max_recipients: int = 1000  # per transaction; beyond: 452 4.5.3
    spool_threshold: int = 1024 * 1024  # a message over this is spooled to a file
    timeout: float = 300.0  # seconds of client silence before 421 (RFC 5321 §4.5.3.2)


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """[delivery]: which recipients are ours and where their mail goes (LMTP and
    ``roost deliver`` alike)."""

    domains: tuple[str, ...] = ()  # empty: any domain (the MTA decided it is ours)
    strip_domain: bool = False  # alice@example.org is the account "alice"
    detail_folders: bool = True  # alice+lists@ into the folder "lists" when it exists
    subaddress_separator: str = "+"


@dataclass(frozen=True, slots=True)
class SieveSettings:
    """[sieve]: filtering at delivery (RFC 5228). ``before``/``after`` are site scripts
    run around the user's active one; ``relay`` is where redirect and vacation send."""

    before: tuple[Path, ...] = ()
    after: tuple[Path, ...] = ()
    global_dir: Path | None = None  # where ``include :global "name"`` finds "name.sieve"
    relay: ListenAddress | None = None  # None: redirect keeps a copy, vacation is skipped
    relay_timeout: float = 30.0  # seconds per SMTP reply from the relay
    relay_starttls: bool = False  # STARTTLS when the relay offers it (system CAs verify it)
    helo_name: str = ""  # "": [server] hostname
    max_redirects: int = 4  # per message; beyond: the run fails and the mail is kept
    max_actions: int = 32
    max_instructions: int = 100_000
    max_message_size: int = 16 * 1024 * 1024  # larger mail skips filtering (kept in INBOX)
    spam_header: str = ""  # e.g. "X-Spam-Score" for spamtest (RFC 5235); "": untested
    spam_max_score: float = 15.0  # the score meaning "certainly spam" (spamtest 10)
    virus_header: str = ""
    virus_max_score: float = 5.0


DEV_MANAGESIEVE_LISTEN = "127.0.0.1:14190"


@dataclass(frozen=True, slots=True)
class ManageSieveSettings:
    """[managesieve]: script upload (RFC 5804). Off unless ``listen`` is set."""

    listen: tuple[ListenAddress, ...] = ()
    starttls: bool = True
    allow_plaintext_auth: bool = False  # AUTHENTICATE before STARTTLS on non-loopback
    max_script_size: int = 64 * 1024  # PUTSCRIPT beyond it: NO (QUOTA/MAXSIZE)
    max_scripts: int = 32  # a new script beyond it: NO (QUOTA/MAXSCRIPTS)
    timeout: float = 600.0  # seconds of client silence before BYE


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """[store]: where the mail is kept. ``backend = "sqlite"`` (the default): one
    database per account under ``server.data_dir``. ``"postgresql"``: every account in
    the PostgreSQL database at ``url`` (postgresql://user@host/db), which several nodes
    share (README, "Running several nodes"). ``shards``, instead of ``url``: several
    such databases, accounts spread over them; the first keeps the account → shard map
    (store/postgres/shards.py). ``--store URL`` or ``$ROOST_STORE`` overrides both.

    The store is named to the rest of Roost by one *locator* string: a URL, or the
    shards' URLs separated by spaces (a URL has none), so ``--store`` and
    ``$ROOST_STORE`` can name shards too."""

    backend: str = "sqlite"
    url: str = ""
    shards: tuple[str, ...] = ()
    # Seconds a node's connection slots and POP3 locks outlive it (a SIGKILL, a lost
    # machine) on PostgreSQL; renewed every third of it (store/postgres/connections.py).
    node_lease: float = 30.0
    # "always": every change is on disk before its OK (ARCHITECTURE decision 2).
    # "optimized" (as Dovecot's mail_fsync): flag changes and expunges are committed
    # without waiting for the disk (a power cut, not a crash of Roost, may undo the last
    # of them); new mail (APPEND, COPY, MOVE, deliveries) is still on disk before its
    # OK. SQLite store only.
    fsync: str = "always"

    @property
    def postgresql_url(self) -> str | None:
        """The locator of the PostgreSQL store, None with the SQLite backend."""
        if self.backend != "postgresql":
            return None
        return " ".join(self.shards) if self.shards else self.url
