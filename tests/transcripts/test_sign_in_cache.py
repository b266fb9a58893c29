"""Two LOGINs (RFC 9051 §6.2.3) of one account in a row: the second is recognised by
the authentication cache (auth/cache.py) without running argon2id; a wrong password
after them still runs it, and is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from roost.auth.authenticator import StoreAuthenticator
from roost.auth.passwords import hash_password
from roost.config import AuthSettings
from tests.conftest import PASSWORD, start_imap_server, stop_imap_server

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verifications += 1
        return super().verify(hash, password)


@pytest.mark.parametrize("cache_size", [10_000, 0])
async def test_second_login_does_not_run_the_slow_hash(
    tmp_path: Path, store_url: str | None, cache_size: int
) -> None:
    handle, listener = await start_imap_server(tmp_path, store_url=store_url)
    try:
        hasher = CountingHasher()
        await handle.store.create_account("bob", hash_password(PASSWORD, hasher=hasher))
        authenticator = handle.context.authenticator
        assert isinstance(authenticator, StoreAuthenticator)
        authenticator.hasher = hasher
        authenticator.cache = AuthSettings(cache_size=cache_size).sign_in_cache()

        first = await handle.connect()
        await first.login("bob", PASSWORD)
        second = await handle.connect()
        await second.login("BOB", PASSWORD)
        assert hasher.verifications == (1 if cache_size else 2)
        third = await handle.connect()
        await third.no(f'LOGIN "bob" "{PASSWORD}x"')
        assert hasher.verifications == (2 if cache_size else 3)
    finally:
        await stop_imap_server(handle, listener)
