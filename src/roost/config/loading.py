"""Reading a configuration file: every section's table turned into its settings, each
value checked for type and range as it is read, every unknown key an error naming it."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from roost.auth.bearer import MAX_MESSAGE_OCTETS
from roost.auth.oauth import (
    DEFAULT_ALGORITHMS,
    DEFAULT_USERNAME_CLAIM,
    OAuthConfigError,
    OAuthIssuer,
    make_issuer,
)
from roost.config.mail_flow import (
    read_delivery,
    read_lmtp,
    read_managesieve,
    read_sieve,
    read_submission,
)
from roost.config.sections import (
    DELETE_MODES,
    LOG_FORMATS,
    LOG_LEVELS,
    MAX_WORKERS,
    TLS_MIN_VERSIONS,
    AuthSettings,
    ConfigError,
    DeliverySettings,
    HttpSettings,
    ImapSettings,
    IPNetwork,
    LimitSettings,
    LmtpSettings,
    LogSettings,
    ManageSieveSettings,
    Pop3Settings,
    QuotaSettings,
    ServerSettings,
    SieveSettings,
    StoreSettings,
    TlsSettings,
)
from roost.config.sizes import parse_size
from roost.config.submission import SubmissionSettings
from roost.config.tables import Reader, Table, choice
from roost.imap.context import ImapLimits
from roost.pop3.context import DeleteMode, Pop3Limits
from roost.store.values import DEFAULT_SPECIAL_FOLDERS

# A token must fit the SASL message that carries it (auth/bearer.py), with room for
# the rest of the message.
MAX_TOKEN_SIZE = MAX_MESSAGE_OCTETS - 4096


def read_config_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"configuration file {path} is not UTF-8") from None
    except OSError as error:
        raise ConfigError(f"cannot read configuration file {path}: {error.strerror}") from None


class Sections(NamedTuple):
    """Every section of a configuration file, read and checked one by one."""

    server: ServerSettings
    imap: ImapSettings
    pop3: Pop3Settings
    tls: TlsSettings
    limits: LimitSettings
    auth: AuthSettings
    log: LogSettings
    quota: QuotaSettings
    lmtp: LmtpSettings
    delivery: DeliverySettings
    http: HttpSettings
    sieve: SieveSettings
    managesieve: ManageSieveSettings
    submission: SubmissionSettings
    store: StoreSettings


def read_sections(data: Mapping[str, Any], *, source: str, base_dir: Path) -> Sections:
    """The sections of the parsed TOML ``data``; relative paths are taken relative to
    ``base_dir``. Raises ConfigError naming the first unknown or invalid key."""
    reader = Reader(source, base_dir)
    sections = reader.sections(
        data,
        (
            *("server", "imap", "pop3", "tls", "limits", "auth", "log"),
            *("quota", "lmtp", "delivery", "http", "sieve", "managesieve", "submission"),
            "store",
        ),
    )
    return Sections(
        server=_read_server(reader, sections["server"]),
        imap=_read_imap(reader, sections["imap"]),
        pop3=_read_pop3(reader, sections["pop3"]),
        tls=_read_tls(reader, sections["tls"]),
        limits=_read_limits(reader, sections["limits"]),
        auth=_read_auth(reader, sections["auth"]),
        log=_read_log(reader, sections["log"]),
        quota=_read_quota(reader, sections["quota"]),
        lmtp=read_lmtp(reader, sections["lmtp"]),
        delivery=read_delivery(reader, sections["delivery"]),
        http=_read_http(reader, sections["http"]),
        sieve=read_sieve(reader, sections["sieve"]),
        managesieve=read_managesieve(reader, sections["managesieve"]),
        submission=read_submission(reader, sections["submission"]),
        store=_read_store(reader, sections["store"]),
    )


# ---- reading sections ----------------------------------------------------------------


def _read_server(reader: Reader, table: Table) -> ServerSettings:
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
        worker_heartbeat_timeout=table.number(
            "worker_heartbeat_timeout", defaults.worker_heartbeat_timeout, positive=True
        ),
        user=table.string("user", "") or None,
        group=table.string("group", "") or None,
    )
    if settings.group is not None and settings.user is None:
        raise reader.invalid(table.key("group"), "needs [server] user as well")
    table.finish()
    return settings


def _read_imap(reader: Reader, table: Table) -> ImapSettings:
    defaults = ImapSettings()
    settings = ImapSettings(
        listen=table.addresses("listen", defaults.listen),
        tls_listen=table.addresses("tls_listen", defaults.tls_listen),
        starttls=table.boolean("starttls", defaults.starttls),
        allow_plaintext_auth=table.boolean("allow_plaintext_auth", defaults.allow_plaintext_auth),
        special_use_names=_read_special_use_names(reader, table),
    )
    both = {a for a in set(settings.listen) & set(settings.tls_listen) if a.port != 0}
    if both:
        raise reader.invalid(
            table.key("tls_listen"), f"{min(map(str, both))} is also in 'imap.listen'"
        )
    table.finish()
    return settings


def _read_special_use_names(reader: Reader, table: Table) -> tuple[tuple[str, str], ...]:
    """``special_use_names = { sent = "Sent Items", ... }``: the names of a new
    account's special folders, keyed by use without the backslash; those not given
    keep their default name. Existing accounts are not changed."""
    key = table.key("special_use_names")
    given = table.get("special_use_names", {})
    if not isinstance(given, dict):
        raise reader.invalid(key, 'must be a table, e.g. { sent = "Sent Items" }')
    defaults = {use[1:].lower(): (use, name) for use, name in DEFAULT_SPECIAL_FOLDERS}
    for use in given:
        if use not in defaults:
            raise reader.invalid(key, f"unknown special use {use!r}; one of {sorted(defaults)}")
    folders: list[tuple[str, str]] = []
    for use, (attribute, default) in defaults.items():
        name = given.get(use, default)
        parts = name.split("/") if isinstance(name, str) else []
        if not parts or not all(p.strip() for p in parts) or not name.isprintable():
            raise reader.invalid(f"{key}.{use}", "must be a folder name (levels split by /)")
        if parts[0].casefold() == "inbox":
            raise reader.invalid(f"{key}.{use}", "must not be INBOX or inside it")
        folders.append((attribute, name))
    names = [name for _, name in folders]
    for index, name in enumerate(names):
        for other in names[:index] + names[index + 1 :]:
            if other == name or other.startswith(name + "/"):
                raise reader.invalid(key, f"{name!r} is used twice, or holds {other!r}")
    return tuple(folders)


def _read_pop3(reader: Reader, table: Table) -> Pop3Settings:
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


def _read_tls(reader: Reader, table: Table) -> TlsSettings:
    defaults = TlsSettings()
    settings = TlsSettings(
        cert=table.path("cert", defaults.cert),
        key=table.path("key", defaults.key),
        min_version=table.string("min_version", defaults.min_version, choices=TLS_MIN_VERSIONS),
    )
    table.finish()
    return settings


def _read_limits(reader: Reader, table: Table) -> LimitSettings:
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
    pop3 = _read_pop3_limits(reader, Table(reader, table.key("pop3"), pop3_data))
    settings = LimitSettings(
        imap=imap,
        pop3=pop3,
        max_connections_per_ip=table.integer(
            "max_connections_per_ip", defaults.max_connections_per_ip, minimum=1
        ),
        max_connections_per_account=table.integer(
            "max_connections_per_account", defaults.max_connections_per_account, minimum=1
        ),
        max_connections_per_user_ip=table.integer(
            "max_connections_per_user_ip", defaults.max_connections_per_user_ip, minimum=1
        ),
        max_connections=table.integer("max_connections", defaults.max_connections),
        trusted_networks=_read_networks(reader, table, "trusted_networks"),
        tls_handshake_timeout=table.number(
            "tls_handshake_timeout", defaults.tls_handshake_timeout, positive=True
        ),
        store_busy_timeout=table.number(
            "store_busy_timeout", defaults.store_busy_timeout, positive=True
        ),
        max_mime_depth=table.integer("max_mime_depth", defaults.max_mime_depth, minimum=1),
        max_mime_parts=table.integer("max_mime_parts", defaults.max_mime_parts, minimum=1),
    )
    table.finish()
    return settings


def _read_networks(reader: Reader, table: Table, name: str) -> tuple[IPNetwork, ...]:
    """A list of CIDR strings ("10.0.0.0/8", "2001:db8::/32", or one address)."""
    value = table.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise reader.invalid(table.key(name), 'must be a list of "ADDRESS/PREFIX" strings')
    networks: list[IPNetwork] = []
    for item in value:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as error:
            raise reader.invalid(table.key(name), str(error)) from None
    return tuple(networks)


def _read_pop3_limits(reader: Reader, table: Table) -> Pop3Limits:
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


def _read_auth(reader: Reader, table: Table) -> AuthSettings:
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
        max_token_size=table.integer("max_token_size", defaults.max_token_size, minimum=1024),
    )
    if settings.max_token_size > MAX_TOKEN_SIZE:
        raise reader.invalid(table.key("max_token_size"), f"must be at most {MAX_TOKEN_SIZE}")
    table.finish()
    return settings


def _read_oauth_issuers(reader: Reader, auth: Table) -> tuple[OAuthIssuer, ...]:
    """``[[auth.oauth]]``: issuer, audience, jwks (a file) and/or public_keys (PEM
    strings), username_claim, algorithms. The keys are read now, so a bad one is a
    configuration error at start-up."""
    value = auth.get("oauth", [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise reader.invalid(auth.key("oauth"), "must be an array of tables ([[auth.oauth]])")
    issuers = []
    for number, item in enumerate(value, 1):
        table = Table(reader, f"auth.oauth[{number}]", item)
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


def _read_http(reader: Reader, table: Table) -> HttpSettings:
    settings = HttpSettings(listen=table.addresses("listen", HttpSettings().listen))
    table.finish()
    return settings


def _read_log(reader: Reader, table: Table) -> LogSettings:
    defaults = LogSettings()
    level = table.get("level", defaults.level)
    if isinstance(level, str):
        level = level.lower()
    settings = LogSettings(
        level=choice(reader, table.key("level"), level, LOG_LEVELS),
        format=table.string("format", defaults.format, choices=LOG_FORMATS),
    )
    table.finish()
    return settings


def _read_quota(reader: Reader, table: Table) -> QuotaSettings:
    defaults = QuotaSettings()
    storage = table.get("storage", defaults.storage)
    try:
        storage = parse_size(storage)
    except (TypeError, ValueError) as error:
        raise reader.invalid(table.key("storage"), str(error)) from None
    settings = QuotaSettings(
        storage=storage,
        messages=table.integer("messages", defaults.messages),
        over_quota_tempfail=table.boolean("over_quota_tempfail", defaults.over_quota_tempfail),
    )
    table.finish()
    return settings


def _read_store(reader: Reader, table: Table) -> StoreSettings:
    defaults = StoreSettings()
    backend = choice(
        reader, table.key("backend"), table.get("backend", defaults.backend), STORE_BACKENDS
    )
    url = table.get("url", defaults.url)
    if not isinstance(url, str):
        raise reader.invalid(table.key("url"), "must be a string")
    shards = table.get("shards", list(defaults.shards))
    if not isinstance(shards, list) or not all(isinstance(s, str) for s in shards):
        raise reader.invalid(table.key("shards"), "must be a list of strings")
    if shards and url:
        raise reader.invalid(table.key("shards"), "give url or shards, not both")
    for shard in shards:
        if not shard.startswith(PG_SCHEMES) or shard.split() != [shard]:
            raise reader.invalid(table.key("shards"), 'each must be a "postgresql://..." URL')
    if len(set(shards)) != len(shards):
        raise reader.invalid(table.key("shards"), "names one database twice")
    if backend == "postgresql" and not shards and not url.startswith(PG_SCHEMES):
        raise reader.invalid(table.key("url"), 'must be a "postgresql://..." URL')
    node_lease = table.number("node_lease", defaults.node_lease, minimum=1.0)
    fsync = table.string("fsync", defaults.fsync, choices=STORE_FSYNC)
    table.finish()
    return StoreSettings(
        backend=backend, url=url, shards=tuple(shards), node_lease=node_lease, fsync=fsync
    )


PG_SCHEMES = ("postgresql://", "postgres://")


STORE_BACKENDS = ("sqlite", "postgresql")
STORE_FSYNC = ("always", "optimized")
