"""How many sessions each account has open, across every protocol of this process.

CLIENTS.md: Android clients keep one IDLE connection per pushed folder, so the limit
must be generous (default 100); it exists so that one leaked password cannot exhaust
the server for everyone.
"""

from __future__ import annotations


class AccountConnections:
    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def acquire(self, account: str) -> bool:
        """Count one more session for ``account``; False (and nothing counted) when the
        account is at its limit."""
        key = account.casefold()
        count = self._open.get(key, 0)
        if count >= self.limit:
            return False
        self._open[key] = count + 1
        return True

    def release(self, account: str) -> None:
        key = account.casefold()
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def count(self, account: str) -> int:
        return self._open.get(account.casefold(), 0)
