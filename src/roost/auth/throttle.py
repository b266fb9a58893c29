"""Failed sign-in throttling, per client address and per account.

The rules:

* Every failure is remembered for ``window`` seconds, keyed twice: by the client's
  address (IPv6 clients by their /64, since one host owns the whole prefix) and by the
  account name that was tried (whether or not such an account exists, so the answers
  do not tell).
* Before an attempt, the caller waits ``base_delay * 2**(n-1)`` seconds, where ``n`` is
  the number of remembered failures; the address's delay is capped at ``max_delay``, the
  account's at ``max_account_delay``, and the longer of the two applies.
* Once an address or account has failed, each further attempt of that pair counts as a
  failure from the moment it starts, until it succeeds: a guesser who opens many
  connections at once meets the delays of all of them, not none. (A clean address's
  parallel sign-ins — a mail program opening five connections — are not slowed.)
* An address with ``max_failures_per_ip`` failures in the window is refused outright
  (``AuthResult(throttled=True)``) until its oldest failures age out.
* An account with ``max_failures_per_account`` failures in the window (guessing from
  many addresses) is refused outright too — but only to addresses that have not signed
  in to it within ``trust_period``, so the owner's usual devices keep working; a new
  address waits at most until those failures age out. The account's delay stays short.
* A success forgets the failures of that account from that address (in both tables), so
  the owner who mistyped a password is not slowed down afterwards, while an attacker who
  owns one account cannot clear the failures he made against others.

Memory is bounded: entries whose last failure left the window are pruned as new
failures arrive, and at most ``max_tracked`` keys per table are kept (the least recently
failed go first). The clock and the sleep are injectable, so tests need no real waiting.

Where the state lives. Alone, everything is in this process's memory. Two interfaces
move it out, for the async path (``wait_turn``, ``failed``, ``succeeded``) that the
Authenticator uses:

* ``KnownAddresses``: the addresses that signed in to each account, kept in the store
  (users.db), so that after a restart the owner's usual devices are still trusted.
* ``SharedFailures``: the failure counts, shared by every worker process (a SQLite file
  in ``data_dir/run``, ``runtime/shared_failures.py``; with the PostgreSQL backend, a
  table there, shared by every node): a guesser whose connections land on N workers
  meets one budget, not N. A success from an address that had no failure when its
  attempt began (the common case) does not write there: there is nothing of that pair
  to forget. (A failure of the same pair made meanwhile by another connection then
  still counts, as it would have had it come a moment later.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

# How many failure timestamps one key keeps; enough to reach every cap.
_MAX_EVENTS_PER_ACCOUNT = 64
# Addresses remembered per account as having signed in to it.
_MAX_TRUSTED_PER_ACCOUNT = 16
# Seconds after which a known address's sign-in is written to the store again.
_KNOWN_REFRESH = 3600.0


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    base_delay: float = 1.0  # seconds before the attempt after the first failure
    max_delay: float = 15.0  # cap of the per-address delay
    max_account_delay: float = 3.0  # cap of the per-account delay
    max_failures_per_ip: int = 20  # refuse an address with this many failures in window
    window: float = 900.0  # seconds a failure is remembered
    max_tracked: int = 100_000  # keys kept per table
    # Refuse an account with this many failures in the window to untrusted addresses.
    max_failures_per_account: int = 100
    trust_period: float = 30 * 86400.0  # an address that signed in is trusted this long

    @classmethod
    def disabled(cls) -> ThrottlePolicy:
        """No delays and no refusals: for tests."""
        return cls(
            base_delay=0.0,
            max_delay=0.0,
            max_account_delay=0.0,
            max_failures_per_ip=0,
            max_failures_per_account=0,
        )


@dataclass(frozen=True, slots=True)
class ThrottleDecision:
    delay: float  # seconds to wait before checking the password
    refused: bool  # refuse without checking


_GO = ThrottleDecision(delay=0.0, refused=False)


class KnownAddresses(Protocol):
    """Per account, the client addresses (``address_key``) that signed in, and when."""

    async def remember(self, account_key: str, ip_key: str) -> None:
        """``ip_key`` signed in to ``account_key`` now."""
        ...

    async def known_within(self, account_key: str, ip_key: str, period: float) -> bool:
        """Whether ``ip_key`` signed in to ``account_key`` within ``period`` seconds."""
        ...


class SharedFailures(Protocol):
    """Failed sign-ins counted by every process that shares them, each failure keyed by
    (address key, account key) and counted for ``window`` seconds."""

    async def counts(self, ip_key: str, account_key: str, window: float) -> tuple[int, int]:
        """Failures within ``window`` from ``ip_key`` (any account) and against
        ``account_key`` (from any address)."""
        ...

    async def add(self, ip_key: str, account_key: str) -> None: ...

    async def forget(self, ip_key: str, account_key: str) -> None:
        """Drop the failures of this pair (a success)."""
        ...


def address_key(ip: str) -> str:
    """The key for a client address: IPv4 as is (also when IPv4-mapped), IPv6 by /64."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class _FailureLog:
    """Failures per key: (time, other key) pairs inside the window, bounded."""

    def __init__(self, max_events: int, max_keys: int) -> None:
        self._max_events = max(1, max_events)
        self._max_keys = max(1, max_keys)
        # Insertion order is the order of the last failure: oldest first.
        self._events: dict[str, deque[tuple[float, str]]] = {}

    def count(self, key: str, now: float, window: float) -> int:
        events = self._events.get(key)
        if events is None:
            return 0
        while events and events[0][0] <= now - window:
            events.popleft()
        if not events:
            del self._events[key]
            return 0
        return len(events)

    def add(self, key: str, other: str, now: float, window: float) -> None:
        events = self._events.pop(key, None)
        if events is None:
            events = deque(maxlen=self._max_events)
        events.append((now, other))
        self._events[key] = events  # re-inserted: now the most recent
        self._prune(now, window)

    def forget(self, key: str, other: str) -> None:
        events = self._events.get(key)
        if events is None:
            return
        kept = deque((e for e in events if e[1] != other), maxlen=self._max_events)
        if kept:
            self._events[key] = kept
        else:
            del self._events[key]

    def _prune(self, now: float, window: float) -> None:
        # The dict is ordered by last failure, so stale keys are at the front.
        while self._events:
            key, events = next(iter(self._events.items()))
            if len(self._events) > self._max_keys or events[-1][0] <= now - window:
                del self._events[key]
            else:
                break

    def __len__(self) -> int:
        return len(self._events)


