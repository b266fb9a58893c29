"""SCRAM-SHA-256 (RFC 5802, RFC 7677) and SASLprep (RFC 4013), sans-IO: the RFC 7677
example exchange byte for byte, the stored-key format, and every malformed message."""

from __future__ import annotations

import base64

import pytest

from roost.auth import scram
from roost.auth.sasl_types import (
    Challenge,
    MechanismDone,
    NeedScramParameters,
    NeedScramProofCheck,
    SaslFailure,
)
from roost.auth.saslprep import saslprep

# RFC 7677 §3: user "user", password "pencil".
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def rfc_keys() -> scram.ScramKeys:
    return scram.derive_keys("pencil", salt=SALT, iterations=4096)


def mechanism() -> scram.ScramSha256Mechanism:
    return scram.ScramSha256Mechanism(nonce=lambda: SERVER_NONCE)


def test_rfc_7677_example_exchange() -> None:
    keys = rfc_keys()
    m = mechanism()
    request = m.start(CLIENT_FIRST)
    assert isinstance(request, NeedScramParameters) and request.username == "user"
    assert request.resume(keys.parameters) == Challenge(SERVER_FIRST)
    check = m.step(CLIENT_FINAL)
    assert isinstance(check, NeedScramProofCheck)
    assert check.auth_message == b",".join(
        (CLIENT_FIRST[3:], SERVER_FIRST, CLIENT_FINAL.rsplit(b",", 1)[0])
    )
    signature = scram.check_proof(keys, check.auth_message, check.client_proof)
    assert signature is not None
    assert check.resume(signature) == Challenge(SERVER_FINAL)
    assert m.step(b"") == MechanismDone()


def test_wrong_password_proof_fails_the_check() -> None:
    keys = scram.derive_keys("not pencil", salt=SALT, iterations=4096)
    m = mechanism()
    request = m.start(CLIENT_FIRST)
    assert isinstance(request, NeedScramParameters)
    request.resume(keys.parameters)
    check = m.step(CLIENT_FINAL)
    assert isinstance(check, NeedScramProofCheck)
    assert scram.check_proof(keys, check.auth_message, check.client_proof) is None
    assert scram.check_proof(keys, check.auth_message, b"short") is None


def test_without_initial_response_the_server_asks_first() -> None:
    m = mechanism()
    assert m.start(None) == Challenge(b"")
    assert isinstance(m.step(CLIENT_FIRST), NeedScramParameters)


def test_stored_form_round_trips_and_rejects_garbage() -> None:
    keys = rfc_keys()
    text = keys.encode()
    assert text.startswith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$")
    assert scram.ScramKeys.decode(text) == keys
    for bad in (
        "",
        "SCRAM-SHA-1$4096:abc$def:ghi",
        "SCRAM-SHA-256$4096:W22Z$x:y",
        text.replace("4096", "100"),  # too few iterations
        text + "$extra",
    ):
        with pytest.raises(ValueError):
            scram.ScramKeys.decode(bad)


def test_new_keys_use_a_fresh_salt_and_enough_iterations() -> None:
    a, b = scram.derive_keys("pw"), scram.derive_keys("pw")
    assert a.salt != b.salt and len(a.salt) == scram.SALT_BYTES
    assert a.iterations >= 4096


def test_mock_keys_are_stable_per_name_and_differ_between_names() -> None:
    secret = b"k" * 32
    assert scram.mock_keys(secret, "Nobody") == scram.mock_keys(secret, "nobody")
    assert scram.mock_keys(secret, "nobody").salt != scram.mock_keys(secret, "other").salt
    assert scram.mock_keys(secret, "x").salt != scram.mock_keys(b"j" * 32, "x").salt


def test_gs2_y_flag_and_authzid_equal_to_user_are_accepted() -> None:
    m = mechanism()
    request = m.start(b"y,a=user,n=user,r=abc")
    assert isinstance(request, NeedScramParameters)
    request.resume(rfc_keys().parameters)
    binding = base64.b64encode(b"y,a=user,").decode()
    nonce = "abc" + SERVER_NONCE
    outcome = m.step(f"c={binding},r={nonce},p=AAAA".encode())
    assert isinstance(outcome, NeedScramProofCheck)


def test_escaped_user_names_are_decoded() -> None:
    request = mechanism().start(b"n,,n=a=2Cb=3Dc,r=abc")
    assert isinstance(request, NeedScramParameters) and request.username == "a,b=c"


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"n,,",
        b"p=tls-unique,,n=user,r=abc",  # channel binding: no -PLUS offered
        b"x,,n=user,r=abc",
        b"n,,m=ext,n=user,r=abc",  # mandatory extension
        b"n,,r=abc,n=user",
        b"n,,n=,r=abc",
        b"n,,n=us=er,r=abc",  # bad escape
        b"n,,n=user,r=",
        b"n,a=other,n=user,r=abc",  # acting as someone else
        b"n,b=user,n=user,r=abc",
        b"n,,n=\xff,r=abc",
        b"n,,n=user,r=abc" + b"x" * 5000,
    ],
)
def test_malformed_client_first_fails(message: bytes) -> None:
    assert isinstance(mechanism().start(message), SaslFailure)


def test_authzid_mismatch_is_an_authorization_failure() -> None:
    outcome = mechanism().start(b"n,a=other,n=user,r=abc")
    assert isinstance(outcome, SaslFailure) and outcome.authorization_failed


@pytest.mark.parametrize(
    "final",
    [
        b"c=biws,r=wrongnonce,p=AAAA",
        b"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",  # "y,,"
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",  # no proof
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!",
        b"p=AAAA",
    ],
)
def test_malformed_client_final_fails(final: bytes) -> None:
    m = mechanism()
    request = m.start(CLIENT_FIRST)
    assert isinstance(request, NeedScramParameters)
    request.resume(rfc_keys().parameters)
    assert isinstance(m.step(final), SaslFailure)


def test_data_after_server_final_fails() -> None:
    m = mechanism()
    request = m.start(CLIENT_FIRST)
    assert isinstance(request, NeedScramParameters)
    request.resume(rfc_keys().parameters)
    check = m.step(CLIENT_FINAL)
    assert isinstance(check, NeedScramProofCheck)
    check.resume(b"sig")
    assert isinstance(m.step(b"extra"), SaslFailure)


# ---- SASLprep (RFC 4013 §3 examples) ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "prepared"),
    [
        ("I\u00adX", "IX"),  # soft hyphen mapped to nothing
        ("user", "user"),
        ("USER", "USER"),  # case is kept
        ("\u00aa", "a"),  # NFKC
        ("\u2168", "IX"),
        ("a\u00a0b", "a b"),  # non-ASCII space to SPACE
        ("pâss", "pâss"),
        ("", ""),
    ],
)
def test_saslprep_maps_and_normalises(text: str, prepared: str) -> None:
    assert saslprep(text) == prepared


@pytest.mark.parametrize(
    "text",
    [
        "\u0007",  # control character
        "a\u0627\u0031",  # bidi: RandALCat mixed / not at both ends
        "\u0627\u0031",
        "a\ud7ff\U000e0001",  # tagging character
        "\U000f0000",  # private use
    ],
)
def test_saslprep_refuses_prohibited_text(text: str) -> None:
    with pytest.raises(ValueError):
        saslprep(text)


def test_password_saslprep_failure_means_no_scram_keys() -> None:
    with pytest.raises(ValueError):
        scram.derive_keys("bell\u0007")
