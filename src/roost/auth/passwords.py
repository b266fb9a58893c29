"""Password hashing: argon2id, the PHC string format, and nothing leaking out.

Hashes are argon2id with the RFC 9106 "low memory" parameters (t=3, m=64 MiB, p=4),
stored as PHC strings (``$argon2id$v=19$m=65536,t=3,p=4$salt$hash``), so a change of
parameters is visible per hash and ``needs_rehash`` can upgrade it at the next sign-in.

Passwords are normalised to Unicode NFC before hashing and before checking, so the same
password typed on two keyboards that compose accents differently still matches.

Hashes imported from Dovecot (``{SCHEME}...``) are checked by ``legacy_hashes`` and
always need a rehash, so they become argon2id at the first successful sign-in.

Hashing is deliberately slow and memory-hungry; the async wrappers run it in a small
dedicated thread pool, so the event loop never blocks on it (ARCHITECTURE.md §6) and a
flood of sign-ins cannot hold more than ``_WORKERS`` hashes' worth of memory at once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from roost.auth import legacy_hashes

_T = TypeVar("_T")

DEFAULT_HASHER = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)

_WORKERS = max(1, min(4, os.cpu_count() or 1))
_executor: ThreadPoolExecutor | None = None
_dummy_hashes: dict[tuple[int, int, int, int], str] = {}


def hash_password(password: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    return hasher.hash(_normalise(password))


def verify_password(
    password_hash: str, password: str, *, hasher: PasswordHasher = DEFAULT_HASHER
) -> bool:
    """True when ``password`` matches; False for a wrong password or a malformed hash."""
    if legacy_hashes.is_legacy(password_hash):
        return legacy_hashes.verify(password_hash, password)
    try:
        return hasher.verify(password_hash, _normalise(password))
    except (VerificationError, InvalidHashError, ValueError, TypeError):
        return False


def needs_rehash(password_hash: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """True when the hash was made with other parameters than ``hasher``'s (or is not
    argon2id at all: an imported one)."""
    if legacy_hashes.is_legacy(password_hash):
        return True
    try:
        return hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def dummy_hash(hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    """A hash of a random password with ``hasher``'s parameters: checking a password
    against it costs what checking a real one costs, and never succeeds."""
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.hash_len)
    cached = _dummy_hashes.get(key)
    if cached is None:
        cached = _dummy_hashes[key] = hasher.hash(secrets.token_urlsafe(32))
    return cached


async def hash_password_async(password: str, *, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    return await run_off_loop(partial(hash_password, password, hasher=hasher))


async def verify_password_async(
    password_hash: str, password: str, *, hasher: PasswordHasher = DEFAULT_HASHER
) -> bool:
    return await run_off_loop(partial(verify_password, password_hash, password, hasher=hasher))


async def dummy_hash_async(hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    return await run_off_loop(partial(dummy_hash, hasher))


def generate_password() -> str:
    """A random password of about 100 bits, easy to copy: letters and digits only."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(18))


def _normalise(password: str) -> str:
    return unicodedata.normalize("NFC", password)


async def run_off_loop(function: Callable[[], _T]) -> _T:
    """Run ``function`` in the hashing thread pool, so the event loop never waits on it."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="roost-hash")
    return await asyncio.get_running_loop().run_in_executor(_executor, function)
