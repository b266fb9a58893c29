"""Configuration: a TOML file turned into frozen, validated settings.

Every key is known: an unknown one anywhere is an error naming it
(``unknown key 'imap.lisen' in roost.toml``), so a typo never silently falls back to a
default. Values are checked for type and range as they are read; relative paths are
taken relative to the directory of the configuration file.

Every limit a client meets lives in ``[limits]``; its IMAP part is exactly the fields of
``roost.imap.context.ImapLimits``, and ``[limits.pop3]`` exactly those of
``roost.pop3.context.Pop3Limits``, read by introspection so that a new limit there is
configurable here at once.

Loading checks the file's structure only. ``Settings.check_files`` checks that the
certificate and key exist; ``serve`` and ``check-config`` call it, the ``user``
commands do not need to.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from roost.auth import cache as auth_cache
from roost.auth.oauth import (
    DEFAULT_ALGORITHMS,
    DEFAULT_USERNAME_CLAIM,
    OAuthConfigError,
    OAuthIssuer,
    TokenValidator,
    make_issuer,
)
from roost.auth.throttle import ThrottlePolicy
from roost.imap.context import ImapLimits
from roost.pop3.context import DeleteMode, Pop3Limits, Pop3Policy

_T = TypeVar("_T")

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
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    imap: ImapSettings = field(default_factory=ImapSettings)
    pop3: Pop3Settings = field(default_factory=Pop3Settings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    log: LogSettings = field(default_factory=LogSettings)
    dev: bool = False  # made by --dev: demo account, self-signed certificate
    source: str = "<defaults>"  # where the settings came from, for messages

    # ---- construction --------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Settings:
        return cls.from_file_text(path, read_config_text(path))

    @classmethod
    def from_file_text(cls, path: Path, text: str) -> Settings:
        """The settings of configuration file ``path`` whose content is ``text`` (as read
        once by the supervisor, so that every worker gets the same settings)."""
        return cls.from_toml(text, source=str(path), base_dir=path.absolute().parent)

    @classmethod
    def from_toml(
        cls, text: str, *, source: str = "roost.toml", base_dir: Path | None = None
    ) -> Settings:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{source} is not valid TOML: {error}") from None
        return cls.from_mapping(data, source=source, base_dir=base_dir or Path.cwd())

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str, base_dir: Path) -> Settings:
        reader = _Reader(source, base_dir)
        sections = reader.sections(data, ("server", "imap", "pop3", "tls", "limits", "auth", "log"))
        settings = cls(
            server=_read_server(reader, sections["server"]),
            imap=_read_imap(reader, sections["imap"]),
            pop3=_read_pop3(reader, sections["pop3"]),
            tls=_read_tls(reader, sections["tls"]),
            limits=_read_limits(reader, sections["limits"]),
            auth=_read_auth(reader, sections["auth"]),
            log=_read_log(reader, sections["log"]),
            source=source,
        )
        settings.validate()
        return settings

    @classmethod
    def for_dev(
        cls,
        data_dir: Path = DEV_DATA_DIR,
        imap_listen: Sequence[str] = (DEV_IMAP_LISTEN,),
        imaps_listen: Sequence[str] = (DEV_IMAPS_LISTEN,),
        pop3_listen: Sequence[str] = (DEV_POP3_LISTEN,),
        pop3s_listen: Sequence[str] = (DEV_POP3S_LISTEN,),
    ) -> Settings:
        """The ``roost serve --dev`` settings: local listeners, a self-signed certificate
        in ``data_dir/tls``. Plaintext sign-in before STARTTLS (STLS) is allowed only
        when every plain listener of that protocol is a loopback address — the password
        then never leaves the host."""
        data_dir = data_dir.absolute()
        listen = tuple(_parse_listen_option(text, "--imap-listen") for text in imap_listen)
        tls_listen = tuple(_parse_listen_option(text, "--imaps-listen") for text in imaps_listen)
        pop3 = tuple(_parse_listen_option(text, "--pop3-listen") for text in pop3_listen)
        pop3s = tuple(_parse_listen_option(text, "--pop3s-listen") for text in pop3s_listen)
        settings = cls(
            server=ServerSettings(data_dir=data_dir, hostname="localhost", workers=1),
            imap=ImapSettings(
                listen=listen,
                tls_listen=tls_listen,
                starttls=True,
                allow_plaintext_auth=all(address.is_loopback for address in listen),
            ),
            pop3=Pop3Settings(
                listen=pop3,
                tls_listen=pop3s,
                starttls=True,
                allow_plaintext_auth=all(address.is_loopback for address in pop3),
            ),
            tls=TlsSettings(
                cert=data_dir / "tls" / "cert.pem",
                key=data_dir / "tls" / "key.pem",
                self_signed=True,
            ),
            dev=True,
            source="--dev",
        )
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> Settings:
        """A copy with whole sections replaced (``settings.replace(auth=...)``)."""
        return dataclasses.replace(self, **changes)

    # ---- derived values ------------------------------------------------------------

    @property
    def tls_needed(self) -> bool:
        """True when some listener needs the certificate: implicit TLS, STARTTLS or STLS."""
        return any(
            bool(tls_listen) or (starttls and bool(listen))
            for listen, tls_listen, starttls in (
                (self.imap.listen, self.imap.tls_listen, self.imap.starttls),
                (self.pop3.listen, self.pop3.tls_listen, self.pop3.starttls),
            )
        )

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def imap_limits(self) -> ImapLimits:
        return self.limits.imap

    def listeners(self) -> list[tuple[str, ListenAddress]]:
        """Every listen address with the key that names it, in binding order."""
        keyed = (
            ("imap.listen", self.imap.listen),
            ("imap.tls_listen", self.imap.tls_listen),
            ("pop3.listen", self.pop3.listen),
            ("pop3.tls_listen", self.pop3.tls_listen),
        )
        return [(key, address) for key, addresses in keyed for address in addresses]

    def validate(self) -> None:
        """Checks across sections; raise ConfigError naming the key."""
        listeners = self.listeners()
        if not listeners:
            raise ConfigError(
                "no listeners: 'imap.listen', 'imap.tls_listen', 'pop3.listen' and "
                f"'pop3.tls_listen' are all empty in {self.source}"
            )
        first_key: dict[ListenAddress, str] = {}
        for key, address in listeners:
            if address.port == 0:  # any free port: never a clash
                continue
            if address in first_key and first_key[address] != key:
                raise ConfigError(
                    f"invalid value for '{key}' in {self.source}: "
                    f"{address} is also in '{first_key[address]}'"
                )
            first_key.setdefault(address, key)
        if self.tls_needed and not self.tls.self_signed:
            for name, value in (("cert", self.tls.cert), ("key", self.tls.key)):
                if value is None:
                    raise ConfigError(
                        f"missing key 'tls.{name}' in {self.source}: needed for TLS "
                        "listeners, STARTTLS and STLS (or set imap.tls_listen = [], "
                        "imap.starttls = false, pop3.tls_listen = [] and pop3.starttls = false)"
                    )

    def check_files(self) -> None:
        """Check that the certificate and key files exist (skipped for --dev, where they
        are generated when missing)."""
        if not self.tls_needed or self.tls.self_signed:
            return
        files = (("certificate", "tls.cert", self.tls.cert), ("key", "tls.key", self.tls.key))
        for what, key, path in files:
            if path is not None and not path.is_file():
                problem = "is not a file" if path.exists() else "does not exist"
                raise ConfigError(f"TLS {what} file {path} {problem} ('{key}' in {self.source})")


def read_config_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"configuration file {path} is not UTF-8") from None
    except OSError as error:
        raise ConfigError(f"cannot read configuration file {path}: {error.strerror}") from None


# ---- reading sections ----------------------------------------------------------------


class _Reader:
    """Reads values from one table, remembering which keys were used."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir

    def sections(self, data: Mapping[str, Any], names: Iterable[str]) -> dict[str, _Table]:
        known = tuple(names)
        for key, value in data.items():
            if key not in known:
                raise self.unknown(key)
            if not isinstance(value, dict):
                raise self.invalid(key, "must be a table ([" + key + "])")
        return {name: _Table(self, name, data.get(name, {})) for name in known}

    def unknown(self, key: str) -> ConfigError:
        return ConfigError(f"unknown key '{key}' in {self.source}")

    def invalid(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"invalid value for '{key}' in {self.source}: {why}")


