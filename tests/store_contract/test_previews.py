"""Account.previews: the RFC 8970 preview kept with each message."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from roost.store.base import Account
from roost.store.sqlite import SqliteStore
from tests.store_contract.helpers import append, message, new


async def test_previews_of_delivered_messages(alice: Account, inbox_id: int) -> None:
    await append(alice, inbox_id, 1)
    await alice.append(inbox_id, [new(message(2, body=b"<p>not html</p>"))])
    await alice.append(inbox_id, [new(message(3, body=b""))])
    got = await alice.previews(inbox_id, [1, 2, 3, 99], compute=False)
    assert got == {1: "Body of message 1.", 2: "<p>not html</p>", 3: ""}
    assert await alice.previews(inbox_id, []) == {}


async def test_sqlite_previews_of_older_messages_are_made_once(tmp_path: Path) -> None:
    """Messages analysed before previews were kept (NULL) are None for LAZY, and made
    from the file, then kept, otherwise."""
    store = await SqliteStore.open(tmp_path / "data", durable=False)
    try:
        await store.create_account("alice", "h")
        account = await store.open_account("alice")
        inbox = await account.get_mailbox("INBOX")
        await append(account, inbox.id, 1, 2)
        [directory] = (tmp_path / "data" / "accounts").iterdir()
        with sqlite3.connect(directory / "mail.db") as conn:
            conn.execute("UPDATE analyses SET preview = NULL")
        assert await account.previews(inbox.id, [1, 2], compute=False) == {1: None, 2: None}
        made = await account.previews(inbox.id, [2])
        assert made == {2: "Body of message 2."}
        assert await account.previews(inbox.id, [1, 2], compute=False) == {1: None, **made}
        await account.close()
    finally:
        await store.close()
