"""Sign-in beyond plain passwords, over IMAP: AUTHENTICATE SCRAM-SHA-256 (RFC 5802,
RFC 7677), OAUTHBEARER (RFC 7628) and XOAUTH2, app passwords, and two-factor with the
password followed by the TOTP code (RFC 6238)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.auth import app_passwords, scram, totp
from roost.auth.authenticator import StoreAuthenticator
from roost.auth.oauth import TokenValidator
from roost.auth.passwords import hash_password
from roost.store.credentials import AppPasswordRecord
from tests.conftest import (
    FAST_HASHER,
    PASSWORD,
    ImapServer,
    start_imap_server,
    stop_imap_server,
)
from tests.support.imap_client import ImapClient
from tests.support.scram_client import ScramClient
from tests.support.tokens import TokenMaker

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)

NOW = 1_800_000_010.0  # the server's clock for TOTP, and the tokens' issue time
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
APP_PASSWORD = "wxyz-abcd-efgh-ijkl"


def b64(data: bytes | str) -> bytes:
    return base64.b64encode(data.encode() if isinstance(data, str) else data)


def unb64_continuation(line: bytes) -> bytes:
    assert line.startswith(b"+ "), line
    return base64.b64decode(line[2:])


@pytest.fixture(scope="module")
def tokens() -> TokenMaker:
    return TokenMaker()


@pytest.fixture
async def server(
    tmp_path: Path, tokens: TokenMaker, store_url: str | None
) -> AsyncIterator[ImapServer]:
    """alice: password, SCRAM keys, an app password; totp-user: two-factor on; legacy:
    a password set before SCRAM keys were kept. Tokens from one issuer are accepted."""
    handle, listener = await start_imap_server(tmp_path, store_url=store_url)
    store = handle.store
    password_hash = hash_password(PASSWORD, hasher=FAST_HASHER)
    keys = scram.derive_keys(PASSWORD, iterations=4096).encode()
    for name in ("alice@example.org", "totp-user"):
        await store.create_account(name, password_hash)
        await store.set_password(name, password_hash, keys)
    await store.create_account("legacy", password_hash)
    await store.set_totp_secret("totp-user", TOTP_SECRET)
    normalised = app_passwords.normalise(APP_PASSWORD)
    assert normalised is not None
    for name in ("alice@example.org", "totp-user"):
        await store.add_app_password(
            name,
            AppPasswordRecord(
                "Phone",
                app_passwords.selector(normalised),
                hash_password(normalised, hasher=FAST_HASHER),
                created=1,
            ),
        )
    authenticator = handle.context.authenticator
    assert isinstance(authenticator, StoreAuthenticator)
    authenticator.clock = lambda: NOW
    authenticator.tokens = TokenValidator([tokens.issuer()])
    try:
        yield handle
    finally:
        await stop_imap_server(handle, listener)


async def capabilities(client: ImapClient) -> list[bytes]:
    reply = await client.ok("CAPABILITY")
    return reply.untagged[0].split()


async def test_capability_lists_every_mechanism(server: ImapServer) -> None:
    client = await server.connect()
    caps = await capabilities(client)
    for name in ("PLAIN", "LOGIN", "SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2"):
        assert b"AUTH=" + name.encode() in caps


async def test_token_mechanisms_are_offered_only_with_an_issuer(imap: ImapServer) -> None:
    client = await imap.connect()
    caps = await capabilities(client)
    assert b"AUTH=SCRAM-SHA-256" in caps
    assert b"AUTH=OAUTHBEARER" not in caps and b"AUTH=XOAUTH2" not in caps
    await client.no("AUTHENTICATE OAUTHBEARER")


# ---- SCRAM-SHA-256 ---------------------------------------------------------------------


async def scram_exchange(
    client: ImapClient, user: str, password: str, *, initial_response: bool
) -> tuple[ScramClient, bytes]:
    """Up to the client-final message; returns the client and the server's next line."""
    scram_client = ScramClient(user, password)
    if initial_response:
        await client.send(b"s1 AUTHENTICATE SCRAM-SHA-256 " + b64(scram_client.first()) + b"\r\n")
    else:
        await client.send(b"s1 AUTHENTICATE SCRAM-SHA-256\r\n")
        assert await client.read_response() == b"+ "
        await client.send(b64(scram_client.first()) + b"\r\n")
    server_first = unb64_continuation(await client.read_response())
    await client.send(b64(scram_client.final(server_first)) + b"\r\n")
    return scram_client, await client.read_response()


