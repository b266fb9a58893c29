"""Coordination between the POP3 sessions of one account: the maildrop lock and the
time of the last sign-in.

RFC 1939 §8: a POP3 server locks the maildrop for the length of a session, so that two
sessions never delete under each other; a second sign-in is refused with ``-ERR
[IN-USE]`` (RFC 2449 §8.1.1). IMAP sessions do not take the lock: they coexist with
POP3 through the store, which tells them of POP3's expunges like of any other.

Both are in-process now (one worker). They sit behind small async interfaces so that a
cross-process implementation (a lock row or advisory lock in the shared database) can
replace them when Roost runs several workers or nodes.
"""

from __future__ import annotations

from typing import Protocol


class MaildropLease(Protocol):
    async def release(self) -> None:
        """Give the lock back; calling it again does nothing."""
        ...


class MaildropLocks(Protocol):
    async def try_acquire(self, account: str, mailbox: str) -> MaildropLease | None:
        """The lock on ``mailbox`` of ``account``, or None when another session holds it.
        Never waits for the holder."""
        ...


class _InProcessLease:
    def __init__(self, locks: InProcessLocks, key: tuple[str, str]) -> None:
        self._locks = locks
        self._key: tuple[str, str] | None = key

    async def release(self) -> None:
        if self._key is not None:
            self._locks.held.discard(self._key)
            self._key = None


class InProcessLocks:
    """Locks held in this process; account names match without regard to case, as at
    sign-in."""

    def __init__(self) -> None:
        self.held: set[tuple[str, str]] = set()

    async def try_acquire(self, account: str, mailbox: str) -> MaildropLease | None:
        key = (account.casefold(), mailbox)
        if key in self.held:
            return None
        self.held.add(key)
        return _InProcessLease(self, key)


class SignInTimes(Protocol):
    """When each account last signed in over POP3, for LOGIN-DELAY (RFC 2449 §6.8)."""

    async def last(self, account: str) -> float | None: ...

    async def record(self, account: str, when: float) -> None: ...


class InProcessSignInTimes:
    """Remembers up to ``capacity`` accounts; the oldest are forgotten first (which only
    ever lets someone in sooner, never locks anyone out)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._times: dict[str, float] = {}

    async def last(self, account: str) -> float | None:
        return self._times.get(account.casefold())

    async def record(self, account: str, when: float) -> None:
        key = account.casefold()
        self._times.pop(key, None)
        self._times[key] = when
        if len(self._times) > self._capacity:
            del self._times[next(iter(self._times))]
