"""SaslSignIn: one exchange of any mechanism, driven against the Authenticator, over the
base64 line encoding that IMAP AUTHENTICATE and POP3 AUTH share."""

from __future__ import annotations

import base64
import json

import pytest
from argon2 import PasswordHasher

from roost.auth import scram
from roost.auth.authenticator import StoreAuthenticator
from roost.auth.oauth import TokenValidator
from roost.auth.passwords import hash_password
from roost.auth.sasl import (
    Challenge,
    SaslCancelled,
    SaslFailure,
    SaslSignIn,
    SaslVerdict,
    available_mechanisms,
)
from roost.auth.throttle import LoginThrottle, ThrottlePolicy
from tests.support.scram_client import ScramClient
from tests.support.tokens import TokenMaker
from tests.unit.test_authenticator import FakeStore

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
NOW = 1_800_000_000.0


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


@pytest.fixture(scope="module")
def tokens() -> TokenMaker:
    return TokenMaker()


@pytest.fixture
def authenticator(tokens: TokenMaker) -> StoreAuthenticator:
    store = FakeStore({"alice": hash_password("pencil", hasher=FAST)})
    store.scram["alice"] = scram.derive_keys("pencil", iterations=4096).encode()
    return StoreAuthenticator(
        store,  # type: ignore[arg-type]
        LoginThrottle(ThrottlePolicy.disabled()),
        hasher=FAST,
        tokens=TokenValidator([tokens.issuer()], clock=lambda: NOW),
    )


def sign_in(authenticator: StoreAuthenticator, mechanism: str) -> SaslSignIn:
    exchange = SaslSignIn.for_mechanism(
        mechanism, authenticator, remote_ip="192.0.2.1", protocol="test"
    )
    assert exchange is not None
    return exchange


def test_available_mechanisms(authenticator: StoreAuthenticator) -> None:
    assert available_mechanisms(authenticator) == (
        "PLAIN",
        "LOGIN",
        "SCRAM-SHA-256",
        "OAUTHBEARER",
        "XOAUTH2",
    )
    authenticator.tokens = None
    assert available_mechanisms(authenticator) == ("PLAIN", "LOGIN", "SCRAM-SHA-256")
    assert SaslSignIn.for_mechanism("XOAUTH2", authenticator, remote_ip="x", protocol="y") is None
    assert SaslSignIn.for_mechanism("CRAM-MD5", authenticator, remote_ip="x", protocol="y") is None


async def test_plain_and_login(authenticator: StoreAuthenticator) -> None:
    outcome = await sign_in(authenticator, "plain").start(b"\x00alice\x00pencil")
    assert isinstance(outcome, SaslVerdict) and outcome.result.account == "alice"
    exchange = sign_in(authenticator, "LOGIN")
    assert await exchange.start(None) == Challenge(b"Username:")
    assert await exchange.step(b64(b"alice")) == Challenge(b"Password:")
    outcome = await exchange.step(b64(b"wrong"))
    assert isinstance(outcome, SaslVerdict) and not outcome.result.ok
    assert exchange.finished
    with pytest.raises(RuntimeError):
        await exchange.step(b"")


async def test_scram_sha_256(authenticator: StoreAuthenticator) -> None:
    client = ScramClient("alice", "pencil")
    exchange = sign_in(authenticator, "SCRAM-SHA-256")
    server_first = await exchange.start(client.first())
    assert isinstance(server_first, Challenge)
    server_final = await exchange.step(b64(client.final(server_first.data)))
    assert isinstance(server_final, Challenge)
    assert client.verify(server_final.data)
    outcome = await exchange.step(b"")
    assert isinstance(outcome, SaslVerdict) and outcome.result.account == "alice"


async def test_scram_wrong_password_fails_at_the_proof(authenticator: StoreAuthenticator) -> None:
    client = ScramClient("alice", "crayon")
    exchange = sign_in(authenticator, "SCRAM-SHA-256")
    assert await exchange.start(None) == Challenge(b"")
    server_first = await exchange.step(b64(client.first()))
    assert isinstance(server_first, Challenge)
    outcome = await exchange.step(b64(client.final(server_first.data)))
    assert isinstance(outcome, SaslVerdict) and not outcome.result.ok


async def test_oauthbearer(authenticator: StoreAuthenticator, tokens: TokenMaker) -> None:
    token = tokens.token("alice", now=NOW)
    message = f"n,a=alice,\x01auth=Bearer {token}\x01\x01".encode()
    outcome = await sign_in(authenticator, "OAUTHBEARER").start(message)
    assert isinstance(outcome, SaslVerdict) and outcome.result.account == "alice"


async def test_oauthbearer_refused_token_error_challenge(
    authenticator: StoreAuthenticator, tokens: TokenMaker
) -> None:
    token = tokens.token("alice", now=NOW, aud="elsewhere")
    exchange = sign_in(authenticator, "OAUTHBEARER")
    challenge = await exchange.start(f"n,,\x01auth=Bearer {token}\x01\x01".encode())
    assert isinstance(challenge, Challenge)
    assert json.loads(challenge.data)["status"] == "invalid_token"
    outcome = await exchange.step(b64(b"\x01"))
    assert isinstance(outcome, SaslVerdict) and not outcome.result.ok


async def test_xoauth2(authenticator: StoreAuthenticator, tokens: TokenMaker) -> None:
    token = tokens.token("alice", now=NOW)
    outcome = await sign_in(authenticator, "XOAUTH2").start(
        f"user=alice\x01auth=Bearer {token}\x01\x01".encode()
    )
    assert isinstance(outcome, SaslVerdict) and outcome.result.account == "alice"


async def test_cancel_and_bad_base64(authenticator: StoreAuthenticator) -> None:
    exchange = sign_in(authenticator, "SCRAM-SHA-256")
    await exchange.start(None)
    assert await exchange.step(b"*") == SaslCancelled()
    exchange = sign_in(authenticator, "PLAIN")
    await exchange.start(None)
    outcome = await exchange.step(b"not base64!")
    assert isinstance(outcome, SaslFailure) and outcome.bad_encoding


async def test_throttled_scram_ends_before_the_server_first_message(tokens: TokenMaker) -> None:
    store = FakeStore({"alice": hash_password("pencil", hasher=FAST)})
    throttle = LoginThrottle(ThrottlePolicy(max_failures_per_ip=1))
    throttle.record_failure("192.0.2.1", "someone")
    authenticator = StoreAuthenticator(store, throttle, hasher=FAST)  # type: ignore[arg-type]
    outcome = await sign_in(authenticator, "SCRAM-SHA-256").start(ScramClient("a", "b").first())
    assert isinstance(outcome, SaslVerdict) and outcome.result.throttled
