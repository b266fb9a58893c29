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

The package: ``sections.py`` (each section's settings and ``ConfigError``),
``loading.py`` (TOML tables → sections, every key checked) and ``settings.py``
(``Settings``: all sections together, and the checks across them). Import from
``roost.config``.
"""

from roost.config.loading import read_config_text
from roost.config.sections import (
    DELETE_MODES,
    DEV_DATA_DIR,
    DEV_IMAP_LISTEN,
    DEV_IMAPS_LISTEN,
    DEV_LMTP_LISTEN,
    DEV_MANAGESIEVE_LISTEN,
    DEV_POP3_LISTEN,
    DEV_POP3S_LISTEN,
    LOG_FORMATS,
    LOG_LEVELS,
    MAX_WORKERS,
    TLS_MIN_VERSIONS,
    AuthSettings,
    ConfigError,
    DeliverySettings,
    HttpSettings,
    ImapSettings,
    LimitSettings,
    ListenAddress,
    LmtpAddress,
    LmtpSettings,
    LogSettings,
    ManageSieveSettings,
    Pop3Settings,
    QuotaSettings,
    ServerSettings,
    SieveSettings,
    StoreSettings,
    TlsSettings,
    UnixAddress,
)
from roost.config.settings import Settings, parse_lmtp_option
from roost.config.sizes import format_size, parse_size

__all__ = [
    "DELETE_MODES",
    "DEV_DATA_DIR",
    "DEV_IMAPS_LISTEN",
    "DEV_IMAP_LISTEN",
    "DEV_LMTP_LISTEN",
    "DEV_MANAGESIEVE_LISTEN",
    "DEV_POP3S_LISTEN",
    "DEV_POP3_LISTEN",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "MAX_WORKERS",
    "TLS_MIN_VERSIONS",
    "AuthSettings",
    "ConfigError",
    "DeliverySettings",
    "HttpSettings",
    "ImapSettings",
    "LimitSettings",
    "ListenAddress",
    "LmtpAddress",
    "LmtpSettings",
    "LogSettings",
    "ManageSieveSettings",
    "Pop3Settings",
    "QuotaSettings",
    "ServerSettings",
    "Settings",
    "SieveSettings",
    "StoreSettings",
    "TlsSettings",
    "UnixAddress",
    "format_size",
    "parse_lmtp_option",
    "parse_size",
    "read_config_text",
]
