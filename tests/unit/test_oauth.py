"""Bearer tokens: JWT checks against configured issuers (roost.auth.oauth), and the
OAUTHBEARER (RFC 7628) and XOAUTH2 message formats (roost.auth.bearer)."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from roost.auth.bearer import OAuthBearerMechanism, XOAuth2Mechanism
from roost.auth.oauth import (
    OAuthConfigError,
    TokenError,
    TokenValidator,
    load_jwks,
    make_issuer,
)
from roost.auth.sasl_types import Challenge, MechanismDone, NeedTokenCheck, SaslFailure
from tests.support.tokens import AUDIENCE, ISSUER, TokenMaker, jwks_text, public_pem

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def maker() -> TokenMaker:
    return TokenMaker()


@pytest.fixture
def validator(maker: TokenMaker) -> TokenValidator:
    return TokenValidator([maker.issuer()], clock=lambda: NOW)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_valid_tokens_name_the_user(
    maker: TokenMaker, validator: TokenValidator, algorithm: str
) -> None:
    token = maker.token(algorithm=algorithm, now=NOW)
    assert validator.validate(token) == "alice@example.org"


def test_token_without_kid_tries_the_keys_that_fit(
    maker: TokenMaker, validator: TokenValidator
) -> None:
    token = maker.token(key=maker.rsa_key, algorithm="RS256", kid=None, now=NOW)
    assert validator.validate(token) == "alice@example.org"


def test_username_claim_is_configurable(maker: TokenMaker) -> None:
    validator = TokenValidator(
        [maker.issuer(username_claim="preferred_username")], clock=lambda: NOW
    )
    token = maker.token(now=NOW, preferred_username="bob")
    assert validator.validate(token) == "bob"
    with pytest.raises(TokenError, match="preferred_username"):
        validator.validate(maker.token(now=NOW))


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"expires_in": -3600}, "expired"),
        ({"aud": "someone-else"}, "(?i)audience"),
        ({"iss": "https://evil.example"}, "unknown issuer"),
        ({"exp": None}, "exp"),
        ({"nbf": NOW + 3600}, "not valid yet"),
        ({"email": None}, "email"),
        ({"email": ""}, "email"),
    ],
)
def test_refused_claims(
    maker: TokenMaker, validator: TokenValidator, changes: dict[str, Any], why: str
) -> None:
    token = maker.token(now=NOW, **changes)
    with pytest.raises(TokenError, match=why):
        validator.validate(token)


def test_clock_skew_leeway(maker: TokenMaker, validator: TokenValidator) -> None:
    assert validator.validate(maker.token(now=NOW, expires_in=-30)) == "alice@example.org"


def test_bad_signature_is_refused(maker: TokenMaker, validator: TokenValidator) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = maker.token(key=stranger, algorithm="RS256", kid="rsa-1", now=NOW)
    with pytest.raises(TokenError):
        validator.validate(token)
    header, _payload, signature = maker.token(now=NOW).split(".")
    tampered = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "email": "mallory@example.org", "exp": int(NOW) + 60},
        stranger,
        algorithm="RS256",
    ).split(".")[1]
    with pytest.raises(TokenError):
        validator.validate(f"{header}.{tampered}.{signature}")


def test_unknown_kid_and_unallowed_algorithms_are_refused(
    maker: TokenMaker, validator: TokenValidator
) -> None:
    with pytest.raises(TokenError, match="no key"):
        validator.validate(maker.token(key=maker.rsa_key, algorithm="RS256", kid="other", now=NOW))
    with pytest.raises(TokenError, match="not allowed"):
        validator.validate(maker.token(key=maker.rsa_key, algorithm="RS384", kid="rsa-1", now=NOW))
    hmac_token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "email": "a", "exp": NOW + 60}, "secret" * 6, "HS256"
    )
    with pytest.raises(TokenError, match="not allowed"):
        validator.validate(hmac_token)
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "email": "a", "exp": NOW + 60}, None, "none"
    )
    with pytest.raises(TokenError, match="not allowed"):
        validator.validate(unsigned)


def test_garbage_is_refused(validator: TokenValidator) -> None:
    for token in ("", "abc", "a.b.c", "x" * 20000):
        with pytest.raises(TokenError):
            validator.validate(token)


def test_restricted_algorithms(maker: TokenMaker) -> None:
    validator = TokenValidator([maker.issuer(algorithms=["ES256"])], clock=lambda: NOW)
    assert validator.validate(maker.token(algorithm="ES256", now=NOW))
    with pytest.raises(TokenError, match="not allowed"):
        validator.validate(maker.token(algorithm="RS256", now=NOW))


def test_issuer_configuration_errors(maker: TokenMaker) -> None:
    pem = public_pem(maker.rsa_key)
    with pytest.raises(OAuthConfigError, match="give jwks"):
        make_issuer(ISSUER, AUDIENCE)
    with pytest.raises(OAuthConfigError, match="algorithms"):
        make_issuer(ISSUER, AUDIENCE, public_keys=[pem], algorithms=["HS256"])
    with pytest.raises(OAuthConfigError, match="algorithms"):
        make_issuer(ISSUER, AUDIENCE, public_keys=[pem], algorithms=["none"])
    with pytest.raises(OAuthConfigError, match="PEM"):
        make_issuer(ISSUER, AUDIENCE, public_keys=["not a key"])
    with pytest.raises(OAuthConfigError, match="no key can verify"):
        make_issuer(ISSUER, AUDIENCE, public_keys=[pem], algorithms=["ES256"])
    with pytest.raises(OAuthConfigError, match="audience"):
        make_issuer(ISSUER, "", public_keys=[pem])
    with pytest.raises(OAuthConfigError, match="JSON"):
        load_jwks("{")
    with pytest.raises(OAuthConfigError, match="keys"):
        load_jwks("{}")
    with pytest.raises(OAuthConfigError, match="no signing keys"):
        load_jwks(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}))


def test_jwks_leaves_out_encryption_keys_and_honours_alg() -> None:
    signing = ec.generate_private_key(ec.SECP256R1())
    document = json.loads(jwks_text((signing, "s"), (signing, "e")))
    document["keys"][1]["use"] = "enc"
    keys = load_jwks(json.dumps(document))
    assert [k.kid for k in keys] == ["s"] and keys[0].algorithms == {"ES256"}
    document["keys"][0]["alg"] = "ES384"  # a P-256 key cannot do ES384
    with pytest.raises(OAuthConfigError):
        load_jwks(json.dumps(document))


def test_expiry_uses_the_real_clock_by_default(maker: TokenMaker) -> None:
    validator = TokenValidator([maker.issuer()])
    assert validator.validate(maker.token(now=time.time()))
    assert not TokenValidator([])


# ---- the SASL messages ---------------------------------------------------------------

# RFC 7628 §4.1 (the token is opaque to the mechanism).
RFC_7628_MESSAGE = (
    b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
    b"auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
)


def test_oauthbearer_rfc_7628_example() -> None:
    outcome = OAuthBearerMechanism().start(RFC_7628_MESSAGE)
    assert isinstance(outcome, NeedTokenCheck)
    assert outcome.username == "user@example.com"
    assert outcome.token == "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="


def test_oauthbearer_failure_sends_the_error_then_fails_after_the_dummy_response() -> None:
    """RFC 7628 §3.2.3: error challenge (JSON), the client answers %x01, then failure."""
    mechanism = OAuthBearerMechanism()
    outcome = mechanism.start(None)
    assert outcome == Challenge(b"")
    request = mechanism.step(b"n,,\x01auth=bearer abc.def.ghi\x01\x01")
    assert isinstance(request, NeedTokenCheck) and request.username is None
    challenge = request.on_refusal()
    assert isinstance(challenge, Challenge)
    assert json.loads(challenge.data) == {"status": "invalid_token", "schemes": "bearer"}
    assert mechanism.step(b"\x01") == MechanismDone()


def test_xoauth2_message_and_error() -> None:
    mechanism = XOAuth2Mechanism()
    request = mechanism.start(b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2\x01\x01")
    assert isinstance(request, NeedTokenCheck)
    assert (request.username, request.token) == ("someuser@example.com", "ya29.vF9dft4qmTc2")
    challenge = request.on_refusal()
    assert isinstance(challenge, Challenge) and json.loads(challenge.data)["status"] == "401"
    assert mechanism.step(b"") == MechanismDone()


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"n,,",
        b"n,,\x01auth=Bearer abc\x01",  # one terminator short
        b"n,,\x01auth=Basic abc\x01\x01",
        b"n,,\x01host=x\x01\x01",  # no auth
        b"p=tls-unique,,\x01auth=Bearer abc\x01\x01",
        b"n,user,\x01auth=Bearer abc\x01\x01",
        b"n,,\x01auth=Bearer abc\x01auth=Bearer def\x01\x01",
        b"n,,\x01auth=Bearer \xff\x01\x01",
        b"n,,\x01auth=Bearer " + b"a" * 70000 + b"\x01\x01",  # beyond MAX_MESSAGE_OCTETS
    ],
)
def test_oauthbearer_malformed_messages_fail(message: bytes) -> None:
    assert isinstance(OAuthBearerMechanism().start(message), SaslFailure)


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"user=a\x01\x01",
        b"auth=Bearer abc\x01\x01",
        b"user=a\x01auth=Bearer abc\x01",
        b"user=a\x01auth=Bearer a b\x01\x01",
    ],
)
def test_xoauth2_malformed_messages_fail(message: bytes) -> None:
    assert isinstance(XOAuth2Mechanism().start(message), SaslFailure)
