"""SIGHUP: read the configuration again and apply what can change without dropping a
session; say in the log what could not be applied.

Applied at once, to connections accepted from now on (open ones keep what they
started with, as a connection keeps its TLS certificate):

* ``[tls]``: the certificate and key are loaded again (``Server.reload_tls``);
* ``[limits.imap]`` and ``[limits.pop3]``: the protocol limits new connections copy;
* ``[log]``: level and format;
* ``[quota]``: the default limits of accounts opened from now on (every session and
  delivery opens its own), where the store backend can change them, and
  ``over_quota_tempfail``;
* ``[delivery]``, ``[sieve]`` and ``[lmtp]``'s message limits and time-out: LMTP
  connections and ``roost deliver`` hand-overs accepted from now on deliver with them.

Everything else that differs — listeners and sockets, ``data_dir``, ``workers``,
``user``, the other ``[limits]``, ``[auth]`` and any section added later — is named in a warning,
"restart to apply", and the settings the server keeps are the old ones for those
parts, so a second reload names them again. A configuration that does not load at
all changes nothing (the error is logged).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol, runtime_checkable

from roost.config import Settings
from roost.observability.logs import setup_logging
from roost.store.base import QuotaLimits

log = logging.getLogger("roost.server")

# Parts of a section applied on reload; a section not listed is applied not at all.
APPLIED: dict[str, frozenset[str] | None] = {
    "tls": frozenset({"cert", "key"}),  # None below: the whole section
    "limits": frozenset({"imap", "pop3"}),
    "log": None,
    "quota": frozenset({"storage", "messages", "over_quota_tempfail"}),
    "delivery": None,
    "sieve": None,
    "lmtp": frozenset({"max_message_size", "max_recipients", "spool_threshold", "timeout"}),
}
# Sections whose change means the delivery context is made again (Server.apply_delivery).
_DELIVERY = ("delivery", "sieve", "lmtp")
_IGNORED = frozenset({"source"})  # not a setting: where the settings came from


@runtime_checkable
class DefaultQuotaStore(Protocol):
    """A store whose default quota limits can change while it is open."""

    def set_default_quota(self, limits: QuotaLimits) -> None: ...


class Reloadable(Protocol):
    """What a reload changes on the running server (``runtime.app.Server``)."""

    settings: Settings

    @property
    def worker(self) -> int | None: ...

    def apply_limits(self, settings: Settings) -> None: ...
    def apply_delivery(self, settings: Settings) -> None: ...
    def reload_tls(self, reason: str = ...) -> None: ...
    def default_quota_store(self) -> DefaultQuotaStore | None: ...


def not_applied(old: Settings, new: Settings) -> list[str]:
    """The keys (``section.name``) that differ and that a reload does not apply."""
    differing = []
    for section in dataclasses.fields(old):
        if section.name in _IGNORED:
            continue
        before, after = getattr(old, section.name), getattr(new, section.name)
        if before == after:
            continue
        applied = APPLIED.get(section.name, frozenset())
        if applied is None:
            continue
        if not dataclasses.is_dataclass(before):
            differing.append(section.name)
            continue
        for item in dataclasses.fields(before):
            if item.name not in applied and getattr(before, item.name) != getattr(after, item.name):
                differing.append(f"{section.name}.{item.name}")
    return differing


def merged(old: Settings, new: Settings) -> Settings:
    """``old`` with the applied parts of ``new``: what the server runs with after."""
    changes: dict[str, Any] = {}
    for name, parts in APPLIED.items():
        section = getattr(new, name)
        if parts is not None:
            keep = {part: getattr(section, part) for part in parts}
            section = dataclasses.replace(getattr(old, name), **keep)
        changes[name] = section
    return dataclasses.replace(old, **changes)


def apply(server: Reloadable, new: Settings, reason: str = "SIGHUP") -> None:
    """Apply ``new`` to ``server`` as far as it can be, and log what was not."""
    old = server.settings
    result = merged(old, new)
    server.settings = result
    if result.log != old.log:
        setup_logging(result.log.level, result.log.format, worker=server.worker)
        log.info("%s: log level %s, format %s", reason, result.log.level, result.log.format)
    if result.limits != old.limits:
        server.apply_limits(result)
        log.info("%s: new IMAP and POP3 limits apply to new connections", reason)
    if result.quota.limits != old.quota.limits:
        store = server.default_quota_store()
        if store is not None:
            store.set_default_quota(result.quota.limits)
            log.info("%s: new default quota applies to accounts opened from now on", reason)
        else:
            log.warning("%s: this store cannot change the default quota; restart", reason)
    delivery_changed = any(getattr(result, name) != getattr(old, name) for name in _DELIVERY)
    if delivery_changed or result.quota.over_quota_tempfail != old.quota.over_quota_tempfail:
        server.apply_delivery(result)
        log.info("%s: new delivery settings apply to deliveries accepted from now on", reason)
    server.reload_tls(reason)
    skipped = not_applied(old, new)
    if skipped:
        log.warning(
            "%s: not applied, restart to apply: %s changed", reason, ", ".join(sorted(skipped))
        )
