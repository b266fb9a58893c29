"""OAuth 2.0 bearer tokens: JWTs checked against the issuers in the configuration.

A token is accepted when all of these hold:

* its header names an algorithm the issuer allows (never "none", never HMAC: Roost
  holds only public keys) and, if it has a "kid", a key of the issuer with that id;
* its signature verifies with one of the issuer's public keys (from a JWKS file or
  inline PEM) that fits the algorithm;
* "iss" is exactly the configured issuer, "aud" contains the configured audience;
* "exp" is present and not past, "nbf" (if present) is not in the future — both with
  ``leeway`` seconds of clock skew;
* the username claim (default "email") is a non-empty string: the account to sign in.

The keys are read once, at start-up; a key rotation means editing the configuration and
restarting. No network: Roost never fetches keys from the issuer itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

# Asymmetric algorithms only: an HMAC "key" would be a shared secret in the config.
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
DEFAULT_ALGORITHMS = ("RS256", "ES256", "EdDSA")
DEFAULT_USERNAME_CLAIM = "email"
DEFAULT_LEEWAY = 60.0
MAX_TOKEN_LENGTH = 16 * 1024

_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class TokenError(Exception):
    """A token that does not sign anyone in; the message is for the log."""


class OAuthConfigError(ValueError):
    """A configured issuer or key that cannot be used."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    key: Any  # a cryptography public key object
    algorithms: frozenset[str]  # the algorithms this key can verify
    kid: str | None = None


@dataclass(frozen=True, slots=True)
class OAuthIssuer:
    issuer: str
    audience: str
    keys: tuple[VerificationKey, ...]
    username_claim: str = DEFAULT_USERNAME_CLAIM
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS


def key_algorithms(key: object) -> frozenset[str]:
    """The JWS algorithms a public key can verify."""
    if isinstance(key, rsa.RSAPublicKey):
        return frozenset(a for a in ALLOWED_ALGORITHMS if a[:2] in ("RS", "PS"))
    if isinstance(key, ec.EllipticCurvePublicKey):
        algorithm = _EC_ALGORITHMS.get(key.curve.name)
        return frozenset((algorithm,)) if algorithm else frozenset()
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return frozenset(("EdDSA",))
    return frozenset()


def load_pem_keys(pems: Iterable[str]) -> tuple[VerificationKey, ...]:
    keys = []
    for number, pem in enumerate(pems, 1):
        try:
            key = load_pem_public_key(pem.encode("ascii"))
        except (ValueError, TypeError, UnicodeEncodeError) as error:
            raise OAuthConfigError(
                f"public key {number} is not a PEM public key: {error}"
            ) from None
        algorithms = key_algorithms(key)
        if not algorithms:
            raise OAuthConfigError(f"public key {number} is of a type JWTs cannot use")
        keys.append(VerificationKey(key=key, algorithms=algorithms))
    return tuple(keys)


