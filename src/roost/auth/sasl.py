"""SASL server mechanisms, sans-IO: bytes in, a typed outcome out.

Two layers:

* A ``Mechanism`` works on decoded SASL messages: ``start(initial_response)`` and
  ``step(response)`` return a ``Challenge`` to send, the ``Credentials`` to check, or a
  ``SaslFailure``. It never checks a password; the caller hands the credentials to the
  ``Authenticator``.
* A ``SaslExchange`` wraps a mechanism with the IMAP encoding of AUTHENTICATE
  (RFC 9051 §6.2.2): challenges go out base64-encoded after "+ ", each client response is
  one base64 line, and a line "*" cancels (``SaslCancelled``). A line that is not valid
  base64 fails with ``bad_encoding=True`` — the command then ends in BAD, as cancelling
  does. The SASL-IR initial response (RFC 4959) arrives already decoded from the
  command parser (b"" for "=").

Mechanisms: PLAIN (RFC 4616) and the non-standard LOGIN (prompts "Username:" then
"Password:", exactly as Outlook expects).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Protocol

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


SaslOutcome = Challenge | Credentials | SaslFailure | SaslCancelled


class Mechanism(Protocol):
    name: str

    def start(self, initial_response: bytes | None) -> SaslOutcome: ...

    def step(self, response: bytes) -> SaslOutcome: ...


class PlainMechanism:
    """RFC 4616: one message ``[authzid] NUL authcid NUL passwd``, in UTF-8."""

    name = "PLAIN"

    def start(self, initial_response: bytes | None) -> SaslOutcome:
        if initial_response is None:
            return Challenge(b"")  # "+ " and wait for the message
        return self.step(initial_response)

    def step(self, response: bytes) -> SaslOutcome:
        parts = response.split(b"\x00")
        if len(parts) != 3:
            return SaslFailure("PLAIN message needs exactly two NUL separators")
        if any(len(part) > MAX_FIELD_OCTETS for part in parts):
            return SaslFailure("PLAIN field too long")
        try:
            authzid, authcid, password = (part.decode("utf-8") for part in parts)
        except UnicodeDecodeError:
            return SaslFailure("PLAIN message is not UTF-8")
        if not authcid or not password:
            return SaslFailure("PLAIN message with empty user name or password")
        if authzid and authzid != authcid:
            return SaslFailure("PLAIN authzid differs from authcid", authorization_failed=True)
        return Credentials(authcid=authcid, password=password, authzid=authzid)


class LoginMechanism:
    """The LOGIN mechanism (draft-murchison-sasl-login): user name, then password.

    An initial response, if a client sends one, is taken as the user name.
    """

    name = "LOGIN"

    def __init__(self) -> None:
        self._username: str | None = None

    def start(self, initial_response: bytes | None) -> SaslOutcome:
        if initial_response:
            return self.step(initial_response)
        return Challenge(b"Username:")

    def step(self, response: bytes) -> SaslOutcome:
        if len(response) > MAX_FIELD_OCTETS:
            return SaslFailure("LOGIN response too long")
        try:
            text = response.decode("utf-8")
        except UnicodeDecodeError:
            return SaslFailure("LOGIN response is not UTF-8")
        if self._username is None:
            if not text:
                return SaslFailure("LOGIN with empty user name")
            self._username = text
            return Challenge(b"Password:")
        if not text:
            return SaslFailure("LOGIN with empty password")
        return Credentials(authcid=self._username, password=text)


_MECHANISMS: dict[str, type[PlainMechanism] | type[LoginMechanism]] = {
    "PLAIN": PlainMechanism,
    "LOGIN": LoginMechanism,
}

MECHANISM_NAMES: tuple[str, ...] = tuple(_MECHANISMS)


def mechanism_for(name: str) -> Mechanism | None:
    """A fresh mechanism for ``name`` (any case), or None where unsupported."""
    factory = _MECHANISMS.get(name.upper())
    return factory() if factory is not None else None


class SaslExchange:
    """One AUTHENTICATE exchange: a mechanism behind the IMAP base64 line encoding.

    ``finished`` turns true once a final outcome (anything but a Challenge) was
    returned; calling ``step`` after that is a programming error.
    """

    def __init__(self, mechanism: Mechanism) -> None:
        self.mechanism = mechanism
        self.finished = False

    @classmethod
    def for_mechanism(cls, name: str) -> SaslExchange | None:
        mechanism = mechanism_for(name)
        return cls(mechanism) if mechanism is not None else None

    def start(self, initial_response: bytes | None) -> SaslOutcome:
        """Begin with the decoded SASL-IR (b"" for "=") or None when absent."""
        return self._track(self.mechanism.start(initial_response))

    def step(self, line: bytes) -> SaslOutcome:
        """Continue with one client line (base64, or "*"), without its CRLF."""
        if self.finished:
            raise RuntimeError("SASL exchange already finished")
        line = line.rstrip(b"\r\n")
        if line == b"*":
            return self._track(SaslCancelled())
        try:
            response = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            return self._track(SaslFailure("response is not valid base64", bad_encoding=True))
        return self._track(self.mechanism.step(response))

    def _track(self, outcome: SaslOutcome) -> SaslOutcome:
        if not isinstance(outcome, Challenge):
            self.finished = True
        return outcome
