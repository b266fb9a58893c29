"""Submission signs in exactly as IMAP does (issue 19: "the same accounts, app
passwords, two-factor and throttling as IMAP"): an app password, the password followed
by the TOTP code for a two-factor account, OAUTHBEARER (RFC 7628) and XOAUTH2 bearer
tokens, and the failed-sign-in throttle answered ``454 4.7.0`` (RFC 4954 §6)."""

from __future__ import annotations

import base64

from roost.auth import app_passwords, totp
from roost.auth.oauth import TokenValidator
from roost.auth.passwords import hash_password
from roost.auth.throttle import LoginThrottle, ThrottlePolicy
from roost.store.credentials import AppPasswordRecord
from tests.conftest import FAST_HASHER, PASSWORD
from tests.submission.conftest import SmtpClient, SubmissionServer, message
from tests.support.tokens import TokenMaker

NOW = 1_800_000_010.0  # the authenticator's clock, for TOTP codes
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
APP_PASSWORD = "wxyz-abcd-efgh-ijkl"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def code(steps: int = 0) -> str:
    return totp.code_at(TOTP_SECRET, totp.time_step(NOW) + steps)


async def plain(client: SmtpClient, user: str, password: str) -> str:
    assert (await client.command("EHLO client.example")).startswith("250")
    token = b64("\0" + user + "\0" + password)
    return await client.command(f"AUTH PLAIN {token}")


async def sends(client: SmtpClient, sender: str = "alice@example.org") -> None:
    reply = await client.send_message(sender, ["carol@elsewhere.test"], message(sender))
    assert reply.startswith("250 "), reply


async def test_app_password_signs_in_and_sends(submission: SubmissionServer) -> None:
    normalised = app_passwords.normalise(APP_PASSWORD)
    assert normalised is not None
    await submission.store.add_app_password(
        "alice",
        AppPasswordRecord(
            "Phone",
            app_passwords.selector(normalised),
            hash_password(normalised, hasher=FAST_HASHER),
            created=1,
        ),
    )
    client = await submission.connect()
    assert (await plain(client, "alice", APP_PASSWORD)).startswith("235 ")
    await sends(client)
    wrong = await submission.connect()
    assert (await plain(wrong, "alice", APP_PASSWORD[:-1] + "x")).startswith("535 5.7.8")


async def test_two_factor_needs_the_code_after_the_password(
    submission: SubmissionServer,
) -> None:
    await submission.store.set_totp_secret("bob", TOTP_SECRET)
    submission.authenticator.clock = lambda: NOW
    alone = await submission.connect()
    assert (await plain(alone, "bob", PASSWORD)).startswith("535 5.7.8")
    client = await submission.connect()
    assert (await plain(client, "bob", PASSWORD + code())).startswith("235 ")
    await sends(client, "bob@example.org")
    replay = await submission.connect()
    assert (await plain(replay, "bob", PASSWORD + code())).startswith("535 ")  # used once


async def test_bearer_tokens(submission: SubmissionServer) -> None:
    tokens = TokenMaker()
    submission.authenticator.tokens = TokenValidator([tokens.issuer()])
    client = await submission.connect()
    assert (await client.command("EHLO client.example")).startswith("250")
    bearer = (
        f"n,a=alice,\x01host=localhost\x01port=587\x01auth=Bearer {tokens.token('alice')}\x01\x01"
    )
    assert (await client.command(f"AUTH OAUTHBEARER {b64(bearer)}")).startswith("235 ")
    await sends(client)
    google = await submission.connect()
    assert (await google.command("EHLO client.example")).startswith("250")
    xoauth2 = f"user=alice\x01auth=Bearer {tokens.token('alice', algorithm='ES256')}\x01\x01"
    assert (await google.command(f"AUTH XOAUTH2 {b64(xoauth2)}")).startswith("235 ")
    refused = await submission.connect()
    assert (await refused.command("EHLO client.example")).startswith("250")
    expired = tokens.token("alice", expires_in=-7200)
    bad = f"n,a=alice,\x01auth=Bearer {expired}\x01\x01"
    challenge = await refused.command(f"AUTH OAUTHBEARER {b64(bad)}")
    assert challenge.startswith("334 "), challenge  # RFC 7628 §3.2.3: the error, then
    assert (await refused.command("AQ==")).startswith("535 ")  # the client's %x01


async def test_throttled_sign_in_is_454_even_with_the_right_password(
    submission: SubmissionServer,
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    submission.authenticator.throttle = LoginThrottle(
        ThrottlePolicy(base_delay=1.0, max_failures_per_ip=3), sleep=sleep
    )
    client = await submission.connect()
    for _ in range(3):
        assert (await plain(client, "alice", "wrong")).startswith("535 5.7.8")
    reply = await plain(client, "alice", PASSWORD)
    assert reply.startswith("454 4.7.0"), reply
    assert slept  # failures were delayed, as for IMAP
