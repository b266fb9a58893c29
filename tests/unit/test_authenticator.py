"""StoreAuthenticator: the one sign-in path. Same work whether or not the account
exists, case-insensitive names, throttling, logged failures, hash upgrades."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging

import pytest
from argon2 import PasswordHasher

from roost.auth import app_passwords, scram, totp
from roost.auth.authenticator import StoreAuthenticator, account_name_problem, find_account
from roost.auth.base import AuthResult, ScramParameters, ScramVerdict
from roost.auth.oauth import TokenValidator
from roost.auth.passwords import hash_password
from roost.auth.throttle import LoginThrottle, ThrottlePolicy
from roost.store.credentials import AppPasswordRecord, SignInRecord
from tests.support.tokens import TokenMaker

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
FASTER = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)


class FakeStore:
    """The sign-in part of the Store interface (credentials.SignInStore), in memory;
    names match in any case, as in SqliteStore."""

    def __init__(self, accounts: dict[str, str] | None = None) -> None:
        self.hashes = dict(accounts or {})
        self.scram: dict[str, str] = {}
        self.totp: dict[str, tuple[str, int]] = {}  # name -> (secret, last step)
        self.app_passwords: dict[str, list[AppPasswordRecord]] = {}
        self.lookups: list[str] = []
        self.listings = 0

    def _key(self, name: str) -> str | None:
        return next((key for key in self.hashes if key.casefold() == name.casefold()), None)

    async def get_sign_in_record(self, name: str) -> SignInRecord | None:
        self.lookups.append(name)
        key = self._key(name)
        if key is None:
            return None
        secret, last_step = self.totp.get(key, (None, 0))
        return SignInRecord(
            name=key,
            password_hash=self.hashes[key],
            scram_keys=self.scram.get(key),
            totp_secret=secret,
            totp_last_step=last_step,
            app_passwords=tuple(self.app_passwords.get(key, ())),
        )

    async def set_password_hash(self, name: str, password_hash: str) -> None:
        key = self._key(name)
        assert key is not None
        self.hashes[key] = password_hash

    async def accept_totp_step(self, name: str, step: int) -> bool:
        key = self._key(name)
        assert key is not None
        secret, last = self.totp[key]
        if step <= last:
            return False
        self.totp[key] = (secret, step)
        return True

    async def add_scram_keys(self, name: str, password_hash: str, scram_keys: str) -> bool:
        key = self._key(name)
        assert key is not None
        if self.hashes[key] != password_hash or key in self.scram:
            return False
        self.scram[key] = scram_keys
        return True

    async def app_password_used(self, name: str, selector: str, when: int) -> None:
        key = self._key(name)
        assert key is not None
        self.app_passwords[key] = [
            dataclasses.replace(a, last_used=when) if a.selector == selector else a
            for a in self.app_passwords[key]
        ]

    async def instance_secret(self) -> bytes:
        return b"s" * 32

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
    assert store.listings == 0  # the sign-in record carries the stored spelling


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
        ("Anyone", False),  # RFC 4314 §2: ACL identifiers of their own
        ("-bob", False),
        ("bob-smith", True),
    ],
)
def test_account_name_rules(name: str, ok: bool) -> None:
    assert (account_name_problem(name) is None) is ok


# ---- app passwords -------------------------------------------------------------------

APP_PASSWORD = "abcd-efgh-ijkl-mnop"


def add_app_password(store: FakeStore, account: str, password: str, label: str) -> None:
    normalised = app_passwords.normalise(password)
    assert normalised is not None
    store.app_passwords.setdefault(account, []).append(
        AppPasswordRecord(
            label=label,
            selector=app_passwords.selector(normalised),
            password_hash=hash_password(normalised, hasher=FAST),
            created=1,
        )
    )


async def test_app_password_signs_in_in_any_spelling_and_notes_its_use(store: FakeStore) -> None:
    add_app_password(store, "Alice@example.org", APP_PASSWORD, "Phone")
    authenticator, _ = make(store, clock=lambda: 5000.0)
    for typed in (APP_PASSWORD, "ABCD EFGH IJKL MNOP", "abcdefghijklmnop"):
        result = await authenticator.authenticate(
            "alice@example.org", typed, remote_ip="192.0.2.1", protocol="imap"
        )
        assert result.account == "Alice@example.org", typed
    assert store.app_passwords["Alice@example.org"][0].last_used == 5000
    # The account password still works too.
    result = await authenticator.authenticate(
        "alice@example.org", "pw", remote_ip="192.0.2.1", protocol="imap"
    )
    assert result.ok


async def test_only_the_selected_app_password_hash_is_checked(
    store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(10):
        add_app_password(store, "Alice@example.org", f"{chr(97 + n) * 4}-efgh-ijkl-mnop", f"d{n}")
    checked: list[str] = []
    from roost.auth import authenticator as module

    original = module.verify_password_async

    async def spy(password_hash: str, password: str, *, hasher: PasswordHasher) -> bool:
        checked.append(password)
        return await original(password_hash, password, hasher=hasher)

    monkeypatch.setattr(module, "verify_password_async", spy)
    authenticator, _ = make(store)
    result = await authenticator.authenticate(
        "alice@example.org", "eeee-efgh-ijkl-mnop", remote_ip="192.0.2.1", protocol="imap"
    )
    assert result.ok and checked == ["eeeeefghijklmnop"]
    checked.clear()
    result = await authenticator.authenticate(
        "alice@example.org", "zzzz-efgh-ijkl-mnop", remote_ip="192.0.2.1", protocol="imap"
    )
    assert not result.ok and len(checked) == 1  # no selector: the account password only


async def test_revoked_or_wrong_app_password_fails(store: FakeStore) -> None:
    add_app_password(store, "Alice@example.org", APP_PASSWORD, "Phone")
    authenticator, _ = make(store)
    wrong = "abcd-efgh-ijkl-mnoq"  # right selector, wrong rest
    result = await authenticator.authenticate(
        "alice@example.org", wrong, remote_ip="192.0.2.1", protocol="imap"
    )
    assert not result.ok and result.reason == "wrong password"
    store.app_passwords.clear()
    result = await authenticator.authenticate(
        "alice@example.org", APP_PASSWORD, remote_ip="192.0.2.1", protocol="imap"
    )
    assert not result.ok


# ---- two-factor ----------------------------------------------------------------------

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


class Clock:
    def __init__(self, now: float = 1_700_000_010.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def code(self, offset_steps: int = 0) -> str:
        return totp.code_at(TOTP_SECRET, totp.time_step(self.now) + offset_steps)


@pytest.fixture
def totp_store(store: FakeStore) -> FakeStore:
    store.totp["Alice@example.org"] = (TOTP_SECRET, 0)
    return store


async def sign_in(authenticator: StoreAuthenticator, password: str) -> AuthResult:
    return await authenticator.authenticate(
        "alice@example.org", password, remote_ip="192.0.2.1", protocol="imap"
    )


async def test_two_factor_refuses_the_password_alone(
    totp_store: FakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator, _ = make(totp_store, clock=Clock())
    caplog.set_level(logging.WARNING, logger="roost.auth")
    result = await sign_in(authenticator, "pw")
    assert not result.ok and result.reason == "two-factor code missing"
    assert "reason=two-factor_code_missing" in caplog.text


async def test_two_factor_accepts_password_and_code_once(totp_store: FakeStore) -> None:
    clock = Clock()
    authenticator, _ = make(totp_store, clock=clock)
    code = clock.code()
    assert (await sign_in(authenticator, "pw" + code)).ok
    replay = await sign_in(authenticator, "pw" + code)
    assert not replay.ok and replay.reason == "wrong or reused two-factor code"
    assert not (await sign_in(authenticator, "pw " + code)).ok  # no space
    assert not (await sign_in(authenticator, "pw" + clock.code(-1))).ok  # older step
    clock.now += totp.PERIOD
    assert (await sign_in(authenticator, "pw" + clock.code())).ok


async def test_two_factor_allows_one_step_of_clock_skew(totp_store: FakeStore) -> None:
    clock = Clock()
    authenticator, _ = make(totp_store, clock=clock)
    assert (await sign_in(authenticator, "pw" + clock.code(-1))).ok
    assert (await sign_in(authenticator, "pw" + clock.code(+1))).ok
    assert not (await sign_in(authenticator, "pw" + clock.code(+2))).ok


async def test_two_factor_wrong_password_with_right_code(totp_store: FakeStore) -> None:
    clock = Clock()
    authenticator, _ = make(totp_store, clock=clock)
    result = await sign_in(authenticator, "px" + clock.code())
    assert not result.ok and result.reason == "wrong password"
    assert totp_store.totp["Alice@example.org"][1] == 0  # the code was not used up


async def test_two_factor_lost_race_counts_as_a_replay(totp_store: FakeStore) -> None:
    clock = Clock()
    authenticator, _ = make(totp_store, clock=clock)
    code = clock.code()
    # Another sign-in accepted this step between our read and our write.
    original = totp_store.get_sign_in_record

    async def stale(name: str) -> SignInRecord | None:
        record = await original(name)
        totp_store.totp["Alice@example.org"] = (TOTP_SECRET, totp.time_step(clock.now))
        return record

    totp_store.get_sign_in_record = stale  # type: ignore[method-assign]
    result = await sign_in(authenticator, "pw" + code)
    assert not result.ok and result.reason == "reused two-factor code"


async def test_two_factor_app_password_needs_no_code(totp_store: FakeStore) -> None:
    add_app_password(totp_store, "Alice@example.org", APP_PASSWORD, "Phone")
    authenticator, _ = make(totp_store, clock=Clock())
    assert (await sign_in(authenticator, APP_PASSWORD)).ok


# ---- SCRAM ---------------------------------------------------------------------------


async def scram_sign_in(
    authenticator: StoreAuthenticator, user: str, password: str, ip: str = "192.0.2.1"
) -> tuple[ScramVerdict | AuthResult, bytes]:
    """A client's side of SCRAM against the authenticator: (verdict, expected v=)."""
    parameters = await authenticator.scram_parameters(user, remote_ip=ip, protocol="imap")
    if isinstance(parameters, AuthResult):
        return parameters, b""
    keys = scram.derive_keys(password, salt=parameters.salt, iterations=parameters.iterations)
    salted = scram.salted_password(password, parameters.salt, parameters.iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    message = b"n=user,r=abc,r=abcdef,s=c2FsdA==,i=4096,c=biws,r=abcdef"
    signature = hmac.new(keys.stored_key, message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    verdict = await authenticator.verify_scram(user, message, proof, remote_ip=ip, protocol="imap")
    return verdict, hmac.new(keys.server_key, message, hashlib.sha256).digest()


async def test_scram_with_stored_keys(store: FakeStore) -> None:
    store.scram["Alice@example.org"] = scram.derive_keys("pw", iterations=4096).encode()
    authenticator, _ = make(store)
    verdict, server_signature = await scram_sign_in(authenticator, "ALICE@example.org", "pw")
    assert isinstance(verdict, ScramVerdict)
    assert verdict.result.account == "Alice@example.org"
    assert verdict.server_signature == server_signature
    verdict, _ = await scram_sign_in(authenticator, "alice@example.org", "wrong")
    assert isinstance(verdict, ScramVerdict) and not verdict.result.ok
    assert verdict.server_signature == b""


async def test_scram_without_keys_fails_with_a_clear_log_line(
    store: FakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator, _ = make(store)
    caplog.set_level(logging.WARNING, logger="roost.auth")
    verdict, _ = await scram_sign_in(authenticator, "alice@example.org", "pw")
    assert isinstance(verdict, ScramVerdict) and not verdict.result.ok
    assert "reason=no_SCRAM_keys:_set_the_password_again_(roost_user_passwd)" in caplog.text


async def test_scram_parameters_do_not_tell_whether_an_account_exists(store: FakeStore) -> None:
    store.scram["Alice@example.org"] = scram.derive_keys("pw", iterations=8192).encode()
    authenticator, _ = make(store)
    real = await authenticator.scram_parameters("alice@example.org", remote_ip="::1", protocol="x")
    ghost = await authenticator.scram_parameters("ghost", remote_ip="::1", protocol="x")
    again = await authenticator.scram_parameters("GHOST", remote_ip="::1", protocol="x")
    assert isinstance(real, ScramParameters) and isinstance(ghost, ScramParameters)
    assert ghost == again  # stable, as a real account's salt is
    assert len(ghost.salt) == len(real.salt) and ghost.iterations == real.iterations
    verdict, _ = await scram_sign_in(authenticator, "ghost", "pw")
    assert isinstance(verdict, ScramVerdict) and verdict.result.reason == "no such account"


async def test_scram_is_refused_with_two_factor_on(totp_store: FakeStore) -> None:
    totp_store.scram["Alice@example.org"] = scram.derive_keys("pw", iterations=4096).encode()
    authenticator, _ = make(totp_store)
    verdict, _ = await scram_sign_in(authenticator, "alice@example.org", "pw")
    assert isinstance(verdict, ScramVerdict) and not verdict.result.ok
    assert "two-factor" in verdict.result.reason


async def test_scram_is_throttled(store: FakeStore) -> None:
    store.scram["Alice@example.org"] = scram.derive_keys("pw", iterations=4096).encode()
    policy = ThrottlePolicy(base_delay=0.5, max_delay=4, max_failures_per_ip=2)
    authenticator, slept = make(store, policy)
    for _ in range(2):
        await scram_sign_in(authenticator, "alice@example.org", "bad")
    assert slept == [0.5]
    verdict, _ = await scram_sign_in(authenticator, "alice@example.org", "pw")
    assert isinstance(verdict, AuthResult) and verdict.throttled


# ---- bearer tokens -------------------------------------------------------------------

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def tokens() -> TokenMaker:
    return TokenMaker()


async def token_sign_in(
    authenticator: StoreAuthenticator, user: str | None, token: str
) -> AuthResult:
    return await authenticator.authenticate_token(
        user, token, remote_ip="192.0.2.1", protocol="imap"
    )


async def test_tokens(store: FakeStore, tokens: TokenMaker) -> None:
    validator = TokenValidator([tokens.issuer()], clock=lambda: NOW)
    authenticator, _ = make(store, tokens=validator)
    assert authenticator.accepts_tokens
    token = tokens.token("alice@EXAMPLE.org", now=NOW)
    assert (await token_sign_in(authenticator, None, token)).account == "Alice@example.org"
    assert (await token_sign_in(authenticator, "Alice@example.org", token)).ok
    other = await token_sign_in(authenticator, "bob@example.org", token)
    assert not other.ok and other.reason == "token issued for another user"
    expired = await token_sign_in(
        authenticator, None, tokens.token("alice@example.org", now=NOW - 7200)
    )
    assert not expired.ok and expired.reason == "token refused: token expired"
    nobody = await token_sign_in(authenticator, None, tokens.token("nobody@x", now=NOW))
    assert not nobody.ok and nobody.reason == "no such account"


async def test_tokens_with_two_factor_need_no_code(
    totp_store: FakeStore, tokens: TokenMaker
) -> None:
    authenticator, _ = make(totp_store, tokens=TokenValidator([tokens.issuer()], clock=lambda: NOW))
    assert (await token_sign_in(authenticator, None, tokens.token(now=NOW))).ok


async def test_without_issuers_tokens_are_refused(store: FakeStore, tokens: TokenMaker) -> None:
    authenticator, _ = make(store)
    assert not authenticator.accepts_tokens
    assert not (await token_sign_in(authenticator, None, tokens.token(now=NOW))).ok


async def test_a_correct_password_makes_missing_scram_keys(store: FakeStore) -> None:
    authenticator, _ = make(store)
    verdict, _ = await scram_sign_in(authenticator, "alice@example.org", "pw")
    assert isinstance(verdict, ScramVerdict) and not verdict.result.ok
    assert (await sign_in(authenticator, "pw")).ok  # PLAIN or LOGIN
    assert "Alice@example.org" in store.scram
    verdict, _ = await scram_sign_in(authenticator, "alice@example.org", "pw")
    assert isinstance(verdict, ScramVerdict) and verdict.result.ok
    authenticator, _ = make(FakeStore({"bob": hash_password("pw", hasher=FAST)}), scram=False)
    assert not authenticator.offers_scram


async def test_anonymous_token_failures_are_throttled_per_address(
    store: FakeStore, tokens: TokenMaker
) -> None:
    """A token without a name must not share one throttle key with everyone's."""
    policy = ThrottlePolicy(max_failures_per_ip=50, max_failures_per_account=3)
    validator = TokenValidator([tokens.issuer()], clock=lambda: NOW)
    authenticator, _ = make(store, policy, tokens=validator)
    for n in range(5):
        result = await authenticator.authenticate_token(
            None, "garbage", remote_ip=f"198.51.100.{n}", protocol="imap"
        )
        assert not result.throttled
    result = await authenticator.authenticate_token(
        None, tokens.token(now=NOW), remote_ip="203.0.113.1", protocol="imap"
    )
    assert result.ok
