"""OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's older form): a bearer token in one
client message, sans-IO. The token itself is checked by the Authenticator.

OAUTHBEARER (RFC 7628 §3.1)::

    n,a=user@example.org,^Ahost=imap.example.org^Aport=993^Aauth=Bearer <token>^A^A

The GS2 header may omit the authorization identity ("n,,"); channel binding ("p=") is
refused. XOAUTH2::

    user=user@example.org^Aauth=Bearer <token>^A^A

When the token is refused, both send an error challenge (RFC 7628 §3.2.2: a JSON
object; Google's XOAUTH2 does the same) and fail after the client's answer — "^A" for
OAUTHBEARER (§3.2.3), an empty response for XOAUTH2 — whatever that answer holds.
"""

from __future__ import annotations

import json
import re

from roost.auth.sasl_types import (
    Challenge,
    MechanismDone,
    MechanismOutcome,
    NeedTokenCheck,
    SaslFailure,
)

# JWTs from real identity providers reach a few KiB; leave room, not without bound.
# The token itself is bounded by ``[auth] max_token_size`` (oauth.TokenValidator, 16 KiB
# by default); this bounds the message around it, so that setting can be raised.
MAX_MESSAGE_OCTETS = 64 * 1024
_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)  # RFC 6750 §2.1


def _token(auth_value: str) -> str | None:
    match = _BEARER.fullmatch(auth_value)
    return match.group(1) if match else None


class _BearerMechanism:
    name = ""
    _error: bytes = b""

    def __init__(self) -> None:
        self._state = "message"

    def start(self, initial_response: bytes | None) -> MechanismOutcome:
        if initial_response is None:
            return Challenge(b"")
        return self.step(initial_response)

    def step(self, response: bytes) -> MechanismOutcome:
        match self._state:
            case "message":
                if len(response) > MAX_MESSAGE_OCTETS:
                    return self._fail(f"{self.name} message too long")
                try:
                    parsed = self._parse(response.decode("utf-8"))
                except UnicodeDecodeError:
                    return self._fail(f"{self.name} message is not UTF-8")
                if isinstance(parsed, SaslFailure):
                    self._state = "done"
                    return parsed
                username, token = parsed
                self._state = "waiting-for-verdict"
                return NeedTokenCheck(username=username, token=token, on_refusal=self._refused)
            case "error-sent":
                self._state = "done"
                return MechanismDone()
        return self._fail(f"{self.name} exchange already over")

    def _refused(self) -> MechanismOutcome:
        self._state = "error-sent"
        return Challenge(self._error)

    def _fail(self, reason: str) -> SaslFailure:
        self._state = "done"
        return SaslFailure(reason)

    def _parse(self, message: str) -> tuple[str | None, str] | SaslFailure:
        raise NotImplementedError


class OAuthBearerMechanism(_BearerMechanism):
    name = "OAUTHBEARER"
    # RFC 7628 §3.2.2: "status" is required; "schemes" and "scope" are optional.
    _error = json.dumps({"status": "invalid_token", "schemes": "bearer"}).encode()

    def _parse(self, message: str) -> tuple[str | None, str] | SaslFailure:
        header, separator, rest = message.partition("\x01")
        if not separator:
            return SaslFailure("OAUTHBEARER message without key/value pairs")
        gs2 = header.split(",")
        if len(gs2) != 3 or gs2[2] != "":
            return SaslFailure("OAUTHBEARER message with a malformed GS2 header")
        flag, authzid = gs2[0], gs2[1]
        if flag.startswith("p="):
            return SaslFailure("OAUTHBEARER channel binding is not supported")
        if flag not in ("n", "y"):
            return SaslFailure("OAUTHBEARER message with a bad GS2 flag")
        if authzid and not authzid.startswith("a="):
            return SaslFailure("OAUTHBEARER authorization identity without a=")
        username = authzid[2:].replace("=2C", ",").replace("=3D", "=") if authzid else None
        pairs = _pairs(rest)
        if pairs is None:
            return SaslFailure("OAUTHBEARER key/value pairs malformed")
        token = _token(pairs.get("auth", ""))
        if token is None:
            return SaslFailure("OAUTHBEARER message without a Bearer token")
        return username or None, token


class XOAuth2Mechanism(_BearerMechanism):
    name = "XOAUTH2"
    _error = json.dumps({"status": "401", "schemes": "bearer"}).encode()

    def _parse(self, message: str) -> tuple[str | None, str] | SaslFailure:
        pairs = _pairs(message)
        if pairs is None:
            return SaslFailure("XOAUTH2 message malformed")
        token = _token(pairs.get("auth", ""))
        username = pairs.get("user", "")
        if token is None or not username:
            return SaslFailure("XOAUTH2 message without user= or a Bearer token")
        return username, token


def _pairs(text: str) -> dict[str, str] | None:
    """``key=value^A``... followed by one more ``^A``; None when malformed."""
    if not text.endswith("\x01\x01") and text != "\x01":
        return None
    body = text[:-1]
    pairs: dict[str, str] = {}
    for item in body.split("\x01")[:-1] if body else ():
        key, equals, value = item.partition("=")
        if not equals or not key or key in pairs:
            return None
        pairs[key] = value
    return pairs
