"""The authentication cache (auth/cache.py) and the fast app-password hashes
(auth/app_passwords.py): a secret that passed argon2id lately is recognised without it,
but only for the credential record it passed against, and never after a failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from roost.auth import app_passwords, manage, totp
from roost.auth.authenticator import StoreAuthenticator
from roost.auth.cache import AuthCache
from roost.auth.passwords import hash_password
from roost.auth.throttle import LoginThrottle, ThrottlePolicy
from roost.store.credentials import AppPasswordRecord, SignInRecord
from roost.store.sqlite import SqliteStore


class CountingHasher(PasswordHasher):
    """Cheap argon2id parameters, and a count of the verifications (dummy ones too)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verifications += 1
        return super().verify(hash, password)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


NOW = 1_800_000_010.0  # the wall clock for TOTP codes
LEGACY_APP_PASSWORD = "wxyz-abcd-efgh-ijkl"  # 16 letters: kept on argon2id


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(tmp_path / "data", durable=False)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def monotonic() -> Clock:
    return Clock()


@pytest.fixture
def auth(store: SqliteStore, hasher: CountingHasher, monotonic: Clock) -> StoreAuthenticator:
    return StoreAuthenticator(
        store,
        LoginThrottle(ThrottlePolicy.disabled()),
        hasher=hasher,
        rehash=False,
        clock=lambda: NOW,
        cache=AuthCache(ttl=3600.0, size=100, clock=monotonic),
    )


async def sign_in(auth: StoreAuthenticator, password: str, name: str = "alice") -> str | None:
    result = await auth.authenticate(name, password, remote_ip="192.0.2.1", protocol="test")
    return result.account if result.ok else result.reason


# ---- the cache alone -------------------------------------------------------------------


RECORD = SignInRecord(name="alice", password_hash="$argon2id$...a")


def test_a_tag_is_kept_for_ttl_seconds(monotonic: Clock) -> None:
    cache = AuthCache(ttl=60.0, size=10, clock=monotonic)
    tag = cache.password_tag(RECORD, "pencil")
    assert not cache.contains(tag)
    cache.add(tag)
    monotonic.now += 59.9
    assert cache.contains(tag)
    monotonic.now += 0.1
    assert not cache.contains(tag) and len(cache) == 0


def test_the_least_recently_used_tag_is_evicted(monotonic: Clock) -> None:
    cache = AuthCache(ttl=60.0, size=2, clock=monotonic)
    a, b, c = (cache.password_tag(RECORD, p) for p in ("a", "b", "c"))
    cache.add(a)
    cache.add(b)
    assert cache.contains(a)  # now b is the least recently used
    cache.add(c)
    assert cache.contains(a) and cache.contains(c) and not cache.contains(b)
    assert len(cache) == 2


def test_size_zero_disables(monotonic: Clock) -> None:
    cache = AuthCache(ttl=60.0, size=0, clock=monotonic)
    tag = cache.password_tag(RECORD, "pencil")
    cache.add(tag)
    assert not cache.enabled and not cache.contains(tag)


def test_tags_depend_on_the_secret_the_record_and_the_process_key() -> None:
    cache = AuthCache()
    tag = cache.password_tag(RECORD, "pencil")
    assert len(tag) == 32 and b"pencil" not in tag
    assert tag != cache.password_tag(RECORD, "pencil2")
    for changed in (
        SignInRecord(name="bob", password_hash=RECORD.password_hash),
        SignInRecord(name="alice", password_hash="$argon2id$...b"),
        SignInRecord(name="alice", password_hash=RECORD.password_hash, totp_secret="JBSW"),
    ):
        assert tag != cache.password_tag(changed, "pencil")
    # Field boundaries count: ("ab", "c") is not ("a", "bc").
    assert cache.password_tag(SignInRecord("ab", "c"), "") != cache.password_tag(
        SignInRecord("a", "bc"), ""
    )
    assert tag != AuthCache().password_tag(RECORD, "pencil")  # another process


# ---- through the authenticator ---------------------------------------------------------


