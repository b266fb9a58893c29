"""Failed sign-in throttling: growing delays, refusal per address, none per account,
bounded memory. A fake clock and a recording sleep: no real waiting."""

from __future__ import annotations

import pytest

from roost.auth.throttle import LoginThrottle, ThrottleDecision, ThrottlePolicy, address_key

POLICY = ThrottlePolicy(
    base_delay=1.0,
    max_delay=8.0,
    max_account_delay=2.0,
    max_failures_per_ip=5,
    window=100.0,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> LoginThrottle:
    return LoginThrottle(POLICY, clock=clock)


def fail(throttle: LoginThrottle, ip: str, account: str, times: int) -> None:
    for _ in range(times):
        throttle.record_failure(ip, account)


def test_no_delay_before_any_failure(throttle: LoginThrottle) -> None:
    assert throttle.check("192.0.2.1", "alice") == ThrottleDecision(0.0, refused=False)


def test_delay_doubles_per_failure_up_to_the_cap(throttle: LoginThrottle) -> None:
    # The account's cap is lower, so vary the account to see the address's delay.
    delays = []
    for n in range(4):
        throttle.record_failure("192.0.2.1", f"user{n}")
        delays.append(throttle.check("192.0.2.1", "someone-else").delay)
    assert delays == [1.0, 2.0, 4.0, 8.0]
    throttle.record_failure("192.0.2.1", "user9")  # 5th failure: refused now
    assert throttle.check("192.0.2.1", "x").refused


def test_address_is_refused_after_k_failures_then_forgiven(
    throttle: LoginThrottle, clock: Clock
) -> None:
    fail(throttle, "192.0.2.1", "alice", 4)
    assert not throttle.check("192.0.2.1", "alice").refused
    fail(throttle, "192.0.2.1", "alice", 1)
    assert throttle.check("192.0.2.1", "alice").refused
    assert throttle.check("192.0.2.1", "bob").refused  # refusal is per address
    assert not throttle.check("192.0.2.2", "bob").refused
    clock.now += POLICY.window + 1
    assert throttle.check("192.0.2.1", "alice") == ThrottleDecision(0.0, refused=False)


def test_account_alone_is_never_refused_and_its_delay_is_capped(throttle: LoginThrottle) -> None:
    """Guessing one account's password from many addresses must not lock its owner out."""
    for n in range(50):
        throttle.record_failure(f"198.51.100.{n}", "alice")
    decision = throttle.check("203.0.113.7", "alice")  # the owner, from a fresh address
    assert decision == ThrottleDecision(delay=POLICY.max_account_delay, refused=False)
    assert throttle.check("203.0.113.7", "bob").delay == 0.0


def test_account_names_are_throttled_case_insensitively(throttle: LoginThrottle) -> None:
    fail(throttle, "198.51.100.1", "Alice", 3)
    assert throttle.check("198.51.100.9", "ALICE").delay == POLICY.max_account_delay


def test_success_clears_that_accounts_failures_from_that_address(throttle: LoginThrottle) -> None:
    fail(throttle, "192.0.2.1", "alice", 3)
    fail(throttle, "192.0.2.1", "bob", 1)
    fail(throttle, "192.0.2.2", "alice", 1)
    throttle.record_success("192.0.2.1", "alice")
    # Bob's failure from that address still counts; alice's from elsewhere too.
    assert throttle.check("192.0.2.1", "carol").delay == 1.0
    assert throttle.check("192.0.2.3", "alice").delay == 1.0


def test_success_on_own_account_does_not_clear_guesses_at_others(throttle: LoginThrottle) -> None:
    fail(throttle, "192.0.2.1", "victim", 4)
    throttle.record_success("192.0.2.1", "attacker")
    throttle.record_failure("192.0.2.1", "victim")
    assert throttle.check("192.0.2.1", "victim").refused


def test_ipv6_addresses_share_their_64(throttle: LoginThrottle) -> None:
    fail(throttle, "2001:db8:1:2::1", "a", 3)
    fail(throttle, "2001:db8:1:2:ffff::9", "b", 2)
    assert throttle.check("2001:db8:1:2::77", "c").refused
    assert not throttle.check("2001:db8:1:3::1", "c").refused


def test_address_keys() -> None:
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("2001:db8::1") == "2001:db8::/64"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("not an address") == "not an address"


def test_disabled_policy_never_delays_or_refuses(clock: Clock) -> None:
    throttle = LoginThrottle(ThrottlePolicy.disabled(), clock=clock)
    fail(throttle, "192.0.2.1", "alice", 1000)
    assert throttle.check("192.0.2.1", "alice") == ThrottleDecision(0.0, refused=False)


def test_memory_is_bounded(clock: Clock) -> None:
    throttle = LoginThrottle(
        ThrottlePolicy(window=100.0, max_tracked=10, max_failures_per_ip=3), clock=clock
    )
    for n in range(1000):
        throttle.record_failure(f"10.0.{n // 256}.{n % 256}", f"user{n}")
    addresses, accounts = throttle.tracked
    assert addresses <= 10 and accounts <= 10
    # The most recent survive.
    assert throttle.check("10.0.3.231", "x").delay > 0


def test_stale_entries_are_pruned_as_time_passes(clock: Clock) -> None:
    throttle = LoginThrottle(POLICY, clock=clock)
    for n in range(100):
        throttle.record_failure(f"10.0.0.{n}", f"user{n}")
    clock.now += POLICY.window + 1
    throttle.record_failure("10.9.9.9", "late")
    assert throttle.tracked == (1, 1)


async def test_wait_turn_sleeps_the_delay_with_the_injected_sleep(clock: Clock) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    throttle = LoginThrottle(POLICY, clock=clock, sleep=sleep)
    assert await throttle.wait_turn("192.0.2.1", "alice")
    assert slept == []
    fail(throttle, "192.0.2.1", "alice", 2)
    assert await throttle.wait_turn("192.0.2.1", "alice")
    assert slept == [2.0]
    fail(throttle, "192.0.2.1", "alice", 3)
    assert not await throttle.wait_turn("192.0.2.1", "alice")
    assert slept == [2.0]


# ---- distributed guessing and parallel attempts ----------------------------------------

ACCOUNT_POLICY = ThrottlePolicy(
    base_delay=1.0,
    max_delay=8.0,
    max_account_delay=2.0,
    max_failures_per_ip=5,
    max_failures_per_account=20,
    window=100.0,
    trust_period=1000.0,
)


def test_account_guessed_from_many_addresses_is_refused_to_strangers_only(
    clock: Clock,
) -> None:
    """The issue's rule: a temporary refusal, without locking the owner out for long —
    the owner's usual addresses keep working, a new one waits out the window."""
    throttle = LoginThrottle(ACCOUNT_POLICY, clock=clock)
    throttle.record_success("203.0.113.7", "alice")  # the owner's usual address
    for n in range(20):
        throttle.record_failure(f"198.51.100.{n}", "alice")
    assert throttle.check("198.51.100.99", "alice").refused  # a new address
    assert throttle.check("2001:db8::1", "ALICE").refused
    owner = throttle.check("203.0.113.7", "alice")
    assert not owner.refused and owner.delay == ACCOUNT_POLICY.max_account_delay
    assert not throttle.check("198.51.100.99", "bob").refused  # other accounts unaffected
    clock.now += ACCOUNT_POLICY.window + 1
    assert throttle.check("198.51.100.99", "alice") == ThrottleDecision(0.0, refused=False)


def test_trust_in_an_address_expires(clock: Clock) -> None:
    throttle = LoginThrottle(ACCOUNT_POLICY, clock=clock)
    throttle.record_success("203.0.113.7", "alice")
    clock.now += ACCOUNT_POLICY.trust_period + 1
    for n in range(20):
        throttle.record_failure(f"198.51.100.{n}", "alice")
    assert throttle.check("203.0.113.7", "alice").refused


async def test_parallel_attempts_after_a_failure_meet_growing_delays(clock: Clock) -> None:
    """Each attempt that begins once the address has failed counts at once: ten
    connections opened together do not all get the first delay."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    throttle = LoginThrottle(POLICY, clock=clock, sleep=sleep)
    throttle.record_failure("192.0.2.1", "x")
    turns = [await throttle.wait_turn("192.0.2.1", f"user{n}") for n in range(6)]
    assert turns == [True, True, True, True, False, False]
    assert slept == [1.0, 2.0, 4.0, 8.0]
    # Their failures, reported afterwards, are not counted twice.
    for n in range(4):
        throttle.record_failure("192.0.2.1", f"user{n}")
    clock.now += 1
    assert throttle.tracked == (1, 5)
    assert throttle.check("192.0.2.1", "y").refused


async def test_clean_addresses_sign_in_in_parallel_without_delay(clock: Clock) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    throttle = LoginThrottle(POLICY, clock=clock, sleep=sleep)
    for _ in range(5):
        assert await throttle.wait_turn("192.0.2.1", "alice")
    assert slept == []


async def test_success_after_a_counted_attempt_clears_it(clock: Clock) -> None:
    async def sleep(seconds: float) -> None:
        pass

    throttle = LoginThrottle(POLICY, clock=clock, sleep=sleep)
    throttle.record_failure("192.0.2.1", "alice")
    assert await throttle.wait_turn("192.0.2.1", "alice")
    throttle.record_success("192.0.2.1", "alice")
    assert throttle.check("192.0.2.1", "alice") == ThrottleDecision(0.0, refused=False)


class RecordingShared:
    """``SharedFailures`` in memory, recording every call that would write."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, str]] = []
        self.writes: list[str] = []

    async def counts(self, ip_key: str, account_key: str, window: float) -> tuple[int, int]:
        by_ip = sum(1 for ip, _ in self.failures if ip == ip_key)
        by_account = sum(1 for _, account in self.failures if account == account_key)
        return by_ip, by_account

    async def add(self, ip_key: str, account_key: str) -> None:
        self.writes.append("add")
        self.failures.append((ip_key, account_key))

    async def forget(self, ip_key: str, account_key: str) -> None:
        self.writes.append("forget")
        self.failures = [f for f in self.failures if f != (ip_key, account_key)]


async def test_a_clean_success_writes_nothing_to_the_shared_failures(clock: Clock) -> None:
    """A sign-in from an address without failures has nothing to forget: no write per
    sign-in. One after a failure of the pair forgets it, as before."""
    shared = RecordingShared()
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    throttle = LoginThrottle(POLICY, clock=clock, shared=shared, sleep=sleep)
    for _ in range(3):
        assert await throttle.wait_turn("192.0.2.1", "alice")
        await throttle.succeeded("192.0.2.1", "alice")
    assert shared.writes == []

    assert await throttle.wait_turn("192.0.2.1", "alice")
    await throttle.failed("192.0.2.1", "alice")
    assert shared.writes == ["add"]
    assert await throttle.wait_turn("192.0.2.1", "alice")  # delayed: counted ahead
    await throttle.succeeded("192.0.2.1", "alice")
    assert shared.writes == ["add", "add", "forget"] and shared.failures == []
    assert sleeps == [1.0]

    # Failures of another pair from the address: this pair still forgets its own.
    shared.failures.append(("192.0.2.1", "bob"))
    assert await throttle.wait_turn("192.0.2.1", "alice")
    await throttle.succeeded("192.0.2.1", "alice")
    assert shared.writes[-1] == "forget" and shared.failures == [("192.0.2.1", "bob")]
