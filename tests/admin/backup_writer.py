"""A writer process for the backup tests: appends to one account until killed.

``python -m tests.admin.backup_writer DATA_DIR ACCOUNT`` appends ``message(n)`` to
INBOX for n = 0, 1, 2 … and prints ``acked UID N`` once each append has returned
(durable: the store's OK). Every third round it also appends a large message to
"Churn" and expunges the one before, so message files disappear during a backup.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from roost.store.sqlite import SqliteStore
from roost.store.values import DELETED, FlagOp, MessageSource, NewMessage


def message(n: int) -> bytes:
    """Message ``n``: every fifth one is over 64 KiB, so it is kept as a file."""
    body = (f"line {n} of the body\r\n" * (4000 if n % 5 == 0 else 3)).encode()
    return f"Subject: message {n}\r\nMessage-ID: <{n}@backup.test>\r\n\r\n".encode() + body


async def run(data_dir: Path, name: str) -> None:
    store = await SqliteStore.open(data_dir, durable=True)
    account = await store.open_account(name)
    churn = await account.create_mailbox("Churn")
    n = 0
    while True:
        result = await account.append("INBOX", [NewMessage(MessageSource(data=message(n)))])
        print(f"acked {result.uids[0]} {n}", flush=True)
        if n % 3 == 0:
            big = message(5 * n + 100000) + b"churn\r\n"
            added = await account.append(churn.id, [NewMessage(MessageSource(data=big))])
            uid = added.uids[0]
            if uid > 1:
                await account.store_flags(churn.id, [uid - 1], FlagOp.ADD, frozenset({DELETED}))
                await account.expunge(churn.id)
        n += 1


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1]), sys.argv[2]))
