"""Password hashing: argon2id, no exceptions leaking, hashing off the event loop."""

from __future__ import annotations

import asyncio
import threading

from argon2 import PasswordHasher

from roost.auth import passwords
from roost.auth.passwords import (
    dummy_hash,
    generate_password,
    hash_password,
    hash_password_async,
    needs_rehash,
    verify_password,
    verify_password_async,
)

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_default_parameters_are_argon2id_rfc9106_low_memory() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "correct horse ")
    assert not needs_rehash(hashed)


def test_verify_never_raises() -> None:
    hashed = hash_password("pw", hasher=FAST)
    assert verify_password(hashed, "pw", hasher=FAST)
    assert not verify_password(hashed, "wrong", hasher=FAST)
    assert not verify_password("", "pw", hasher=FAST)
    assert not verify_password("not a hash", "pw", hasher=FAST)
    assert not verify_password("$argon2id$v=19$m=1,t=1,p=1$broken", "pw", hasher=FAST)
    assert not verify_password("$2b$12$abcdefghijklmnopqrstuv", "pw", hasher=FAST)


def test_unicode_passwords_are_normalised_to_nfc() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    hashed = hash_password(composed, hasher=FAST)
    assert verify_password(hashed, decomposed, hasher=FAST)


def test_needs_rehash_when_parameters_change() -> None:
    old = hash_password("pw", hasher=FAST)
    assert needs_rehash(old)  # default hasher has stronger parameters
    assert not needs_rehash(old, hasher=FAST)
    assert needs_rehash("garbage")


def test_dummy_hash_never_matches_and_is_cached_per_parameters() -> None:
    first = dummy_hash(FAST)
    assert dummy_hash(FAST) == first
    assert first.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert not verify_password(first, "", hasher=FAST)


async def test_async_wrappers_run_off_the_event_loop_thread() -> None:
    seen: list[str] = []
    original = passwords.hash_password

    def spy(password: str, *, hasher: PasswordHasher = passwords.DEFAULT_HASHER) -> str:
        seen.append(threading.current_thread().name)
        return original(password, hasher=hasher)

    passwords.hash_password = spy  # type: ignore[assignment]
    try:
        hashed = await hash_password_async("pw", hasher=FAST)
    finally:
        passwords.hash_password = original  # type: ignore[assignment]
    assert seen and seen[0] != threading.current_thread().name
    assert seen[0].startswith("roost-hash")
    results = await asyncio.gather(
        verify_password_async(hashed, "pw", hasher=FAST),
        verify_password_async(hashed, "nope", hasher=FAST),
    )
    assert results == [True, False]


def test_generated_passwords_are_long_and_unambiguous() -> None:
    generated = {generate_password() for _ in range(20)}
    assert len(generated) == 20
    for password in generated:
        assert len(password) == 18
        assert password.isalnum()
        assert not set(password) & set("0O1lI")
