"""One account's handle on the PostgreSQL store (implements base.Account).

Invariants:

* Every method sees one instant: a read is one statement where it can be (one
  snapshot, one round trip: on a busy machine each round trip is a wait for two
  processes to be scheduled) or a REPEATABLE READ transaction; a write is one
  transaction that first takes the account's write turn (pool.py).
* A write's answer to the session's next ``changes_since`` is kept by the handle
  (messages.py ``Answer``) and given once, in place of a round trip.
* Change events are published on this node's hub after commit, and sent to the other
  nodes by a NOTIFY in the same transaction (notify.py): PostgreSQL delivers it only
  if the transaction commits, and only then.
* A handle holds no connection: a session idling for an hour costs the database
  nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import asyncpg

from roost.mime.parse import MimeLimits
from roost.store import line_endings
from roost.store.errors import StoreError
from roost.store.events import ChangeEvent, EventHub, Listener
from roost.store.postgres import (
    blobs,
    mailboxes,
    metadata,
    reading,
    reindex,
    search,
    sieve_scripts,
)
from roost.store.postgres import messages as ops
from roost.store.postgres.notify import payload
from roost.store.postgres.pool import Database
from roost.store.query import SearchQuery, SearchResult, ThreadFields
from roost.store.values import (
    AppendResult,
    CopyResult,
    DeliveryState,
    FlagOp,
    FlagRows,
    MailboxChanges,
    MailboxInfo,
    MailboxSnapshot,
    MailboxStatus,
    MessageMeta,
    NewMessage,
    QuotaLimits,
    QuotaUsage,
    SieveScript,
    StoreFlagsResult,
)

T = TypeVar("T")


class PostgresAccount:
    def __init__(
        self,
        db: Database,
        account_id: int,
        name: str,
        key: str,
        hub: EventHub,
        default_quota: QuotaLimits,
        mime_limits: MimeLimits,
    ) -> None:
        self.name = name
        self._mime_limits = mime_limits
        self._db = db
        self._id = account_id
        self._key = key
        self._hub = hub
        self._default_quota = default_quota
        self._listeners: list[Listener] = []
        self._closed = False
        # The answer to changes_since right after this handle's last write (ops.Answer).
        self._answer: ops.Answer | None = None

    async def close(self) -> None:
        self._closed = True
        for listener in self._listeners:
            listener.close()

    def listen(self) -> Listener:
        listener = self._hub.subscribe(self._key)
        self._listeners = [old for old in self._listeners if not old.closed]
        self._listeners.append(listener)
        return listener

    # ---- mailboxes -----------------------------------------------------------------

    async def list_mailboxes(self) -> list[MailboxInfo]:
        return await self._plain(lambda c: mailboxes.list_mailboxes(c, self._id))

    async def get_mailbox(self, name: str) -> MailboxInfo:
        return await self._plain(lambda c: mailboxes.get_mailbox(c, self._id, name))

    async def create_mailbox(self, name: str, special_use: str | None = None) -> MailboxInfo:
        return await self._write(lambda c: mailboxes.create_mailbox(c, self._id, name, special_use))

    async def delete_mailbox(self, name: str) -> None:
        async def delete(conn: asyncpg.Connection) -> tuple[None, list[ChangeEvent]]:
            blob_ids, events = await mailboxes.delete_mailbox(conn, self._id, name)
            await ops.forget(conn, self._id, blob_ids)
            return None, events

        await self._write(delete)

    async def rename_mailbox(self, old: str, new: str) -> None:
        async def rename(conn: asyncpg.Connection) -> tuple[None, list[ChangeEvent]]:
            return None, await mailboxes.rename_mailbox(conn, self._id, old, new)

        await self._write(rename)

    async def list_subscriptions(self) -> list[str]:
        return await self._plain(lambda c: mailboxes.list_subscriptions(c, self._id))

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        async def subscribe(conn: asyncpg.Connection) -> tuple[None, list[ChangeEvent]]:
            return None, await mailboxes.set_subscribed(conn, self._id, name, subscribed)

        await self._write(subscribe)

    async def status(self, mailbox_id: int) -> MailboxStatus:
        return await self._read(lambda c: reading.status(c, self._id, mailbox_id))

    # ---- messages ------------------------------------------------------------------

    async def snapshot(
        self, mailbox_id: int, *, claim_recent: bool = False, peek_recent: bool = False
    ) -> MailboxSnapshot:
        # One statement (reading.py): not in the account's write turn, as the mailbox
        # row lock is the claim's only need.
        return await self._plain(
            lambda c: reading.snapshot(c, self._id, mailbox_id, claim_recent, peek_recent)
        )

    async def recent_floor(self, mailbox_id: int) -> int:
        async def floor(conn: asyncpg.Connection) -> int:
            return (await mailboxes.mailbox(conn, self._id, mailbox_id)).recent_floor

        return await self._plain(floor)

    async def claim_recent(self, mailbox_id: int) -> int:
        self._usable()
        return await self._plain(lambda c: reading.claim_recent(c, self._id, mailbox_id))

    async def append(self, mailbox: int | str, messages: Sequence[NewMessage]) -> AppendResult:
        self._usable()
        spooled = next((m.source.path for m in messages if m.source.path is not None), None)
        spool_dir = Path(tempfile.gettempdir()) if spooled is None else spooled.parent
        # CRLF on the way in, as every backend stores (store/line_endings.py).
        with line_endings.normalized_batch([(mailbox, messages)], spool_dir) as normalized:
            prepared = await ops.prepare(normalized[0][1], self._mime_limits)
            turn = ops.Turn()
            return await self._write(
                lambda c: ops.append(c, self._id, mailbox, prepared, self._default_quota, turn),
                turn,
            )

    async def fetch_meta(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        *,
        with_model: bool = True,
        with_content: bool = False,
    ) -> list[MessageMeta]:
        return await self._plain(
            lambda c: reading.fetch_meta(c, self._id, mailbox_id, uids, with_model, with_content)
        )

    async def fetch_flags(
        self, mailbox_id: int, uids: Sequence[int], *, with_modseq: bool = True
    ) -> FlagRows:
        return await self._plain(
            lambda c: reading.fetch_flags(c, self._id, mailbox_id, uids, with_modseq)
        )

    async def read_message(self, meta: MessageMeta) -> AsyncIterator[bytes]:
        self._usable()
        async for chunk in blobs.read_chunks(self._db, meta.blob_id):
            yield chunk

    async def read_range(self, meta: MessageMeta, start: int, length: int) -> bytes:
        self._usable()
        return await blobs.read_range(self._db, meta.blob_id, start, length)

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: frozenset[str],
        unchangedsince: int | None = None,
    ) -> StoreFlagsResult:
        turn = ops.Turn()
        return await self._write(
            lambda c: ops.store_flags(
                c, self._id, mailbox_id, uids, op, flags, unchangedsince, turn
            ),
            turn,
            optimistic=True,
        )

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        turn = ops.Turn()
        return await self._write(
            lambda c: ops.expunge(c, self._id, mailbox_id, uids, turn), turn, optimistic=True
        )

    async def copy(self, source_id: int, uids: Sequence[int], dest_id: int) -> CopyResult:
        return await self._write(
            lambda c: ops.transfer(
                c, self._id, source_id, uids, dest_id, move=False, default_quota=self._default_quota
            )
        )

    async def move(self, source_id: int, uids: Sequence[int], dest_id: int) -> CopyResult:
        return await self._write(
            lambda c: ops.transfer(
                c, self._id, source_id, uids, dest_id, move=True, default_quota=self._default_quota
            )
        )

    async def changes_since(self, mailbox_id: int, modseq: int) -> MailboxChanges:
        answer, self._answer = self._answer, None
        if answer is not None and (answer.mailbox_id, answer.since) == (mailbox_id, modseq):
            self._usable()
            return answer.changes  # the write just made by this handle (ops.Answer)
        return await self._plain(lambda c: reading.changes_since(c, self._id, mailbox_id, modseq))

    async def previews(
        self, mailbox_id: int, uids: Sequence[int], *, compute: bool = True
    ) -> dict[int, str | None]:
        return await self._plain(lambda c: reading.previews(c, self._id, mailbox_id, uids, compute))

    async def replace(
        self, mailbox_id: int, uid: int, target: int | str, message: NewMessage
    ) -> AppendResult:
        self._usable()
        spool_dir = (
            Path(tempfile.gettempdir())
            if message.source.path is None
            else message.source.path.parent
        )
        with line_endings.normalized_batch([(target, [message])], spool_dir) as normalized:
            [prepared] = await ops.prepare(normalized[0][1], self._mime_limits)
            turn = ops.Turn()
            return await self._write(
                lambda c: ops.replace(
                    c, self._id, mailbox_id, uid, target, prepared, self._default_quota, turn
                ),
                turn,
            )

    # ---- Sieve scripts and tracking ------------------------------------------------

    async def list_scripts(self) -> list[SieveScript]:
        return await self._plain(lambda c: sieve_scripts.list_scripts(c, self._id))

    async def get_script(self, name: str) -> SieveScript:
        return await self._plain(lambda c: sieve_scripts.get_script(c, self._id, name))

    async def active_script(self) -> SieveScript | None:
        return await self._plain(lambda c: sieve_scripts.active_script(c, self._id))

    async def put_script(self, name: str, source: str, compiled: str, version: int) -> None:
        await self._script_write(
            lambda c: sieve_scripts.put_script(c, self._id, name, source, compiled, version)
        )

    async def update_compiled(self, name: str, source: str, compiled: str, version: int) -> None:
        await self._script_write(
            lambda c: sieve_scripts.update_compiled(c, self._id, name, source, compiled, version)
        )

    async def delete_script(self, name: str) -> None:
        await self._script_write(lambda c: sieve_scripts.delete_script(c, self._id, name))

    async def rename_script(self, old: str, new: str) -> None:
        await self._script_write(lambda c: sieve_scripts.rename_script(c, self._id, old, new))

    async def set_active_script(self, name: str | None) -> None:
        await self._script_write(lambda c: sieve_scripts.set_active_script(c, self._id, name))

    async def sieve_tracked(self, kind: str, key: str, now: float) -> bool:
        return await self._plain(lambda c: sieve_scripts.tracked(c, self._id, kind, key, now))

    async def sieve_track(self, kind: str, key: str, expires: float, now: float) -> None:
        await self._script_write(
            lambda c: sieve_scripts.track(c, self._id, kind, key, expires, now)
        )

    async def _script_write(self, fn: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
        """A change of scripts or tracking: in the account's write turn (so two
        SETACTIVEs never both win), no mail event."""
        self._usable()
        await self._db.run(fn, account_id=self._id)

    # ---- metadata (RFC 5464) and access control lists (RFC 4314) ------------------

    async def get_metadata(self, mailbox_id: int | None, names: Sequence[str]) -> dict[str, bytes]:
        return await self._read(lambda c: metadata.get_metadata(c, self._id, mailbox_id, names))

    async def set_metadata(
        self, mailbox_id: int | None, changes: Mapping[str, bytes | None], max_entries: int
    ) -> None:
        async def change(conn: asyncpg.Connection) -> None:
            await metadata.set_metadata(conn, self._id, mailbox_id, changes, max_entries)

        await self._quiet_write(change)

    async def get_acl(self, mailbox_id: int) -> dict[str, str]:
        return await self._read(lambda c: metadata.get_acl(c, self._id, mailbox_id))

    async def acl_entries_for(self, identifiers: Sequence[str]) -> dict[str, dict[str, str]]:
        return await self._plain(lambda c: metadata.acl_entries_for(c, self._id, identifiers))

    async def set_acl(self, mailbox_id: int, identifier: str, rights: str | None) -> None:
        async def change(conn: asyncpg.Connection) -> None:
            await metadata.set_acl(conn, self._id, mailbox_id, identifier, rights)

        await self._quiet_write(change)

    async def _quiet_write(self, fn: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
        """A change in the account's write turn that no session is told of, as the
        SQLite backend's metadata and ACL writes publish nothing."""
        self._usable()
        await self._db.run(fn, account_id=self._id)

    # ---- search and quota ----------------------------------------------------------

    async def search(self, mailbox_id: int, query: SearchQuery) -> SearchResult:
        return await self._plain(lambda c: search.search(c, self._id, mailbox_id, query))

    async def thread_fields(self, mailbox_id: int, query: SearchQuery) -> list[ThreadFields]:
        return await self._plain(lambda c: search.thread_fields(c, self._id, mailbox_id, query))

    async def rebuild_index(self) -> int:
        """Analyse every message again and store the analyses afresh, search text
        included (``roost index rebuild``); the number of analyses stored."""
        self._usable()
        return await reindex.rebuild(self._db, self._id, self._mime_limits)

    async def quota(self) -> QuotaUsage:
        return await self._read(lambda c: ops.usage(c, self._id, self._default_quota))

    async def delivery_state(self) -> DeliveryState:
        return await self._plain(lambda c: ops.delivery_state(c, self._id, self._default_quota))

    async def recalculate_quota(self) -> tuple[QuotaUsage, QuotaUsage]:
        async def recalculate(conn: asyncpg.Connection) -> tuple[QuotaUsage, QuotaUsage]:
            return await ops.recalculate(conn, self._id, self._default_quota)

        self._usable()
        return await self._db.run(recalculate, account_id=self._id)

    # ---- running -------------------------------------------------------------------

    def _usable(self) -> None:
        if self._closed:
            raise StoreError(f"account {self.name} is closed")

    async def _read(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """``fn``'s statements in one snapshot."""
        self._usable()
        return await self._db.read(fn)

    async def _plain(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """``fn``'s statements each on their own: where one instant is not needed (a
        lookup and one query whose answer stands alone), two round trips fewer."""
        self._usable()
        return await self._db.plain(fn)

    async def _write(
        self,
        fn: Callable[[asyncpg.Connection], Awaitable[tuple[T, list[ChangeEvent]]]],
        turn: ops.Turn | None = None,
        *,
        optimistic: bool = False,
    ) -> T:
        """``fn`` in the account's write turn; its events NOTIFYed in the transaction
        and published here after the commit. ``turn``: where ``fn`` leaves statements
        to run with the COMMIT (pool.py ``Database.run``) and the answer to the next
        ``changes_since``, kept once committed (any other write forgets it).
        ``optimistic``: ``fn`` may read before taking the turn, checked under it by
        ``turn.expect`` (``Database.run_optimistic``)."""
        self._usable()
        changed: list[ChangeEvent] = []

        async def job(conn: asyncpg.Connection) -> T:
            if turn is not None:
                turn.answer = None  # a retried attempt makes its own
                turn.expect = None
            result, events = await fn(conn)
            changed[:] = events
            return result

        def notice() -> str | None:
            return payload(self._db.node, self._key, changed) if changed else None

        self._answer = None
        if optimistic and turn is not None:
            result = await self._db.run_optimistic(
                job,
                account_id=self._id,
                expect=lambda: turn.expect,
                notify=notice,
                deferred=turn.deferred,
            )
        else:
            result = await self._db.run(
                job,
                account_id=self._id,
                notify=notice,
                deferred=None if turn is None else turn.deferred,
            )
        self._answer = None if turn is None else turn.answer
        events = changed
        if events:
            self._hub.publish(self._key, events)
        return result