class _Table:
    def __init__(self, reader: _Reader, name: str, data: Mapping[str, Any]) -> None:
        self.reader = reader
        self.name = name
        self.data = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.name}.{name}"

    def get(self, name: str, default: _T) -> Any:
        self.used.add(name)
        return self.data.get(name, default)

    def has(self, name: str) -> bool:
        return name in self.data

    def finish(self, known: Iterable[str] | None = None) -> None:
        allowed = set(known) if known is not None else self.used
        for key in self.data:
            if key not in allowed:
                raise self.reader.unknown(self.key(key))

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.reader.invalid(self.key(name), "must be an integer")
        if value < minimum:
            raise self.reader.invalid(self.key(name), f"must be at least {minimum}")
        return value

    def number(
        self, name: str, default: float, *, minimum: float = 0.0, positive: bool = False
    ) -> float:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.reader.invalid(self.key(name), "must be a number (seconds)")
        if value < minimum or (positive and value <= 0):
            why = "must be greater than 0" if positive else f"must be at least {minimum:g}"
            raise self.reader.invalid(self.key(name), why)
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise self.reader.invalid(self.key(name), "must be true or false")
        return value

    def string(self, name: str, default: str, *, choices: Sequence[str] | None = None) -> str:
        value = self.get(name, default)
        if not isinstance(value, str):
            raise self.reader.invalid(self.key(name), "must be a string")
        if choices is not None and value not in choices:
            options = ", ".join(f'"{choice}"' for choice in choices)
            raise self.reader.invalid(self.key(name), f"must be one of {options}")
        return value

    def path(self, name: str, default: Path | None) -> Path | None:
        value = self.get(name, default)
        if value is None or isinstance(value, Path):
            return value
        if not isinstance(value, str) or not value:
            raise self.reader.invalid(self.key(name), "must be a non-empty path string")
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.reader.base_dir / path

    def addresses(self, name: str, default: tuple[ListenAddress, ...]) -> tuple[ListenAddress, ...]:
        value = self.get(name, None)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.reader.invalid(self.key(name), 'must be a list of "HOST:PORT" strings')
        addresses = []
        for item in value:
            try:
                addresses.append(ListenAddress.parse(item))
            except ValueError as error:
                raise self.reader.invalid(self.key(name), str(error)) from None
        fixed = [address for address in addresses if address.port != 0]  # 0: any free port
        if len(set(fixed)) != len(fixed):
            raise self.reader.invalid(self.key(name), "lists an address twice")
        return tuple(addresses)


