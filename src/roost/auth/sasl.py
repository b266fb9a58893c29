"""SASL server mechanisms, sans-IO, and the one driver every protocol uses.

Three layers:

* A mechanism works on decoded SASL messages: ``start(initial_response)`` and
  ``step(response)`` return an outcome (``sasl_types``): a ``Challenge`` to send, a
  final outcome, or a request for something only the Authenticator can answer. It never
  checks a password and never sees a stored secret.
* The client's lines are base64, as in IMAP AUTHENTICATE (RFC 9051 §6.2.2) and POP3
  AUTH (RFC 5034 §4): each client response is one base64 line, and a line "*" cancels
  (``SaslCancelled``). A line that is not valid base64 fails with ``bad_encoding=True``
  — the command then ends in BAD, as cancelling does. The SASL-IR initial response
  (RFC 4959) arrives already decoded from the command parser (b"" for "=").
* ``SaslSignIn`` drives one exchange of any mechanism against the ``Authenticator``:
  the protocol sends the challenges it returns and acts on one final ``SaslVerdict``
  (the Authenticator's ``AuthResult``: signed in, failed, or throttled), a
  ``SaslFailure`` (malformed exchange) or ``SaslCancelled``. Which mechanisms a server
  offers comes from ``available_mechanisms(authenticator)``, the same for every
  protocol.

Mechanisms: PLAIN (RFC 4616), the non-standard LOGIN (prompts "Username:" then
"Password:", exactly as Outlook expects), SCRAM-SHA-256 (RFC 7677, ``scram.py``), and,
when a token issuer is configured, OAUTHBEARER (RFC 7628) and XOAUTH2 (``bearer.py``).

``SaslExchange`` (PLAIN and LOGIN only, returning ``Credentials`` for the caller to
check) is the older interface; new code uses ``SaslSignIn``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass

from roost.auth.base import Authenticator, AuthResult
from roost.auth.bearer import OAuthBearerMechanism, XOAuth2Mechanism
from roost.auth.sasl_types import (
    MAX_FIELD_OCTETS,
    Challenge,
    Credentials,
    Mechanism,
    MechanismDone,
    MechanismOutcome,
    NeedScramParameters,
    NeedScramProofCheck,
    NeedTokenCheck,
    SaslCancelled,
    SaslFailure,
    SaslOutcome,
    ServerMechanism,
)
from roost.auth.scram import ScramSha256Mechanism

__all__ = [
    "MAX_FIELD_OCTETS",
    "MECHANISM_NAMES",
    "Challenge",
    "Credentials",
    "LoginMechanism",
    "Mechanism",
    "MechanismDone",
    "MechanismOutcome",
    "PlainMechanism",
    "SaslCancelled",
    "SaslExchange",
    "SaslFailure",
    "SaslOutcome",
    "SaslSignIn",
    "SaslVerdict",
    "ServerMechanism",
    "available_mechanisms",
    "mechanism_for",
]


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


_PASSWORD_MECHANISMS: dict[str, Callable[[], Mechanism]] = {
    "PLAIN": PlainMechanism,
    "LOGIN": LoginMechanism,
}
_TOKEN_MECHANISMS: dict[str, Callable[[], ServerMechanism]] = {
    "OAUTHBEARER": OAuthBearerMechanism,
    "XOAUTH2": XOAuth2Mechanism,
}
_MECHANISMS: dict[str, Callable[[], ServerMechanism]] = {
    **_PASSWORD_MECHANISMS,
    "SCRAM-SHA-256": ScramSha256Mechanism,
    **_TOKEN_MECHANISMS,
}

# The password mechanisms (``SaslExchange``); ``available_mechanisms`` lists them all.
MECHANISM_NAMES: tuple[str, ...] = tuple(_PASSWORD_MECHANISMS)


def available_mechanisms(authenticator: Authenticator) -> tuple[str, ...]:
    """The mechanisms a server with this Authenticator offers, in the order to advertise
    them (IMAP ``AUTH=``, POP3 ``SASL``): SCRAM-SHA-256 unless turned off, the token
    mechanisms only when an issuer is configured."""
    names = [name for name in _MECHANISMS if name not in _TOKEN_MECHANISMS]
    if not authenticator.offers_scram:
        names.remove("SCRAM-SHA-256")
    if authenticator.accepts_tokens:
        names += _TOKEN_MECHANISMS
    return tuple(names)


def mechanism_for(name: str) -> Mechanism | None:
    """A fresh password mechanism for ``name`` (any case), or None where unsupported."""
    factory = _PASSWORD_MECHANISMS.get(name.upper())
    return factory() if factory is not None else None


def decode_line(line: bytes) -> bytes | SaslCancelled | SaslFailure:
    """One client line of an exchange (without or with its CRLF): the decoded response,
    or "*" as ``SaslCancelled``, or a ``SaslFailure(bad_encoding=True)``."""
    line = line.rstrip(b"\r\n")
    if line == b"*":
        return SaslCancelled()
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        return SaslFailure("response is not valid base64", bad_encoding=True)


class SaslExchange:
    """One exchange of a password mechanism, with the base64 line encoding.

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
        response = decode_line(line)
        if not isinstance(response, bytes):
            return self._track(response)
        return self._track(self.mechanism.step(response))

    def _track(self, outcome: SaslOutcome) -> SaslOutcome:
        if not isinstance(outcome, Challenge):
            self.finished = True
        return outcome


