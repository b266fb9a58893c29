"""What only a sharded PostgreSQL store has (store/postgres/shards.py): placement of
accounts over two shards and the map in the first, site-wide aliases and UIDVALIDITY
floor, creation cut short, the refusal of a reordered or unprepared shard list, and
``roost db migrate`` / ``user add --shard`` / ``store shards`` on two databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from click.testing import CliRunner, Result

from roost.cli import main
from roost.store.errors import AccountExists, CannotDoThat
from roost.store.postgres import PostgresStore
from roost.store.postgres.move import move_account
from roost.store.postgres.schema import MIGRATIONS, SchemaMismatch
from roost.store.postgres.shards import ShardedStore
from roost.store.query import MatchText, SearchQuery, TextField
from roost.store.values import FlagOp, QuotaOverride
from tests.store_contract.conftest import make_shards
from tests.store_contract.helpers import message, new, read_all
from tests.support.postgres import SCRATCH, url_for


@pytest.fixture
async def urls() -> AsyncIterator[list[str]]:
    await SCRATCH.check()
    made = await make_shards(2)
    try:
        yield made
    finally:
        for url in made:
            await SCRATCH.release(url)


@pytest.fixture
async def store(urls: list[str]) -> AsyncIterator[ShardedStore]:
    opened = await ShardedStore.open(urls, pool_size=2)
    try:
        yield opened
    finally:
        await opened.close()


async def names_on(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [row[0] for row in await conn.fetch("SELECT name FROM accounts ORDER BY name")]
    finally:
        await conn.close()


async def test_accounts_are_spread_over_the_shards_and_mapped(
    store: ShardedStore, urls: list[str]
) -> None:
    # make_shards counts a phantom account on the first shard.
    for name in ("a1", "a2", "a3", "a4", "a5"):
        await store.create_account(name, "h")
    assert await names_on(urls[0]) == ["a2", "a4"]
    assert await names_on(urls[1]) == ["a1", "a3", "a5"]
    assert [load.accounts for load in await store.loads()] == [3, 3]
    assert [await store.shard_of(name) for name in ("A1", "a2")] == [1, 0]
    assert await store.list_accounts() == ["a1", "a2", "a3", "a4", "a5"]
    for name in ("a1", "a2"):
        account = await store.open_account(name.upper())
        try:
            assert (await account.get_mailbox("INBOX")).name == "INBOX"
        finally:
            await account.close()
    await store.delete_account("a1")
    assert await store.shard_of("a1") is None
    assert await names_on(urls[1]) == ["a3", "a5"]


async def test_an_account_goes_on_the_shard_asked_for(store: ShardedStore, urls: list[str]) -> None:
    await store.create_account("alice", "h", shard=0)
    assert await names_on(urls[0]) == ["alice"]
    with pytest.raises(AccountExists):
        await store.create_account("ALICE", "h", shard=1)
    with pytest.raises(CannotDoThat):
        await store.create_account("bob", "h", shard=2)
    assert await names_on(urls[1]) == []


async def test_an_alias_belongs_to_one_account_across_shards(store: ShardedStore) -> None:
    await store.create_account("alice", "h", shard=0)
    await store.create_account("bob", "h", shard=1)
    await store.add_alias("alice", "Team@example.org")
    with pytest.raises(CannotDoThat):
        await store.add_alias("bob", "team@EXAMPLE.org")
    assert await store.delete_alias("alice", "team@example.org")
    await store.add_alias("bob", "team@example.org")
    assert await store.list_aliases("bob") == ["team@example.org"]
    assert await store.list_aliases("alice") == []


async def test_a_name_made_again_on_another_shard_gets_new_uidvalidities(
    store: ShardedStore,
) -> None:
    await store.create_account("alice", "h", shard=1)
    account = await store.open_account("alice")
    first = (await account.get_mailbox("INBOX")).uidvalidity
    await account.close()
    await store.delete_account("alice")
    await store.create_account("alice", "h", shard=0)
    account = await store.open_account("alice")
    try:
        assert (await account.get_mailbox("INBOX")).uidvalidity > first
    finally:
        await account.close()


async def test_a_creation_cut_short_is_not_listed_and_can_be_made_again(
    store: ShardedStore, urls: list[str]
) -> None:
    conn = await asyncpg.connect(urls[0])
    try:  # the map row written, the account never made (a crash between)
        await conn.execute("INSERT INTO account_shards (name_key, shard) VALUES ('carol', 1)")
    finally:
        await conn.close()
    assert await store.list_accounts() == []
    assert await store.get_password_hash("carol") is None
    await store.create_account("Carol", "h")
    assert await store.list_accounts() == ["Carol"]
    assert await names_on(urls[1]) == ["Carol"]


async def test_a_reordered_or_unprepared_shard_list_is_refused(urls: list[str]) -> None:
    with pytest.raises(SchemaMismatch, match="listed as shard 1 is shard 2"):
        await ShardedStore.open(list(reversed(urls)))
    fresh = await SCRATCH.acquire()
    try:
        with pytest.raises(SchemaMismatch, match="shard 3 of 3 is not set up"):
            await ShardedStore.open([*urls, fresh])
    finally:
        await SCRATCH.release(fresh)


@pytest.fixture
async def empty_databases(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two databases without Roost's schema; $ROOST_STORE restored afterwards."""
    monkeypatch.setenv("ROOST_STORE", "")
    await SCRATCH.check()
    admin = await asyncpg.connect(url_for("postgres"))
    names = [f"roost_shard_{id(monkeypatch)}_{n}" for n in (1, 2)]
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}"')
            SCRATCH.adopt(name)
    finally:
        await admin.close()
    return [url_for(name) for name in names]