def _read_server(reader: _Reader, table: _Table) -> ServerSettings:
    defaults = ServerSettings()
    data_dir = table.path("data_dir", defaults.data_dir)
    assert data_dir is not None
    hostname = table.string("hostname", defaults.hostname)
    if not hostname:
        raise reader.invalid(table.key("hostname"), "must not be empty")
    workers = table.integer("workers", defaults.workers, minimum=1)
    if workers > MAX_WORKERS:
        raise reader.invalid(table.key("workers"), f"must be at most {MAX_WORKERS}")
    settings = ServerSettings(
        data_dir=data_dir,
        hostname=hostname,
        workers=workers,
        shutdown_timeout=table.number("shutdown_timeout", defaults.shutdown_timeout),
    )
    table.finish()
    return settings


def _read_imap(reader: _Reader, table: _Table) -> ImapSettings:
    defaults = ImapSettings()
    settings = ImapSettings(
        listen=table.addresses("listen", defaults.listen),
        tls_listen=table.addresses("tls_listen", defaults.tls_listen),
        starttls=table.boolean("starttls", defaults.starttls),
        allow_plaintext_auth=table.boolean("allow_plaintext_auth", defaults.allow_plaintext_auth),
    )
    both = {a for a in set(settings.listen) & set(settings.tls_listen) if a.port != 0}
    if both:
        raise reader.invalid(
            table.key("tls_listen"), f"{min(map(str, both))} is also in 'imap.listen'"
        )
    table.finish()
    return settings