async def test_a_second_sign_in_skips_argon2_but_still_reads_the_store(
    store: SqliteStore,
    auth: StoreAuthenticator,
    hasher: CountingHasher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await manage.create_account(store, "Alice", "pencil", hasher=hasher)
    reads: list[str] = []
    original = store.get_sign_in_record

    async def counting(name: str) -> SignInRecord | None:
        reads.append(name)
        return await original(name)

    monkeypatch.setattr(store, "get_sign_in_record", counting)
    assert await sign_in(auth, "pencil") == "Alice"
    assert hasher.verifications == 1
    assert await sign_in(auth, "pencil", "ALICE") == "Alice"
    assert hasher.verifications == 1 and reads == ["alice", "ALICE"]


async def test_a_wrong_password_on_a_cached_account_takes_the_slow_path(
    store: SqliteStore, auth: StoreAuthenticator, hasher: CountingHasher
) -> None:
    await manage.create_account(store, "alice", "pencil", hasher=hasher)
    assert await sign_in(auth, "pencil") == "alice"
    for _ in range(2):  # a failure is never cached: the second costs the same
        before = hasher.verifications
        assert await sign_in(auth, "pencil!") == "wrong password"
        assert hasher.verifications == before + 1
    assert len(auth.cache) == 1


async def test_the_cache_forgets_after_ttl(
    store: SqliteStore, auth: StoreAuthenticator, hasher: CountingHasher, monotonic: Clock
) -> None:
    await manage.create_account(store, "alice", "pencil", hasher=hasher)
    await sign_in(auth, "pencil")
    monotonic.now += 3599
    await sign_in(auth, "pencil")
    assert hasher.verifications == 1
    monotonic.now += 3600
    assert await sign_in(auth, "pencil") == "alice"
    assert hasher.verifications == 2


async def test_a_password_change_misses_the_cache(
    store: SqliteStore, auth: StoreAuthenticator, hasher: CountingHasher
) -> None:
    await manage.create_account(store, "alice", "pencil", hasher=hasher)
    await sign_in(auth, "pencil")
    await manage.set_password(store, "alice", "crayon", hasher=hasher)  # as another process
    assert await sign_in(auth, "pencil") == "wrong password"
    assert await sign_in(auth, "crayon") == "alice"
    assert hasher.verifications == 3


async def test_account_deletion_misses_the_cache(
    store: SqliteStore, auth: StoreAuthenticator, hasher: CountingHasher
) -> None:
    await manage.create_account(store, "alice", "pencil", hasher=hasher)
    await sign_in(auth, "pencil")
    await store.delete_account("alice")
    assert await sign_in(auth, "pencil") == "no such account"
    assert hasher.verifications == 2  # the dummy check: unknown names cost the same
    await manage.create_account(store, "alice", "pencil", hasher=hasher)  # a new salt
    assert await sign_in(auth, "pencil") == "alice"
    assert hasher.verifications == 3


async def test_two_factor_is_checked_at_every_sign_in(
    store: SqliteStore, auth: StoreAuthenticator, hasher: CountingHasher
) -> None:
    await manage.create_account(store, "alice", "pencil", hasher=hasher)
    await sign_in(auth, "pencil")
    secret = await manage.enable_totp(store, "alice")
    # Two-factor on: the cached password alone misses, and is refused.
    assert await sign_in(auth, "pencil") == "two-factor code missing"
    assert hasher.verifications == 2
    step = totp.time_step(NOW)
    assert await sign_in(auth, "pencil" + totp.code_at(secret, step - 1)) == "alice"
    assert hasher.verifications == 3
    # Cached now, but the code is still checked — and a failure still costs a check.
    for attempt in ("pencil", "pencil" + totp.code_at(secret, step - 1), "pencil000000"):
        before = hasher.verifications
        assert await sign_in(auth, attempt) != "alice", attempt
        assert hasher.verifications == before + 1
    assert await sign_in(auth, "pencil" + totp.code_at(secret, step)) == "alice"
    assert hasher.verifications == 6  # the three failures, not this success


async def test_turning_two_factor_off_misses_the_cache(
    store: SqliteStore, auth: StoreAuthenticator, hasher: CountingHasher
) -> None:
    await manage.create_account(store, "alice", "pencil", hasher=hasher)
    secret = await manage.enable_totp(store, "alice")
    assert await sign_in(auth, "pencil" + totp.code_at(secret, totp.time_step(NOW))) == "alice"
    await manage.disable_totp(store, "alice")
    assert await sign_in(auth, "pencil") == "alice"
    assert await sign_in(auth, "pencil") == "alice"
    assert hasher.verifications == 2


async def add_legacy_app_password(store: SqliteStore, hasher: PasswordHasher) -> None:
    normalised = app_passwords.normalise(LEGACY_APP_PASSWORD)
    assert normalised is not None
    await store.add_app_password(
        "alice",
        AppPasswordRecord(
            "Old phone",
            app_passwords.selector(normalised),
            hash_password(normalised, hasher=hasher),
        ),
    )


async def test_a_revoked_app_password_misses_the_cache(
    store: SqliteStore, auth: StoreAuthenticator, hasher: CountingHasher
) -> None:
    await manage.create_account(store, "alice", "pencil", hasher=hasher)
    await add_legacy_app_password(store, hasher)
    assert await sign_in(auth, LEGACY_APP_PASSWORD) == "alice"
    assert await sign_in(auth, LEGACY_APP_PASSWORD.upper()) == "alice"
    assert hasher.verifications == 1
    assert await store.delete_app_password("alice", "old phone")
    assert await sign_in(auth, LEGACY_APP_PASSWORD) == "wrong password"
    assert hasher.verifications == 2  # then checked as the account password
    record = await store.get_sign_in_record("alice")
    assert record is not None and not record.app_passwords


async def test_a_legacy_app_password_keeps_its_argon2id_hash(
    store: SqliteStore, auth: StoreAuthenticator, hasher: CountingHasher
) -> None:
    await manage.create_account(store, "alice", "pencil", hasher=hasher)
    await add_legacy_app_password(store, hasher)
    await sign_in(auth, LEGACY_APP_PASSWORD)
    record = await store.get_sign_in_record("alice")
    assert record is not None
    assert record.app_passwords[0].password_hash.startswith("$argon2id$")


# ---- fast app-password hashes ----------------------------------------------------------


async def test_a_new_app_password_never_runs_argon2(
    store: SqliteStore, auth: StoreAuthenticator, hasher: CountingHasher
) -> None:
    await manage.create_account(store, "alice", "pencil", hasher=hasher)
    auth.cache = AuthCache(size=0)
    password = await manage.add_app_password(store, "alice", "Phone")
    assert await sign_in(auth, password) == "alice"
    assert hasher.verifications == 0
    wrong = password[:-1] + ("a" if password[-1] != "a" else "b")  # right selector
    assert await sign_in(auth, wrong) == "wrong password"
    assert hasher.verifications == 1  # a failure checks the account password: slow


async def test_an_argon2_hash_of_a_strong_app_password_is_upgraded(
    store: SqliteStore, auth: StoreAuthenticator, hasher: CountingHasher
) -> None:
    await manage.create_account(store, "alice", "pencil", hasher=hasher)
    password = app_passwords.generate()
    normalised = app_passwords.normalise(password)
    assert normalised is not None
    await store.add_app_password(
        "alice",
        AppPasswordRecord(
            "Phone", app_passwords.selector(normalised), hash_password(normalised, hasher=hasher)
        ),
    )
    assert await sign_in(auth, password) == "alice"
    record = await store.get_sign_in_record("alice")
    assert record is not None
    assert record.app_passwords[0].password_hash == app_passwords.fast_hash(normalised)
    assert await sign_in(auth, password) == "alice"
    assert hasher.verifications == 1


def test_fast_hash_checks() -> None:
    letters = "abcdefghijklmnopqrstuvwxyzab"
    stored = app_passwords.fast_hash(letters)
    assert app_passwords.is_fast_hash(stored) and letters not in stored
    assert app_passwords.verify_fast(stored, letters)
    assert not app_passwords.verify_fast(stored, letters[:-1] + "c")
    assert not app_passwords.verify_fast("$argon2id$v=19$...", letters)
