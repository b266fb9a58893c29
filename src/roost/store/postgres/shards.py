"""Accounts spread over several PostgreSQL databases (``[store] shards``): the routing.

Each shard is a whole PostgresStore (store.py) of its own; ``ShardedStore`` opens one
per database, all feeding one EventHub (so a node LISTENs on every shard), and sends
each account's work to the shard that holds it. An account lives whole on one shard:
its mail, credentials, aliases and Sieve scripts; a session's Account handle talks to
that shard alone.

Invariants:

* The first shard is the directory: its ``account_shards`` maps every account
  (case-folded name) to the index of its shard in the ``[store] shards`` list, and
  ``settings.shard`` of each database records that index (schema.py ``claim_shard``):
  a node refuses to start when the list was reordered or a shard was not set up.
* A name with no map row routes to the first shard, where it does not exist either:
  lookups of unknown names answer as the first shard does (None, NoSuchAccount). (An
  account put there without the map — ``roost store copy`` into the first shard — is
  served from it, and ``roost db migrate`` maps it.)
* Creating writes the map row first (its primary key is the site-wide lock on the
  name), then the account on its shard; deleting removes the account, then the row.
  A crash between leaves a row without an account, which ``list_accounts`` ignores
  and the next creation of that name reuses.
* Site-wide state lives in the directory: the sign-in throttle's failures, the
  instance secret, the UIDVALIDITY floor (so a name re-created on another shard never
  repeats a UIDVALIDITY) and the alias claims (an address belongs to one account).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from roost.mime.parse import MimeLimits
from roost.store.credentials import AppPasswordRecord, SignInRecord
from roost.store.errors import AccountExists, CannotDoThat, NoSuchAccount
from roost.store.events import EventHub
from roost.store.postgres.account import PostgresAccount
from roost.store.postgres.connections import NodeSlots
from roost.store.postgres.failures import PostgresSharedFailures
from roost.store.postgres.pool import Database, redact
from roost.store.postgres.schema import SchemaMismatch, check_shard
from roost.store.postgres.store import UNLIMITED, PostgresStore, fold_name
from roost.store.values import DEFAULT_SPECIAL_FOLDERS, QuotaLimits, QuotaOverride


def shard_urls(locator: str) -> list[str]:
    """The databases a store locator names: one URL, or the shards' URLs separated by
    white space (config/sections.py ``StoreSettings``)."""
    return locator.split()


@dataclass(frozen=True, slots=True)
class ShardLoad:
    """One shard as ``roost store shards`` shows it."""

    index: int
    url: str
    accounts: int


class ShardedStore:
    """Implements base.Store over several PostgresStores. Create with ``open``."""

    def __init__(self, shards: Sequence[PostgresStore], hub: EventHub) -> None:
        self._shards = tuple(shards)
        self._hub = hub

    @classmethod
    async def open(
        cls,
        urls: Sequence[str],
        *,
        hub: EventHub | None = None,
        quota: QuotaLimits = UNLIMITED,
        listen: bool = True,
        pool_size: int = 10,
        mime_limits: MimeLimits | None = None,
        special_folders: Sequence[tuple[str, str]] = DEFAULT_SPECIAL_FOLDERS,
    ) -> ShardedStore:
        """Open every shard (each checked as PostgresStore.open checks, and checked to
        be the shard its place in ``urls`` says), LISTENing on each with ``listen``."""
        hub = hub or EventHub()
        opened: list[PostgresStore] = []
        try:
            for index, url in enumerate(urls):
                try:
                    shard = await PostgresStore.open(
                        url,
                        hub=hub,
                        quota=quota,
                        listen=listen,
                        pool_size=pool_size,
                        mime_limits=mime_limits,
                        special_folders=special_folders,
                    )
                except SchemaMismatch as error:
                    raise SchemaMismatch(f"shard {index + 1} ({redact(url)}): {error}") from None
                opened.append(shard)
                async with shard.database.pool.acquire() as conn:
                    await check_shard(conn, index, len(urls))
        except BaseException:
            for shard in opened:
                await shard.close()
            raise
        return cls(opened, hub)

    @property
    def hub(self) -> EventHub:
        return self._hub

    @property
    def shards(self) -> tuple[PostgresStore, ...]:
        return self._shards

    @property
    def directory(self) -> Database:
        """The first shard's database, which keeps the map."""
        return self._shards[0].database

    @property
    def shared_sign_in_failures(self) -> PostgresSharedFailures:
        return self._shards[0].shared_sign_in_failures

    @property
    def default_quota(self) -> QuotaLimits:
        return self._shards[0].default_quota

    async def node_slots(self, lease: float) -> NodeSlots:
        """Connection slots and maildrop locks, counted site-wide like the throttle: in
        the first shard, whichever shard an account lives on."""
        return await self._shards[0].node_slots(lease)

    async def close(self) -> None:
        await asyncio.gather(*(shard.close() for shard in self._shards))

    # ---- the map -------------------------------------------------------------------

    async def shard_of(self, name: str) -> int | None:
        """The index of the shard the map places ``name`` on; None if unmapped."""
        value = await self.directory.fetchval(
            "SELECT shard FROM account_shards WHERE name_key = $1", fold_name(name)
        )
        return None if value is None else int(value)

    async def _route(self, name: str) -> PostgresStore:
        index = await self.shard_of(name)
        return self._shards[0 if index is None else index]

    async def loads(self) -> list[ShardLoad]:
        """Every shard with the number of accounts the map places on it."""
        rows = await self.directory.fetch(
            "SELECT shard, count(*) AS n FROM account_shards GROUP BY shard"
        )
        counts = {int(row["shard"]): int(row["n"]) for row in rows}
        return [
            ShardLoad(index, shard.database.url, counts.get(index, 0))
            for index, shard in enumerate(self._shards)
        ]

    async def _least_loaded(self) -> int:
        loads = await self.loads()
        return min(loads, key=lambda load: (load.accounts, load.index)).index

    # ---- accounts ------------------------------------------------------------------

    async def create_account(
        self, name: str, password_hash: str, *, shard: int | None = None
    ) -> None:
        """Create ``name`` on shard ``shard`` (an index), or on the one with the fewest
        accounts."""
        key = fold_name(name)
        if not key:
            raise CannotDoThat("an account needs a name")
        if shard is not None and not 0 <= shard < len(self._shards):
            raise CannotDoThat(f"there is no shard {shard + 1} (shards: 1-{len(self._shards)})")
        target = await self._least_loaded() if shard is None else shard
        placed = await self.directory.fetchval(
            "INSERT INTO account_shards (name_key, shard) VALUES ($1, $2)"
            " ON CONFLICT (name_key) DO NOTHING RETURNING shard",
            key,
            target,
        )
        if placed is not None and target != 0 and await self._unmapped_on_first(name):
            # Put in the first database without the map (``roost store copy``
            # before ``roost db migrate`` mapped it): it is there, as reads see it.
            await self.directory.execute(
                "UPDATE account_shards SET shard = 0 WHERE name_key = $1", key
            )
            raise AccountExists(name)
        if placed is None:
            # Mapped already: a live account, a creation under way, or a creation or
            # deletion cut short. Make it where the map says: of two creations racing
            # there, the shard's unique name lets one win.
            mapped = await self.shard_of(name)
            if mapped is None:  # deleted meanwhile
                return await self.create_account(name, password_hash, shard=shard)
            if await self._shards[mapped].get_password_hash(name) is not None:
                raise AccountExists(name)
            target = mapped
        floor = await self.directory.fetchval("SELECT uidvalidity_floor FROM settings WHERE id = 0")
        await self._shards[target].create_account(name, password_hash, uidvalidity_floor=int(floor))

    async def _unmapped_on_first(self, name: str) -> bool:
        return await self._shards[0].get_password_hash(name) is not None

    async def delete_account(self, name: str) -> None:
        shard = await self._route(name)
        await shard.delete_account(name)
        floor = await shard.database.fetchval("SELECT uidvalidity_floor FROM settings WHERE id = 0")
        key = fold_name(name)
        await self.directory.execute(
            "UPDATE settings SET uidvalidity_floor = greatest(uidvalidity_floor, $1) WHERE id = 0",
            int(floor),
        )
        await self.directory.execute("DELETE FROM alias_claims WHERE name_key = $1", key)
        await self.directory.execute("DELETE FROM account_shards WHERE name_key = $1", key)

    async def list_accounts(self) -> list[str]:
        """Every account, each from the shard the map places it on (a copy elsewhere,
        left by a move cut short, is not listed)."""
        rows = await self.directory.fetch("SELECT name_key, shard FROM account_shards")
        placed = {str(row["name_key"]): int(row["shard"]) for row in rows}
        listed = await asyncio.gather(*(shard.list_accounts() for shard in self._shards))
        names = [
            name
            for index, names in enumerate(listed)
            for name in names
            if placed.get(fold_name(name), 0) == index
        ]
        return sorted(names, key=lambda name: name.encode())

    async def get_password_hash(self, name: str) -> str | None:
        return await (await self._route(name)).get_password_hash(name)

    async def set_password_hash(self, name: str, password_hash: str) -> None:
        await (await self._route(name)).set_password_hash(name, password_hash)

    async def open_account(self, name: str) -> PostgresAccount:
        return await (await self._route(name)).open_account(name)

    async def quota_override(self, name: str) -> QuotaOverride:
        return await (await self._route(name)).quota_override(name)

    async def set_quota_override(self, name: str, override: QuotaOverride) -> None:
        await (await self._route(name)).set_quota_override(name, override)

    # ---- credentials ---------------------------------------------------------------

    async def get_sign_in_record(self, name: str) -> SignInRecord | None:
        return await (await self._route(name)).get_sign_in_record(name)

    async def set_password(self, name: str, password_hash: str, scram_keys: str | None) -> None:
        await (await self._route(name)).set_password(name, password_hash, scram_keys)

    async def set_totp_secret(self, name: str, secret: str | None) -> None:
        await (await self._route(name)).set_totp_secret(name, secret)

    async def accept_totp_step(self, name: str, step: int) -> bool:
        return await (await self._route(name)).accept_totp_step(name, step)

    async def add_scram_keys(self, name: str, password_hash: str, scram_keys: str) -> bool:
        return await (await self._route(name)).add_scram_keys(name, password_hash, scram_keys)

    async def add_app_password(self, name: str, app_password: AppPasswordRecord) -> None:
        await (await self._route(name)).add_app_password(name, app_password)

    async def delete_app_password(self, name: str, label: str) -> bool:
        return await (await self._route(name)).delete_app_password(name, label)

    async def app_password_used(self, name: str, selector: str, when: int) -> None:
        await (await self._route(name)).app_password_used(name, selector, when)

    async def replace_app_password_hash(
        self, name: str, selector: str, old_hash: str, new_hash: str
    ) -> None:
        shard = await self._route(name)
        await shard.replace_app_password_hash(name, selector, old_hash, new_hash)

    async def remember_sign_in_address(self, name: str, address: str, when: int) -> None:
        await (await self._route(name)).remember_sign_in_address(name, address, when)

    async def last_sign_in_from(self, name: str, address: str) -> int | None:
        return await (await self._route(name)).last_sign_in_from(name, address)

    async def instance_secret(self) -> bytes:
        return await self._shards[0].instance_secret()

    # ---- submission ----------------------------------------------------------------

    async def add_alias(self, name: str, address: str) -> None:
        shard = await self._route(name)
        owner, key = fold_name(name), address.casefold()
        claimant = await self.directory.fetchval(
            "INSERT INTO alias_claims (address_key, name_key) VALUES ($1, $2)"
            " ON CONFLICT (address_key) DO UPDATE SET name_key = alias_claims.name_key"
            " RETURNING name_key",
            key,
            owner,
        )
        if claimant != owner:
            if await self._holds_alias(str(claimant), key):
                raise CannotDoThat(f"{address} is already an alias")
            # A claim whose account never got the alias (a crash): take it over.
            await self.directory.execute(
                "UPDATE alias_claims SET name_key = $2 WHERE address_key = $1", key, owner
            )
        try:
            await shard.add_alias(name, address)
        except NoSuchAccount:
            await self.directory.execute(
                "DELETE FROM alias_claims WHERE address_key = $1 AND name_key = $2", key, owner
            )
            raise

    async def _holds_alias(self, name_key: str, address_key: str) -> bool:
        try:
            aliases = await (await self._route(name_key)).list_aliases(name_key)
        except NoSuchAccount:
            return False
        return address_key in {alias.casefold() for alias in aliases}

    async def delete_alias(self, name: str, address: str) -> bool:
        deleted = await (await self._route(name)).delete_alias(name, address)
        await self.directory.execute(
            "DELETE FROM alias_claims WHERE address_key = $1 AND name_key = $2",
            address.casefold(),
            fold_name(name),
        )
        return deleted

    async def list_aliases(self, name: str) -> list[str]:
        return await (await self._route(name)).list_aliases(name)

    async def claim_submission(self, name: str, when: float, window: float, limit: int) -> bool:
        return await (await self._route(name)).claim_submission(name, when, window, limit)

    async def release_submission(self, name: str, when: float) -> None:
        await (await self._route(name)).release_submission(name, when)

    async def urlauth_key(self, name: str, mailbox: str, *, create: bool) -> bytes | None:
        return await (await self._route(name)).urlauth_key(name, mailbox, create=create)

    async def reset_urlauth_keys(self, name: str, mailbox: str | None) -> None:
        await (await self._route(name)).reset_urlauth_keys(name, mailbox)

    # ---- shared folders: kept with the grantee -------------------------------------

    async def add_sharer(self, owner: str, grantee: str) -> None:
        await (await self._route(grantee)).add_sharer(owner, grantee)

    async def sharers_of(self, grantee: str) -> list[str]:
        return await (await self._route(grantee)).sharers_of(grantee)
