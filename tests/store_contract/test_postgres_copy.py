"""``roost store copy``: a SQLite data directory moved into PostgreSQL keeps everything a
client has cached (UIDs, UIDVALIDITY, MODSEQs, flags, dates, the expunge log) and
every credential, is verified, and a second run skips what is already there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from roost.cli import main
from roost.store.base import (
    DELETED,
    SEEN,
    FlagOp,
    MatchText,
    MessageSource,
    NewMessage,
    QuotaOverride,
    SearchQuery,
    TextField,
)
from roost.store.credentials import AppPasswordRecord
from roost.store.postgres import PostgresStore
from roost.store.postgres.copy import copy_store
from roost.store.sqlite import SqliteStore
from tests.store_contract.helpers import message, new, read_all
from tests.support.postgres import SCRATCH


@pytest.fixture
async def url() -> AsyncIterator[str]:
    found = await SCRATCH.acquire()
    try:
        yield found
    finally:
        await SCRATCH.release(found)


async def fill(data_dir: Path, tmp_path: Path) -> None:
    store = await SqliteStore.open(data_dir, durable=False)
    try:
        await store.create_account("Alice", "hash-a")
        await store.set_password("alice", "hash-a2", "SCRAM-keys")
        await store.set_totp_secret("alice", "JBSWY3DPEHPK3PXP")
        await store.accept_totp_step("alice", 42)
        await store.add_app_password("alice", AppPasswordRecord("phone", "sel1", "ph", 100))
        await store.set_quota_override("alice", QuotaOverride(storage=10**9, messages=None))
        await store.create_account("bob", "hash-b")
        alice = await store.open_account("alice")
        inbox = await alice.get_mailbox("INBOX")
        box = await alice.create_mailbox("Projects/Roost")
        when = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
        await alice.append(
            inbox.id, [new(message(n), frozenset({"$Work"}), when) for n in range(5)]
        )
        big = tmp_path / "big.eml"
        big.write_bytes(message(99, body=b"needle in a big haystack\r\n" * 10_000))
        await alice.append(box.id, [NewMessage(MessageSource(path=big), frozenset({SEEN}))])
        await alice.store_flags(inbox.id, [2, 4], FlagOp.ADD, frozenset({DELETED}))
        await alice.expunge(inbox.id)
        await alice.copy(inbox.id, [1], box.id)
        await alice.set_metadata(None, {"/private/filters/values/small": b"SMALLER 5000"}, 10)
        await alice.set_metadata(box.id, {"/shared/comment": b"the \x00 project"}, 10)
        await alice.set_acl(box.id, "bob", "lrs")
        await store.add_sharer("Alice", "bob")
        await alice.set_acl(inbox.id, "anyone", "l")  # RFC 4314 §2: every user
        await alice.set_acl(inbox.id, "-bob", "l")
        await store.add_sharer("Alice", "anyone")
        await alice.close()
    finally:
        await store.close()


async def state(store: SqliteStore | PostgresStore, name: str) -> dict[str, object]:
    account = await store.open_account(name)
    try:
        found: dict[str, object] = {}
        for info in await account.list_mailboxes():
            if info.noselect:
                continue
            snapshot = await account.snapshot(info.id)
            metas = await account.fetch_meta(info.id, snapshot.uids)
            changes = await account.changes_since(info.id, 0)
            found[info.name] = (
                (info.uidvalidity, info.uidnext, info.highestmodseq, info.special_use),
                [(m.uid, m.flags, m.modseq, m.internaldate, m.size, m.blob_id) for m in metas],
                [await read_all(account, m) for m in metas],
                changes.expunged,
                snapshot.keywords,
            )
            found[f"{info.name} metadata"] = await account.get_metadata(
                info.id, ["/private", "/shared"]
            )
            found[f"{info.name} acl"] = await account.get_acl(info.id)
        found["server metadata"] = await account.get_metadata(None, ["/private", "/shared"])
        found["sharers"] = await store.sharers_of(name)
        found["subscriptions"] = await account.list_subscriptions()
        found["quota"] = await account.quota()
        return found
    finally:
        await account.close()


async def test_copy_keeps_what_clients_cached_and_resumes(tmp_path: Path, url: str) -> None:
    data_dir = tmp_path / "data"
    await fill(data_dir, tmp_path)
    lines: list[str] = []
    outcome = await copy_store(data_dir, url, lines.append)
    assert (outcome.copied, outcome.skipped, outcome.messages) == (2, 0, 5)
    assert len(lines) == 2 and all("verified" in line for line in lines)

    source = await SqliteStore.open(data_dir, durable=False)
    target = await PostgresStore.open(url, listen=False)
    try:
        assert await target.list_accounts() == ["Alice", "bob"]
        for name in ("alice", "bob"):
            assert await state(target, name) == await state(source, name)
            assert await target.get_sign_in_record(name) == await source.get_sign_in_record(name)
            assert await target.quota_override(name) == await source.quota_override(name)
        alice = await target.open_account("alice")
        box = await alice.get_mailbox("Projects/Roost")
        found = await alice.search(box.id, SearchQuery(MatchText(TextField.BODY, "big haystack")))
        assert found.uids == [1]
        assert await alice.get_acl(box.id) == {"bob": "lrs"}
        assert await target.sharers_of("bob") == ["Alice"]
        assert await target.sharers_of("anyone") == ["Alice"]
        inbox = await alice.get_mailbox("INBOX")
        assert await alice.get_acl(inbox.id) == {"-bob": "l", "anyone": "l"}
        assert await alice.get_metadata(None, ["/private"]) == {
            "/private/filters/values/small": b"SMALLER 5000"
        }
        appended = await alice.append(box.id, [new(message(7))])
        assert appended.uids == [3]  # UIDNEXT carried over
        await alice.close()
    finally:
        await source.close()
        await target.close()

    again = await copy_store(data_dir, url, lines.append)
    assert (again.copied, again.skipped) == (0, 2)


def test_the_command_refuses_a_directory_that_is_not_roosts(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["store", "copy", "--from", f"sqlite:{tmp_path}", "--to", "postgresql://x/y"]
    )
    assert result.exit_code == 2 and "users.db is missing" in result.output
