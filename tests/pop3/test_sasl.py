"""POP3 AUTH (RFC 5034) with every SASL mechanism IMAP offers — SCRAM-SHA-256 (RFC 5802,
RFC 7677), OAUTHBEARER (RFC 7628) and XOAUTH2 besides PLAIN and LOGIN — and the same
two-factor and throttling rules, over a real connection."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.auth import app_passwords, scram, totp
from roost.auth.oauth import TokenValidator
from roost.auth.passwords import hash_password
from roost.auth.throttle import LoginThrottle, ThrottlePolicy
from roost.store.credentials import AppPasswordRecord
from tests.conftest import FAST_HASHER, PASSWORD
from tests.pop3.conftest import Pop3Server, pop3_server
from tests.support.imap_client import ImapClient
from tests.support.pop3_client import Pop3Client
from tests.support.scram_client import ScramClient
from tests.support.tokens import TokenMaker

NOW = 1_800_000_010.0  # the Authenticator's clock, for TOTP
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
APP_PASSWORD = "wxyz-abcd-efgh-ijkl"
EVERY_MECHANISM = [b"PLAIN", b"LOGIN", b"SCRAM-SHA-256", b"OAUTHBEARER", b"XOAUTH2"]


def b64(data: bytes | str) -> bytes:
    return base64.b64encode(data.encode() if isinstance(data, str) else data)


def challenge(line: bytes) -> bytes:
    """The decoded data of a "+ base64" line (RFC 5034 §4)."""
    assert line.startswith(b"+ "), line
    return base64.b64decode(line[2:], validate=True)


@pytest.fixture(scope="module")
def tokens() -> TokenMaker:
    return TokenMaker()


@pytest.fixture
async def server(tmp_path: Path, tokens: TokenMaker) -> AsyncIterator[Pop3Server]:
    """alice: a password with SCRAM keys; totp-user: two-factor on, SCRAM keys and an app
    password; legacy: a password set before SCRAM keys were kept. Tokens from one issuer
    are accepted."""
    async with pop3_server(tmp_path) as handle:
        store = handle.store
        password_hash = hash_password(PASSWORD, hasher=FAST_HASHER)
        keys = scram.derive_keys(PASSWORD, iterations=4096).encode()
        await store.create_account("totp-user", password_hash)
        for name in ("alice", "totp-user"):
            await store.set_password(name, password_hash, keys)
        await store.create_account("legacy", password_hash)
        await store.set_totp_secret("totp-user", TOTP_SECRET)
        normalised = app_passwords.normalise(APP_PASSWORD)
        assert normalised is not None
        await store.add_app_password(
            "totp-user",
            AppPasswordRecord(
                "Phone",
                app_passwords.selector(normalised),
                hash_password(normalised, hasher=FAST_HASHER),
                created=1,
            ),
        )
        handle.authenticator.clock = lambda: NOW
        handle.authenticator.tokens = TokenValidator([tokens.issuer()])
        yield handle


async def capa_sasl(client: Pop3Client) -> list[bytes]:
    _, capabilities = await client.multi("CAPA")
    [line] = [line for line in capabilities if line.startswith(b"SASL ")]
    return line.split()[1:]


# ---- what is offered -------------------------------------------------------------------


async def test_capa_and_auth_list_every_mechanism(server: Pop3Server) -> None:
    """The same list, in the same order, as IMAP's AUTH= capabilities."""
    client = await server.connect()
    assert await capa_sasl(client) == EVERY_MECHANISM
    status, mechanisms = await client.multi("AUTH")
    assert status == b"+OK Mechanisms follow"
    assert mechanisms == EVERY_MECHANISM
    imap = await ImapClient.connect(server.host, server.imap_port)  # not signed in
    server.clients.append(imap)
    reply = await imap.ok("CAPABILITY")
    offered = [cap[5:] for cap in reply.untagged[0].split() if cap.startswith(b"AUTH=")]
    assert offered == EVERY_MECHANISM


