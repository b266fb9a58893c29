"""The users directory: users.db and the account directories it names.

``Directory`` is used only on the users worker thread (store.py runs it there).
``DirectoryReader`` answers the two lookups of every sign-in on the event loop.

Invariants:

* Account names are unique case-insensitively (case-folded key) and returned as first
  stored. ``dirname`` is a sanitised prefix of the name plus a random suffix, recorded
  in users.db: never a path built from untrusted text, never reused by a re-created
  account.
* An account exists once its users.db row is committed; its directory is complete
  before that. Deleting commits the row's removal first, then removes the directory, so
  a crash leaves at most an unreferenced directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from roost.store.credentials import AppPasswordRecord, SignInRecord
from roost.store.errors import AccountExists, CannotDoThat, NoSuchAccount
from roost.store.sqlite import mailboxes
from roost.store.sqlite.mail_db import MailDB
from roost.store.sqlite.schema import USERS_MIGRATIONS, connect, migrate
from roost.store.values import DEFAULT_SPECIAL_FOLDERS, QuotaOverride

log = logging.getLogger(__name__)


# Addresses kept per account as having signed in (the throttle's trusted addresses).
MAX_KNOWN_ADDRESSES = 16


def fold_name(name: str) -> str:
    """The key an account name (or app-password label) is stored and looked up by."""
    return name.casefold()


class Directory:
    """users.db, used only on the users worker thread."""

    def __init__(self, data_dir: Path, durable: bool) -> None:
        self.durable = durable
        self._accounts = data_dir / "accounts"
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._accounts.mkdir(exist_ok=True, mode=0o700)
        path = data_dir / "users.db"
        _make_private(path)  # it holds password hashes, SCRAM keys and TOTP secrets
        self._conn = connect(path, durable=durable, create=True)
        migrate(self._conn, USERS_MIGRATIONS)

    def close(self) -> None:
        self._conn.close()

    def account_dir(self, dirname: str) -> Path:
        return self._accounts / dirname

    def create(
        self,
        name: str,
        password_hash: str,
        special_folders: Sequence[tuple[str, str]] = DEFAULT_SPECIAL_FOLDERS,
    ) -> None:
        key = fold_name(name)
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
                mailboxes.initialize(db, floor, special_folders)
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
            self._conn.execute("DELETE FROM known_addresses WHERE name_key = ?", (key,))
            self._conn.execute("DELETE FROM sharers WHERE grantee_key = ?", (key,))
            self._conn.execute("DELETE FROM submissions WHERE name_key = ?", (key,))
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
        return _password_hash(self._conn, key)

    def set_password_hash(self, key: str, password_hash: str) -> None:
        cursor = self._conn.execute(
            "UPDATE accounts SET password_hash = ? WHERE name_key = ?", (password_hash, key)
        )
        if cursor.rowcount == 0:
            raise NoSuchAccount(key)

    def sign_in_record(self, key: str) -> SignInRecord | None:
        return _sign_in_record(self._conn, key)

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
                    fold_name(app_password.label),
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
            "DELETE FROM app_passwords WHERE name_key = ? AND label_key = ?",
            (key, fold_name(label)),
        )
        return cursor.rowcount > 0

    def app_password_used(self, key: str, selector: str, when: int) -> None:
        with self._unsynced():
            self._conn.execute(
                "UPDATE app_passwords SET last_used = max(coalesce(last_used, 0), ?)"
                " WHERE name_key = ? AND selector = ?",
                (when, key, selector),
            )

    def replace_app_password_hash(
        self, key: str, selector: str, old_hash: str, new_hash: str
    ) -> None:
        self._conn.execute(
            "UPDATE app_passwords SET password_hash = ?"
            " WHERE name_key = ? AND selector = ? AND password_hash = ?",
            (new_hash, key, selector, old_hash),
        )

    def quota_override(self, key: str) -> QuotaOverride:
        row = self._conn.execute(
            "SELECT quota_storage, quota_messages FROM accounts WHERE name_key = ?", (key,)
        ).fetchone()
        if row is None:
            raise NoSuchAccount(key)
        return QuotaOverride(row[0], row[1])

    def opening(self, key: str) -> tuple[str, str, QuotaOverride]:
        """What opening an account needs: (stored name, dirname, quota override)."""
        return _opening(self._conn, key)

    def set_quota_override(self, key: str, override: QuotaOverride) -> None:
        for value in (override.storage, override.messages):
            if value is not None and value < 0:
                raise CannotDoThat("a quota limit cannot be negative")
        cursor = self._conn.execute(
            "UPDATE accounts SET quota_storage = ?, quota_messages = ? WHERE name_key = ?",
            (override.storage, override.messages, key),
        )
        if cursor.rowcount == 0:
            raise NoSuchAccount(key)

    def add_sharer(self, owner: str, grantee_key: str) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO sharers (grantee_key, owner) VALUES (?, ?)",
            (grantee_key, owner),
        )

    def sharers_of(self, grantee_key: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT owner FROM sharers WHERE grantee_key = ? ORDER BY owner", (grantee_key,)
        )
        return [owner for (owner,) in rows]

    def remember_address(self, key: str, address: str, when: int) -> None:
        """Upsert, keeping the ``MAX_KNOWN_ADDRESSES`` most recent of the account."""
        with self._unsynced():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO known_addresses (name_key, address, last_success)"
                    " VALUES (?, ?, ?) ON CONFLICT (name_key, address) DO UPDATE"
                    " SET last_success = max(last_success, excluded.last_success)",
                    (key, address, when),
                )
                self._conn.execute(
                    "DELETE FROM known_addresses WHERE name_key = ? AND address NOT IN"
                    " (SELECT address FROM known_addresses WHERE name_key = ?"
                    "  ORDER BY last_success DESC LIMIT ?)",
                    (key, key, MAX_KNOWN_ADDRESSES),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _unsynced(self) -> Iterator[None]:
        """Commit without waiting for the disk: for sign-in bookkeeping (a known
        address, an app password's last use) that a sign-in should not wait an fsync
        for, and that a power cut may undo harmlessly (a crash of Roost does not: the
        WAL is written before COMMIT returns). Outside any transaction only."""
        if not self.durable:
            yield
            return
        self._conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            self._conn.execute("PRAGMA synchronous = FULL")

    def address_last_success(self, key: str, address: str) -> int | None:
        row = self._conn.execute(
            "SELECT last_success FROM known_addresses WHERE name_key = ? AND address = ?",
            (key, address),
        ).fetchone()
        return None if row is None else int(row[0])

    def add_alias(self, key: str, address: str) -> None:
        self.lookup(key)
        try:
            self._conn.execute(
                "INSERT INTO aliases (address_key, address, name_key) VALUES (?, ?, ?)",
                (address.casefold(), address, key),
            )
        except sqlite3.IntegrityError:
            raise CannotDoThat(f"{address} is already an alias") from None

    def delete_alias(self, key: str, address: str) -> bool:
        self.lookup(key)
        cursor = self._conn.execute(
            "DELETE FROM aliases WHERE address_key = ? AND name_key = ?",
            (address.casefold(), key),
        )
        return cursor.rowcount > 0

    def aliases(self, key: str) -> list[str]:
        self.lookup(key)
        rows = self._conn.execute(
            "SELECT address FROM aliases WHERE name_key = ? ORDER BY address_key", (key,)
        )
        return [str(address) for (address,) in rows]

    def claim_submission(self, key: str, when: float, window: float, limit: int) -> bool:
        """Count one message at ``when`` unless ``limit`` were counted in the
        ``window`` seconds before it; check and count in one write transaction, so
        workers sharing users.db cannot both take the last one."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute(
                "DELETE FROM submissions WHERE name_key = ? AND sent_at <= ?",
                (key, when - window),
            )
            (count,) = self._conn.execute(
                "SELECT count(*) FROM submissions WHERE name_key = ?", (key,)
            ).fetchone()
            allowed = limit <= 0 or count < limit
            if allowed:
                self._conn.execute(
                    "INSERT INTO submissions (name_key, sent_at) VALUES (?, ?)", (key, when)
                )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return allowed

    def release_submission(self, key: str, when: float) -> None:
        self._conn.execute(
            "DELETE FROM submissions WHERE rowid IN"
            " (SELECT rowid FROM submissions WHERE name_key = ? AND sent_at = ? LIMIT 1)",
            (key, when),
        )

    def urlauth_key(self, key: str, mailbox: str, create: bool) -> bytes | None:
        row = self._conn.execute(
            "SELECT secret FROM urlauth_keys WHERE name_key = ? AND mailbox = ?", (key, mailbox)
        ).fetchone()
        if row is not None or not create:
            return None if row is None else bytes(row[0])
        self.lookup(key)
        self._conn.execute(
            "INSERT OR IGNORE INTO urlauth_keys (name_key, mailbox, secret) VALUES (?, ?, ?)",
            (key, mailbox, secrets.token_bytes(32)),
        )
        return self.urlauth_key(key, mailbox, create=False)

    def reset_urlauth_keys(self, key: str, mailbox: str | None) -> None:
        if mailbox is None:
            self._conn.execute("DELETE FROM urlauth_keys WHERE name_key = ?", (key,))
        else:
            self._conn.execute(
                "DELETE FROM urlauth_keys WHERE name_key = ? AND mailbox = ?", (key, mailbox)
            )

    def instance_secret(self) -> bytes:
        secret: bytes = self._conn.execute("SELECT secret FROM counters WHERE id = 0").fetchone()[0]
        return secret

    def _row(self, key: str) -> tuple[str, str] | None:
        row = self._conn.execute(
            "SELECT name, dirname FROM accounts WHERE name_key = ?", (key,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def new_account_dir(self, name: str) -> tuple[str, Path]:
        """A fresh dirname for account ``name`` and its directory (not made yet): for
        ``roost store copy`` into this directory, which registers the account once
        its directory is complete, as ``create`` does."""
        dirname = self._new_dirname(fold_name(name))
        return dirname, self.account_dir(dirname)

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


class DirectoryReader:
    """The lookups every sign-in and every LMTP recipient makes (its credential record
    or password hash, then what opening the account needs), on the event loop through
    a read-only connection that never waits.

    A trip to the users worker thread and back costs ~50 µs of CPU, more than the
    indexed read itself; users.db is small and hot, and in WAL mode a reader is not
    blocked by a writer. Where SQLite still answers "busy" (another process recovering
    the WAL index) ``sqlite3.OperationalError`` is raised at once, and the caller asks
    the users worker instead, which waits as every other query does. It sees every
    committed write of any process, like the worker's own connection."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            timeout=0.0,
            isolation_level=None,
            check_same_thread=False,  # the loop's thread, but a test may run several loops
        )
        self._conn.execute("PRAGMA busy_timeout = 0")

    def close(self) -> None:
        self._conn.close()

    def sign_in_record(self, key: str) -> SignInRecord | None:
        return _sign_in_record(self._conn, key)

    def opening(self, key: str) -> tuple[str, str, QuotaOverride]:
        return _opening(self._conn, key)

    def password_hash(self, key: str) -> str | None:
        return _password_hash(self._conn, key)


def _password_hash(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT password_hash FROM accounts WHERE name_key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _sign_in_record(conn: sqlite3.Connection, key: str) -> SignInRecord | None:
    row = conn.execute(
        "SELECT name, password_hash, scram_keys, totp_secret, totp_last_step"
        " FROM accounts WHERE name_key = ?",
        (key,),
    ).fetchone()
    if row is None:
        return None
    app_passwords = tuple(
        AppPasswordRecord(str(label), str(selector), str(hash_), int(created), last_used)
        for label, selector, hash_, created, last_used in conn.execute(
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


def _opening(conn: sqlite3.Connection, key: str) -> tuple[str, str, QuotaOverride]:
    row = conn.execute(
        "SELECT name, dirname, quota_storage, quota_messages FROM accounts WHERE name_key = ?",
        (key,),
    ).fetchone()
    if row is None:
        raise NoSuchAccount(key)
    name, dirname, storage, messages = row
    return str(name), str(dirname), QuotaOverride(storage, messages)


def is_busy(error: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for another connection's lock ("database is locked")."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)
