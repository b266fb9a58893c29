"""StoreAuthenticator: the one sign-in path. Same work whether or not the account
exists, case-insensitive names, throttling, logged failures, hash upgrades."""

from __future__ import annotations

import logging

import pytest
from argon2 import PasswordHasher

from roost.auth.authenticator import StoreAuthenticator, account_name_problem, find_account
from roost.auth.passwords import hash_password
from roost.auth.throttle import LoginThrottle, ThrottlePolicy

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
FASTER = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)


class FakeStore:
    """The credential part of the Store interface, in memory; names match in any case,
    as in SqliteStore."""

    def __init__(self, accounts: dict[str, str] | None = None) -> None:
        self.hashes = dict(accounts or {})
        self.lookups: list[str] = []
        self.listings = 0

    def _key(self, name: str) -> str | None:
        return next((key for key in self.hashes if key.casefold() == name.casefold()), None)

    async def get_password_hash(self, name: str) -> str | None:
        self.lookups.append(name)
        key = self._key(name)
        return self.hashes[key] if key is not None else None

    async def set_password_hash(self, name: str, password_hash: str) -> None:
        key = self._key(name)
        assert key is not None
        self.hashes[key] = password_hash

    async def list_accounts(self) -> list[str]:
        self.listings += 1
        return sorted(self.hashes)