async def test_token_mechanisms_are_offered_only_with_an_issuer(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    assert await capa_sasl(client) == [b"PLAIN", b"LOGIN", b"SCRAM-SHA-256"]
    assert await client.err("AUTH OAUTHBEARER") == b"-ERR Unsupported mechanism OAUTHBEARER"
    assert await client.err("AUTH XOAUTH2") == b"-ERR Unsupported mechanism XOAUTH2"


async def test_scram_is_not_offered_when_turned_off(pop3: Pop3Server) -> None:
    pop3.authenticator.scram_enabled = False
    client = await pop3.connect()
    assert await capa_sasl(client) == [b"PLAIN", b"LOGIN"]
    assert await client.err("AUTH SCRAM-SHA-256") == (b"-ERR Unsupported mechanism SCRAM-SHA-256")


async def test_mechanism_names_match_without_regard_to_case(server: Pop3Server) -> None:
    client = await server.connect()
    await client.send("AUTH scram-sha-256\r\n")
    assert await client.read_line() == b"+ "


# ---- SCRAM-SHA-256 ---------------------------------------------------------------------


async def scram_exchange(
    client: Pop3Client, user: str, password: str, *, initial_response: bool
) -> tuple[ScramClient, bytes]:
    """Up to the client-final message; returns the client and the server's next line."""
    scram_client = ScramClient(user, password)
    if initial_response:
        await client.send(b"AUTH SCRAM-SHA-256 " + b64(scram_client.first()) + b"\r\n")
    else:
        await client.send(b"AUTH SCRAM-SHA-256\r\n")
        assert await client.read_line() == b"+ "  # RFC 5034 §4: an empty challenge
        await client.send(b64(scram_client.first()) + b"\r\n")
    server_first = challenge(await client.read_line())
    return scram_client, await client.command(b64(scram_client.final(server_first)))


@pytest.mark.parametrize("initial_response", [False, True])
async def test_auth_scram_sha_256(server: Pop3Server, initial_response: bool) -> None:
    """RFC 5034 §4 has no "additional data with success": server-final comes as a
    challenge, the client answers with an empty line, then +OK."""
    await server.deliver(b"Subject: hi\r\n\r\nhello\r\n")
    client = await server.connect()
    scram_client, line = await scram_exchange(
        client, "alice", PASSWORD, initial_response=initial_response
    )
    assert scram_client.verify(challenge(line))
    assert await client.command("") == b"+OK Signed in; 1 message"
    assert (await client.ok("STAT")).startswith(b"+OK 1 ")


async def test_auth_scram_wrong_password(server: Pop3Server) -> None:
    client = await server.connect()
    _, line = await scram_exchange(client, "alice", "nope", initial_response=True)
    assert line == b"-ERR [AUTH] Authentication failed"
    assert await client.err("STAT") == b"-ERR STAT needs you to sign in first"
    await client.login("alice", PASSWORD)


async def test_auth_scram_unknown_user_looks_like_a_wrong_password(server: Pop3Server) -> None:
    client = await server.connect()
    _, line = await scram_exchange(client, "nobody", PASSWORD, initial_response=True)
    assert line == b"-ERR [AUTH] Authentication failed"


async def test_auth_scram_without_stored_keys_fails_and_says_why(
    server: Pop3Server, caplog: pytest.LogCaptureFixture
) -> None:
    client = await server.connect()
    _, line = await scram_exchange(client, "legacy", PASSWORD, initial_response=True)
    assert line == b"-ERR [AUTH] Authentication failed"
    assert "user=legacy protocol=pop3 reason=no_SCRAM_keys" in caplog.text
    assert (await client.auth_plain("legacy", PASSWORD)).startswith(b"+OK Signed in")


async def test_auth_scram_refused_with_two_factor(server: Pop3Server) -> None:
    client = await server.connect()
    _, line = await scram_exchange(client, "totp-user", PASSWORD, initial_response=True)
    assert line == b"-ERR [AUTH] Authentication failed"


async def test_auth_scram_cancelled_midway(server: Pop3Server) -> None:
    """RFC 5034 §4: "*" cancels, also after a challenge with data, and gets -ERR."""
    client = await server.connect()
    first = b64(ScramClient("alice", PASSWORD).first())
    await client.send(b"AUTH SCRAM-SHA-256 " + first + b"\r\n")
    challenge(await client.read_line())
    assert await client.err("*") == b"-ERR Authentication cancelled"
    await client.multi("CAPA")  # a command again
    assert (await client.auth_plain("alice", PASSWORD)).startswith(b"+OK Signed in")


async def test_auth_scram_cancelled_instead_of_the_empty_answer(server: Pop3Server) -> None:
    """A client that does not like server-final cancels: it is not signed in."""
    client = await server.connect()
    _, line = await scram_exchange(client, "alice", PASSWORD, initial_response=True)
    challenge(line)
    assert await client.err("*") == b"-ERR Authentication cancelled"
    assert await client.err("STAT") == b"-ERR STAT needs you to sign in first"


async def test_auth_scram_empty_initial_response(server: Pop3Server) -> None:
    """RFC 5034 §4: "=" is an empty initial response — no client-first message."""
    client = await server.connect()
    assert await client.err("AUTH SCRAM-SHA-256 =") == b"-ERR [AUTH] Authentication failed"


async def test_auth_scram_malformed_client_final(server: Pop3Server) -> None:
    client = await server.connect()
    first = b64(ScramClient("alice", PASSWORD).first())
    await client.send(b"AUTH SCRAM-SHA-256 " + first + b"\r\n")
    challenge(await client.read_line())
    assert await client.err(b64("c=biws,r=wrong,p=AAAA")) == b"-ERR [AUTH] Authentication failed"
    assert await client.err("STAT") == b"-ERR STAT needs you to sign in first"  # a command


# ---- OAUTHBEARER and XOAUTH2 -------------------------------------------------------------


def oauthbearer(token: str, user: str | None = "alice") -> bytes:
    authzid = f"a={user}" if user else ""
    return b64(f"n,{authzid},\x01host=localhost\x01port=110\x01auth=Bearer {token}\x01\x01")


def xoauth2(token: str, user: str = "alice") -> bytes:
    return b64(f"user={user}\x01auth=Bearer {token}\x01\x01")


def refused_tokens(tokens: TokenMaker) -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric import ec

    stranger = ec.generate_private_key(ec.SECP256R1())
    return {
        "expired": tokens.token("alice", expires_in=-7200),
        "wrong audience": tokens.token("alice", aud="another-service"),
        "wrong issuer": tokens.token("alice", iss="https://evil.example"),
        "bad signature": tokens.token("alice", key=stranger, algorithm="ES256", kid="ec-1"),
        "another user": tokens.token("bob"),
        "not a JWT": "abc.def",
    }


async def test_auth_oauthbearer(server: Pop3Server, tokens: TokenMaker) -> None:
    client = await server.connect()
    line = await client.command(b"AUTH OAUTHBEARER " + oauthbearer(tokens.token("alice")))
    assert line == b"+OK Signed in; 0 messages"
    await client.ok("STAT")


async def test_auth_oauthbearer_without_initial_response(
    server: Pop3Server, tokens: TokenMaker
) -> None:
    client = await server.connect()
    await client.send(b"AUTH OAUTHBEARER\r\n")
    assert await client.read_line() == b"+ "
    token = tokens.token("alice", algorithm="EdDSA")
    assert (await client.command(oauthbearer(token, user=None))).startswith(b"+OK Signed in")


async def test_auth_oauthbearer_refusals(server: Pop3Server, tokens: TokenMaker) -> None:
    """RFC 7628 §3.2.3: the error as a JSON challenge, the client's %x01, then -ERR."""
    await server.add_user("bob")
    for why, token in refused_tokens(tokens).items():
        client = await server.connect()
        await client.send(b"AUTH OAUTHBEARER " + oauthbearer(token) + b"\r\n")
        error = json.loads(challenge(await client.read_line()))
        assert error["status"] == "invalid_token", why
        assert await client.err(b"AQ==") == b"-ERR [AUTH] Authentication failed", why
        assert await client.err("STAT") == b"-ERR STAT needs you to sign in first", why
        await client.multi("CAPA")  # still talking


async def test_auth_oauthbearer_error_challenge_cancelled(
    server: Pop3Server, tokens: TokenMaker
) -> None:
    client = await server.connect()
    await client.send(b"AUTH OAUTHBEARER " + oauthbearer(tokens.token("alice", aud="x")) + b"\r\n")
    challenge(await client.read_line())
    assert await client.err("*") == b"-ERR Authentication cancelled"
    assert await client.err("STAT") == b"-ERR STAT needs you to sign in first"


async def test_auth_oauthbearer_malformed_message(server: Pop3Server) -> None:
    client = await server.connect()
    message = b64("n,,\x01auth=Basic abc\x01\x01")
    assert await client.err(b"AUTH OAUTHBEARER " + message) == (
        b"-ERR [AUTH] Authentication failed"
    )


async def test_auth_xoauth2(server: Pop3Server, tokens: TokenMaker) -> None:
    client = await server.connect()
    line = await client.command(
        b"AUTH XOAUTH2 " + xoauth2(tokens.token("alice", algorithm="ES256"))
    )
    assert line == b"+OK Signed in; 0 messages"
    await client.ok("STAT")


async def test_auth_xoauth2_refusals(server: Pop3Server, tokens: TokenMaker) -> None:
    """Google's form: the error as a JSON challenge, the client's empty answer, -ERR."""
    await server.add_user("bob")
    for why, token in refused_tokens(tokens).items():
        client = await server.connect()
        await client.send(b"AUTH XOAUTH2 " + xoauth2(token) + b"\r\n")
        error = json.loads(challenge(await client.read_line()))
        assert error["status"] == "401", why
        assert await client.err(b"") == b"-ERR [AUTH] Authentication failed", why


async def test_tokens_open_two_factor_accounts(server: Pop3Server, tokens: TokenMaker) -> None:
    client = await server.connect()
    token = xoauth2(tokens.token("totp-user"), "totp-user")
    assert (await client.command(b"AUTH XOAUTH2 " + token)).startswith(b"+OK Signed in")


async def test_token_sign_in_takes_the_maildrop_lock(
    server: Pop3Server, tokens: TokenMaker
) -> None:
    """The verdict of any mechanism goes through the same steps as PASS."""
    first = await server.login()
    second = await server.connect()
    assert await second.err(b"AUTH OAUTHBEARER " + oauthbearer(tokens.token("alice"))) == (
        b"-ERR [IN-USE] Another POP3 session is using this mailbox"
    )
    await first.ok("QUIT")
    assert (await second.command(b"AUTH XOAUTH2 " + xoauth2(tokens.token("alice")))).startswith(
        b"+OK Signed in"
    )


# ---- two-factor and throttling -----------------------------------------------------------


def code(offset_steps: int = 0) -> str:
    return totp.code_at(TOTP_SECRET, totp.time_step(NOW) + offset_steps)


async def test_two_factor_over_user_pass_and_auth(server: Pop3Server) -> None:
    """The password alone is refused; password and code, or an app password, get in."""
    client = await server.connect()
    assert await client.auth_plain("totp-user", PASSWORD) == b"-ERR [AUTH] Authentication failed"
    await client.ok("USER totp-user")
    assert await client.err(f"PASS {PASSWORD}") == b"-ERR [AUTH] Authentication failed"
    await client.send("AUTH LOGIN\r\n")
    await client.read_line()
    await client.command(b64("totp-user"))
    assert (await client.command(b64(PASSWORD + code()))).startswith(b"+OK Signed in")
    await client.ok("QUIT")
    replay = await server.connect()
    assert await replay.auth_plain("totp-user", PASSWORD + code()) == (
        b"-ERR [AUTH] Authentication failed"  # the same code again
    )
    assert (await replay.auth_plain("totp-user", APP_PASSWORD)).startswith(b"+OK Signed in")


async def test_throttled_sign_in_is_sys_temp_for_every_mechanism(
    tmp_path: Path, tokens: TokenMaker
) -> None:
    async with pop3_server(tmp_path) as handle:
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        handle.authenticator.tokens = TokenValidator([tokens.issuer()])
        handle.authenticator.throttle = LoginThrottle(
            ThrottlePolicy(base_delay=1.0, max_failures_per_ip=3), sleep=sleep
        )
        throttled = b"-ERR [SYS/TEMP] Too many failed sign-ins; try again later"
        client = await handle.connect()
        for _ in range(3):
            assert await client.auth_plain("alice", "wrong") == b"-ERR [AUTH] Authentication failed"
        assert await client.auth_plain("alice", PASSWORD) == throttled
        first = b64(ScramClient("alice", PASSWORD).first())
        assert await client.err(b"AUTH SCRAM-SHA-256 " + first) == throttled
        token = tokens.token("alice")
        assert await client.err(b"AUTH OAUTHBEARER " + oauthbearer(token)) == throttled
        assert await client.err(b"AUTH XOAUTH2 " + xoauth2(token)) == throttled
        assert slept == [1.0, 2.0]  # no real waiting
