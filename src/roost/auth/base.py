"""The one sign-in interface every protocol uses (IMAP, POP3, and submission later).

Throttling, two-factor rules and app passwords live behind it so that no protocol can
forget them. Protocols never call it for SASL themselves: ``roost.auth.sasl.SaslSignIn``
drives a mechanism and asks the Authenticator whatever that mechanism needs — a
password check (PLAIN, LOGIN), the salt and then the proof check of SCRAM, a bearer
token check (OAUTHBEARER, XOAUTH2) — and hands the protocol one ``AuthResult``.

Every method that can fail a sign-in throttles it and logs the failure with the client's
address and the account name tried; none of them takes a different time or answers
differently depending on whether the account exists.
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


@dataclass(frozen=True, slots=True)
class ScramParameters:
    """What a SCRAM server-first message reveals (RFC 5802 §5.1): the account's salt and
    iteration count, or stable made-up ones for an account without usable keys."""

    salt: bytes
    iterations: int


@dataclass(frozen=True, slots=True)
class ScramVerdict:
    """The check of a SCRAM client proof; ``server_signature`` (for the server-final
    message) only when it succeeded."""

    result: AuthResult
    server_signature: bytes = b""


class Authenticator(Protocol):
    async def authenticate(
        self, username: str, password: str, *, remote_ip: str, protocol: str
    ) -> AuthResult:
        """Check a user name and password: the account password, an app password, or
        with two-factor on, the account password followed by the current code. Takes the
        same time whether or not the account exists; hashing runs off the event loop."""
        ...

    async def scram_parameters(
        self, username: str, *, remote_ip: str, protocol: str
    ) -> ScramParameters | AuthResult:
        """Waits the throttle's delay, then the salt and iteration count for SCRAM; an
        AuthResult (throttled) instead when the client is refused outright."""
        ...

    async def verify_scram(
        self,
        username: str,
        auth_message: bytes,
        client_proof: bytes,
        *,
        remote_ip: str,
        protocol: str,
    ) -> ScramVerdict:
        """Check a SCRAM-SHA-256 ClientProof over ``auth_message`` (RFC 5802 §3)."""
        ...

    async def authenticate_token(
        self, username: str | None, token: str, *, remote_ip: str, protocol: str
    ) -> AuthResult:
        """Check an OAuth 2.0 bearer token (a JWT from a configured issuer). ``username``
        is what the client named (None if nothing); it must match the token's."""
        ...

    @property
    def offers_scram(self) -> bool:
        """True when SCRAM-SHA-256 is offered (``auth.scram`` in the configuration)."""
        ...

    @property
    def accepts_tokens(self) -> bool:
        """True when at least one token issuer is configured (OAUTHBEARER, XOAUTH2)."""
        ...
