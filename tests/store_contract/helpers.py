"""Building messages for the store contract tests."""

from __future__ import annotations

from datetime import datetime

from roost.store.base import Account, MessageMeta, MessageSource, NewMessage


def message(n: int = 1, *, body: bytes | None = None) -> bytes:
    """A small, distinct RFC 5322 message."""
    if body is None:
        body = b"Body of message %d.\r\n" % n
    return (
        b"From: Bob <bob@example.org>\r\n"
        b"To: Alice <alice@example.org>\r\n"
        b"Subject: message %d\r\n"
        b"\r\n" % n
    ) + body


def new(
    data: bytes, flags: frozenset[str] = frozenset(), internaldate: datetime | None = None
) -> NewMessage:
    return NewMessage(MessageSource(data=data), flags, internaldate)


async def append(
    account: Account, mailbox_id: int, *numbers: int, flags: frozenset[str] = frozenset()
) -> list[int]:
    """Append ``message(n)`` for each n in one call; return the new UIDs."""
    result = await account.append(mailbox_id, [new(message(n), flags) for n in numbers])
    return result.uids


async def read_all(account: Account, meta: MessageMeta) -> bytes:
    return b"".join([chunk async for chunk in account.read_message(meta)])
