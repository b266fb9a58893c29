"""Opening what a server runs on: the store (the embedded SQLite one in the data
directory, or PostgreSQL when ``[store]`` or ``--store`` names a database) and the TLS
context. Every way of starting Roost — ``roost serve``, a worker, an admin command —
opens them here, so they agree on the data directory, its modes and the error texts.
"""

from __future__ import annotations

import os
import sqlite3
import ssl
from collections.abc import Sequence
from pathlib import Path

from roost.config import ConfigError, LimitSettings, Settings
from roost.runtime.data_dir import DataDirError, secure_data_dir
from roost.runtime.listeners import ServerError
from roost.runtime.tls import TlsError, ensure_self_signed, server_context
from roost.store.base import QuotaLimits, Store, StoreError
from roost.store.events import EventHub
from roost.store.values import DEFAULT_SPECIAL_FOLDERS


async def open_store(
    data_dir: Path,
    *,
    hub: EventHub | None = None,
    quota: QuotaLimits | None = None,
    limits: LimitSettings | None = None,
    url: str | None = None,
    special_folders: Sequence[tuple[str, str]] = DEFAULT_SPECIAL_FOLDERS,
    fsync: str = "always",
) -> Store:
    """Open the store in ``data_dir``, creating the directory (mode 0700) if needed, or
    making an existing one private (``data_dir.secure_data_dir``); its change events go
    through ``hub`` when given (a worker's, linked to the others). ``quota`` is every
    account's default limits (``[quota]``; None: unlimited). From ``limits``: how long a
    write waits for another process's, how deep messages are analysed.
    With a PostgreSQL ``url`` (``[store]``), or ``$ROOST_STORE`` (``--store``, which
    wins), the store is that database instead and ``data_dir`` is not used.
    ``special_folders``: a new account's folders besides INBOX (``[imap]
    special_use_names``). ``fsync``: ``[store] fsync`` (the SQLite store's)."""
    from roost.store.sqlite import SqliteStore

    url = os.environ.get(STORE_ENV) or url
    match url:
        case str() if url.startswith(("postgresql://", "postgres://")):
            return await _open_postgres_store(url, hub, quota, limits, special_folders)
        case str() if url:
            raise ServerError(f"not a store URL: {url!r} (postgresql://user@host/db)")
    try:
        _make_private_dir(data_dir)
        secure_data_dir(data_dir)
        if limits is None:
            return await SqliteStore.open(
                data_dir, hub=hub, quota=quota or QuotaLimits(), special_folders=special_folders
            )
        return await SqliteStore.open(
            data_dir,
            hub=hub,
            quota=quota or QuotaLimits(),
            busy_timeout=limits.store_busy_timeout,
            mime_limits=limits.mime_limits(),
            special_folders=special_folders,
            fsync=fsync,
        )
    except DataDirError as error:
        raise ServerError(str(error)) from None
    except (OSError, sqlite3.Error, StoreError) as error:
        raise ServerError(f"cannot open the data directory {data_dir}: {error}") from None


STORE_ENV = "ROOST_STORE"  # set by --store; read by every process of a node


async def _open_postgres_store(
    url: str,
    hub: EventHub | None,
    quota: QuotaLimits | None,
    limits: LimitSettings | None,
    special_folders: Sequence[tuple[str, str]],
) -> Store:
    from roost.store.postgres import PostgresStore
    from roost.store.postgres.pool import redact
    from roost.store.postgres.schema import SchemaMismatch
    from roost.store.postgres.shards import ShardedStore, shard_urls

    urls = shard_urls(url)
    try:
        if len(urls) > 1:
            return await ShardedStore.open(
                urls,
                hub=hub,
                quota=quota or QuotaLimits(),
                mime_limits=None if limits is None else limits.mime_limits(),
                special_folders=special_folders,
            )
        return await PostgresStore.open(
            url,
            hub=hub,
            quota=quota or QuotaLimits(),
            mime_limits=None if limits is None else limits.mime_limits(),
            special_folders=special_folders,
        )
    except (SchemaMismatch, StoreError) as error:
        raise ServerError(f"cannot use the database {redact(url)}: {error}") from None


def build_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's SSLContext, or None when no listener needs TLS. For --dev, a missing
    certificate is generated first. Raises ConfigError naming the file at fault."""
    if not settings.tls_needed:
        return None
    tls = settings.tls
    if tls.self_signed and tls.cert is not None and tls.key is not None:
        try:
            _make_private_dir(settings.server.data_dir)
            ensure_self_signed(tls.cert.parent, settings.server.hostname)
        except OSError as error:
            raise ConfigError(
                f"cannot create a self-signed certificate in {tls.cert.parent}: {error.strerror}"
            ) from None
    settings.check_files()
    assert tls.cert is not None and tls.key is not None  # Settings.validate checked
    try:
        return server_context(tls.cert, tls.key, tls.min_version)
    except TlsError as error:
        raise ConfigError(str(error)) from None


def _make_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
