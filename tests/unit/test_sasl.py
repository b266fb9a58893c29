"""SASL mechanisms, sans-IO: PLAIN (RFC 4616), LOGIN, and the IMAP line encoding
(RFC 9051 §6.2.2: base64 lines, "*" cancels)."""

from __future__ import annotations

import base64

import pytest

from roost.auth.sasl import (
    MECHANISM_NAMES,
    Challenge,
    Credentials,
    LoginMechanism,
    PlainMechanism,
    SaslCancelled,
    SaslExchange,
    SaslFailure,
    mechanism_for,
)


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


# ---- PLAIN ---------------------------------------------------------------------------


def test_plain_with_initial_response() -> None:
    outcome = PlainMechanism().start(b"\x00alice\x00s3cret")
    assert outcome == Credentials(authcid="alice", password="s3cret", authzid="")


def test_plain_authzid_equal_to_authcid_is_accepted() -> None:
    outcome = PlainMechanism().start(b"alice\x00alice\x00pw")
    assert outcome == Credentials(authcid="alice", password="pw", authzid="alice")


def test_plain_authzid_other_than_authcid_is_refused() -> None:
    outcome = PlainMechanism().start(b"bob\x00alice\x00pw")
    assert isinstance(outcome, SaslFailure)
    assert outcome.authorization_failed and not outcome.bad_encoding


def test_plain_without_initial_response_sends_empty_challenge() -> None:
    mechanism = PlainMechanism()
    assert mechanism.start(None) == Challenge(b"")
    assert mechanism.step(b"\x00alice\x00pw") == Credentials("alice", "pw")


def test_plain_utf8_fields() -> None:
    outcome = PlainMechanism().start("\x00jos\u00e9@example.org\x00p\u00e4ss".encode())
    assert outcome == Credentials(authcid="jos\u00e9@example.org", password="p\u00e4ss")


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"alice",
        b"\x00alice",
        b"\x00alice\x00pw\x00extra",
        b"\x00\x00pw",  # empty authcid
        b"\x00alice\x00",  # empty password
        b"\x00al\xffice\x00pw",  # not UTF-8
        b"\x00" + b"a" * 2000 + b"\x00pw",  # field too long
    ],
)
def test_plain_malformed_messages_fail(message: bytes) -> None:
    outcome = PlainMechanism().start(message)
    assert isinstance(outcome, SaslFailure)
    assert not outcome.bad_encoding


def test_plain_credentials_repr_hides_the_password() -> None:
    assert "s3cret" not in repr(Credentials("alice", "s3cret"))


# ---- LOGIN ---------------------------------------------------------------------------


def test_login_prompts_exactly_username_then_password() -> None:
    """CLIENTS.md (Outlook): the prompts must be exactly "Username:" and "Password:"."""
    mechanism = LoginMechanism()
    assert mechanism.start(None) == Challenge(b"Username:")
    assert mechanism.step(b"alice") == Challenge(b"Password:")
    assert mechanism.step(b"pw") == Credentials("alice", "pw")


def test_login_initial_response_is_the_user_name() -> None:
    mechanism = LoginMechanism()
    assert mechanism.start(b"alice") == Challenge(b"Password:")
    assert mechanism.step(b"pw") == Credentials("alice", "pw")


def test_login_empty_initial_response_still_asks_for_the_name() -> None:
    assert LoginMechanism().start(b"") == Challenge(b"Username:")


@pytest.mark.parametrize("steps", [[b""], [b"alice", b""], [b"\xff"], [b"alice", b"\xfe"]])
def test_login_bad_responses_fail(steps: list[bytes]) -> None:
    mechanism = LoginMechanism()
    mechanism.start(None)
    outcome = None
    for step in steps:
        outcome = mechanism.step(step)
    assert isinstance(outcome, SaslFailure)


# ---- the exchange (IMAP line encoding) -----------------------------------------------


def test_mechanism_lookup_is_case_insensitive() -> None:
    assert MECHANISM_NAMES == ("PLAIN", "LOGIN")
    assert isinstance(mechanism_for("plain"), PlainMechanism)
    assert isinstance(mechanism_for("Login"), LoginMechanism)
    assert mechanism_for("CRAM-MD5") is None
    assert SaslExchange.for_mechanism("XOAUTH2") is None


def test_exchange_decodes_base64_lines() -> None:
    exchange = SaslExchange.for_mechanism("PLAIN")
    assert exchange is not None
    challenge = exchange.start(None)
    assert isinstance(challenge, Challenge) and challenge.encoded() == b""
    assert exchange.step(b64(b"\x00alice\x00pw") + b"\r\n") == Credentials("alice", "pw")
    assert exchange.finished


def test_exchange_challenges_are_base64_encoded() -> None:
    exchange = SaslExchange(LoginMechanism())
    challenge = exchange.start(None)
    assert isinstance(challenge, Challenge)
    assert challenge.encoded() == b"VXNlcm5hbWU6"  # "Username:"
    second = exchange.step(b64(b"alice"))
    assert isinstance(second, Challenge) and second.encoded() == b"UGFzc3dvcmQ6"
    assert exchange.step(b64(b"pw")) == Credentials("alice", "pw")


def test_exchange_star_cancels() -> None:
    """RFC 9051 §6.2.2: a line of a single "*" cancels the exchange."""
    exchange = SaslExchange(LoginMechanism())
    exchange.start(None)
    assert exchange.step(b"*") == SaslCancelled()
    assert exchange.finished
    with pytest.raises(RuntimeError):
        exchange.step(b"*")


@pytest.mark.parametrize("line", [b"!!!", b"AGFsaWNlAHB", b"AGFsaWNl AHB3dw==", b"=AAA"])
def test_exchange_invalid_base64_is_bad_encoding(line: bytes) -> None:
    exchange = SaslExchange(PlainMechanism())
    exchange.start(None)
    outcome = exchange.step(line)
    assert isinstance(outcome, SaslFailure) and outcome.bad_encoding


def test_exchange_initial_response_is_already_decoded() -> None:
    """SASL-IR (RFC 4959): the command parser decodes it; "=" arrives as b""."""
    exchange = SaslExchange(PlainMechanism())
    assert exchange.start(b"\x00alice\x00pw") == Credentials("alice", "pw")
    empty = SaslExchange(PlainMechanism()).start(b"")
    assert isinstance(empty, SaslFailure)