def _read_pop3(reader: _Reader, table: _Table) -> Pop3Settings:
    defaults = Pop3Settings()
    mode = table.string("delete_mode", defaults.delete_mode.value, choices=DELETE_MODES)
    move_to = table.string("move_to", defaults.move_to)
    if not move_to.strip("/ ") or not move_to.isprintable():
        raise reader.invalid(table.key("move_to"), "must be a folder name")
    if move_to.casefold() == "inbox":
        raise reader.invalid(table.key("move_to"), "must not be INBOX, which POP3 serves")
    expire = table.get("expire", "never")
    if expire == "never":
        expire_days = None
    elif isinstance(expire, int) and not isinstance(expire, bool) and expire >= 0:
        expire_days = expire
    else:
        raise reader.invalid(table.key("expire"), 'must be "never" or a number of days (0 or more)')
    settings = Pop3Settings(
        listen=table.addresses("listen", defaults.listen),
        tls_listen=table.addresses("tls_listen", defaults.tls_listen),
        starttls=table.boolean("starttls", defaults.starttls),
        allow_plaintext_auth=table.boolean("allow_plaintext_auth", defaults.allow_plaintext_auth),
        delete_mode=DeleteMode(mode),
        move_to=move_to,
        mark_seen=table.boolean("mark_seen", defaults.mark_seen),
        expire_days=expire_days,
        login_delay=table.integer("login_delay", defaults.login_delay),
    )
    table.finish()
    return settings


def _read_tls(reader: _Reader, table: _Table) -> TlsSettings:
    defaults = TlsSettings()
    settings = TlsSettings(
        cert=table.path("cert", defaults.cert),
        key=table.path("key", defaults.key),
        min_version=table.string("min_version", defaults.min_version, choices=TLS_MIN_VERSIONS),
    )
    table.finish()
    return settings


def _read_limits(reader: _Reader, table: _Table) -> LimitSettings:
    defaults = LimitSettings()
    imap_values: dict[str, Any] = {}
    for limit in dataclasses.fields(ImapLimits):
        default = getattr(defaults.imap, limit.name)
        if isinstance(default, float):
            imap_values[limit.name] = table.number(limit.name, default, positive=True)
        else:
            imap_values[limit.name] = table.integer(limit.name, default, minimum=1)
    imap = ImapLimits(**imap_values)
    if imap.max_line_length < 1024:
        raise reader.invalid(table.key("max_line_length"), "must be at least 1024")
    pop3_data = table.get("pop3", {})
    if not isinstance(pop3_data, dict):
        raise reader.invalid(table.key("pop3"), "must be a table ([limits.pop3])")
    pop3 = _read_pop3_limits(reader, _Table(reader, table.key("pop3"), pop3_data))
    settings = LimitSettings(
        imap=imap,
        pop3=pop3,
        max_connections_per_ip=table.integer(
            "max_connections_per_ip", defaults.max_connections_per_ip, minimum=1
        ),
        max_connections_per_account=table.integer(
            "max_connections_per_account", defaults.max_connections_per_account, minimum=1
        ),
    )
    table.finish()
    return settings


def _read_pop3_limits(reader: _Reader, table: _Table) -> Pop3Limits:
    defaults = Pop3Limits()
    values: dict[str, Any] = {}
    for limit in dataclasses.fields(Pop3Limits):
        default = getattr(defaults, limit.name)
        if isinstance(default, float):
            values[limit.name] = table.number(limit.name, default, positive=True)
        else:
            values[limit.name] = table.integer(limit.name, default, minimum=1)
    limits = Pop3Limits(**values)
    if limits.max_line_length < 512:  # RFC 2449 §4: commands of 255 octets, with room
        raise reader.invalid(table.key("max_line_length"), "must be at least 512")
    table.finish()
    return limits