async def test_migrate_add_and_list_on_two_shards(empty_databases: list[str]) -> None:
    first, second = empty_databases
    runner = CliRunner()
    # The first database served alone before the second was added.
    assert (await _invoke(runner, ["db", "migrate", "--store", first])).exit_code == 0
    alone = await PostgresStore.open(first, listen=False)
    try:
        await alone.create_account("old", "h")
    finally:
        await alone.close()
    both = f"{first} {second}"
    refused = await _invoke(runner, ["user", "--store", both, "list"])
    assert refused.exit_code == 1 and "not set up as a shard" in refused.output
    migrated = await _invoke(runner, ["db", "migrate", "--store", both])
    assert migrated.exit_code == 0, migrated.output
    assert "schema of shard 1" in migrated.output and "is current" in migrated.output
    assert f"shard 2 ({second}) from version 0 to {len(MIGRATIONS)}" in migrated.output
    added = await _invoke(
        runner, ["user", "--store", both, "add", "bob", "--shard", "2", "--password-stdin"], "p\n"
    )
    assert added.exit_code == 0, added.output
    added = await _invoke(
        runner, ["user", "--store", both, "add", "carol", "--password-stdin"], "p\n"
    )
    assert added.exit_code == 0, added.output
    assert await names_on(second) == ["bob"]
    assert await names_on(first) == ["carol", "old"]  # 1 and 1: the first wins the tie
    listed = await _invoke(runner, ["user", "--store", both, "list"])
    assert listed.output.split() == ["bob", "carol", "old"]
    shards = await _invoke(runner, ["store", "shards", "--store", both])
    assert shards.exit_code == 0, shards.output
    rows = [line.split() for line in shards.output.splitlines()]
    assert rows == [["1", "2", "accounts", first], ["2", "1", "accounts", second]]
    wrong = await _invoke(
        runner, ["user", "--store", both, "add", "dan", "--shard", "3", "--password-stdin"], "p\n"
    )
    assert wrong.exit_code != 0 and "no shard 3" in wrong.output
    moved = await _invoke(runner, ["store", "move-account", "--store", both, "BOB", "--to", "1"])
    assert moved.exit_code == 0, moved.output
    assert "BOB is now served from shard 1" in moved.output
    assert await names_on(first) == ["bob", "carol", "old"]
    assert await names_on(second) == []
    shards = await _invoke(runner, ["store", "shards", "--store", both])
    assert [line.split()[1] for line in shards.output.splitlines()] == ["3", "0"]


