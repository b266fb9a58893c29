"""Connection limits and POP3 maildrop locks counted across every node.

With the PostgreSQL backend, the store hands the server a ``NodeSlotStore``
(store/postgres/connections.py: slots as rows held under a renewed lease), and the
classes here put the runtime's three interfaces over it in place of the host's slot
tables (``Coordination.across_nodes``):

* ``NodeAddressSlots`` — ``max_connections_per_ip``, one round trip at accept;
* ``NodeSessionLimits`` — ``max_connections_per_account`` and
  ``max_connections_per_user_ip`` together, one round trip at sign-in;
* ``NodeMaildropLocks`` — RFC 1939 §8, one POP3 session per maildrop over every node.

Each remembers which of its slots it holds per key, as the host's tables do, so a
release by key gives back one of them. Giving back is batched by the store; a
maildrop lock is given back at once, so that a client signing in on another node
right after QUIT finds it free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from roost.auth.throttle import address_key
from roost.pop3.locks import MaildropLease
from roost.runtime.account_limits import PER_ACCOUNT, PER_USER_IP

# The kinds of slot (``live_slots.kind``).
ADDRESS = "address"
ACCOUNT = "account"
USER_ADDRESS = "user-address"
MAILDROP = "maildrop"


class NodeSlotStore(Protocol):
    """Slots counted with every other node's (store/postgres/connections.NodeSlots)."""

    async def take(self, claims: Sequence[tuple[str, str, int]]) -> list[int] | int:
        """Slot ids for every (kind, key, limit) claim, or the index of the first claim
        whose key is full (nothing taken)."""
        ...

    def give_back(self, ids: Sequence[int]) -> None: ...

    async def give_back_now(self, ids: Sequence[int]) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class NodeStore(Protocol):
    """A store shared by several nodes, which counts their connections (PostgreSQL)."""

    async def node_slots(self, lease: float) -> NodeSlotStore: ...


class _Held:
    """The slot ids this node holds per key."""

    def __init__(self) -> None:
        self._ids: dict[str, list[int]] = {}

    def add(self, key: str, slot: int) -> None:
        self._ids.setdefault(key, []).append(slot)

    def pop(self, key: str) -> int | None:
        ids = self._ids.get(key)
        if not ids:
            return None
        slot = ids.pop()
        if not ids:
            del self._ids[key]
        return slot


class NodeAddressSlots:
    """Connections per client address (``slots.AddressSlots``) over every node."""

    def __init__(self, slots: NodeSlotStore, limit: int) -> None:
        self._slots = slots
        self._limit = limit
        self._held = _Held()

    @property
    def limit(self) -> int:
        return self._limit

    async def acquire(self, key: str) -> bool:
        taken = await self._slots.take([(ADDRESS, key, self._limit)])
        if isinstance(taken, int):
            return False
        self._held.add(key, taken[0])
        return True

    def release(self, key: str) -> None:
        slot = self._held.pop(key)
        if slot is not None:
            self._slots.give_back([slot])


class NodeSessionLimits:
    """Sessions per account and per account and address (``SessionLimits``) over
    every node, both taken in one round trip."""

    def __init__(self, slots: NodeSlotStore, limit: int, per_user_ip: int) -> None:
        self._slots = slots
        self._limit = limit
        self._per_user_ip = per_user_ip
        self._account = _Held()
        self._user_address = _Held()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def per_user_ip(self) -> int:
        return self._per_user_ip

    async def admit(self, account: str, remote_ip: str | None = None) -> str | None:
        account_key = account.casefold()
        claims = [(ACCOUNT, account_key, self._limit)]
        if remote_ip is not None:
            claims.append((USER_ADDRESS, _pair(account_key, remote_ip), self._per_user_ip))
        taken = await self._slots.take(claims)
        if isinstance(taken, int):
            return (PER_ACCOUNT, PER_USER_IP)[taken]
        self._account.add(account_key, taken[0])
        if remote_ip is not None:
            self._user_address.add(_pair(account_key, remote_ip), taken[1])
        return None

    def release(self, account: str, remote_ip: str | None = None) -> None:
        account_key = account.casefold()
        given = [self._account.pop(account_key)]
        if remote_ip is not None:
            given.append(self._user_address.pop(_pair(account_key, remote_ip)))
        self._slots.give_back([slot for slot in given if slot is not None])


class _NodeLease:
    def __init__(self, slots: NodeSlotStore, slot: int) -> None:
        self._slots = slots
        self._slot: int | None = slot

    async def release(self) -> None:
        if self._slot is not None:
            slot, self._slot = self._slot, None
            await self._slots.give_back_now([slot])


class NodeMaildropLocks:
    """POP3 maildrop locks (``pop3.locks.MaildropLocks``) over every node: a slot of
    limit one per account and mailbox."""

    def __init__(self, slots: NodeSlotStore) -> None:
        self._slots = slots

    async def try_acquire(self, account: str, mailbox: str) -> MaildropLease | None:
        taken = await self._slots.take([(MAILDROP, f"{account.casefold()}\n{mailbox}", 1)])
        if isinstance(taken, int):
            return None
        return _NodeLease(self._slots, taken[0])


def _pair(account_key: str, remote_ip: str) -> str:
    # PostgreSQL text holds no NUL: a line break parts the two (neither contains one).
    return f"{account_key}\n{address_key(remote_ip)}"
