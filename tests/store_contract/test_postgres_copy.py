"""``roost store copy``: a SQLite data directory moved into PostgreSQL keeps everything a
client has cached (UIDs, UIDVALIDITY, MODSEQs, flags, dates, the expunge log) and
every credential, is verified, and a second run skips what is already there."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
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
from roost.store.postgres import PostgresStore, copy_back
from roost.store.postgres import copy as copy_module
from roost.store.postgres.copy import copy_store
from roost.store.postgres.copy_back import copy_to_sqlite
from roost.store.sqlite import SqliteStore
from tests.store_contract.helpers import message, new, read_all
from tests.support.postgres import SCRATCH


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


# Each of these is something the SQLite store keeps beyond mailboxes and messages; a
# copy that dropped it would lose a user's filter, void their URLs, or send a second
# vacation reply.


async def fill_extras(data_dir: Path) -> None:
    store = await SqliteStore.open(data_dir, durable=False)
    try:
        await store.create_account("carol", "hash-c")
        carol = await store.open_account("carol")
        await carol.put_script("main", "keep;", "compiled-main", 3)
        await carol.put_script("spare", "discard;", "compiled-spare", 3)
        await carol.set_active_script("main")
        await carol.sieve_track("vacation", "bob@example.org", 2_000_000_000, 1_000)
        await carol.sieve_track("duplicate", "<id@x>", 2_000_000_000, 1_000)
        await carol.close()
        await store.add_alias("carol", "Carol.Sales@example.org")
        await store.urlauth_key("carol", "INBOX", create=True)
        assert await store.claim_submission("carol", 1_000.0, 3600.0, 2)
        await store.remember_sign_in_address("carol", "192.0.2.7", 1_234)
    finally:
        await store.close()


async def extras(store: SqliteStore | PostgresStore, check: str) -> object:
    match check:
        case "sieve scripts":
            carol = await store.open_account("carol")
            try:
                active = await carol.active_script()
                return (await carol.list_scripts(), active and active.name)
            finally:
                await carol.close()
        case "sieve tracking":
            carol = await store.open_account("carol")
            try:
                return [
                    await carol.sieve_tracked(kind, key, 2_000.0)
                    for kind, key in [("vacation", "bob@example.org"), ("duplicate", "<id@x>")]
                ]
            finally:
                await carol.close()
        case "aliases":
            return await store.list_aliases("carol")
        case "urlauth keys":
            return await store.urlauth_key("carol", "INBOX", create=False)
        case "submissions":
            # The one counted message still counts against a limit of 1 an hour.
            return await store.claim_submission("carol", 1_100.0, 3600.0, 1)
        case "known addresses":
            return await store.last_sign_in_from("carol", "192.0.2.7")
        case "instance secret":
            return await store.instance_secret()
    raise AssertionError(check)


EXPECTED: dict[str, object] = {
    "sieve tracking": [True, True],
    "aliases": ["Carol.Sales@example.org"],
    "submissions": False,
    "known addresses": 1_234,
}


@pytest.mark.parametrize(
    "check",
    [
        "sieve scripts",
        "sieve tracking",
        "aliases",
        "urlauth keys",
        "submissions",
        "known addresses",
        "instance secret",
    ],
)
async def test_copy_carries(check: str, tmp_path: Path, url: str) -> None:
    data_dir = tmp_path / "data"
    await fill_extras(data_dir)
    source = await SqliteStore.open(data_dir, durable=False)
    try:
        wanted = await extras(source, check)
    finally:
        await source.close()
    assert wanted is not None
    if check in EXPECTED:
        assert wanted == EXPECTED[check]
    await copy_store(data_dir, url, lambda _line: None)
    target = await PostgresStore.open(url, listen=False)
    try:
        assert await extras(target, check) == wanted
    finally:
        await target.close()


async def test_a_target_with_accounts_keeps_its_secret(tmp_path: Path, url: str) -> None:
    data_dir = tmp_path / "data"
    await fill_extras(data_dir)
    target = await PostgresStore.open(url, listen=False)
    try:
        await target.create_account("zed", "hash-z")
        before = await target.instance_secret()
    finally:
        await target.close()
    await copy_store(data_dir, url, lambda _line: None)
    target = await PostgresStore.open(url, listen=False)
    try:
        assert await target.instance_secret() == before
        assert await target.list_accounts() == ["carol", "zed"]
    finally:
        await target.close()


async def test_copy_back_to_sqlite_keeps_everything(tmp_path: Path, url: str) -> None:
    data_dir = tmp_path / "data"
    await fill(data_dir, tmp_path)
    await fill_extras(data_dir)
    await copy_store(data_dir, url, lambda _line: None)
    back = tmp_path / "back"
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["store", "copy", "--from", url, "--to", f"sqlite:{back}"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "done: 3 accounts copied (5 messages), 0 already there; every one verified"
    )

    source = await SqliteStore.open(data_dir, durable=False)
    middle = await PostgresStore.open(url, listen=False)
    copied = await SqliteStore.open(back, durable=False)
    try:
        assert await copied.list_accounts() == ["Alice", "bob", "carol"]
        for name in ("alice", "bob", "carol"):
            assert await state(copied, name) == await state(source, name)
            assert await copied.get_sign_in_record(name) == await source.get_sign_in_record(name)
            assert await copied.quota_override(name) == await source.quota_override(name)
        for check in ("sieve scripts", "sieve tracking", "aliases", "urlauth keys"):
            assert await extras(copied, check) == await extras(source, check), check
        for check in ("submissions", "known addresses"):
            assert await extras(copied, check) == await extras(source, check), check
        assert await copied.instance_secret() == await source.instance_secret()
        # Mailbox ids come from the database: MAILBOXID (RFC 8474) stays.
        alice_there = await middle.open_account("alice")
        alice = await copied.open_account("alice")
        assert [(b.name, b.id) for b in await alice.list_mailboxes()] == [
            (b.name, b.id) for b in await alice_there.list_mailboxes()
        ]
        box = await alice.get_mailbox("Projects/Roost")
        found = await alice.search(box.id, SearchQuery(MatchText(TextField.BODY, "big haystack")))
        assert found.uids == [1]
        assert (await alice.append(box.id, [new(message(7))])).uids == [3]
        await alice.close()
        await alice_there.close()
    finally:
        await source.close()
        await middle.close()
        await copied.close()

    again = await copy_to_sqlite(url, back, lambda _line: None)
    assert (again.copied, again.skipped) == (0, 3)


async def test_an_interrupted_copy_back_leaves_nothing_half(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    await fill(data_dir, tmp_path)
    await copy_store(data_dir, url, lambda _line: None)
    back = tmp_path / "back"

    async def broken(*_args: object) -> None:
        raise OSError("the disk is full")

    monkeypatch.setattr(copy_back, "_register", broken)
    with pytest.raises(OSError, match="disk is full"):
        await copy_to_sqlite(url, back, lambda _line: None)
    assert list((back / "accounts").iterdir()) == []  # the built directory is removed
    monkeypatch.undo()
    lines: list[str] = []
    outcome = await copy_to_sqlite(url, back, lines.append)
    assert (outcome.copied, outcome.skipped, outcome.messages) == (2, 0, 5)
    copied = await SqliteStore.open(back, durable=False)
    try:
        assert await copied.list_accounts() == ["Alice", "bob"]
    finally:
        await copied.close()


def threaded(message_id: str, parents: str, n: int) -> bytes:
    """A message with its own Message-ID and References (nearest parent last)."""
    refs = f"References: {parents}\r\n" if parents else ""
    return (
        f"From: a@example.org\r\nSubject: t{n}\r\nMessage-ID: <{message_id}>\r\n{refs}\r\n"
        f"body {n}\r\n"
    ).encode()


THREADED = [
    threaded("a@x", "", 0),
    threaded("b@x", "<a@x>", 1),
    threaded("d@x", "<c@x>", 2),  # its parent comes later: a thread of its own
    threaded("c@x", "<a@x>", 3),
    threaded("e@x", "<a@x> <d@x>", 4),  # nearest parent first: d's thread
    threaded("b@x", "<zz@x>", 5),  # a second b@x: the first keeps naming b's thread
    threaded("f@x", "<b@x>", 6),
    threaded("g@x", "<nowhere@x>", 7),
]


async def roots(url: str) -> dict[str, str]:
    """Each message's subject → the subject of its thread's first message."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, thread_id, lower(subject) AS subject FROM analyses")
    finally:
        await conn.close()
    subject = {row["id"]: row["subject"] for row in rows}
    return {row["subject"]: subject[row["thread_id"] or row["id"]] for row in rows}


