"""One POP3 session's view of INBOX: fixed at sign-in, changed only at QUIT.

RFC 1939 §4-6: message numbers are 1..n for the whole session; DELE only marks, RSET
unmarks, and the marked messages are removed in the UPDATE state, after QUIT — never
when the connection just drops.

Invariants:

* Numbers follow ascending UID, over the messages of INBOX at sign-in that were not
  flagged \\Deleted (those are on their way out; in "flag" delete mode they are the
  ones POP3 already deleted). A message that arrives later is not in this view, and is
  left untouched for the next session.
* A message expunged by an IMAP session meanwhile keeps its number; reading it gives
  ``MessageUnavailable``, and its size counts as 0 once that is noticed.
* Nothing here writes to the store before ``commit``.
* Sizes are those as transmitted (``roost.pop3.wire.message``), computed only when a
  command needs them, and cached by blob id across sessions (``SizeCache``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from roost.pop3.context import DeleteMode, Pop3Policy, SizeCache
from roost.pop3.wire.message import SizeCounter, uidl
from roost.store.base import (
    DELETED,
    SEEN,
    Account,
    FlagOp,
    MailboxInfo,
    MessageMeta,
    NoSuchMailbox,
)

INBOX = "INBOX"


class MessageUnavailable(Exception):
    """The message number cannot be used now; the text says why, for the -ERR line."""


@dataclass(slots=True)
class _Message:
    uid: int
    size: int | None = None  # as transmitted, once known
    deleted: bool = False  # marked by DELE
    retrieved: bool = False  # sent whole by RETR
    gone: bool = False  # expunged by another session since sign-in


class Maildrop:
    def __init__(
        self,
        account: Account,
        mailbox: MailboxInfo,
        uids: Sequence[int],
        sizes: SizeCache,
        batch_size: int,
    ) -> None:
        self.account = account
        self.mailbox = mailbox
        self._messages = [_Message(uid) for uid in uids]
        self._sizes = sizes
        self._batch_size = batch_size

    @classmethod
    async def open(cls, account: Account, sizes: SizeCache, batch_size: int) -> Maildrop:
        mailbox = await account.get_mailbox(INBOX)
        snapshot = await account.snapshot(mailbox.id)
        # Expunged in between: absent here, so simply not in the maildrop.
        found = await account.fetch_flags(mailbox.id, snapshot.uids)
        uids = [uid for uid, flags, _ in found.states() if DELETED not in flags]
        return cls(account, snapshot.info, uids, sizes, batch_size)

    # ---- the view ----------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Messages not marked deleted (RFC 1939 §5 STAT)."""
        return sum(not message.deleted for message in self._messages)

    def numbers(self) -> list[int]:
        """The numbers of the messages not marked deleted, ascending."""
        return [n for n, message in enumerate(self._messages, 1) if not message.deleted]

    def _get(self, number: int) -> _Message:
        if not 1 <= number <= len(self._messages):
            raise MessageUnavailable(f"No message {number}")
        message = self._messages[number - 1]
        if message.deleted:
            raise MessageUnavailable(f"Message {number} is deleted")
        return message

    def check(self, number: int) -> None:
        """Raise MessageUnavailable unless ``number`` names a message not deleted."""
        self._get(number)

    def uidl(self, number: int) -> str:
        return uidl(self.mailbox.uidvalidity, self._get(number).uid)

    async def size(self, number: int) -> int:
        message = self._get(number)
        if message.size is None:
            await self._compute_sizes([message])
        assert message.size is not None
        return message.size

    async def sizes(self) -> list[tuple[int, int]]:
        """(number, size) of every message not deleted."""
        live = [(n, m) for n, m in enumerate(self._messages, 1) if not m.deleted]
        await self._compute_sizes([m for _, m in live if m.size is None])
        return [(n, m.size or 0) for n, m in live]

    async def total_size(self) -> int:
        return sum(size for _, size in await self.sizes())

    async def meta(self, number: int) -> MessageMeta:
        """The store's metadata, for reading the message; MessageUnavailable if gone."""
        message = self._get(number)
        metas = (
            []
            if message.gone
            else await self.account.fetch_meta(self.mailbox.id, [message.uid], with_model=False)
        )
        if not metas:
            message.gone = True
            message.size = 0
            raise MessageUnavailable(f"Message {number} was removed by another session")
        return metas[0]

    def read(self, meta: MessageMeta) -> AsyncIterator[bytes]:
        return self.account.read_message(meta)

    # ---- changes -----------------------------------------------------------------------

    def delete(self, number: int) -> None:
        self._get(number).deleted = True

    def mark_retrieved(self, number: int) -> None:
        self._messages[number - 1].retrieved = True

    def reset(self) -> None:
        """RSET (RFC 1939 §5): unmark every deleted message."""
        for message in self._messages:
            message.deleted = False

    async def commit(self, policy: Pop3Policy) -> int:
        """The UPDATE state (RFC 1939 §6): set \\Seen on what was retrieved, then remove
        (or flag, or move) what was deleted, each change durable before this returns.
        Returns how many messages were deleted."""
        account, mailbox_id = self.account, self.mailbox.id
        deleted = [m.uid for m in self._messages if m.deleted and not m.gone]
        if policy.mark_seen:
            keeps_deleted = policy.delete_mode is not DeleteMode.EXPUNGE
            seen = [
                m.uid
                for m in self._messages
                if m.retrieved and not m.gone and (keeps_deleted or not m.deleted)
            ]
            if seen:
                await account.store_flags(mailbox_id, seen, FlagOp.ADD, frozenset({SEEN}))
        if not deleted:
            return 0
        match policy.delete_mode:
            case DeleteMode.EXPUNGE:
                await account.store_flags(mailbox_id, deleted, FlagOp.ADD, frozenset({DELETED}))
                await account.expunge(mailbox_id, deleted)
            case DeleteMode.FLAG:
                await account.store_flags(mailbox_id, deleted, FlagOp.ADD, frozenset({DELETED}))
            case DeleteMode.MOVE:
                try:
                    target = await account.get_mailbox(policy.move_to)
                except NoSuchMailbox:
                    target = await account.create_mailbox(policy.move_to)
                await account.move(mailbox_id, deleted, target.id)
        return len(deleted)

    # ---- sizes -------------------------------------------------------------------------

    async def _compute_sizes(self, messages: Sequence[_Message]) -> None:
        for start in range(0, len(messages), self._batch_size):
            batch = {m.uid: m for m in messages[start : start + self._batch_size]}
            metas = await self.account.fetch_meta(self.mailbox.id, list(batch), with_model=False)
            for meta in metas:
                batch.pop(meta.uid).size = await self._size_of(meta)
            for message in batch.values():  # expunged by another session meanwhile
                message.gone = True
                message.size = 0

    async def _size_of(self, meta: MessageMeta) -> int:
        cached = self._sizes.get(meta.blob_id)
        if cached is not None:
            return cached
        counter = SizeCounter()
        async for chunk in self.account.read_message(meta):
            counter.feed(chunk)
        size = counter.finish()
        self._sizes.put(meta.blob_id, size)
        return size