def make(
    store: FakeStore, policy: ThrottlePolicy | None = None, **kwargs: object
) -> tuple[StoreAuthenticator, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    throttle = LoginThrottle(policy or ThrottlePolicy.disabled(), sleep=sleep)
    authenticator = StoreAuthenticator(store, throttle, hasher=FAST, **kwargs)  # type: ignore[arg-type]
    return authenticator, slept


@pytest.fixture
def store() -> FakeStore:
    return FakeStore({"Alice@example.org": hash_password("pw", hasher=FAST)})


async def test_success_returns_the_canonical_name(store: FakeStore) -> None:
    authenticator, _ = make(store)
    result = await authenticator.authenticate(
        "alice@EXAMPLE.org", "pw", remote_ip="192.0.2.1", protocol="imap"
    )
    assert result.ok and result.account == "Alice@example.org"
    result = await authenticator.authenticate(
        "ALICE@example.org", "pw", remote_ip="192.0.2.1", protocol="imap"
    )
    assert result.account == "Alice@example.org"
    assert store.listings == 1  # cached


async def test_failures_never_list_the_accounts(store: FakeStore) -> None:
    authenticator, _ = make(store)
    for name in ("alice@example.org", "nobody", "x"):
        await authenticator.authenticate(name, "wrong", remote_ip="192.0.2.1", protocol="imap")
    assert store.listings == 0


async def test_wrong_password_and_unknown_account_look_the_same(
    store: FakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator, _ = make(store)
    caplog.set_level(logging.WARNING, logger="roost.auth")
    wrong = await authenticator.authenticate(
        "Alice@example.org", "nope", remote_ip="192.0.2.1", protocol="imap"
    )
    unknown = await authenticator.authenticate(
        "mallory", "pw", remote_ip="192.0.2.1", protocol="imap"
    )
    assert not wrong.ok and not unknown.ok
    assert not wrong.throttled and not unknown.throttled
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "auth failure ip=192.0.2.1 user=Alice@example.org protocol=imap reason=wrong_password",
        "auth failure ip=192.0.2.1 user=mallory protocol=imap reason=no_such_account",
    ]
    assert all(record.levelno == logging.WARNING for record in caplog.records)


async def test_unknown_account_still_checks_a_dummy_hash(
    store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    from roost.auth import authenticator as module

    original = module.verify_password_async

    async def spy(password_hash: str, password: str, *, hasher: PasswordHasher) -> bool:
        checked.append(password_hash)
        return await original(password_hash, password, hasher=hasher)

    monkeypatch.setattr(module, "verify_password_async", spy)
    authenticator, _ = make(store)
    await authenticator.authenticate("nobody", "pw", remote_ip="192.0.2.1", protocol="imap")
    assert len(checked) == 1 and checked[0].startswith("$argon2id$v=19$m=1024,t=1,p=1$")


async def test_log_lines_cannot_be_forged_through_the_user_name(
    store: FakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator, _ = make(store)
    caplog.set_level(logging.WARNING, logger="roost.auth")
    await authenticator.authenticate(
        "x reason=ok\nfake line", "pw", remote_ip="192.0.2.1", protocol="imap"
    )
    (message,) = [record.getMessage() for record in caplog.records]
    assert "\n" not in message
    assert "user=x\\x20reason=ok\\x0afake\\x20line " in message


async def test_throttled_address_is_refused_without_checking(store: FakeStore) -> None:
    policy = ThrottlePolicy(base_delay=0.5, max_delay=4, max_failures_per_ip=3)
    authenticator, slept = make(store, policy)
    for _ in range(3):
        result = await authenticator.authenticate(
            "Alice@example.org", "bad", remote_ip="192.0.2.1", protocol="imap"
        )
        assert not result.throttled
    assert slept == [0.5, 1.0]
    lookups_before = len(store.lookups)
    result = await authenticator.authenticate(
        "Alice@example.org", "pw", remote_ip="192.0.2.1", protocol="imap"
    )
    assert result.throttled and not result.ok
    assert len(store.lookups) == lookups_before  # refused before any lookup
    # The owner, from another address, gets in after a short capped delay.
    result = await authenticator.authenticate(
        "Alice@example.org", "pw", remote_ip="203.0.113.5", protocol="imap"
    )
    assert result.ok
    assert slept[-1] <= policy.max_account_delay


async def test_success_resets_that_accounts_delay_for_that_address(store: FakeStore) -> None:
    policy = ThrottlePolicy(base_delay=1, max_delay=8, max_failures_per_ip=10)
    authenticator, slept = make(store, policy)
    await authenticator.authenticate(
        "alice@example.org", "x", remote_ip="192.0.2.1", protocol="imap"
    )
    assert (
        await authenticator.authenticate(
            "alice@example.org", "pw", remote_ip="192.0.2.1", protocol="imap"
        )
    ).ok
    slept.clear()
    await authenticator.authenticate(
        "alice@example.org", "pw", remote_ip="192.0.2.1", protocol="imap"
    )
    assert slept == []


async def test_outdated_hash_is_upgraded_on_success() -> None:
    store = FakeStore({"bob": hash_password("pw", hasher=FASTER)})
    authenticator, _ = make(store)
    assert (await authenticator.authenticate("bob", "pw", remote_ip="::1", protocol="imap")).ok
    assert "m=1024," in store.hashes["bob"]
    store_no_rehash = FakeStore({"bob": hash_password("pw", hasher=FASTER)})
    authenticator, _ = make(store_no_rehash, rehash=False)
    assert (await authenticator.authenticate("bob", "pw", remote_ip="::1", protocol="imap")).ok
    assert "m=512," in store_no_rehash.hashes["bob"]


async def test_absurd_user_names_fail_without_lookup(store: FakeStore) -> None:
    authenticator, _ = make(store)
    for name in ("", "a" * 300):
        result = await authenticator.authenticate(name, "pw", remote_ip="::1", protocol="imap")
        assert not result.ok
    assert store.lookups == []


async def test_find_account(store: FakeStore) -> None:
    assert await find_account(store, "Alice@example.org") == "Alice@example.org"  # type: ignore[arg-type]
    assert await find_account(store, "ALICE@EXAMPLE.ORG") == "Alice@example.org"  # type: ignore[arg-type]
    assert await find_account(store, "bob") is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("alice", True),
        ("alice@example.org", True),
        ("first.last+tag@example.org", True),
        ("j\u00f6rg", True),
        ("a" * 255, True),
        ("", False),
        ("a" * 256, False),
        ("two words", False),
        ("tab\there", False),
        ("new\nline", False),
        ("nul\x00", False),
        ("a/b", False),
        ("\u2028", False),
    ],
)
def test_account_name_rules(name: str, ok: bool) -> None:
    assert (account_name_problem(name) is None) is ok
