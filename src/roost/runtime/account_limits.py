"""How many sessions each account has open, across every protocol (and, with several
workers, every worker process: the count lives in a shared ``slots.FileSlots``).

CLIENTS.md: Android clients keep one IDLE connection per pushed folder, so the limit
must be generous (default 100); it exists so that one leaked password cannot exhaust
the server for everyone.
"""

from __future__ import annotations

from roost.runtime.slots import LocalSlots, SlotTable


class AccountConnections:
    def __init__(self, limit: int = 100, *, slots: SlotTable | None = None) -> None:
        self._slots = slots if slots is not None else LocalSlots(limit)
        self.limit = self._slots.limit

    def acquire(self, account: str) -> bool:
        """Count one more session for ``account``; False (and nothing counted) when the
        account is at its limit."""
        return self._slots.acquire(account.casefold())

    def release(self, account: str) -> None:
        self._slots.release(account.casefold())

    def count(self, account: str) -> int:
        """Sessions of ``account`` counted by this process."""
        return self._slots.held(account.casefold())
