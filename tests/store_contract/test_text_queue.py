"""The SQLite backend's queue of texts waiting for the FTS5 index (sqlite/analyses.py):
delivery queues a message's decoded text, the texts enter the index in batches, and
no search ever runs while a text is still waiting."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.store.base import MatchText, SearchQuery, TextField
from roost.store.sqlite import SqliteStore
from roost.store.sqlite import analyses as analyses_module
from roost.store.sqlite.account import SqliteAccount
from roost.store.sqlite.mail_db import MailDB
from tests.store_contract.helpers import new


def mail(subject: str) -> bytes:
    return f"From: bob@example.org\r\nSubject: {subject}\r\n\r\nBody of {subject}.\r\n".encode()


@pytest.fixture
async def account(tmp_path: Path) -> AsyncIterator[SqliteAccount]:
    store = await SqliteStore.open(tmp_path / "data", durable=False)
    await store.create_account("alice", "h")
    opened = await store.open_account("alice")
    try:
        yield opened
    finally:
        await opened.close()
        await store.close()


def counts(tmp_path: Path) -> tuple[int, int]:
    """(texts indexed, texts queued)."""
    [directory] = (tmp_path / "data" / "accounts").iterdir()
    with sqlite3.connect(directory / "mail.db") as conn:
        indexed = conn.execute("SELECT count(*) FROM message_text").fetchone()[0]
        queued = conn.execute("SELECT count(*) FROM text_pending").fetchone()[0]
    return indexed, queued


async def subjects(account: SqliteAccount, mailbox_id: int, text: str) -> list[int]:
    query = SearchQuery(MatchText(TextField.SUBJECT, text))
    return (await account.search(mailbox_id, query)).uids


async def test_texts_enter_the_index_in_batches(
    account: SqliteAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analyses_module, "INDEX_BATCH", 3)
    inbox = await account.get_mailbox("INBOX")
    await account.append(inbox.id, [new(mail("alpha"))])
    await account.append(inbox.id, [new(mail("beta"))])
    assert counts(tmp_path) == (0, 2)
    await account.append(inbox.id, [new(mail("gamma"))])  # the third: all three indexed
    await account.list_mailboxes()  # after the answer, in the same worker job
    assert counts(tmp_path) == (3, 0)
    await account.append(inbox.id, [new(mail("delta")), new(mail("epsilon"))])
    assert counts(tmp_path) == (3, 2)


async def test_a_search_indexes_what_waits_first(account: SqliteAccount, tmp_path: Path) -> None:
    inbox = await account.get_mailbox("INBOX")
    await account.append(inbox.id, [new(mail("alpha")), new(mail("beta"))])
    assert counts(tmp_path) == (0, 2)
    assert await subjects(account, inbox.id, "beta") == [2]
    assert counts(tmp_path) == (2, 0)


async def test_queued_texts_survive_a_restart(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "data", durable=True)
    await store.create_account("alice", "h")
    account = await store.open_account("alice")
    inbox = await account.get_mailbox("INBOX")
    await account.append(inbox.id, [new(mail("alpha"))])
    await account.close()
    await store.close()
    assert counts(tmp_path) == (0, 1)
    store = await SqliteStore.open(tmp_path / "data", durable=True)
    account = await store.open_account("alice")
    try:
        assert await subjects(account, inbox.id, "alpha") == [1]
    finally:
        await account.close()
        await store.close()


async def test_a_failed_indexing_does_not_fail_the_delivery(
    account: SqliteAccount,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The APPEND is committed before its batch is indexed: an error there is logged,
    the APPEND still succeeds, and the next search indexes the batch."""
    monkeypatch.setattr(analyses_module, "INDEX_BATCH", 1)
    real = analyses_module.index_queued

    def broken(db: MailDB) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(analyses_module, "index_queued", broken)
    inbox = await account.get_mailbox("INBOX")
    with caplog.at_level("WARNING", logger="roost"):
        result = await account.append(inbox.id, [new(mail("alpha"))])
        await account.list_mailboxes()  # indexing follows the answer in the same job
    assert result.uids == [1]
    assert "could not index queued message texts" in caplog.text
    assert counts(tmp_path) == (0, 1)
    monkeypatch.setattr(analyses_module, "index_queued", real)
    assert await subjects(account, inbox.id, "alpha") == [1]


async def test_texts_queued_by_another_process_meanwhile_are_indexed_too(
    account: SqliteAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between indexing and the search's read, another process may deliver: the read
    must not begin while a text waits, or that message would be missed."""
    inbox = await account.get_mailbox("INBOX")
    await account.append(inbox.id, [new(mail("alpha"))])
    [directory] = (tmp_path / "data" / "accounts").iterdir()
    real = analyses_module.index_queued
    delivered: list[bool] = []

    def index_then_another_delivery(db: MailDB) -> None:
        real(db)
        if delivered:
            return
        delivered.append(True)
        other = MailDB.open(directory, durable=False)  # "another process"
        try:
            with other.write():
                row = analyses_module.compute(new(mail("beta")).source)
                blob = other.blobs.put(new(mail("beta")).source)
                analyses_module.insert(other, blob.blob_id, row)
                other.conn.execute(
                    "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords,"
                    " internaldate, tzoffset, size, header_size, blob_id)"
                    " VALUES (?, 2, 1, 0, '', 0, 0, ?, ?, ?)",
                    (inbox.id, blob.size, blob.header_size, blob.blob_id),
                )
        finally:
            other.close()

    monkeypatch.setattr(analyses_module, "index_queued", index_then_another_delivery)
    assert await subjects(account, inbox.id, "beta") == [2]
    assert len(delivered) == 1
    assert counts(tmp_path) == (2, 0)