def _read_auth(reader: _Reader, table: _Table) -> AuthSettings:
    defaults = AuthSettings()
    settings = AuthSettings(
        failure_delay=table.number("failure_delay", defaults.failure_delay),
        max_failure_delay=table.number("max_failure_delay", defaults.max_failure_delay),
        max_account_delay=table.number("max_account_delay", defaults.max_account_delay),
        max_failures_per_ip=table.integer("max_failures_per_ip", defaults.max_failures_per_ip),
        failure_window=table.number("failure_window", defaults.failure_window, positive=True),
        max_failures_per_account=table.integer(
            "max_failures_per_account", defaults.max_failures_per_account
        ),
        trust_period=table.number("trust_period", defaults.trust_period),
        scram=table.boolean("scram", defaults.scram),
        oauth=_read_oauth_issuers(reader, table),
        cache_ttl=table.number("cache_ttl", defaults.cache_ttl),
        cache_size=table.integer("cache_size", defaults.cache_size),
    )
    table.finish()
    return settings


def _read_oauth_issuers(reader: _Reader, auth: _Table) -> tuple[OAuthIssuer, ...]:
    """``[[auth.oauth]]``: issuer, audience, jwks (a file) and/or public_keys (PEM
    strings), username_claim, algorithms. The keys are read now, so a bad one is a
    configuration error at start-up."""
    value = auth.get("oauth", [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise reader.invalid(auth.key("oauth"), "must be an array of tables ([[auth.oauth]])")
    issuers = []
    for number, item in enumerate(value, 1):
        table = _Table(reader, f"auth.oauth[{number}]", item)
        jwks_path = table.path("jwks", None)
        public_keys = table.get("public_keys", [])
        if not isinstance(public_keys, list) or not all(isinstance(k, str) for k in public_keys):
            raise reader.invalid(table.key("public_keys"), "must be a list of PEM strings")
        algorithms = table.get("algorithms", list(DEFAULT_ALGORITHMS))
        if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
            raise reader.invalid(table.key("algorithms"), "must be a list of strings")
        issuer = table.string("issuer", "")
        audience = table.string("audience", "")
        username_claim = table.string("username_claim", DEFAULT_USERNAME_CLAIM)
        table.finish()
        jwks = None
        if jwks_path is not None:
            try:
                jwks = jwks_path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                why = f"cannot read {jwks_path}: {error}"
                raise reader.invalid(table.key("jwks"), why) from None
        try:
            issuers.append(
                make_issuer(
                    issuer,
                    audience,
                    jwks=jwks,
                    public_keys=public_keys,
                    username_claim=username_claim,
                    algorithms=algorithms,
                )
            )
        except OAuthConfigError as error:
            where = f"[[auth.oauth]] number {number} in {reader.source}"
            raise ConfigError(f"invalid {where}: {error}") from None
    if len({issuer.issuer for issuer in issuers}) != len(issuers):
        raise reader.invalid(auth.key("oauth"), "an issuer is listed twice")
    return tuple(issuers)


def _read_log(reader: _Reader, table: _Table) -> LogSettings:
    defaults = LogSettings()
    level = table.get("level", defaults.level)
    if isinstance(level, str):
        level = level.lower()
    settings = LogSettings(
        level=_choice(reader, table.key("level"), level, LOG_LEVELS),
        format=table.string("format", defaults.format, choices=LOG_FORMATS),
    )
    table.finish()
    return settings


def _choice(reader: _Reader, key: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(f'"{choice}"' for choice in choices)
        raise reader.invalid(key, f"must be one of {options}")
    return value


def _parse_listen_option(text: str, option: str) -> ListenAddress:
    try:
        return ListenAddress.parse(text)
    except ValueError as error:
        raise ConfigError(f"invalid value for {option}: {error}") from None
