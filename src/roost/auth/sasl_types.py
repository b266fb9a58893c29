"""What a sans-IO SASL server mechanism returns after each client message.

Final outcomes: ``Credentials`` (a user name and password for the Authenticator),
``SaslFailure``, ``SaslCancelled``, ``MechanismDone``. Not final: ``Challenge`` (send it
and wait for the client), and the *requests* — a mechanism that needs something only
the server's secrets can give (SCRAM's salt, the check of its proof, the check of a
bearer token) returns a request carrying a ``resume`` function; whoever drives the
mechanism (``sasl.SaslSignIn``) asks the Authenticator and calls ``resume`` with the
answer, which returns the next outcome. Mechanisms never see a stored secret and never
decide that someone is signed in: only the Authenticator does.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from roost.auth.base import ScramParameters

# RFC 4616 limits each field to 255 octets; real clients send longer app passwords and
# tokens, so accept more but not without bound.
MAX_FIELD_OCTETS = 1024


@dataclass(frozen=True, slots=True)
class Challenge:
    data: bytes  # the decoded challenge

    def encoded(self) -> bytes:
        """The challenge as it goes on the wire after "+ " (RFC 9051 §6.2.2)."""
        return base64.b64encode(self.data)


@dataclass(frozen=True, slots=True)
class Credentials:
    authcid: str  # the user name
    password: str = ""
    authzid: str = ""  # empty, or equal to authcid: acting as someone else is refused

    def __repr__(self) -> str:  # keep passwords out of logs and tracebacks
        return f"Credentials(authcid={self.authcid!r}, authzid={self.authzid!r})"


@dataclass(frozen=True, slots=True)
class SaslFailure:
    reason: str  # for the log only
    bad_encoding: bool = False  # not base64 (RFC 9051: tagged BAD), else NO
    authorization_failed: bool = False  # authzid differs from authcid


@dataclass(frozen=True, slots=True)
class SaslCancelled:
    """The client answered "*" (RFC 9051 §6.2.2): end the command with BAD."""


@dataclass(frozen=True, slots=True)
class MechanismDone:
    """The exchange is over; the Authenticator's verdict given during it stands (SCRAM
    after its server-final message, a bearer token after the error challenge)."""


@dataclass(frozen=True, slots=True)
class NeedScramParameters:
    """SCRAM's client-first message named ``username``: the server-first message needs
    that account's salt and iteration count (``Authenticator.scram_parameters``)."""

    username: str
    resume: Callable[[ScramParameters], MechanismOutcome] = field(repr=False)


@dataclass(frozen=True, slots=True)
class NeedScramProofCheck:
    """SCRAM's client-final message: check ``client_proof`` over ``auth_message``
    (``Authenticator.verify_scram``); on success ``resume`` takes the ServerSignature."""

    username: str
    auth_message: bytes
    client_proof: bytes = field(repr=False)
    resume: Callable[[bytes], MechanismOutcome] = field(repr=False)


@dataclass(frozen=True, slots=True)
class NeedTokenCheck:
    """A bearer token to check (``Authenticator.authenticate_token``); when it is
    refused, ``on_refusal`` gives the error challenge the mechanism sends first."""

    username: str | None
    token: str = field(repr=False)
    on_refusal: Callable[[], MechanismOutcome] = field(repr=False)


# What the password mechanisms (PLAIN, LOGIN) return, and so ``SaslExchange``.
SaslOutcome = Challenge | Credentials | SaslFailure | SaslCancelled

SaslRequest = NeedScramParameters | NeedScramProofCheck | NeedTokenCheck

# What any mechanism returns.
MechanismOutcome = SaslOutcome | MechanismDone | SaslRequest


class Mechanism(Protocol):
    """A password mechanism: its outcomes are final or challenges, never requests."""

    name: str

    def start(self, initial_response: bytes | None) -> SaslOutcome: ...

    def step(self, response: bytes) -> SaslOutcome: ...


class ServerMechanism(Protocol):
    """Any server mechanism, driven by ``sasl.SaslSignIn``."""

    name: str

    def start(self, initial_response: bytes | None) -> MechanismOutcome: ...

    def step(self, response: bytes) -> MechanismOutcome: ...
