"""Changing an account's credentials, for the command-line tools: passwords (with their
SCRAM keys), app passwords, two-factor. The click commands in ``cli.py`` only parse
arguments and print; the rules are here.

Hashing and PBKDF2 run off the event loop (``passwords.run_off_loop``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from argon2 import PasswordHasher

from roost.auth import app_passwords, scram, totp
from roost.auth.passwords import DEFAULT_HASHER, hash_password_async, run_off_loop
from roost.store.base import CannotDoThat, NoSuchAccount, Store
from roost.store.credentials import AppPasswordRecord


class CredentialError(Exception):
    """A change the operator asked for that cannot be made; the message says why."""


async def scram_keys_for(password: str) -> str | None:
    """The stored form of ``password``'s SCRAM-SHA-256 keys, or None when SASLprep
    refuses the password (then SCRAM cannot be used with it)."""

    def derive() -> str | None:
        try:
            return scram.derive_keys(password).encode()
        except ValueError:
            return None

    return await run_off_loop(derive)


async def create_account(
    store: Store,
    name: str,
    password: str,
    *,
    hasher: PasswordHasher = DEFAULT_HASHER,
    create: Callable[[str, str], Awaitable[None]] | None = None,
) -> bool:
    """Create ``name`` with ``password``; False when the password has no SCRAM keys.
    ``create``: how to make the account from (name, hash), where not the store's plain
    ``create_account`` (a sharded store's, placing it on a chosen shard)."""
    password_hash = await hash_password_async(password, hasher=hasher)
    keys = await scram_keys_for(password)
    await (create or store.create_account)(name, password_hash)
    if keys is not None:
        await store.set_password(name, password_hash, keys)
    return keys is not None


async def set_password(
    store: Store, name: str, password: str, *, hasher: PasswordHasher = DEFAULT_HASHER
) -> bool:
    """A new password and its SCRAM keys at once; False when it has no SCRAM keys."""
    password_hash = await hash_password_async(password, hasher=hasher)
    keys = await scram_keys_for(password)
    await store.set_password(name, password_hash, keys)
    return keys is not None


async def add_app_password(
    store: Store,
    account: str,
    label: str,
    *,
    now: float | None = None,
) -> str:
    """A new app password for ``account``, in its display form; shown once, stored
    hashed (a fast hash: it has 131 bits, ``app_passwords.py``). CredentialError for
    a bad or taken label, or too many app passwords."""
    problem = app_passwords.label_problem(label)
    if problem is not None:
        raise CredentialError(f"invalid label {label!r}: {problem}")
    record = await store.get_sign_in_record(account)
    if record is None:
        raise NoSuchAccount(account)
    existing = record.app_passwords
    if any(a.label.casefold() == label.casefold() for a in existing):
        raise CredentialError(f"{account} already has an app password labelled {label!r}")
    if len(existing) >= app_passwords.MAX_PER_ACCOUNT:
        raise CredentialError(
            f"{account} has {len(existing)} app passwords, the most allowed; revoke one first"
        )
    taken = {a.selector for a in existing}
    while True:
        password = app_passwords.generate()
        normalised = app_passwords.normalise(password)
        assert normalised is not None
        selector = app_passwords.selector(normalised)
        if selector not in taken:
            break
    created = int(time.time() if now is None else now)
    password_hash = app_passwords.fast_hash(normalised)
    try:
        await store.add_app_password(
            account, AppPasswordRecord(label, selector, password_hash, created)
        )
    except CannotDoThat as error:  # added meanwhile by another process
        raise CredentialError(str(error)) from None
    return password


async def list_app_passwords(store: Store, account: str) -> tuple[AppPasswordRecord, ...]:
    record = await store.get_sign_in_record(account)
    if record is None:
        raise NoSuchAccount(account)
    return record.app_passwords


async def enable_totp(store: Store, account: str) -> str:
    """Turn two-factor on with a new secret, which is returned (shown once)."""
    record = await store.get_sign_in_record(account)
    if record is None:
        raise NoSuchAccount(account)
    if record.totp_secret is not None:
        raise CredentialError(
            f"two-factor sign-in is already on for {account}; 'totp disable' it first"
        )
    secret = totp.new_secret()
    await store.set_totp_secret(account, secret)
    return secret


async def disable_totp(store: Store, account: str) -> bool:
    """Turn two-factor off; False when it was off."""
    record = await store.get_sign_in_record(account)
    if record is None:
        raise NoSuchAccount(account)
    await store.set_totp_secret(account, None)
    return record.totp_secret is not None
