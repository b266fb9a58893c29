"""How many connections one process may hold: below its file-descriptor limit.

Every connection is a descriptor, and so is every account database a session opens
(``mail.db`` with its ``-wal`` and ``-shm``), every blob being read, every spooled
literal and every newly accepted socket. A process that reaches the limit cannot
accept (``EMFILE``: asyncio logs and retries, and the listener is starved) nor open
an account, so connections are capped well below it: ``[limits] max_connections``,
or by default the limit minus a reserve (a quarter, at least ``MIN_RESERVE``).

At start the soft limit is raised to the hard limit, as most servers do: the soft
default of many systems (1,024) is far below what a mail server needs.
"""

from __future__ import annotations

import logging
import resource

from roost.config import ConfigError

log = logging.getLogger("roost.server")

MIN_RESERVE = 256  # descriptors kept for the store, spool files and accepting
_MAX_SOFT_LIMIT = 1 << 20  # Linux's default nr_open: setrlimit fails above it


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit where allowed; the soft limit
    now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _MAX_SOFT_LIMIT if hard == resource.RLIM_INFINITY else min(hard, _MAX_SOFT_LIMIT)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError) as error:
            log.debug("cannot raise the descriptor limit to %d: %s", target, error)
    return _MAX_SOFT_LIMIT if soft == resource.RLIM_INFINITY else soft


def connection_cap(configured: int, descriptor_limit: int | None = None) -> int:
    """The connections one process may hold: ``configured`` (checked against the
    descriptor limit), or derived from that limit when ``configured`` is 0. Raises
    ConfigError when the configured number leaves no reserve."""
    limit = raise_descriptor_limit() if descriptor_limit is None else descriptor_limit
    reserve = max(MIN_RESERVE, limit // 4)
    if configured == 0:
        return max(1, limit - reserve)
    if configured + MIN_RESERVE > limit:
        raise ConfigError(
            f"limits.max_connections = {configured} does not fit the descriptor limit "
            f"of {limit} (ulimit -n) with {MIN_RESERVE} to spare: raise the limit "
            f"(LimitNOFILE= in systemd) or lower max_connections"
        )
    return configured
