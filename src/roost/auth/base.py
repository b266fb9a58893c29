"""The one sign-in interface every protocol uses (IMAP now; POP3 and submission later).

Throttling, two-factor rules and app passwords live behind ``authenticate`` so that no
protocol can forget them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AuthResult:
    account: str | None  # the canonical account name when signed in, else None
    reason: str = ""  # for the log only; never shown to the client
    throttled: bool = False  # refused without checking because of too many failures

    @property
    def ok(self) -> bool:
        return self.account is not None


class Authenticator(Protocol):
    async def authenticate(
        self, username: str, password: str, *, remote_ip: str, protocol: str
    ) -> AuthResult:
        """Check a user name and password. Takes the same time whether or not the
        account exists; hashing runs off the event loop."""
        ...