@dataclass(frozen=True, slots=True)
class SaslVerdict:
    """The Authenticator's word on the exchange: ``result.ok`` (signed in as
    ``result.account``), a failure, or ``result.throttled``."""

    result: AuthResult


SignInOutcome = Challenge | SaslVerdict | SaslFailure | SaslCancelled


class SaslSignIn:
    """One AUTHENTICATE (IMAP) or AUTH (POP3) exchange from the first message to the
    verdict, for any mechanism: what the mechanism asks for goes to the Authenticator,
    which throttles and logs every attempt.

    ``finished`` turns true once a final outcome (anything but a Challenge) was
    returned; calling ``step`` after that is a programming error.
    """

    def __init__(
        self,
        mechanism: ServerMechanism,
        authenticator: Authenticator,
        *,
        remote_ip: str,
        protocol: str,
    ) -> None:
        self.mechanism = mechanism
        self.finished = False
        self._authenticator = authenticator
        self._remote_ip = remote_ip
        self._protocol = protocol
        self._verdict: AuthResult | None = None

    @classmethod
    def for_mechanism(
        cls, name: str, authenticator: Authenticator, *, remote_ip: str, protocol: str
    ) -> SaslSignIn | None:
        """An exchange for ``name`` (any case), or None where this server does not offer
        that mechanism."""
        name = name.upper()
        if name not in available_mechanisms(authenticator):
            return None
        mechanism = _MECHANISMS[name]()
        return cls(mechanism, authenticator, remote_ip=remote_ip, protocol=protocol)

    async def start(self, initial_response: bytes | None) -> SignInOutcome:
        """Begin with the decoded SASL-IR (b"" for "=") or None when absent."""
        return await self._resolve(self.mechanism.start(initial_response))

    async def step(self, line: bytes) -> SignInOutcome:
        """Continue with one client line (base64, or "*"), without its CRLF."""
        if self.finished:
            raise RuntimeError("SASL exchange already finished")
        response = decode_line(line)
        if not isinstance(response, bytes):
            return self._final(response)
        return await self._resolve(self.mechanism.step(response))

    async def _resolve(self, outcome: MechanismOutcome) -> SignInOutcome:
        authenticator, ip, protocol = self._authenticator, self._remote_ip, self._protocol
        while True:
            match outcome:
                case Challenge():
                    return outcome
                case Credentials(authcid=username, password=password):
                    result = await authenticator.authenticate(
                        username, password, remote_ip=ip, protocol=protocol
                    )
                    return self._final(SaslVerdict(result))
                case NeedScramParameters(username=username, resume=resume):
                    answer = await authenticator.scram_parameters(
                        username, remote_ip=ip, protocol=protocol
                    )
                    if isinstance(answer, AuthResult):
                        return self._final(SaslVerdict(answer))
                    outcome = resume(answer)
                case NeedScramProofCheck(
                    username=username, auth_message=message, client_proof=proof, resume=resume
                ):
                    verdict = await authenticator.verify_scram(
                        username, message, proof, remote_ip=ip, protocol=protocol
                    )
                    if not verdict.result.ok:
                        return self._final(SaslVerdict(verdict.result))
                    self._verdict = verdict.result
                    outcome = resume(verdict.server_signature)
                case NeedTokenCheck(username=username, token=token, on_refusal=on_refusal):
                    result = await authenticator.authenticate_token(
                        username, token, remote_ip=ip, protocol=protocol
                    )
                    if result.ok or result.throttled:
                        return self._final(SaslVerdict(result))
                    self._verdict = result
                    outcome = on_refusal()
                case MechanismDone():
                    if self._verdict is None:  # a mechanism's bug: never sign anyone in
                        return self._final(SaslFailure("mechanism ended without a verdict"))
                    return self._final(SaslVerdict(self._verdict))
                case SaslFailure() | SaslCancelled():
                    return self._final(outcome)

    def _final(self, outcome: SaslVerdict | SaslFailure | SaslCancelled) -> SignInOutcome:
        self.finished = True
        return outcome