@pytest.mark.parametrize("initial_response", [False, True])
async def test_authenticate_scram_sha_256(server: ImapServer, initial_response: bool) -> None:
    """RFC 5802 §5 over RFC 9051 §6.2.2: server-final as a challenge, answered empty."""
    client = await server.connect()
    scram_client, line = await scram_exchange(
        client, "alice@example.org", PASSWORD, initial_response=initial_response
    )
    assert scram_client.verify(unb64_continuation(line))
    await client.send(b"\r\n")
    reply = await client.read_until_tagged("s1")
    assert reply.status == "OK" and b"[CAPABILITY " in reply.line
    await client.ok("SELECT INBOX")


async def test_authenticate_scram_wrong_password(server: ImapServer) -> None:
    client = await server.connect()
    _, line = await scram_exchange(client, "alice@example.org", "nope", initial_response=True)
    assert line.startswith(b"s1 NO [AUTHENTICATIONFAILED]")


async def test_authenticate_scram_unknown_user_looks_like_a_wrong_password(
    server: ImapServer,
) -> None:
    client = await server.connect()
    _, line = await scram_exchange(client, "nobody", PASSWORD, initial_response=True)
    assert line.startswith(b"s1 NO [AUTHENTICATIONFAILED]")


async def test_authenticate_scram_without_stored_keys_fails_and_says_why(
    server: ImapServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = await server.connect()
    _, line = await scram_exchange(client, "legacy", PASSWORD, initial_response=True)
    assert line.startswith(b"s1 NO [AUTHENTICATIONFAILED]")
    assert "user=legacy protocol=imap reason=no_SCRAM_keys" in caplog.text
    await client.login("legacy", PASSWORD)  # PLAIN and LOGIN still work


async def test_authenticate_scram_refused_with_two_factor(server: ImapServer) -> None:
    client = await server.connect()
    _, line = await scram_exchange(client, "totp-user", PASSWORD, initial_response=True)
    assert line.startswith(b"s1 NO [AUTHENTICATIONFAILED]")


async def test_authenticate_scram_cancelled_midway(server: ImapServer) -> None:
    client = await server.connect()
    await client.send(
        b"s1 AUTHENTICATE SCRAM-SHA-256 " + b64(ScramClient("a", "b").first()) + b"\r\n"
    )
    assert (await client.read_response()).startswith(b"+ ")
    await client.send(b"*\r\n")
    assert (await client.read_until_tagged("s1")).status == "BAD"
    await client.ok("NOOP")


# ---- OAUTHBEARER and XOAUTH2 -------------------------------------------------------------


def oauthbearer(token: str, user: str | None = "alice@example.org") -> bytes:
    authzid = f"a={user}" if user else ""
    return b64(f"n,{authzid},\x01host=localhost\x01port=143\x01auth=Bearer {token}\x01\x01")


def xoauth2(token: str, user: str = "alice@example.org") -> bytes:
    return b64(f"user={user}\x01auth=Bearer {token}\x01\x01")


async def test_authenticate_oauthbearer(server: ImapServer, tokens: TokenMaker) -> None:
    client = await server.connect()
    reply = await client.ok(b"AUTHENTICATE OAUTHBEARER " + oauthbearer(tokens.token()))
    assert b"[CAPABILITY " in reply.line
    await client.ok("SELECT INBOX")


async def test_authenticate_oauthbearer_without_initial_response(
    server: ImapServer, tokens: TokenMaker
) -> None:
    client = await server.connect()
    await client.send(b"o1 AUTHENTICATE OAUTHBEARER\r\n")
    assert await client.read_response() == b"+ "
    await client.send(oauthbearer(tokens.token(algorithm="EdDSA"), user=None) + b"\r\n")
    assert (await client.read_until_tagged("o1")).status == "OK"


def refused_tokens(tokens: TokenMaker) -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric import ec

    stranger = ec.generate_private_key(ec.SECP256R1())
    return {
        "expired": tokens.token(expires_in=-7200),
        "wrong audience": tokens.token(aud="another-service"),
        "wrong issuer": tokens.token(iss="https://evil.example"),
        "bad signature": tokens.token(key=stranger, algorithm="ES256", kid="ec-1"),
        "another user": tokens.token("bob@example.org"),
        "not a JWT": "abc.def",
    }


async def test_authenticate_oauthbearer_refusals(server: ImapServer, tokens: TokenMaker) -> None:
    """RFC 7628 §3.2.3: the error as a JSON challenge, the client's %x01, then NO."""
    for why, token in refused_tokens(tokens).items():
        client = await server.connect()
        await client.send(b"o1 AUTHENTICATE OAUTHBEARER " + oauthbearer(token) + b"\r\n")
        error = json.loads(unb64_continuation(await client.read_response()))
        assert error["status"] == "invalid_token", why
        await client.send(b"AQ==\r\n")
        reply = await client.read_until_tagged("o1")
        assert reply.status == "NO" and b"[AUTHENTICATIONFAILED]" in reply.line, why
        await client.ok("NOOP")  # still not signed in, still talking
        await client.bad("SELECT INBOX")


async def test_authenticate_xoauth2(server: ImapServer, tokens: TokenMaker) -> None:
    client = await server.connect()
    await client.ok(b"AUTHENTICATE XOAUTH2 " + xoauth2(tokens.token(algorithm="ES256")))
    await client.ok("SELECT INBOX")


async def test_authenticate_xoauth2_refusals(server: ImapServer, tokens: TokenMaker) -> None:
    """Google's form: the error as a JSON challenge, the client's empty answer, then NO."""
    for why, token in refused_tokens(tokens).items():
        client = await server.connect()
        await client.send(b"x1 AUTHENTICATE XOAUTH2 " + xoauth2(token) + b"\r\n")
        error = json.loads(unb64_continuation(await client.read_response()))
        assert error["status"] == "401", why
        await client.send(b"\r\n")
        assert (await client.read_until_tagged("x1")).status == "NO", why


async def test_tokens_open_two_factor_accounts(server: ImapServer, tokens: TokenMaker) -> None:
    client = await server.connect()
    await client.ok(b"AUTHENTICATE XOAUTH2 " + xoauth2(tokens.token("totp-user"), "totp-user"))


# ---- app passwords and two-factor ------------------------------------------------------


async def test_login_with_an_app_password(server: ImapServer) -> None:
    client = await server.connect()
    await client.login("alice@example.org", APP_PASSWORD)
    other = await server.connect()
    await other.login("ALICE@example.org", APP_PASSWORD.replace("-", " ").upper())
    wrong = await server.connect()
    await wrong.no(f'LOGIN "alice@example.org" "{APP_PASSWORD[:-1]}x"')


def code(offset_steps: int = 0) -> str:
    return totp.code_at(TOTP_SECRET, totp.time_step(NOW) + offset_steps)


async def test_login_with_two_factor(server: ImapServer) -> None:
    client = await server.connect()
    reply = await client.no(f'LOGIN "totp-user" "{PASSWORD}"')
    assert b"[AUTHENTICATIONFAILED]" in reply.line  # the password alone
    await client.no(f'LOGIN "totp-user" "{PASSWORD} {code()}"')  # no space allowed
    await client.login("totp-user", PASSWORD + code())
    replay = await server.connect()
    await replay.no(f'LOGIN "totp-user" "{PASSWORD}{code()}"')  # the same code again
    await replay.no(f'LOGIN "totp-user" "{PASSWORD}{code(-1)}"')  # an older one
    await replay.login("totp-user", PASSWORD + code(+1))  # the next step (clock skew)


async def test_authenticate_plain_with_two_factor_and_app_password(server: ImapServer) -> None:
    def plain(password: str) -> str:
        return b64(f"\x00totp-user\x00{password}").decode()

    client = await server.connect()
    await client.no(f"AUTHENTICATE PLAIN {plain(PASSWORD)}")
    await client.ok(f"AUTHENTICATE PLAIN {plain(PASSWORD + code())}")
    app = await server.connect()
    await app.ok(f"AUTHENTICATE PLAIN {plain(APP_PASSWORD)}")


async def test_failures_are_logged_with_address_and_account(
    server: ImapServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = await server.connect()
    await client.no(f'LOGIN "totp-user" "{PASSWORD}"')
    assert (
        "auth failure ip=127.0.0.1 user=totp-user protocol=imap reason=two-factor_code_missing"
        in caplog.text
    )


async def test_throttled_sign_in_is_refused_with_unavailable(tmp_path: Path) -> None:
    from roost.auth.throttle import LoginThrottle, ThrottlePolicy

    handle, listener = await start_imap_server(tmp_path)
    try:
        await handle.add_user("alice")
        authenticator = handle.context.authenticator
        assert isinstance(authenticator, StoreAuthenticator)
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        authenticator.throttle = LoginThrottle(
            ThrottlePolicy(base_delay=1.0, max_failures_per_ip=3), sleep=sleep
        )
        client = await handle.connect()
        for _ in range(3):
            await client.no('LOGIN "alice" "wrong"')
        reply = await client.no(f'LOGIN "alice" "{PASSWORD}"')
        assert b"[UNAVAILABLE]" in reply.line
        scram_client = ScramClient("alice", PASSWORD)
        reply = await client.no(b"AUTHENTICATE SCRAM-SHA-256 " + b64(scram_client.first()))
        assert b"[UNAVAILABLE]" in reply.line
        assert slept == [1.0, 2.0]  # no real waiting
    finally:
        await stop_imap_server(handle, listener)
