"""Test-made signing keys and JWTs for the OAuth tests: nothing leaves the process."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from roost.auth.oauth import OAuthIssuer, make_issuer

ISSUER = "https://id.example.org"
AUDIENCE = "roost-mail"


def public_pem(private_key: Any) -> str:
    data: bytes = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data.decode("ascii")


def jwks_text(*private_keys: tuple[Any, str]) -> str:
    """A JWKS document for (private key, kid) pairs."""
    keys = []
    for private_key, kid in private_keys:
        public = private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
        elif isinstance(public, ec.EllipticCurvePublicKey):
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
        else:
            jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))
        jwk["kid"] = kid
        keys.append(jwk)
    return json.dumps({"keys": keys})


@dataclass
class TokenMaker:
    """An issuer's RSA, EC and Ed25519 keys and a way to sign tokens with them."""

    rsa_key: Any = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    ec_key: Any = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    ed_key: Any = field(default_factory=ed25519.Ed25519PrivateKey.generate)

    def issuer(self, **kwargs: Any) -> OAuthIssuer:
        """The issuer as configured: the RSA and EC keys in a JWKS, Ed25519 as PEM."""
        return make_issuer(
            ISSUER,
            AUDIENCE,
            jwks=jwks_text((self.rsa_key, "rsa-1"), (self.ec_key, "ec-1")),
            public_keys=[public_pem(self.ed_key)],
            **kwargs,
        )

    def token(
        self,
        email: str = "alice@example.org",
        *,
        algorithm: str = "RS256",
        expires_in: float = 300,
        key: Any = None,
        kid: str | None = None,
        now: float | None = None,
        **claims: Any,
    ) -> str:
        now = time.time() if now is None else now
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "1234",
            "email": email,
            "iat": int(now),
            "exp": int(now + expires_in),
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        if key is None:
            key, kid = {
                "RS256": (self.rsa_key, "rsa-1"),
                "ES256": (self.ec_key, "ec-1"),
                "EdDSA": (self.ed_key, None),
            }[algorithm]
        headers = {"kid": kid} if kid else None
        return jwt.encode(payload, key, algorithm=algorithm, headers=headers)
