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
    OAuthIssuer,
    TokenValidator,
)
from roost.auth.throttle import ThrottlePolicy
from roost.imap.context import ImapLimits
from roost.pop3.context import DeleteMode, Pop3Limits, Pop3Policy
from roost.store.values import QuotaLimits

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
TLS_MIN_VERSIONS = ("1.2", "1.3")

DEV_DATA_DIR = Path("roost-data")
DEV_IMAP_LISTEN = "127.0.0.1:1143"
DEV_IMAPS_LISTEN = "127.0.0.1:1993"
DEV_POP3_LISTEN = "127.0.0.1:1110"
DEV_POP3S_LISTEN = "127.0.0.1:1995"
DELETE_MODES = tuple(mode.value for mode in DeleteMode)
MAX_WORKERS = 1024


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


@dataclass(frozen=True, slots=True)
class ImapSettings:
    listen: tuple[ListenAddress, ...] = (ListenAddress("0.0.0.0", 143),)
    tls_listen: tuple[ListenAddress, ...] = (ListenAddress("0.0.0.0", 993),)
    starttls: bool = True  # offer STARTTLS on the plain listeners
    allow_plaintext_auth: bool = False  # LOGIN / AUTHENTICATE PLAIN before TLS


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
    max_connections_per_ip: int = 50
    max_connections_per_account: int = 100  # sessions of one account, all protocols


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

    @classmethod
    def without_delays(cls) -> AuthSettings:
        """No delays and no refusals: for tests."""
        return cls(0.0, 0.0, 0.0, 0, 900.0, max_failures_per_account=0)

    def token_validator(self) -> TokenValidator | None:
        return TokenValidator(self.oauth) if self.oauth else None

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
class StoreSettings:
    """[store]: where the mail is kept. ``backend = "sqlite"`` (the default): one
    database per account under ``server.data_dir``. ``"postgresql"``: every account in
    the PostgreSQL database at ``url`` (postgresql://user@host/db), which several nodes
    share (README, "Running several nodes"). ``--store URL`` or ``$ROOST_STORE``
    overrides both."""

    backend: str = "sqlite"
    url: str = ""

    @property
    def postgresql_url(self) -> str | None:
        return self.url if self.backend == "postgresql" else None
