"""The embedded store: an accounts directory and one SQLite database per account.

Layout under ``data_dir``::

    users.db                       accounts: name, credentials, directory (mode 0600)
    accounts/<dirname>/mail.db     mailboxes, messages, flags, modseqs, subscriptions,
                                   and small messages' bytes (db.py, INLINE_MAX)
    accounts/<dirname>/blobs/      larger message files (store/blobs.py)
    accounts/<dirname>/tmp/        message files being written

Invariants:

* users.db and the account directories are kept by ``directory.Directory`` (see its
  invariants: unique case-folded names, directory names never built from them, an
  account existing once its row is committed).
* users.db has its own worker thread; each open account its own (account.py).
* Quota: the default limits come from the constructor (``[quota]`` in the settings),
  an account's own from users.db (``QuotaOverride``), read again at every
  ``open_account`` (each session and delivery opens it), every ``Account.quota()``,
  and before an APPEND or COPY when ``quota_refresh`` seconds old; set at once in this
  process by ``set_quota_override``. Usage lives in the account's mail.db
  (sqlite/quota.py).
* An account whose last session ended stays open for ``keep_open`` seconds, at most
  ``max_idle_open`` of them (least recently used closed first): a client that logs in,
  does one thing and logs out (mobile clients, POP3 pollers, the mixed benchmark) would
  otherwise pay for opening the database and, at close, for SQLite's checkpoint of the
  write-ahead log with its fsyncs — ~6-15 ms per session, more than its commands.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from roost.mime.parse import DEFAULT_LIMITS as DEFAULT_MIME_LIMITS
from roost.mime.parse import MimeLimits
from roost.store.credentials import AppPasswordRecord, SignInRecord
from roost.store.errors import NoSuchAccount
from roost.store.events import EventHub
from roost.store.sqlite.account import OpenAccount, SqliteAccount
from roost.store.sqlite.analysis_cache import AnalysisCache
from roost.store.sqlite.directory import Directory, DirectoryReader, fold_name, is_busy
from roost.store.sqlite.mail_db import MailDB
from roost.store.sqlite.quota import UNLIMITED
from roost.store.sqlite.schema import DEFAULT_BUSY_TIMEOUT
from roost.store.sqlite.worker import Worker
from roost.store.values import DEFAULT_SPECIAL_FOLDERS, QuotaLimits, QuotaOverride

log = logging.getLogger(__name__)

_T = TypeVar("_T")

KEEP_OPEN_SECONDS = 120.0
MAX_IDLE_OPEN = 128
QUOTA_REFRESH_SECONDS = 30.0


class SqliteStore:
    """Implements base.Store. Create with ``await SqliteStore.open(data_dir)``."""

    def __init__(
        self,
        data_dir: Path,
        directory: Directory,
        users: Worker,
        hub: EventHub,
        *,
        keep_open: float = KEEP_OPEN_SECONDS,
        max_idle_open: int = MAX_IDLE_OPEN,
        quota: QuotaLimits = UNLIMITED,
        quota_refresh: float = QUOTA_REFRESH_SECONDS,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        mime_limits: MimeLimits = DEFAULT_MIME_LIMITS,
        special_folders: Sequence[tuple[str, str]] = DEFAULT_SPECIAL_FOLDERS,
        sync_flag_changes: bool = True,
    ) -> None:
        self._data_dir = data_dir
        self._special_folders = tuple(special_folders)
        self._quota = quota
        self._quota_refresh = quota_refresh
        self._analysis_cache = AnalysisCache()  # shared by every account's thread
        self._busy_timeout = busy_timeout
        self._mime_limits = mime_limits
        self._sync_flag_changes = sync_flag_changes
        self._directory = directory
        self._users = users
        self._hub = hub
        self._keep_open = keep_open
        self._max_idle_open = max_idle_open
        self._open: dict[str, OpenAccount] = {}
        # Open accounts without a handle, least recently released first.
        self._idle: OrderedDict[str, OpenAccount] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._swept: set[str] = set()  # account directories swept by this process
        self._expiring: set[asyncio.Future[None]] = set()
        self._reader: DirectoryReader | None = None  # opened at the first sign-in

    @classmethod
    async def open(
        cls,
        data_dir: Path,
        *,
        durable: bool = True,
        hub: EventHub | None = None,
        keep_open: float = KEEP_OPEN_SECONDS,
        max_idle_open: int = MAX_IDLE_OPEN,
        quota: QuotaLimits = UNLIMITED,
        quota_refresh: float = QUOTA_REFRESH_SECONDS,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        mime_limits: MimeLimits = DEFAULT_MIME_LIMITS,
        special_folders: Sequence[tuple[str, str]] = DEFAULT_SPECIAL_FOLDERS,
        fsync: str = "always",
    ) -> SqliteStore:
        """Open (creating if needed) the store in ``data_dir``. ``durable=False`` skips
        fsyncs (tests only); ``hub`` lets several stores share change events;
        ``keep_open`` and ``max_idle_open`` bound accounts kept open between sessions
        (0 closes an account with its last session); ``quota`` is the default limits
        of every account without its own (``set_quota_override``), ``quota_refresh``
        the most seconds an account's own limits are used before being read again;
        ``busy_timeout``: seconds a write waits for another process's before StoreBusy;
        ``mime_limits``: how deep a message is analysed at delivery;
        ``special_folders``: (special use, name) of the folders a new account gets
        besides INBOX (``[imap] special_use_names``); ``fsync``: ``"optimized"`` commits
        flag changes and expunges without waiting for the disk (``[store] fsync``)."""
        users = Worker("roost-users")
        try:
            directory = await users.run(Directory, data_dir, durable)
        except BaseException:
            users.shutdown()
            raise
        return cls(
            data_dir,
            directory,
            users,
            hub or EventHub(),
            keep_open=keep_open,
            max_idle_open=max_idle_open,
            quota=quota,
            quota_refresh=quota_refresh,
            busy_timeout=busy_timeout,
            mime_limits=mime_limits,
            special_folders=special_folders,
            sync_flag_changes=fsync != "optimized",
        )

    @property
    def hub(self) -> EventHub:
        return self._hub

    async def close(self) -> None:
        for shared in list(self._open.values()):
            await self._shutdown(shared)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if not self._users.closed:
            try:
                await self._users.run(self._directory.close)
            finally:
                self._users.shutdown()

    # ---- accounts ------------------------------------------------------------------

    async def create_account(self, name: str, password_hash: str) -> None:
        await self._users.run(self._directory.create, name, password_hash, self._special_folders)

    async def delete_account(self, name: str) -> None:
        key = fold_name(name)
        async with self._lock(key):
            shared = self._open.get(key)
            if shared is not None:
                await self._shutdown(shared)
            await self._users.run(self._directory.delete, key)

    async def list_accounts(self) -> list[str]:
        return await self._users.run(self._directory.names)

    async def get_password_hash(self, name: str) -> str | None:
        key = fold_name(name)
        return await self._read_users(
            lambda reader: reader.password_hash(key), self._directory.password_hash, key
        )

    async def set_password_hash(self, name: str, password_hash: str) -> None:
        await self._users.run(self._directory.set_password_hash, fold_name(name), password_hash)

    # ---- credentials (store/credentials.py) ----------------------------------------

    async def get_sign_in_record(self, name: str) -> SignInRecord | None:
        key = fold_name(name)
        return await self._read_users(
            lambda reader: reader.sign_in_record(key), self._directory.sign_in_record, key
        )

    async def _read_users(
        self,
        on_loop: Callable[[DirectoryReader], _T],
        on_worker: Callable[[str], _T],
        key: str,
    ) -> _T:
        """A users.db lookup of a sign-in, on the event loop (``DirectoryReader``), or
        on the users worker when the loop's read-only connection is refused."""
        try:
            if self._reader is None:
                self._reader = DirectoryReader(self._data_dir / "users.db")
            return on_loop(self._reader)
        except sqlite3.OperationalError as error:
            if not is_busy(error):
                raise
        return await self._users.run(on_worker, key)

    async def set_password(self, name: str, password_hash: str, scram_keys: str | None) -> None:
        await self._users.run(
            self._directory.set_password, fold_name(name), password_hash, scram_keys
        )

    async def set_totp_secret(self, name: str, secret: str | None) -> None:
        await self._users.run(self._directory.set_totp_secret, fold_name(name), secret)

    async def accept_totp_step(self, name: str, step: int) -> bool:
        return await self._users.run(self._directory.accept_totp_step, fold_name(name), step)

    async def add_scram_keys(self, name: str, password_hash: str, scram_keys: str) -> bool:
        return await self._users.run(
            self._directory.add_scram_keys, fold_name(name), password_hash, scram_keys
        )

    async def add_app_password(self, name: str, app_password: AppPasswordRecord) -> None:
        await self._users.run(self._directory.add_app_password, fold_name(name), app_password)

    async def delete_app_password(self, name: str, label: str) -> bool:
        return await self._users.run(self._directory.delete_app_password, fold_name(name), label)

    async def app_password_used(self, name: str, selector: str, when: int) -> None:
        await self._users.run(self._directory.app_password_used, fold_name(name), selector, when)

    async def replace_app_password_hash(
        self, name: str, selector: str, old_hash: str, new_hash: str
    ) -> None:
        await self._users.run(
            self._directory.replace_app_password_hash, fold_name(name), selector, old_hash, new_hash
        )

    async def remember_sign_in_address(self, name: str, address: str, when: int) -> None:
        await self._users.run(self._directory.remember_address, fold_name(name), address, when)

    async def last_sign_in_from(self, name: str, address: str) -> int | None:
        return await self._users.run(self._directory.address_last_success, fold_name(name), address)

    async def add_alias(self, name: str, address: str) -> None:
        await self._users.run(self._directory.add_alias, fold_name(name), address)

    async def delete_alias(self, name: str, address: str) -> bool:
        return await self._users.run(self._directory.delete_alias, fold_name(name), address)

    async def list_aliases(self, name: str) -> list[str]:
        return await self._users.run(self._directory.aliases, fold_name(name))

    async def claim_submission(self, name: str, when: float, window: float, limit: int) -> bool:
        return await self._users.run(
            self._directory.claim_submission, fold_name(name), when, window, limit
        )

    async def release_submission(self, name: str, when: float) -> None:
        await self._users.run(self._directory.release_submission, fold_name(name), when)

    async def urlauth_key(self, name: str, mailbox: str, *, create: bool) -> bytes | None:
        return await self._users.run(self._directory.urlauth_key, fold_name(name), mailbox, create)

    async def reset_urlauth_keys(self, name: str, mailbox: str | None) -> None:
        await self._users.run(self._directory.reset_urlauth_keys, fold_name(name), mailbox)

    async def instance_secret(self) -> bytes:
        return await self._users.run(self._directory.instance_secret)

    # ---- quota ---------------------------------------------------------------------

    @property
    def default_quota(self) -> QuotaLimits:
        return self._quota

    def set_default_quota(self, limits: QuotaLimits) -> None:
        """New default limits (a configuration reload), for accounts opened from now on."""
        self._quota = limits

    async def quota_override(self, name: str) -> QuotaOverride:
        return await self._users.run(self._directory.quota_override, fold_name(name))

    async def add_sharer(self, owner: str, grantee: str) -> None:
        await self._users.run(self._directory.add_sharer, owner, fold_name(grantee))

    async def sharers_of(self, grantee: str) -> list[str]:
        return await self._users.run(self._directory.sharers_of, fold_name(grantee))

    async def set_quota_override(self, name: str, override: QuotaOverride) -> None:
        key = fold_name(name)
        await self._users.run(self._directory.set_quota_override, key, override)
        shared = self._open.get(key)
        if shared is not None:
            self._set_quota(shared, override)

    async def _refresh_quota(self, shared: OpenAccount) -> QuotaOverride:
        override = await self._users.run(self._directory.quota_override, shared.key)
        self._set_quota(shared, override)
        return override

    def _set_quota(self, shared: OpenAccount, override: QuotaOverride) -> None:
        shared.quota = override
        shared.quota_fresh_until = asyncio.get_running_loop().time() + self._quota_refresh

    async def open_account(self, name: str) -> SqliteAccount:
        key = fold_name(name)
        async with self._lock(key):
            stored_name, dirname, override = await self._read_users(
                lambda reader: reader.opening(key), self._directory.opening, key
            )
            shared = self._open.get(key)
            if shared is not None and shared.dirname != dirname:
                # Deleted and created again by another process while kept open here.
                await self._shutdown(shared)
                shared = None
            if shared is None:
                shared = await self._open_shared(key, dirname)
                self._open[key] = shared
            self._unidle(shared)
            shared.handles += 1
            self._set_quota(shared, override)
        return SqliteAccount(
            stored_name, shared, self._hub, self._release, self._quota, self._refresh_quota
        )

    # ---- open accounts -------------------------------------------------------------

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _open_shared(self, key: str, dirname: str) -> OpenAccount:
        worker = Worker(f"roost-{dirname}")
        sweep = dirname not in self._swept
        directory = self._directory.account_dir(dirname)
        try:
            db = await worker.run(
                _open_account_db,
                directory,
                self._directory.durable,
                sweep,
                self._busy_timeout,
                self._mime_limits,
                self._sync_flag_changes,
                self._analysis_cache,
            )
        except BaseException:
            worker.shutdown()
            raise
        self._swept.add(dirname)
        return OpenAccount(key=key, dirname=dirname, worker=worker, db=db)

    async def _release(self, shared: OpenAccount) -> None:
        async with self._lock(shared.key):
            shared.handles -= 1
            if shared.handles > 0 or shared.closed:
                return
            if self._keep_open <= 0 or self._max_idle_open <= 0:
                await self._shutdown(shared)
                return
            loop = asyncio.get_running_loop()
            shared.expiry = loop.call_later(self._keep_open, self._expire, shared)
            self._idle[shared.key] = shared
        while len(self._idle) > self._max_idle_open:
            oldest = next(iter(self._idle.values()))
            self._unidle(oldest)
            await self._close_if_unused(oldest)

    def _unidle(self, shared: OpenAccount) -> None:
        if shared.expiry is not None:
            shared.expiry.cancel()
            shared.expiry = None
        if self._idle.get(shared.key) is shared:
            del self._idle[shared.key]

    def _expire(self, shared: OpenAccount) -> None:
        self._unidle(shared)
        task = asyncio.ensure_future(self._close_if_unused(shared))
        self._expiring.add(task)
        task.add_done_callback(self._expiring.discard)

    async def _close_if_unused(self, shared: OpenAccount) -> None:
        async with self._lock(shared.key):
            if shared.handles <= 0 and not shared.closed:
                await self._shutdown(shared)

    async def _shutdown(self, shared: OpenAccount) -> None:
        if shared.closed:
            return
        shared.closed = True
        self._unidle(shared)
        if self._open.get(shared.key) is shared:
            del self._open[shared.key]
        try:
            await shared.worker.run(shared.db.close)
        finally:
            shared.worker.shutdown()


def _open_account_db(
    directory: Path,
    durable: bool,
    sweep: bool,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    mime_limits: MimeLimits = DEFAULT_MIME_LIMITS,
    sync_flag_changes: bool = True,
    analysis_cache: AnalysisCache | None = None,
) -> MailDB:
    try:
        db = MailDB.open(
            directory, durable=durable, busy_timeout=busy_timeout, mime_limits=mime_limits
        )
    except sqlite3.OperationalError as exc:
        raise NoSuchAccount(f"account directory {directory.name} is unusable: {exc}") from exc
    db.sync_flag_changes = sync_flag_changes
    db.analysis_cache = analysis_cache
    if sweep:
        try:
            removed = db.sweep_orphans()
        except Exception:
            log.warning("orphan sweep of %s failed", directory.name, exc_info=True)
        else:
            if removed:
                log.info("removed %d orphan message files in %s", removed, directory.name)
    return db