async def test_a_copy_threads_as_delivery_does(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batched analyses (two to a batch here) get the threads that storing them one
    by one gives (messages.py's INSERT finding the nearest known parent)."""
    monkeypatch.setattr(copy_module, "BATCH", 2)
    data_dir = tmp_path / "data"
    source = await SqliteStore.open(data_dir, durable=False)
    direct_url = await SCRATCH.acquire()
    direct = await PostgresStore.open(direct_url, listen=False)
    try:
        for store in (source, direct):
            await store.create_account("alice", "hash")
            account = await store.open_account("alice")
            inbox = await account.get_mailbox("INBOX")
            for data in THREADED:
                await account.append(inbox.id, [new(data)])
            await account.close()
        await source.close()
        await direct.close()
        await copy_store(data_dir, url, lambda _line: None)
        expected = await roots(direct_url)
        assert expected == {  # the cases meant
            "t0": "t0",
            "t1": "t0",
            "t2": "t2",
            "t3": "t0",
            "t4": "t2",
            "t5": "t5",
            "t6": "t0",
            "t7": "t7",
        }
        assert await roots(url) == expected
    finally:
        await SCRATCH.release(direct_url)


async def test_a_copy_leaves_the_planner_statistics_of_what_it_copied(
    tmp_path: Path, url: str
) -> None:
    """Without them the planner takes a copied mailbox for empty until autovacuum
    looks, and a SEARCH walks every message instead of using the trigram index."""
    data_dir = tmp_path / "data"
    source = await SqliteStore.open(data_dir, durable=False)
    try:
        await source.create_account("alice", "hash")
        account = await source.open_account("alice")
        inbox = await account.get_mailbox("INBOX")
        await account.append(inbox.id, [new(message(n)) for n in range(37)])
        await account.close()
    finally:
        await source.close()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE messages")  # empty: the planner's last word is 0 rows
        await copy_store(data_dir, url, lambda _line: None)
        # 37 rows are below autovacuum's threshold (50): only the copy can have looked.
        planned = await conn.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'messages'")
        assert planned == 37
    finally:
        await conn.close()
