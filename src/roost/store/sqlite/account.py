"""The async handle of one SQLite account (implements base.Account).

Invariants:

* Every handle of an account in this process shares one ``OpenAccount``: one
  connection, one worker thread; every public method is one job on that thread, so the
  event loop never touches SQLite or a message file.
* Events are handed to the loop from the worker right after commit
  (``call_soon_threadsafe``), so listeners have them before the changing call returns —
  and even if its caller was cancelled meanwhile.
* Group commit: APPENDs that queue up while the worker is busy (other sessions of the
  account) are stored by one job in one transaction (``AppendQueue``); each caller is
  answered only after that commit.
* Quota limits: the default is the store's; the account's own (``OpenAccount.quota``)
  is read from the users directory when the account is opened, by ``quota()``, and
  before an APPEND or COPY once the last read is ``quota_refresh`` seconds old
  (store.py): a change by ``roost user quota set`` in another process applies within
  that time, without a round trip to users.db per APPEND (which would also keep
  concurrent APPENDs from queueing together). Usage is checked inside the write
  (sqlite/quota.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Concatenate, ParamSpec, TypeVar

from roost.store.errors import MessageGone, StoreError
from roost.store.events import ChangeEvent, EventHub, Listener
from roost.store.query import SearchQuery, SearchResult, ThreadFields
from roost.store.sqlite import (
    analyses,
    mailbox_status,
    mailboxes,
    metadata,
    previews,
    quota,
    replace,
    sieve_scripts,
)
from roost.store.sqlite import messages as message_ops
from roost.store.sqlite import search as search_ops
from roost.store.sqlite.db import storage_errors
from roost.store.sqlite.mail_db import MailDB
from roost.store.sqlite.worker import Worker
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
    QuotaOverride,
    QuotaUsage,
    SieveScript,
    StoreFlagsResult,
)

P = ParamSpec("P")
T = TypeVar("T")

READ_CHUNK = 256 * 1024


@dataclass(eq=False)
class QueuedAppend:
    mailbox: int | str  # id or name
    messages: Sequence[NewMessage]
    limits: QuotaLimits
    future: asyncio.Future[AppendResult]


class AppendQueue:
    """APPENDs of one account waiting for its worker.

    The APPEND that finds the queue empty queues a job on the worker; every APPEND
    queued by the time that job starts is stored with it (``messages.append_batch``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the loop adds, the worker takes
        self._waiting: list[QueuedAppend] = []

    def add(self, queued: QueuedAppend) -> bool:
        """Queue ``queued``; True when the queue was empty: the caller queues a job."""
        with self._lock:
            self._waiting.append(queued)
            return len(self._waiting) == 1

    def take(self) -> list[QueuedAppend]:
        with self._lock:
            taken, self._waiting = self._waiting, []
        return taken


@dataclass(eq=False)
class OpenAccount:
    """What every handle of one account in this process shares."""

    key: str  # the case-folded account name: the event hub's key
    dirname: str  # which directory: a re-created account has another
    worker: Worker
    db: MailDB
    handles: int = 0
    closed: bool = False
    expiry: asyncio.TimerHandle | None = None  # set while kept open with no handle
    quota: QuotaOverride = field(default_factory=QuotaOverride)  # its own limits, last read
    quota_fresh_until: float = 0.0  # loop time after which ``quota`` is read again
    appends: AppendQueue = field(default_factory=AppendQueue)


class SqliteAccount:
    def __init__(
        self,
        name: str,
        shared: OpenAccount,
        hub: EventHub,
        release: Callable[[OpenAccount], Awaitable[None]],
        default_quota: QuotaLimits,
        refresh_quota: Callable[[OpenAccount], Awaitable[QuotaOverride]],
    ) -> None:
        self.name = name
        self._shared = shared
        self._hub = hub
        self._release = release
        self._default_quota = default_quota
        self._refresh_quota = refresh_quota
        self._listeners: list[Listener] = []
        self._closed = False

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for listener in self._listeners:
            listener.close()
        await self._release(self._shared)

    def listen(self) -> Listener:
        listener = self._hub.subscribe(self._shared.key)
        self._listeners = [old for old in self._listeners if not old.closed]
        self._listeners.append(listener)
        return listener

    # ---- mailboxes -----------------------------------------------------------------

    async def list_mailboxes(self) -> list[MailboxInfo]:
        return await self._run(mailboxes.list_mailboxes)

    async def get_mailbox(self, name: str) -> MailboxInfo:
        return await self._run(mailboxes.get_mailbox, name)

    async def create_mailbox(self, name: str, special_use: str | None = None) -> MailboxInfo:
        return await self._run_publishing(mailboxes.create_mailbox, name, special_use)

    async def delete_mailbox(self, name: str) -> None:
        await self._run_publishing(mailboxes.delete_mailbox, name)

    async def rename_mailbox(self, old: str, new: str) -> None:
        await self._run_publishing(mailboxes.rename_mailbox, old, new)

    async def list_subscriptions(self) -> list[str]:
        return await self._run(mailboxes.list_subscriptions)

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        await self._run_publishing(mailboxes.set_subscribed, name, subscribed)

    async def status(self, mailbox_id: int) -> MailboxStatus:
        return await self._run(mailbox_status.status, mailbox_id)

    async def previews(
        self, mailbox_id: int, uids: Sequence[int], *, compute: bool = True
    ) -> dict[int, str | None]:
        return await self._run(previews.previews, mailbox_id, uids, compute)

    # ---- messages ------------------------------------------------------------------

    async def snapshot(
        self, mailbox_id: int, *, claim_recent: bool = False, peek_recent: bool = False
    ) -> MailboxSnapshot:
        snapshot = await self._run(message_ops.snapshot, mailbox_id, claim_recent, peek_recent)
        # A UID list this SELECT found missing or stale is stored after its answer.
        shared = self._shared
        with contextlib.suppress(RuntimeError):  # closed meanwhile: the next SELECT will
            shared.worker.run_soon(shared.db.uid_cache.store_pending, shared.db)
        return snapshot

    async def claim_recent(self, mailbox_id: int) -> int:
        return await self._run(message_ops.claim_recent, mailbox_id)

    async def recent_floor(self, mailbox_id: int) -> int:
        return await self._run(message_ops.recent_floor, mailbox_id)

    async def append(self, mailbox: int | str, messages: Sequence[NewMessage]) -> AppendResult:
        if not messages:
            return await self._run_publishing(message_ops.append, mailbox, messages)
        limits = await self._limits()
        shared = self._usable()
        loop = asyncio.get_running_loop()
        queued = QueuedAppend(mailbox, messages, limits, loop.create_future())
        if shared.appends.add(queued):
            try:
                shared.worker.run_soon(self._store_queued, shared, loop)
            except RuntimeError:
                shared.appends.take()
                raise StoreError(f"account {self.name} is closed") from None
        return await queued.future

    def _store_queued(self, shared: OpenAccount, loop: asyncio.AbstractEventLoop) -> None:
        """On the worker: store every queued APPEND in one transaction, publish the
        events, then answer each caller (in that order on the loop); then index the
        queued texts if enough have gathered."""
        queued = shared.appends.take()
        if not queued:
            return
        events: list[ChangeEvent] = []
        outcomes: Sequence[AppendResult | BaseException]
        try:
            with storage_errors():
                outcomes, events = message_ops.append_batch(
                    shared.db,
                    [(item.mailbox, item.messages) for item in queued],
                    limits=queued[-1].limits,  # the latest read: all are one account's
                )
        except BaseException as error:  # as run_in_executor would hand it over
            outcomes = [error] * len(queued)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            # One hand-over to the loop for all (each wakes it): publish, then answer.
            loop.call_soon_threadsafe(
                _publish_and_settle, self._hub.publish, shared.key, events, queued, outcomes
            )
        # After the answers: the delivery that fills a batch does not wait for it.
        analyses.index_if_due(shared.db)

    async def fetch_meta(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        *,
        with_model: bool = True,
        with_content: bool = False,
    ) -> list[MessageMeta]:
        return await self._run(message_ops.fetch_meta, mailbox_id, uids, with_model, with_content)

    async def fetch_flags(
        self, mailbox_id: int, uids: Sequence[int], *, with_modseq: bool = True
    ) -> FlagRows:
        return await self._run(message_ops.fetch_flags, mailbox_id, uids, with_modseq)

    async def read_message(self, meta: MessageMeta) -> AsyncIterator[bytes]:
        shared = self._usable()
        file, chunk = await shared.worker.run(_open_and_read, shared.db, meta.blob_id)
        if chunk:
            yield chunk
        if file is None:
            return
        try:
            while chunk := await self._usable().worker.run(file.read, READ_CHUNK):
                yield chunk
        finally:
            file.close()

    async def read_range(self, meta: MessageMeta, start: int, length: int) -> bytes:
        shared = self._usable()
        return await shared.worker.run(_read_range, shared.db, meta.blob_id, start, length)

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: frozenset[str],
        unchangedsince: int | None = None,
    ) -> StoreFlagsResult:
        return await self._run_publishing(
            message_ops.store_flags, mailbox_id, uids, op, flags, unchangedsince
        )

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        return await self._run_publishing(message_ops.expunge, mailbox_id, uids)

    async def replace(
        self, mailbox_id: int, uid: int, target: int | str, message: NewMessage
    ) -> AppendResult:
        limits = await self._limits()
        return await self._run_publishing(
            replace.replace, mailbox_id, uid, target, message, limits=limits
        )

    async def copy(self, source_id: int, uids: Sequence[int], dest_id: int) -> CopyResult:
        limits = await self._limits()
        return await self._run_publishing(
            message_ops.transfer, source_id, uids, dest_id, move=False, limits=limits
        )

    async def move(self, source_id: int, uids: Sequence[int], dest_id: int) -> CopyResult:
        return await self._run_publishing(message_ops.transfer, source_id, uids, dest_id, move=True)

    async def changes_since(self, mailbox_id: int, modseq: int) -> MailboxChanges:
        return await self._run(message_ops.changes_since, mailbox_id, modseq)

    # ---- metadata (RFC 5464) -------------------------------------------------------

    async def get_metadata(self, mailbox_id: int | None, names: Sequence[str]) -> dict[str, bytes]:
        return await self._run(metadata.get_metadata, mailbox_id, names)

    async def set_metadata(
        self, mailbox_id: int | None, changes: Mapping[str, bytes | None], max_entries: int
    ) -> None:
        await self._run(metadata.set_metadata, mailbox_id, changes, max_entries)

    # ---- access control lists (RFC 4314) -------------------------------------------

    async def get_acl(self, mailbox_id: int) -> dict[str, str]:
        return await self._run(metadata.get_acl, mailbox_id)

    async def acl_entries_for(self, identifiers: Sequence[str]) -> dict[str, dict[str, str]]:
        return await self._run(metadata.acl_entries_for, identifiers)

    async def set_acl(self, mailbox_id: int, identifier: str, rights: str | None) -> None:
        await self._run(metadata.set_acl, mailbox_id, identifier, rights)

    # ---- quota ---------------------------------------------------------------------

    async def quota(self) -> QuotaUsage:
        override = await self._refresh_quota(self._usable())
        return await self._run(quota.usage, override.apply(self._default_quota))

    async def delivery_state(self) -> DeliveryState:
        return await self._run(_delivery_state, await self._limits())

    async def recalculate_quota(self) -> tuple[QuotaUsage, QuotaUsage]:
        override = await self._refresh_quota(self._usable())
        return await self._run(quota.recalculate, override.apply(self._default_quota))

    async def _limits(self) -> QuotaLimits:
        """The effective limits, read again first when the last read is too old."""
        shared = self._usable()
        if asyncio.get_running_loop().time() >= shared.quota_fresh_until:
            await self._refresh_quota(shared)
        return shared.quota.apply(self._default_quota)

    # ---- search --------------------------------------------------------------------

    async def search(self, mailbox_id: int, query: SearchQuery) -> SearchResult:
        return await self._run(search_ops.search, mailbox_id, query)

    async def thread_fields(self, mailbox_id: int, query: SearchQuery) -> list[ThreadFields]:
        return await self._run(search_ops.thread_fields, mailbox_id, query)

    async def rebuild_index(self) -> int:
        """Analyse every message again and rebuild the search index (``roost index
        rebuild``); the number of analyses stored."""
        return await self._run(analyses.rebuild)

    # ---- sieve ---------------------------------------------------------------------

    async def list_scripts(self) -> list[SieveScript]:
        return await self._run(sieve_scripts.list_scripts)

    async def get_script(self, name: str) -> SieveScript:
        return await self._run(sieve_scripts.get_script, name)

    async def active_script(self) -> SieveScript | None:
        return await self._run(sieve_scripts.active_script)

    async def put_script(self, name: str, source: str, compiled: str, version: int) -> None:
        await self._run(sieve_scripts.put_script, name, source, compiled, version)

    async def update_compiled(self, name: str, source: str, compiled: str, version: int) -> None:
        await self._run(sieve_scripts.update_compiled, name, source, compiled, version)

    async def delete_script(self, name: str) -> None:
        await self._run(sieve_scripts.delete_script, name)

    async def rename_script(self, old: str, new: str) -> None:
        await self._run(sieve_scripts.rename_script, old, new)

    async def set_active_script(self, name: str | None) -> None:
        await self._run(sieve_scripts.set_active_script, name)

    async def sieve_tracked(self, kind: str, key: str, now: float) -> bool:
        return await self._run(sieve_scripts.tracked, kind, key, now)

    async def sieve_track(self, kind: str, key: str, expires: float, now: float) -> None:
        await self._run(sieve_scripts.track, kind, key, expires, now)

    # ---- running jobs --------------------------------------------------------------

    def _usable(self) -> OpenAccount:
        if self._closed or self._shared.closed:
            raise StoreError(f"account {self.name} is closed")
        return self._shared

    async def _run(
        self, fn: Callable[Concatenate[MailDB, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        shared = self._usable()

        def job() -> T:
            with storage_errors():
                return fn(shared.db, *args, **kwargs)

        return await shared.worker.run(job)

    async def _run_publishing(
        self,
        fn: Callable[Concatenate[MailDB, P], tuple[T, list[ChangeEvent]]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        shared = self._usable()
        loop = asyncio.get_running_loop()
        publish = self._hub.publish

        def job() -> T:
            with storage_errors():
                result, events = fn(shared.db, *args, **kwargs)
            if events:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody listens
                    loop.call_soon_threadsafe(publish, shared.key, events)
            return result

        return await shared.worker.run(job)


def _publish_and_settle(
    publish: Callable[[str, list[ChangeEvent]], None],
    key: str,
    events: list[ChangeEvent],
    queued: Sequence[QueuedAppend],
    outcomes: Sequence[AppendResult | BaseException],
) -> None:
    if events:
        publish(key, events)
    for item, outcome in zip(queued, outcomes, strict=True):
        _settle(item.future, outcome)


def _settle(future: asyncio.Future[AppendResult], outcome: AppendResult | BaseException) -> None:
    if future.done():  # its caller was cancelled; the APPEND happened all the same
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _open_and_read(db: MailDB, blob_id: str) -> tuple[BinaryIO | None, bytes]:
    """The first chunk, and the open file if there is more (most messages are one chunk)."""
    try:
        file = db.open_blob(blob_id)
    except FileNotFoundError as exc:
        raise MessageGone(f"message file {blob_id} is gone") from exc
    chunk = file.read(READ_CHUNK)
    if len(chunk) < READ_CHUNK:
        file.close()
        return None, chunk
    return file, chunk


def _read_range(db: MailDB, blob_id: str, start: int, length: int) -> bytes:
    try:
        return db.read_blob(blob_id, start, length)
    except FileNotFoundError as exc:
        raise MessageGone(f"message file {blob_id} is gone") from exc


def _delivery_state(db: MailDB, limits: QuotaLimits) -> DeliveryState:
    return DeliveryState(quota.usage(db, limits), sieve_scripts.active_script(db) is not None)
