"""``roost index rebuild`` on every backend: the account's analyses made again from
the stored bytes find what delivery's found, keep every THREADID (RFC 8474: it never
changes) and touch no other account."""

from __future__ import annotations

from roost.admin.mailboxes import Reindexable
from roost.store.base import Account, MailboxInfo, Store
from roost.store.query import MatchText, SearchQuery, TextField
from tests.store_contract.helpers import new


def mail(subject: str, body: str, *, reply_to: str | None = None) -> bytes:
    headers = f"From: bob@example.org\r\nSubject: {subject}\r\nMessage-ID: <{subject}@x>\r\n"
    if reply_to is not None:
        headers += f"In-Reply-To: <{reply_to}@x>\r\n"
    return f"{headers}\r\n{body}\r\n".encode()


async def found(account: Account, mailbox_id: int, needle: str) -> list[int]:
    result = await account.search(mailbox_id, SearchQuery(MatchText(TextField.BODY, needle)))
    return result.uids


async def test_rebuild_keeps_search_and_threads(
    store: Store, alice: Account, inbox: MailboxInfo
) -> None:
    big = "walrus " * 100_000  # several chunks, a file on SQLite
    await alice.append(
        inbox.id,
        [
            new(mail("first", "needle one")),
            new(mail("second", "hay", reply_to="first")),
            new(mail("third", big)),
        ],
    )
    before = await alice.fetch_meta(inbox.id, [1, 2, 3])
    assert isinstance(alice, Reindexable)
    assert await alice.rebuild_index() == 3
    after = await alice.fetch_meta(inbox.id, [1, 2, 3])
    assert [m.thread_id for m in after] == [m.thread_id for m in before]
    assert after[0].thread_id == after[1].thread_id != after[2].thread_id
    assert await found(alice, inbox.id, "needle") == [1]
    assert await found(alice, inbox.id, "walrus") == [3]
    meta = await alice.fetch_meta(inbox.id, [3])
    assert meta[0].model is not None

    await store.create_account("carol", "hash")
    carol = await store.open_account("carol")
    try:
        assert isinstance(carol, Reindexable)
        assert await carol.rebuild_index() == 0
    finally:
        await carol.close()