async def _invoke(runner: CliRunner, args: list[str], stdin: str | None = None) -> Result:
    # The commands run their own event loop: off this test's.
    return await asyncio.to_thread(runner.invoke, main, args, input=stdin)


async def _state(store: ShardedStore, name: str) -> tuple[object, ...]:
    """What a client has cached of ``name``, and more: mailboxes with their ids and
    UIDVALIDITY, every message's UID, flags, modseq, thread and bytes, search, scripts,
    metadata, aliases, quota, credentials."""
    account = await store.open_account(name)
    try:
        boxes = await account.list_mailboxes()
        messages = []
        for box in boxes:
            status = await account.status(box.id)
            snapshot = await account.snapshot(box.id)
            metas = await account.fetch_meta(box.id, list(snapshot.uids))
            messages.append((box, status, snapshot))
            messages.append(await account.changes_since(box.id, 1))  # the expunge log too
            messages += [
                (m.uid, m.flags, m.modseq, m.thread_id, await read_all(account, m)) for m in metas
            ]
        inbox = await account.get_mailbox("INBOX")
        found = await account.search(inbox.id, SearchQuery(MatchText(TextField.BODY, "message 2")))
        return (
            messages,
            found,
            await account.list_scripts(),
            await account.get_metadata(None, ["/private/comment"]),
            await account.quota(),
            await store.list_aliases(name),
            await store.get_sign_in_record(name),
        )
    finally:
        await account.close()


async def _fill(store: ShardedStore, name: str) -> None:
    """An account with something in every table a move carries."""
    await store.set_password(name, "hash", "scram-keys")
    await store.set_quota_override(name, QuotaOverride(10**9, None))
    await store.add_alias(name, f"{name}-alias@example.org")
    await store.add_sharer("someone", name)
    await store.remember_sign_in_address(name, "192.0.2.1", 1000)
    assert await store.claim_submission(name, 1000.0, 3600.0, 10)
    await store.urlauth_key(name, "INBOX", create=True)
    account = await store.open_account(name)
    try:
        inbox = await account.get_mailbox("INBOX")
        await account.append(
            inbox.id, [new(message(n), frozenset({"\\Seen", "$Work"})) for n in (1, 2)]
        )
        await account.append("Archive", [new(message(3, body=b"x" * 600_000))])
        await account.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({"\\Deleted"}))
        assert await account.expunge(inbox.id, [1]) == [1]
        await account.append(inbox.id, [new(message(4))])
        await account.put_script("main", "keep;", "compiled", 1)
        await account.set_active_script("main")
        await account.sieve_track("vacation", "bob@example.org", 2000.0, 1000.0)
        await account.set_metadata(None, {"/private/comment": b"hello"}, 100)
        await account.set_acl(inbox.id, "bob", "lr")
    finally:
        await account.close()


async def test_a_moved_account_keeps_everything_and_leaves_its_old_shard(
    store: ShardedStore, urls: list[str]
) -> None:
    await store.create_account("alice", "h", shard=0)
    await store.create_account("bob", "h", shard=1)
    await _fill(store, "alice")
    before = await _state(store, "alice")
    lines: list[str] = []
    outcome = await move_account(store, "ALICE", 1, lines.append)
    assert (outcome.source, outcome.target, outcome.messages) == (0, 1, 3)
    assert await store.shard_of("alice") == 1
    assert await names_on(urls[0]) == []
    assert await names_on(urls[1]) == ["alice", "bob"]
    assert await _state(store, "alice") == before
    conn = await asyncpg.connect(urls[0])
    try:  # nothing of alice's is left on the first shard, bytes included
        assert await conn.fetchval("SELECT count(*) FROM blobs") == 0
        assert await conn.fetchval("SELECT count(*) FROM analyses") == 0
    finally:
        await conn.close()
    # It lives on: new mail continues its UIDs and modseqs; the alias is still its own.
    account = await store.open_account("alice")
    try:
        result = await account.append("INBOX", [new(message(5))])
        assert result.uids == [4]
    finally:
        await account.close()
    with pytest.raises(CannotDoThat):
        await store.add_alias("bob", "alice-alias@example.org")
    again = await move_account(store, "alice", 1, lines.append)
    assert (again.messages, again.leftovers) == (0, 0)


