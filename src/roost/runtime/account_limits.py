"""How many sessions each account has open, across every protocol (and, with several
workers, every worker process: the counts live in shared ``slots.FileSlots``; with
the PostgreSQL backend, every node: node_limits.py).

Two limits, both checked at sign-in:

* ``max_connections_per_account`` (default 100). CLIENTS.md: Android clients keep one
  IDLE connection per pushed folder, so it must be generous; it exists so that one
  leaked password cannot exhaust the server for everyone.
* ``max_connections_per_user_ip`` (default 20), the sessions of one account from one
  client address (IPv6 by /64), as Dovecot's ``mail_max_userip_connections``: one
  misbehaving device cannot take the whole account's budget, while an office or a
  webmail, whose many users share an address, is limited per user, not per address.
"""

from __future__ import annotations

from typing import Protocol

from roost.auth.throttle import address_key
from roost.runtime.slots import LocalSlots, SlotTable

PER_ACCOUNT = "max_connections_per_account"
PER_USER_IP = "max_connections_per_user_ip"


class SessionLimits(Protocol):
    """What the protocols ask at sign-in and give back at the end. ``admit`` may wait
    for a round trip (PostgreSQL: node_limits.py); ``release`` never waits."""

    @property
    def limit(self) -> int: ...

    @property
    def per_user_ip(self) -> int: ...

    async def admit(self, account: str, remote_ip: str | None = None) -> str | None:
        """Count one more session of ``account`` from ``remote_ip``: None when counted,
        else the name of the limit that refused it (and nothing is counted)."""
        ...

    def release(self, account: str, remote_ip: str | None = None) -> None:
        """Give back what ``admit(account, remote_ip)`` counted."""
        ...


class AccountConnections:
    """``SessionLimits`` in slot tables of this host (this process, or every worker's)."""

    def __init__(
        self,
        limit: int = 100,
        *,
        slots: SlotTable | None = None,
        per_user_ip: int = 20,
        user_ip_slots: SlotTable | None = None,
    ) -> None:
        self._slots = slots if slots is not None else LocalSlots(limit)
        self._user_ip = user_ip_slots if user_ip_slots is not None else LocalSlots(per_user_ip)
        self.limit = self._slots.limit
        self.per_user_ip = self._user_ip.limit

    async def admit(self, account: str, remote_ip: str | None = None) -> str | None:
        return self._admit(account, remote_ip)

    def _admit(self, account: str, remote_ip: str | None) -> str | None:
        if not self._slots.acquire(account.casefold()):
            return PER_ACCOUNT
        if remote_ip is not None and not self._user_ip.acquire(_pair(account, remote_ip)):
            self._slots.release(account.casefold())
            return PER_USER_IP
        return None

    def acquire(self, account: str) -> bool:
        """Count one more session for ``account`` (per account only); False (and nothing
        counted) when the account is at its limit."""
        return self._admit(account, None) is None

    def release(self, account: str, remote_ip: str | None = None) -> None:
        self._slots.release(account.casefold())
        if remote_ip is not None:
            self._user_ip.release(_pair(account, remote_ip))

    def count(self, account: str) -> int:
        """Sessions of ``account`` counted by this process."""
        return self._slots.held(account.casefold())


def _pair(account: str, remote_ip: str) -> str:
    return f"{account.casefold()}\0{address_key(remote_ip)}"