class _TrustedAddresses:
    """Per account, the addresses that signed in to it and when (last success), bounded:
    the least recently successful go first."""

    def __init__(self, max_accounts: int) -> None:
        self._max_accounts = max(1, max_accounts)
        self._by_account: dict[str, dict[str, float]] = {}

    def add(self, account_key: str, ip_key: str, now: float) -> None:
        addresses = self._by_account.pop(account_key, {})
        addresses.pop(ip_key, None)
        addresses[ip_key] = now
        while len(addresses) > _MAX_TRUSTED_PER_ACCOUNT:
            del addresses[next(iter(addresses))]
        self._by_account[account_key] = addresses
        while len(self._by_account) > self._max_accounts:
            del self._by_account[next(iter(self._by_account))]

    def trusted(self, account_key: str, ip_key: str, now: float, period: float) -> bool:
        since = self._by_account.get(account_key, {}).get(ip_key)
        return since is not None and now - since < period


class LoginThrottle:
    def __init__(
        self,
        policy: ThrottlePolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        known: KnownAddresses | None = None,
        shared: SharedFailures | None = None,
    ) -> None:
        self.policy = policy or ThrottlePolicy()
        self._known = known
        self._shared = shared
        self._clock = clock
        self._sleep = sleep
        max_ip_events = max(self.policy.max_failures_per_ip, _MAX_EVENTS_PER_ACCOUNT)
        max_account_events = max(self.policy.max_failures_per_account, _MAX_EVENTS_PER_ACCOUNT)
        self._by_ip = _FailureLog(max_ip_events, self.policy.max_tracked)
        self._by_account = _FailureLog(max_account_events, self.policy.max_tracked)
        self._trusted = _TrustedAddresses(self.policy.max_tracked)
        # Attempts already counted as failures when they began: (address, account) -> n.
        self._counted_ahead: dict[tuple[str, str], int] = {}
        # Attempts under way whose address had no shared failure when they began.
        self._clean: dict[tuple[str, str], int] = {}

    def check(self, ip: str, account: str) -> ThrottleDecision:
        """The decision from this process's memory alone."""
        policy = self.policy
        now = self._clock()
        ip_key, account_key = address_key(ip), _account_key(account)
        ip_failures = self._by_ip.count(ip_key, now, policy.window)
        account_failures = self._by_account.count(account_key, now, policy.window)
        trusted = self._trusted.trusted(account_key, ip_key, now, policy.trust_period)
        return self._decide(ip_failures, account_failures, trusted)

    async def _check(self, ip: str, account: str) -> ThrottleDecision:
        """The decision from the shared state where there is one."""
        policy = self.policy
        ip_key, account_key = address_key(ip), _account_key(account)
        if self._shared is None:
            decision = self.check(ip, account)
            if not decision.refused or self._known is None:
                return decision
            now = self._clock()
            ip_failures = self._by_ip.count(ip_key, now, policy.window)
            account_failures = self._by_account.count(account_key, now, policy.window)
        else:
            ip_failures, account_failures = await self._shared.counts(
                ip_key, account_key, policy.window
            )
        trusted = self._trusted.trusted(account_key, ip_key, self._clock(), policy.trust_period)
        locked = 0 < policy.max_failures_per_account <= account_failures
        if locked and not trusted and self._known is not None:
            trusted = await self._known.known_within(account_key, ip_key, policy.trust_period)
        decision = self._decide(ip_failures, account_failures, trusted)
        if self._shared is not None and ip_failures == 0 and decision == _GO:
            # Nothing of this pair in the shared state, and this attempt adds nothing
            # there before it ends (no delay: not counted ahead).
            _bounded_add(self._clean, (ip_key, account_key), policy.max_tracked)
        return decision

    def _decide(self, ip_failures: int, account_failures: int, trusted: bool) -> ThrottleDecision:
        policy = self.policy
        if 0 < policy.max_failures_per_ip <= ip_failures:
            return ThrottleDecision(delay=0.0, refused=True)
        if 0 < policy.max_failures_per_account <= account_failures and not trusted:
            return ThrottleDecision(delay=0.0, refused=True)
        delay = max(
            _backoff(ip_failures, policy.base_delay, policy.max_delay),
            _backoff(account_failures, policy.base_delay, policy.max_account_delay),
        )
        return ThrottleDecision(delay=delay, refused=False)

    async def wait_turn(self, ip: str, account: str) -> bool:
        """Wait the delay the failures so far call for; False when refused outright.
        Where there is a delay, the attempt counts as a failure from now on, until
        ``succeeded`` (``failed`` then does not count it twice)."""
        decision = await self._check(ip, account)
        if decision.refused:
            return False
        if decision.delay > 0:
            self._add_failure(ip, account)
            if self._shared is not None:
                await self._shared.add(address_key(ip), _account_key(account))
            pair = (address_key(ip), _account_key(account))
            _bounded_add(self._counted_ahead, pair, self.policy.max_tracked)
            await self._sleep(decision.delay)
        return True

    async def failed(self, ip: str, account: str) -> None:
        """``record_failure``, also in the shared state."""
        pair = (address_key(ip), _account_key(account))
        counted = self._counted_ahead.get(pair, 0) > 0
        _take_one(self._clean, pair)
        self.record_failure(ip, account)
        if self._shared is not None and not counted:
            await self._shared.add(*pair)

    async def succeeded(self, ip: str, account: str) -> None:
        """``record_success``, also in the shared state and the known addresses (those
        at most once per ``_KNOWN_REFRESH`` per address and account in this process: a
        sign-in that the cache makes cheap should not cost a users.db write)."""
        ip_key, account_key = address_key(ip), _account_key(account)
        fresh = self._trusted.trusted(account_key, ip_key, self._clock(), _KNOWN_REFRESH)
        self.record_success(ip, account)
        clean = _take_one(self._clean, (ip_key, account_key))
        if self._shared is not None and not clean:
            await self._shared.forget(ip_key, account_key)
        if self._known is not None and not fresh:
            await self._known.remember(account_key, ip_key)

    def record_failure(self, ip: str, account: str) -> None:
        pair = (address_key(ip), _account_key(account))
        ahead = self._counted_ahead.get(pair, 0)
        if ahead > 0:
            if ahead == 1:
                del self._counted_ahead[pair]
            else:
                self._counted_ahead[pair] = ahead - 1
            return
        self._add_failure(ip, account)

    def record_success(self, ip: str, account: str) -> None:
        ip_key, account_key = address_key(ip), _account_key(account)
        self._counted_ahead.pop((ip_key, account_key), None)
        self._by_ip.forget(ip_key, account_key)
        self._by_account.forget(account_key, ip_key)
        self._trusted.add(account_key, ip_key, self._clock())

    def _add_failure(self, ip: str, account: str) -> None:
        now = self._clock()
        ip_key, account_key = address_key(ip), _account_key(account)
        self._by_ip.add(ip_key, account_key, now, self.policy.window)
        self._by_account.add(account_key, ip_key, now, self.policy.window)

    @property
    def tracked(self) -> tuple[int, int]:
        """How many addresses and accounts are remembered (for tests and metrics)."""
        return len(self._by_ip), len(self._by_account)


def _bounded_add(counts: dict[tuple[str, str], int], pair: tuple[str, str], limit: int) -> None:
    """One more for ``pair``; past ``limit`` pairs the oldest is dropped (an attempt
    that never ended, e.g. a dropped connection, must not hold memory for ever)."""
    counts[pair] = counts.get(pair, 0) + 1
    if len(counts) > limit:
        del counts[next(iter(counts))]


def _take_one(counts: dict[tuple[str, str], int], pair: tuple[str, str]) -> bool:
    """One less for ``pair``; False when it had none."""
    count = counts.get(pair, 0)
    if count <= 0:
        return False
    if count == 1:
        del counts[pair]
    else:
        counts[pair] = count - 1
    return True


def _account_key(account: str) -> str:
    return account.casefold()


def _backoff(failures: int, base: float, cap: float) -> float:
    if failures <= 0 or base <= 0 or cap <= 0:
        return 0.0
    # 2**n overflows floats for huge n; the cap is reached long before 64 doublings.
    return float(min(base * 2 ** min(failures - 1, 64), cap))
