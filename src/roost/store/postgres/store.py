"""The PostgreSQL store: every account of a site in one database, served by any node.

Nothing here is kept in memory that another node needs (ARCHITECTURE.md decision 11):
accounts, credentials, quota limits and mail are read from the database each time;
change events reach other nodes by NOTIFY (notify.py).

Invariants:

* Account names are unique case-insensitively (``name_key``, case-folded as the SQLite
  backend folds) and returned as first stored.
* A new account starts its UIDVALIDITYs above every one a deleted account gave
  (``settings.uidvalidity_floor``), so a re-created account never repeats one.
* An account's own quota limits are read inside each APPEND or COPY transaction
  (messages.py), so ``roost user quota set`` applies at once on every node.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

import asyncpg

from roost.mime.parse import DEFAULT_LIMITS as DEFAULT_MIME_LIMITS
from roost.mime.parse import MimeLimits
from roost.store.credentials import AppPasswordRecord, SignInRecord
from roost.store.errors import AccountExists, CannotDoThat, NoSuchAccount
from roost.store.events import EventHub
from roost.store.postgres import blobs, mailboxes
from roost.store.postgres.account import PostgresAccount
from roost.store.postgres.connections import NodeSlots
from roost.store.postgres.failures import PostgresSharedFailures
from roost.store.postgres.notify import Notifier
from roost.store.postgres.pool import Database
from roost.store.postgres.schema import check_version
from roost.store.values import DEFAULT_SPECIAL_FOLDERS, QuotaLimits, QuotaOverride

UNLIMITED = QuotaLimits()
MAX_KNOWN_ADDRESSES = 16  # kept per name tried, as the SQLite backend keeps
JUST_READ_SECONDS = 5.0  # a sign-in's account id serves the open_account after it
JUST_READ_MAX = 1024


def fold_name(name: str) -> str:
    """The key an account name (or app-password label) is stored and looked up by."""
    return name.casefold()


class PostgresStore:
    """Implements base.Store. Create with ``await PostgresStore.open(url)``."""

    def __init__(
        self,
        db: Database,
        hub: EventHub,
        quota: QuotaLimits,
        notifier: Notifier | None,
        mime_limits: MimeLimits = DEFAULT_MIME_LIMITS,
        special_folders: Sequence[tuple[str, str]] = DEFAULT_SPECIAL_FOLDERS,
    ) -> None:
        self._mime_limits = mime_limits
        self._special_folders = tuple(special_folders)
        self._db = db
        self._hub = hub
        self._quota = quota
        self._notifier = notifier
        # Accounts whose sign-in record was just read: the open_account that follows a
        # successful sign-in takes the id from here, a round trip fewer (``_just_read``).
        self._just_read: dict[str, tuple[int, str, float]] = {}

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        hub: EventHub | None = None,
        quota: QuotaLimits = UNLIMITED,
        listen: bool = True,
        pool_size: int = 10,
        mime_limits: MimeLimits | None = None,
        special_folders: Sequence[tuple[str, str]] = DEFAULT_SPECIAL_FOLDERS,
    ) -> PostgresStore:
        """Connect to ``url``, refuse a schema other than this Roost's, and (with
        ``listen``) hear other nodes' changes on ``hub``. ``special_folders``: (special
        use, name) of the folders a new account gets besides INBOX."""
        db = await Database.connect(url, max_size=pool_size)
        hub = hub or EventHub()
        notifier: Notifier | None = None
        try:
            async with db.pool.acquire() as conn:
                await check_version(conn)
            if listen:
                notifier = await Notifier.start(url, hub, db.node)
        except BaseException:
            await db.close()
            raise
        return cls(db, hub, quota, notifier, mime_limits or DEFAULT_MIME_LIMITS, special_folders)

    @property
    def hub(self) -> EventHub:
        return self._hub

    @property
    def database(self) -> Database:
        return self._db

    @property
    def shared_sign_in_failures(self) -> PostgresSharedFailures:
        """The throttle's failure counts, shared by every node (failures.py)."""
        return PostgresSharedFailures(self._db)

    async def node_slots(self, lease: float) -> NodeSlots:
        """This node's connection slots and maildrop locks, counted with every other
        node's (connections.py); ``lease``: seconds they outlive a dead node. The caller
        closes it."""
        return await NodeSlots.start(self._db, lease=lease)

    @property
    def default_quota(self) -> QuotaLimits:
        return self._quota

    async def close(self) -> None:
        if self._notifier is not None:
            await self._notifier.close()
        await self._db.close()

    # ---- accounts ------------------------------------------------------------------

    async def create_account(
        self, name: str, password_hash: str, *, uidvalidity_floor: int = 0
    ) -> None:
        """``uidvalidity_floor``: a floor kept elsewhere too (a sharded site's, which
        spans its shards; shards.py)."""
        key = fold_name(name)
        if not key:
            raise CannotDoThat("an account needs a name")

        async def create(conn: asyncpg.Connection) -> None:
            try:
                account_id = await conn.fetchval(
                    "INSERT INTO accounts (name_key, name, password_hash, created)"
                    " VALUES ($1, $2, $3, $4) RETURNING id",
                    key,
                    name,
                    password_hash,
                    int(time.time()),
                )
            except asyncpg.UniqueViolationError as exc:
                raise AccountExists(name) from exc
            await conn.execute(
                "INSERT INTO mail_counters (account_id, uidvalidity)"
                " SELECT $1, greatest(uidvalidity_floor, $2) FROM settings WHERE id = 0",
                account_id,
                uidvalidity_floor,
            )
            await mailboxes.initialize(conn, account_id, self._special_folders)

        await self._db.run(create)

    async def delete_account(self, name: str) -> None:
        key = fold_name(name)
        self._just_read.pop(key, None)

        async def delete(conn: asyncpg.Connection) -> None:
            row = await conn.fetchrow(
                "SELECT a.id, c.uidvalidity FROM accounts a"
                " JOIN mail_counters c ON c.account_id = a.id WHERE a.name_key = $1"
                " FOR UPDATE",
                key,
            )
            if row is None:
                raise NoSuchAccount(name)
            blob_ids = await conn.fetch(
                "SELECT DISTINCT blob_id FROM messages WHERE account_id = $1", row["id"]
            )
            await conn.execute("DELETE FROM accounts WHERE id = $1", row["id"])
            await conn.execute("DELETE FROM sharers WHERE grantee_key = $1", key)
            await blobs.release(conn, [r["blob_id"] for r in blob_ids])
            await conn.execute(
                "UPDATE settings SET uidvalidity_floor = greatest(uidvalidity_floor, $1)"
                " WHERE id = 0",
                row["uidvalidity"],
            )

        await self._db.run(delete)

    async def list_accounts(self) -> list[str]:
        rows = await self._db.fetch('SELECT name FROM accounts ORDER BY name COLLATE "C"')
        return [row["name"] for row in rows]

    async def get_password_hash(self, name: str) -> str | None:
        value = await self._db.fetchval(
            "SELECT password_hash FROM accounts WHERE name_key = $1", fold_name(name)
        )
        return None if value is None else str(value)

    async def set_password_hash(self, name: str, password_hash: str) -> None:
        await self._update_one(
            "UPDATE accounts SET password_hash = $2 WHERE name_key = $1", name, password_hash
        )

    async def open_account(self, name: str) -> PostgresAccount:
        key = fold_name(name)
        just_read = self._just_read.pop(key, None)
        if just_read is not None and time.monotonic() - just_read[2] < JUST_READ_SECONDS:
            account_id, stored_name = just_read[0], just_read[1]
        else:
            row = await self._db.fetchrow("SELECT id, name FROM accounts WHERE name_key = $1", key)
            if row is None:
                raise NoSuchAccount(name)
            account_id, stored_name = int(row["id"]), str(row["name"])
        return PostgresAccount(
            self._db,
            account_id,
            stored_name,
            key,
            self._hub,
            self._quota,
            self._mime_limits,
        )

    # ---- quota ---------------------------------------------------------------------

    async def quota_override(self, name: str) -> QuotaOverride:
        row = await self._db.fetchrow(
            "SELECT quota_storage, quota_messages FROM accounts WHERE name_key = $1",
            fold_name(name),
        )
        if row is None:
            raise NoSuchAccount(name)
        return QuotaOverride(row["quota_storage"], row["quota_messages"])

    async def set_quota_override(self, name: str, override: QuotaOverride) -> None:
        for value in (override.storage, override.messages):
            if value is not None and value < 0:
                raise CannotDoThat("a quota limit cannot be negative")
        await self._update_one(
            "UPDATE accounts SET quota_storage = $2, quota_messages = $3 WHERE name_key = $1",
            name,
            override.storage,
            override.messages,
        )

    # ---- credentials (store/credentials.py) ----------------------------------------

    async def get_sign_in_record(self, name: str) -> SignInRecord | None:
        # One statement (a sign-in is latency the user waits for): the app passwords
        # come along as arrays, in (created, label) order.
        row = await self._db.fetchrow(
            "SELECT a.name, a.password_hash, a.scram_keys, a.totp_secret, a.totp_last_step,"
            " p.labels, p.selectors, p.hashes, p.created, p.used, a.id"
            " FROM accounts a LEFT JOIN LATERAL (SELECT"
            '  array_agg(label ORDER BY created, label COLLATE "C") AS labels,'
            '  array_agg(selector ORDER BY created, label COLLATE "C") AS selectors,'
            '  array_agg(password_hash ORDER BY created, label COLLATE "C") AS hashes,'
            '  array_agg(created ORDER BY created, label COLLATE "C") AS created,'
            '  array_agg(last_used ORDER BY created, label COLLATE "C") AS used'
            "  FROM app_passwords WHERE account_id = a.id) p ON true"
            " WHERE a.name_key = $1",
            fold_name(name),
        )
        if row is None:
            return None
        self._remember_read(fold_name(name), int(row["id"]), row["name"])
        columns = ("labels", "selectors", "hashes", "created", "used")
        apps = zip(*(row[column] or () for column in columns), strict=True)
        return SignInRecord(
            name=row["name"],
            password_hash=row["password_hash"],
            scram_keys=row["scram_keys"],
            totp_secret=row["totp_secret"],
            totp_last_step=int(row["totp_last_step"]),
            app_passwords=tuple(AppPasswordRecord(*app) for app in apps),
        )

    async def set_password(self, name: str, password_hash: str, scram_keys: str | None) -> None:
        await self._update_one(
            "UPDATE accounts SET password_hash = $2, scram_keys = $3 WHERE name_key = $1",
            name,
            password_hash,
            scram_keys,
        )

    async def set_totp_secret(self, name: str, secret: str | None) -> None:
        await self._update_one(
            "UPDATE accounts SET totp_secret = $2, totp_last_step = 0 WHERE name_key = $1",
            name,
            secret,
        )

    async def accept_totp_step(self, name: str, step: int) -> bool:
        # One statement: of two sign-ins racing with the same code (on any nodes), one wins.
        result = await self._db.execute(
            "UPDATE accounts SET totp_last_step = $2"
            " WHERE name_key = $1 AND totp_secret IS NOT NULL AND totp_last_step < $2",
            fold_name(name),
            step,
        )
        return _count(result) == 1

    async def add_scram_keys(self, name: str, password_hash: str, scram_keys: str) -> bool:
        result = await self._db.execute(
            "UPDATE accounts SET scram_keys = $3"
            " WHERE name_key = $1 AND password_hash = $2 AND scram_keys IS NULL",
            fold_name(name),
            password_hash,
            scram_keys,
        )
        return _count(result) == 1

    async def add_app_password(self, name: str, app_password: AppPasswordRecord) -> None:
        account_id = await self._account_id(name)
        try:
            await self._db.execute(
                "INSERT INTO app_passwords (account_id, label_key, label, selector,"
                " password_hash, created, last_used) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                account_id,
                fold_name(app_password.label),
                app_password.label,
                app_password.selector,
                app_password.password_hash,
                app_password.created,
                app_password.last_used,
            )
        except asyncpg.UniqueViolationError as exc:
            raise CannotDoThat(
                f"an app password labelled {app_password.label!r} or with that selector exists"
            ) from exc

    async def delete_app_password(self, name: str, label: str) -> bool:
        account_id = await self._account_id(name)
        result = await self._db.execute(
            "DELETE FROM app_passwords WHERE account_id = $1 AND label_key = $2",
            account_id,
            fold_name(label),
        )
        return _count(result) > 0

    async def app_password_used(self, name: str, selector: str, when: int) -> None:
        await self._db.execute(
            "UPDATE app_passwords SET last_used = greatest(coalesce(last_used, 0), $3)"
            " WHERE account_id = (SELECT id FROM accounts WHERE name_key = $1)"
            " AND selector = $2",
            fold_name(name),
            selector,
            when,
        )

    async def replace_app_password_hash(
        self, name: str, selector: str, old_hash: str, new_hash: str
    ) -> None:
        await self._db.execute(
            "UPDATE app_passwords SET password_hash = $4"
            " WHERE account_id = (SELECT id FROM accounts WHERE name_key = $1)"
            " AND selector = $2 AND password_hash = $3",
            fold_name(name),
            selector,
            old_hash,
            new_hash,
        )

    async def remember_sign_in_address(self, name: str, address: str, when: int) -> None:
        # One statement: the upserted address and the most recent others up to
        # MAX_KNOWN_ADDRESSES in all stay (the trim sees the rows before the upsert).
        await self._db.execute(
            "WITH upsert AS (INSERT INTO known_addresses (name_key, address, last_success)"
            " VALUES ($1, $2, $3) ON CONFLICT (name_key, address) DO UPDATE"
            " SET last_success = greatest(known_addresses.last_success, $3))"
            " DELETE FROM known_addresses WHERE name_key = $1 AND address != $2"
            " AND address NOT IN (SELECT address FROM known_addresses WHERE name_key = $1"
            "  AND address != $2 ORDER BY last_success DESC LIMIT $4)",
            fold_name(name),
            address,
            when,
            MAX_KNOWN_ADDRESSES - 1,
        )

    async def last_sign_in_from(self, name: str, address: str) -> int | None:
        value = await self._db.fetchval(
            "SELECT last_success FROM known_addresses WHERE name_key = $1 AND address = $2",
            fold_name(name),
            address,
        )
        return None if value is None else int(value)

    async def instance_secret(self) -> bytes:
        secret: bytes = await self._db.fetchval("SELECT secret FROM settings WHERE id = 0")
        return secret

    # ---- submission: aliases, the hourly count, URLAUTH keys -----------------------

    async def add_alias(self, name: str, address: str) -> None:
        account_id = await self._account_id(name)
        try:
            await self._db.execute(
                "INSERT INTO aliases (address_key, address, account_id) VALUES ($1, $2, $3)",
                address.casefold(),
                address,
                account_id,
            )
        except asyncpg.UniqueViolationError:
            raise CannotDoThat(f"{address} is already an alias") from None

    async def delete_alias(self, name: str, address: str) -> bool:
        account_id = await self._account_id(name)
        status = await self._db.execute(
            "DELETE FROM aliases WHERE address_key = $1 AND account_id = $2",
            address.casefold(),
            account_id,
        )
        return _count(status) > 0

    async def list_aliases(self, name: str) -> list[str]:
        account_id = await self._account_id(name)
        rows = await self._db.fetch(
            "SELECT address FROM aliases WHERE account_id = $1 ORDER BY address_key",
            account_id,
        )
        return [str(row[0]) for row in rows]

    async def claim_submission(self, name: str, when: float, window: float, limit: int) -> bool:
        account_id = await self._account_id(name)

        async def claim(conn: asyncpg.Connection) -> bool:
            # The account row's lock orders the nodes' claims: check and count as one.
            await conn.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", account_id)
            await conn.execute(
                "DELETE FROM submissions WHERE account_id = $1 AND sent_at <= $2",
                account_id,
                when - window,
            )
            count = await conn.fetchval(
                "SELECT count(*) FROM submissions WHERE account_id = $1", account_id
            )
            if limit > 0 and int(count) >= limit:
                return False
            await conn.execute(
                "INSERT INTO submissions (account_id, sent_at) VALUES ($1, $2)", account_id, when
            )
            return True

        return await self._db.run(claim)

    async def release_submission(self, name: str, when: float) -> None:
        await self._db.execute(
            "DELETE FROM submissions WHERE ctid IN (SELECT ctid FROM submissions"
            " WHERE account_id = (SELECT id FROM accounts WHERE name_key = $1)"
            " AND sent_at = $2 LIMIT 1)",
            fold_name(name),
            when,
        )

    async def urlauth_key(self, name: str, mailbox: str, *, create: bool) -> bytes | None:
        secret = await self._db.fetchval(
            "SELECT k.secret FROM urlauth_keys k JOIN accounts a ON a.id = k.account_id"
            " WHERE a.name_key = $1 AND k.mailbox = $2",
            fold_name(name),
            mailbox,
        )
        if secret is not None or not create:
            return None if secret is None else bytes(secret)
        account_id = await self._account_id(name)
        await self._db.execute(
            "INSERT INTO urlauth_keys (account_id, mailbox, secret) VALUES ($1, $2, $3)"
            " ON CONFLICT (account_id, mailbox) DO NOTHING",
            account_id,
            mailbox,
            secrets.token_bytes(32),
        )
        return await self.urlauth_key(name, mailbox, create=False)

    async def reset_urlauth_keys(self, name: str, mailbox: str | None) -> None:
        if mailbox is None:
            await self._db.execute(
                "DELETE FROM urlauth_keys WHERE account_id ="
                " (SELECT id FROM accounts WHERE name_key = $1)",
                fold_name(name),
            )
        else:
            await self._db.execute(
                "DELETE FROM urlauth_keys WHERE mailbox = $2 AND account_id ="
                " (SELECT id FROM accounts WHERE name_key = $1)",
                fold_name(name),
                mailbox,
            )

    # ---- shared folders (ACL, RFC 4314) --------------------------------------------

    async def add_sharer(self, owner: str, grantee: str) -> None:
        await self._db.execute(
            "INSERT INTO sharers (grantee_key, owner) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            fold_name(grantee),
            owner,
        )

    async def sharers_of(self, grantee: str) -> list[str]:
        rows = await self._db.fetch(
            "SELECT owner FROM sharers WHERE grantee_key = $1 ORDER BY owner",
            fold_name(grantee),
        )
        return [str(row["owner"]) for row in rows]

    # ---- helpers -------------------------------------------------------------------

    def _remember_read(self, key: str, account_id: int, name: str) -> None:
        """Keep an account's id for the open_account of the sign-in under way. An id
        taken from here is as good as one read then: a handle keeps its id for as long
        as it lives anyway. Bounded, and short-lived (``JUST_READ_SECONDS``)."""
        if len(self._just_read) >= JUST_READ_MAX:
            self._just_read.pop(next(iter(self._just_read)))
        self._just_read[key] = (account_id, name, time.monotonic())

    async def _account_id(self, name: str) -> int:
        value = await self._db.fetchval(
            "SELECT id FROM accounts WHERE name_key = $1", fold_name(name)
        )
        if value is None:
            raise NoSuchAccount(name)
        return int(value)

    async def _update_one(self, sql: str, name: str, *args: object) -> None:
        """Run an UPDATE keyed by ``$1`` = the folded name; NoSuchAccount if none."""
        if _count(await self._db.execute(sql, fold_name(name), *args)) == 0:
            raise NoSuchAccount(name)


def _count(status: str) -> int:
    """The row count of a command status such as ``UPDATE 1``."""
    return int(status.rsplit(" ", 1)[-1])
