"""``[auth]`` sign-in settings: ``scram`` and the ``[[auth.oauth]]`` token issuers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from roost.config import ConfigError, Settings
from tests.support.tokens import AUDIENCE, ISSUER, TokenMaker, jwks_text, public_pem

TLS = '[tls]\ncert = "cert.pem"\nkey = "key.pem"\n'


def load(text: str, base_dir: Path) -> Settings:
    return Settings.from_toml(TLS + text, source="roost.toml", base_dir=base_dir)


@pytest.fixture(scope="module")
def maker() -> TokenMaker:
    return TokenMaker()


def test_defaults_offer_scram_and_no_tokens(tmp_path: Path) -> None:
    settings = load("", tmp_path)
    assert settings.auth.scram and settings.auth.oauth == ()
    assert settings.auth.token_validator() is None
    assert not load("[auth]\nscram = false\n", tmp_path).auth.scram


def test_the_sign_in_cache_settings(tmp_path: Path) -> None:
    cache = load("", tmp_path).auth.sign_in_cache()
    assert (cache.ttl, cache.size, cache.enabled) == (3600.0, 10_000, True)
    auth = load("[auth]\ncache_ttl = 60\ncache_size = 5\n", tmp_path).auth
    assert (auth.cache_ttl, auth.cache_size) == (60.0, 5)
    assert not load("[auth]\ncache_size = 0\n", tmp_path).auth.sign_in_cache().enabled
    with pytest.raises(ConfigError, match="cache_size"):
        load("[auth]\ncache_size = -1\n", tmp_path)


def test_oauth_issuers_with_a_jwks_file_and_inline_pem(tmp_path: Path, maker: TokenMaker) -> None:
    (tmp_path / "jwks.json").write_text(jwks_text((maker.rsa_key, "rsa-1")))
    pem = public_pem(maker.ed_key)
    text = f"""
[[auth.oauth]]
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
jwks = "jwks.json"

[[auth.oauth]]
issuer = "https://other.example"
audience = "mail"
public_keys = ['''{pem}''']
username_claim = "preferred_username"
algorithms = ["EdDSA"]
"""
    settings = load(text, tmp_path)
    first, second = settings.auth.oauth
    assert first.issuer == ISSUER and first.username_claim == "email"
    assert first.algorithms == ("RS256", "ES256", "EdDSA")
    assert second.username_claim == "preferred_username" and second.algorithms == ("EdDSA",)
    validator = settings.auth.token_validator()
    assert validator is not None
    assert validator.validate(maker.token("alice@example.org")) == "alice@example.org"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[auth]\noauth = 1\n", "must be an array of tables"),
        (
            '[[auth.oauth]]\nissuer = "i"\naudience = "a"\njwks = "missing.json"\n',
            "invalid value for 'auth.oauth[1].jwks' in roost.toml: cannot read",
        ),
        (
            '[[auth.oauth]]\nissuer = "i"\naudience = "a"\n',
            "invalid [[auth.oauth]] number 1 in roost.toml: give jwks or public_keys",
        ),
        (
            '[[auth.oauth]]\nissuer = "i"\naudience = "a"\npublic_keys = ["x"]\n',
            "is not a PEM public key",
        ),
        (
            '[[auth.oauth]]\nissuer = "i"\naudience = "a"\npublic_keys = "x"\n',
            "'auth.oauth[1].public_keys' in roost.toml: must be a list of PEM strings",
        ),
        ('[[auth.oauth]]\nissuer = "i"\nkeys = 1\n', "unknown key 'auth.oauth[1].keys'"),
        ('[[auth.oauth]]\naudience = "a"\njwks = "jwks.json"\n', "issuer must not be empty"),
        (
            '[[auth.oauth]]\nissuer = "i"\naudience = "a"\njwks = "jwks.json"\n'
            'algorithms = ["HS256"]\n',
            "algorithms must be some of",
        ),
        (
            '[[auth.oauth]]\nissuer = "i"\naudience = "a"\njwks = "jwks.json"\n'
            '[[auth.oauth]]\nissuer = "i"\naudience = "b"\njwks = "jwks.json"\n',
            "an issuer is listed twice",
        ),
        ("[auth]\nscram = 1\n", "'auth.scram' in roost.toml: must be true or false"),
    ],
)
def test_oauth_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "jwks.json").write_text(jwks_text((key, "k")))
    with pytest.raises(ConfigError) as info:
        load(text, tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)
    json.loads((tmp_path / "jwks.json").read_text())


async def test_the_server_builds_its_authenticator_from_the_settings(
    tmp_path: Path, maker: TokenMaker
) -> None:
    from roost.auth.sasl import available_mechanisms
    from roost.runtime import contexts
    from roost.runtime.app import Server
    from roost.store.sqlite import SqliteStore

    (tmp_path / "jwks.json").write_text(jwks_text((maker.rsa_key, "rsa-1")))
    text = f"""
[server]
data_dir = "data"

[auth]
scram = false

[[auth.oauth]]
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
jwks = "jwks.json"
"""
    settings = load(text, tmp_path)
    store = await SqliteStore.open(tmp_path / "data", durable=False)
    try:
        server = Server(settings, store=store)
        context = contexts.imap_context(
            settings, store, None, None, server.coordination, server.sessions
        )
        assert available_mechanisms(context.authenticator) == (
            "PLAIN",
            "LOGIN",
            "OAUTHBEARER",
            "XOAUTH2",
        )
    finally:
        await store.close()