class Cut(Exception):
    """A crash of the mover, at the line it was about to print."""


def cut_at(words: str) -> Callable[[str], None]:
    def progress(line: str) -> None:
        if words in line:
            raise Cut(line)

    return progress


@pytest.mark.parametrize("words", ["verified the copy", "now served from"])
async def test_a_move_cut_short_serves_one_copy_and_the_next_run_cleans_up(
    store: ShardedStore, urls: list[str], words: str
) -> None:
    await store.create_account("alice", "h", shard=0)
    await _fill(store, "alice")
    before = await _state(store, "alice")
    with pytest.raises(Cut):
        await move_account(store, "alice", 1, cut_at(words))
    # A copy on each shard, the map naming one: one account, as it was.
    assert await names_on(urls[0]) == await names_on(urls[1]) == ["alice"]
    assert await store.list_accounts() == ["alice"]
    assert await _state(store, "alice") == before
    mapped = await store.shard_of("alice")
    assert mapped == (0 if words == "verified the copy" else 1)
    outcome = await move_account(store, "alice", 1, lambda _line: None)
    assert outcome.leftovers == 1
    assert await names_on(urls[0]) == []
    assert await _state(store, "alice") == before


async def test_an_account_in_the_first_database_but_not_in_the_map_is_found(
    store: ShardedStore, urls: list[str]
) -> None:
    """As ``roost store copy`` into the first shard leaves it, before ``db migrate``."""
    alone = await PostgresStore.open(urls[0], listen=False)
    try:
        await alone.create_account("old", "h")
    finally:
        await alone.close()
    assert await store.list_accounts() == ["old"]
    assert await store.get_password_hash("OLD") == "h"
    with pytest.raises(AccountExists):
        await store.create_account("old", "h")  # the least-loaded shard is the second
    assert await store.shard_of("old") == 0
    assert await names_on(urls[1]) == []


async def test_of_two_racing_creations_of_a_name_one_wins(
    store: ShardedStore, urls: list[str]
) -> None:
    for round_ in range(5):
        name = f"racer{round_}"
        outcomes = await asyncio.gather(
            store.create_account(name, "h", shard=0),
            store.create_account(name.upper(), "h", shard=1),
            return_exceptions=True,
        )
        assert sorted(type(o).__name__ for o in outcomes) == ["AccountExists", "NoneType"]
    listed = await store.list_accounts()
    assert len(listed) == 5
    assert sorted([*await names_on(urls[0]), *await names_on(urls[1])]) == sorted(listed)


async def test_a_move_replaces_what_the_target_kept_of_the_name(store: ShardedStore) -> None:
    """A grant to a name that was not yet an account stays on the first shard; the
    account, made on the second and moved to the first, takes its own over."""
    await store.add_sharer("carol", "alice")
    await store.create_account("alice", "h", shard=1)
    await store.add_sharer("dave", "alice")
    await move_account(store, "alice", 0, lambda _line: None)
    assert await store.sharers_of("alice") == ["dave"]


async def test_connection_slots_are_counted_site_wide_in_the_first_shard(
    urls: list[str],
) -> None:
    """Two nodes on a sharded store count one address's connections together, whichever
    shard an account is on: the slots live in the first shard, like the throttle."""
    one = await ShardedStore.open(urls, pool_size=2)
    two = await ShardedStore.open(urls, pool_size=2)
    slots_one = await one.node_slots(30.0)
    slots_two = await two.node_slots(30.0)
    try:
        claim = [("address", "192.0.2.9", 2)]
        assert isinstance(await slots_one.take(claim), list)
        assert isinstance(await slots_two.take(claim), list)
        assert await slots_one.take(claim) == 0  # the first (0th) claim is full, over both
        first = await asyncpg.connect(urls[0])
        try:
            assert await first.fetchval("SELECT count(*) FROM live_slots") == 2
        finally:
            await first.close()
    finally:
        await slots_one.close()
        await slots_two.close()
        await one.close()
        await two.close()