def load_jwks(text: str) -> tuple[VerificationKey, ...]:
    """The signing keys of a JWKS document (RFC 7517 §5); keys for encryption ("use":
    "enc") and symmetric keys are left out."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise OAuthConfigError(f"the JWKS is not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise OAuthConfigError('the JWKS has no "keys" list')
    keys = []
    for number, jwk in enumerate(document["keys"], 1):
        if not isinstance(jwk, dict):
            raise OAuthConfigError(f"JWKS key {number} is not an object")
        if jwk.get("use", "sig") != "sig" or jwk.get("kty") == "oct":
            continue
        try:
            key = jwt.PyJWK(jwk).key
        except jwt.PyJWTError as error:
            raise OAuthConfigError(f"JWKS key {number} is unusable: {error}") from None
        algorithms = key_algorithms(key)
        declared = jwk.get("alg")
        if isinstance(declared, str):
            algorithms &= {declared}
        if not algorithms:
            raise OAuthConfigError(f"JWKS key {number} cannot verify any allowed algorithm")
        kid = jwk.get("kid")
        keys.append(VerificationKey(key, algorithms, kid if isinstance(kid, str) else None))
    if not keys:
        raise OAuthConfigError("the JWKS has no signing keys")
    return tuple(keys)


def make_issuer(
    issuer: str,
    audience: str,
    *,
    jwks: str | None = None,
    public_keys: Sequence[str] = (),
    username_claim: str = DEFAULT_USERNAME_CLAIM,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
) -> OAuthIssuer:
    """An issuer from configuration values: ``jwks`` is the JWKS document's text."""
    if not issuer:
        raise OAuthConfigError("issuer must not be empty")
    if not audience:
        raise OAuthConfigError("audience must not be empty")
    if not username_claim:
        raise OAuthConfigError("username_claim must not be empty")
    unknown = [a for a in algorithms if a not in ALLOWED_ALGORITHMS]
    if unknown or not algorithms:
        allowed = ", ".join(ALLOWED_ALGORITHMS)
        raise OAuthConfigError(f"algorithms must be some of {allowed}; not {unknown or '[]'}")
    keys = load_pem_keys(public_keys)
    if jwks is not None:
        keys += load_jwks(jwks)
    if not keys:
        raise OAuthConfigError("give jwks or public_keys")
    if not any(key.algorithms & set(algorithms) for key in keys):
        raise OAuthConfigError("no key can verify any of the allowed algorithms")
    return OAuthIssuer(issuer, audience, keys, username_claim, tuple(algorithms))


class TokenValidator:
    def __init__(
        self,
        issuers: Sequence[OAuthIssuer],
        *,
        leeway: float = DEFAULT_LEEWAY,
        clock: Callable[[], float] = time.time,
        max_token_size: int = MAX_TOKEN_LENGTH,
    ) -> None:
        self._issuers: Mapping[str, OAuthIssuer] = {i.issuer: i for i in issuers}
        self._max_token_size = max_token_size
        self._leeway = leeway
        self._clock = clock

    def __bool__(self) -> bool:
        return bool(self._issuers)

    def validate(self, token: str) -> str:
        """The user name the token was issued for; TokenError when it is refused."""
        if len(token) > self._max_token_size:
            raise TokenError("token too long")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise TokenError(f"not a JWT: {error}") from None
        issuer = self._issuers.get(unverified.get("iss"))  # type: ignore[arg-type]
        if issuer is None:
            raise TokenError(f"unknown issuer {str(unverified.get('iss'))[:100]!r}")
        algorithm = header.get("alg")
        if algorithm not in issuer.algorithms:
            raise TokenError(f"algorithm {str(algorithm)[:20]!r} not allowed for this issuer")
        kid = header.get("kid")
        candidates = [
            key
            for key in issuer.keys
            if algorithm in key.algorithms and (kid is None or key.kid in (None, kid))
        ]
        if not candidates:
            raise TokenError("no key of the issuer fits the token")
        claims = self._verified_claims(token, issuer, algorithm, candidates)
        now = self._clock()
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            raise TokenError("token without a numeric exp")
        if now > expires + self._leeway:
            raise TokenError("token expired")
        not_before = claims.get("nbf")
        if isinstance(not_before, int | float) and now + self._leeway < not_before:
            raise TokenError("token not valid yet")
        username = claims.get(issuer.username_claim)
        if not isinstance(username, str) or not username:
            raise TokenError(f"token without a {issuer.username_claim} claim")
        return username

    @staticmethod
    def _verified_claims(
        token: str, issuer: OAuthIssuer, algorithm: str, candidates: Sequence[VerificationKey]
    ) -> dict[str, Any]:
        # Time claims are checked by the caller, against the injectable clock.
        options: Any = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}
        last_error = "bad signature"
        for candidate in candidates:
            try:
                return jwt.decode(
                    token,
                    candidate.key,
                    algorithms=[algorithm],
                    audience=issuer.audience,
                    issuer=issuer.issuer,
                    options=options,
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as error:
                last_error = str(error) or type(error).__name__
                break
        raise TokenError(last_error)
