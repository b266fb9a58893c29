"""The embedded store: an accounts directory and one SQLite database per account.

Layout under ``data_dir``::

    users.db                       accounts: name, credentials, directory (mode 0600)
    accounts/<dirname>/mail.db     mailboxes, messages, flags, modseqs, subscriptions,
                                   and small messages' bytes (db.py, INLINE_MAX)
    accounts/<dirname>/blobs/      larger message files (store/blobs.py)
    accounts/<dirname>/tmp/        message files being written

Invariants:

* Account names are unique case-insensitively (case-folded key) and returned as first
  stored. ``dirname`` is a sanitised prefix of the name plus a random suffix, recorded
  in users.db: never a path built from untrusted text, never reused by a re-created
  account.
* An account exists once its users.db row is committed; its directory is complete
  before that. Deleting commits the row's removal first, then removes the directory, so
  a crash leaves at most an unreferenced directory.
* users.db has its own worker thread; each open account its own (account.py).
* An account whose last session ended stays open for ``keep_open`` seconds, at most
  ``max_idle_open`` of them (least recently used closed first): a client that logs in,
  does one thing and logs out (mobile clients, POP3 pollers, the mixed benchmark) would
  otherwise pay for opening the database and, at close, for SQLite's checkpoint of the
  write-ahead log with its fsyncs — ~6-15 ms per session, more than its commands.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections import OrderedDict
from pathlib import Path

from roost.store.credentials import AppPasswordRecord, SignInRecord
from roost.store.errors import AccountExists, CannotDoThat, NoSuchAccount
from roost.store.events import EventHub
from roost.store.sqlite import mailboxes
from roost.store.sqlite.account import OpenAccount, SqliteAccount
from roost.store.sqlite.mail_db import MailDB
from roost.store.sqlite.schema import USERS_MIGRATIONS, connect, migrate
from roost.store.sqlite.worker import Worker

log = logging.getLogger(__name__)

KEEP_OPEN_SECONDS = 120.0
MAX_IDLE_OPEN = 128


class SqliteStore:
    """Implements base.Store. Create with ``await SqliteStore.open(data_dir)``."""

    def __init__(
        self,
        data_dir: Path,
        directory: _Directory,
        users: Worker,
        hub: EventHub,
        *,
        keep_open: float = KEEP_OPEN_SECONDS,
        max_idle_open: int = MAX_IDLE_OPEN,
    ) -> None:
        self._data_dir = data_dir
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

    @classmethod
    async def open(
        cls,
        data_dir: Path,
        *,
        durable: bool = True,
        hub: EventHub | None = None,
        keep_open: float = KEEP_OPEN_SECONDS,
        max_idle_open: int = MAX_IDLE_OPEN,
    ) -> SqliteStore:
        """Open (creating if needed) the store in ``data_dir``. ``durable=False`` skips
        fsyncs (tests only); ``hub`` lets several stores share change events;
        ``keep_open`` and ``max_idle_open`` bound accounts kept open between sessions
        (0 closes an account with its last session)."""
        users = Worker("roost-users")
        try:
            directory = await users.run(_Directory, data_dir, durable)
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
        )

    @property
    def hub(self) -> EventHub:
        return self._hub

    async def close(self) -> None:
        for shared in list(self._open.values()):
            await self._shutdown(shared)
        if not self._users.closed:
            try:
                await self._users.run(self._directory.close)
            finally:
                self._users.shutdown()

    # ---- accounts ------------------------------------------------------------------

    async def create_account(self, name: str, password_hash: str) -> None:
        await self._users.run(self._directory.create, name, password_hash)

    async def delete_account(self, name: str) -> None:
        key = _fold(name)
        async with self._lock(key):
            shared = self._open.get(key)
            if shared is not None:
                await self._shutdown(shared)
            await self._users.run(self._directory.delete, key)

    async def list_accounts(self) -> list[str]:
        return await self._users.run(self._directory.names)

    async def get_password_hash(self, name: str) -> str | None:
        return await self._users.run(self._directory.password_hash, _fold(name))

    async def set_password_hash(self, name: str, password_hash: str) -> None:
        await self._users.run(self._directory.set_password_hash, _fold(name), password_hash)

    # ---- credentials (store/credentials.py) ----------------------------------------

    async def get_sign_in_record(self, name: str) -> SignInRecord | None:
        return await self._users.run(self._directory.sign_in_record, _fold(name))

    async def set_password(self, name: str, password_hash: str, scram_keys: str | None) -> None:
        await self._users.run(self._directory.set_password, _fold(name), password_hash, scram_keys)

    async def set_totp_secret(self, name: str, secret: str | None) -> None:
        await self._users.run(self._directory.set_totp_secret, _fold(name), secret)

    async def accept_totp_step(self, name: str, step: int) -> bool:
        return await self._users.run(self._directory.accept_totp_step, _fold(name), step)

    async def add_scram_keys(self, name: str, password_hash: str, scram_keys: str) -> bool:
        return await self._users.run(
            self._directory.add_scram_keys, _fold(name), password_hash, scram_keys
        )

    async def add_app_password(self, name: str, app_password: AppPasswordRecord) -> None:
        await self._users.run(self._directory.add_app_password, _fold(name), app_password)

    async def delete_app_password(self, name: str, label: str) -> bool:
        return await self._users.run(self._directory.delete_app_password, _fold(name), label)

    async def app_password_used(self, name: str, selector: str, when: int) -> None:
        await self._users.run(self._directory.app_password_used, _fold(name), selector, when)

    async def instance_secret(self) -> bytes:
        return await self._users.run(self._directory.instance_secret)

    async def open_account(self, name: str) -> SqliteAccount:
        key = _fold(name)
        async with self._lock(key):
            stored_name, dirname = await self._users.run(self._directory.lookup, key)
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
        return SqliteAccount(stored_name, shared, self._hub, self._release)

    # ---- open accounts -------------------------------------------------------------

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _open_shared(self, key: str, dirname: str) -> OpenAccount:
        worker = Worker(f"roost-{dirname}")
        sweep = dirname not in self._swept
        directory = self._directory.account_dir(dirname)
        try:
            db = await worker.run(_open_account_db, directory, self._directory.durable, sweep)
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


def _fold(name: str) -> str:
    return name.casefold()


def _open_account_db(directory: Path, durable: bool, sweep: bool) -> MailDB:
    try:
        db = MailDB.open(directory, durable=durable)
    except sqlite3.OperationalError as exc:
        raise NoSuchAccount(f"account directory {directory.name} is unusable: {exc}") from exc
    if sweep:
        try:
            removed = db.sweep_orphans()
        except Exception:
            log.warning("orphan sweep of %s failed", directory.name, exc_info=True)
        else:
            if removed:
                log.info("removed %d orphan message files in %s", removed, directory.name)
    return db


class _Directory:
    """users.db, used only on the users worker thread."""

    def __init__(self, data_dir: Path, durable: bool) -> None:
        self.durable = durable
        self._accounts = data_dir / "accounts"
        self._accounts.mkdir(parents=True, exist_ok=True)
        path = data_dir / "users.db"
        _make_private(path)  # it holds password hashes, SCRAM keys and TOTP secrets
        self._conn = connect(path, durable=durable, create=True)
        migrate(self._conn, USERS_MIGRATIONS)

    def close(self) -> None:
        self._conn.close()

    def account_dir(self, dirname: str) -> Path:
        return self._accounts / dirname

    def create(self, name: str, password_hash: str) -> None:
        key = _fold(name)
        if not key:
            raise CannotDoThat("an account needs a name")
        if self._row(key) is not None:
            raise AccountExists(name)
        floor: int = self._conn.execute(
            "SELECT uidvalidity_floor FROM counters WHERE id = 0"
        ).fetchone()[0]
        dirname = self._new_dirname(key)
        directory = self.account_dir(dirname)
        try:
            db = MailDB.open(directory, durable=self.durable, create=True)
            try:
                mailboxes.initialize(db, floor)
            finally:
                db.close()
            self._sync_dir(directory)
            self._sync_dir(self._accounts)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO accounts (name_key, name, dirname, password_hash, created)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (key, name, dirname, password_hash, int(time.time())),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:  # created meanwhile by another process
            shutil.rmtree(directory, ignore_errors=True)
            raise AccountExists(name) from exc
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def delete(self, key: str) -> None:
        """The account must not be open in this process."""
        _, dirname = self.lookup(key)
        directory = self.account_dir(dirname)
        last_uidvalidity = _last_uidvalidity(directory)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute("DELETE FROM accounts WHERE name_key = ?", (key,))
            self._conn.execute(
                "UPDATE counters SET uidvalidity_floor = max(uidvalidity_floor, ?) WHERE id = 0",
                (last_uidvalidity,),
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        shutil.rmtree(directory, ignore_errors=True)

    def lookup(self, key: str) -> tuple[str, str]:
        """(stored name, dirname); NoSuchAccount where absent."""
        row = self._row(key)
        if row is None:
            raise NoSuchAccount(key)
        return row

    def names(self) -> list[str]:
        return [name for (name,) in self._conn.execute("SELECT name FROM accounts ORDER BY 1")]

    def password_hash(self, key: str) -> str | None:
        row = self._conn.execute(
            "SELECT password_hash FROM accounts WHERE name_key = ?", (key,)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_password_hash(self, key: str, password_hash: str) -> None:
        cursor = self._conn.execute(
            "UPDATE accounts SET password_hash = ? WHERE name_key = ?", (password_hash, key)
        )
        if cursor.rowcount == 0:
            raise NoSuchAccount(key)

    def sign_in_record(self, key: str) -> SignInRecord | None:
        row = self._conn.execute(
            "SELECT name, password_hash, scram_keys, totp_secret, totp_last_step"
            " FROM accounts WHERE name_key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        app_passwords = tuple(
            AppPasswordRecord(str(label), str(selector), str(hash_), int(created), last_used)
            for label, selector, hash_, created, last_used in self._conn.execute(
                "SELECT label, selector, password_hash, created, last_used"
                " FROM app_passwords WHERE name_key = ? ORDER BY created, label",
                (key,),
            )
        )
        name, password_hash, scram_keys, totp_secret, totp_last_step = row
        return SignInRecord(
            name=str(name),
            password_hash=str(password_hash),
            scram_keys=scram_keys,
            totp_secret=totp_secret,
            totp_last_step=int(totp_last_step),
            app_passwords=app_passwords,
        )

    def set_password(self, key: str, password_hash: str, scram_keys: str | None) -> None:
        cursor = self._conn.execute(
            "UPDATE accounts SET password_hash = ?, scram_keys = ? WHERE name_key = ?",
            (password_hash, scram_keys, key),
        )
        if cursor.rowcount == 0:
            raise NoSuchAccount(key)

    def add_scram_keys(self, key: str, password_hash: str, scram_keys: str) -> bool:
        # Conditional, so a password changed meanwhile never gets the old one's keys.
        cursor = self._conn.execute(
            "UPDATE accounts SET scram_keys = ?"
            " WHERE name_key = ? AND password_hash = ? AND scram_keys IS NULL",
            (scram_keys, key, password_hash),
        )
        return cursor.rowcount == 1

    def set_totp_secret(self, key: str, secret: str | None) -> None:
        cursor = self._conn.execute(
            "UPDATE accounts SET totp_secret = ?, totp_last_step = 0 WHERE name_key = ?",
            (secret, key),
        )
        if cursor.rowcount == 0:
            raise NoSuchAccount(key)

    def accept_totp_step(self, key: str, step: int) -> bool:
        # One statement: of two sign-ins racing with the same code, one wins.
        cursor = self._conn.execute(
            "UPDATE accounts SET totp_last_step = ?"
            " WHERE name_key = ? AND totp_secret IS NOT NULL AND totp_last_step < ?",
            (step, key, step),
        )
        return cursor.rowcount == 1

    def add_app_password(self, key: str, app_password: AppPasswordRecord) -> None:
        if self._row(key) is None:
            raise NoSuchAccount(key)
        try:
            self._conn.execute(
                "INSERT INTO app_passwords (name_key, label_key, label, selector,"
                " password_hash, created, last_used) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    _fold(app_password.label),
                    app_password.label,
                    app_password.selector,
                    app_password.password_hash,
                    app_password.created,
                    app_password.last_used,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise CannotDoThat(
                f"an app password labelled {app_password.label!r} or with that selector exists"
            ) from exc

    def delete_app_password(self, key: str, label: str) -> bool:
        if self._row(key) is None:
            raise NoSuchAccount(key)
        cursor = self._conn.execute(
            "DELETE FROM app_passwords WHERE name_key = ? AND label_key = ?", (key, _fold(label))
        )
        return cursor.rowcount > 0

    def app_password_used(self, key: str, selector: str, when: int) -> None:
        self._conn.execute(
            "UPDATE app_passwords SET last_used = max(coalesce(last_used, 0), ?)"
            " WHERE name_key = ? AND selector = ?",
            (when, key, selector),
        )

    def instance_secret(self) -> bytes:
        secret: bytes = self._conn.execute("SELECT secret FROM counters WHERE id = 0").fetchone()[0]
        return secret

    def _row(self, key: str) -> tuple[str, str] | None:
        row = self._conn.execute(
            "SELECT name, dirname FROM accounts WHERE name_key = ?", (key,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def _new_dirname(self, key: str) -> str:
        prefix = re.sub(r"[^a-z0-9_-]+", "_", key)[:32] or "account"
        while True:
            dirname = f"{prefix}-{secrets.token_hex(4)}"
            if not self.account_dir(dirname).exists():
                return dirname

    def _sync_dir(self, directory: Path) -> None:
        if self.durable:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _make_private(path: Path) -> None:
    """Create ``path`` (if absent) readable by its owner only, and make it so if it
    exists; its WAL and shared-memory files, created by SQLite, take the same mode."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            os.chmod(file, 0o600)
        except FileNotFoundError:
            pass
        except PermissionError:
            log.warning("cannot make %s private (mode 0600)", file)


def _last_uidvalidity(directory: Path) -> int:
    """The account's last UIDVALIDITY, or 0 if its database cannot be read."""
    try:
        db = MailDB.open(directory, durable=False)
    except (sqlite3.Error, OSError):
        return 0
    try:
        return db.last_uidvalidity()
    except sqlite3.Error:
        return 0
    finally:
        db.close()
