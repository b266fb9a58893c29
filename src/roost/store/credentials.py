"""Backend-neutral types of what an account signs in with (the Store interface's
credentials side): the password's argon2id hash, the SCRAM keys, the TOTP secret and
the app passwords. The store keeps them as opaque strings; ``roost.auth`` gives them
meaning."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AppPasswordRecord:
    label: str  # chosen by the owner, unique in the account (case-insensitively)
    selector: str  # public prefix that picks this hash at sign-in (auth/app_passwords.py)
    password_hash: str = field(repr=False)
    created: int = 0  # epoch seconds
    last_used: int | None = None  # epoch seconds, to the minute


@dataclass(frozen=True, slots=True)
class SignInRecord:
    """Everything checking a sign-in to one account needs, read at once."""

    name: str  # the account's name as stored (its canonical spelling)
    password_hash: str = field(repr=False)
    # "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" (auth/scram.py); None
    # for accounts whose password was set before Roost kept SCRAM keys.
    scram_keys: str | None = field(default=None, repr=False)
    totp_secret: str | None = field(default=None, repr=False)  # base32; None: two-factor off
    totp_last_step: int = 0  # the TOTP time step of the last code accepted (no replays)
    app_passwords: tuple[AppPasswordRecord, ...] = ()


class SignInStore(Protocol):
    """The part of ``base.Store`` that checking a sign-in uses (``StoreAuthenticator``)."""

    async def get_sign_in_record(self, name: str) -> SignInRecord | None:
        """What checking a sign-in to ``name`` (any case) needs; None where no account."""
        ...

    async def set_password_hash(self, name: str, password_hash: str) -> None:
        """Replace the hash of the same password (made with newer parameters)."""
        ...

    async def accept_totp_step(self, name: str, step: int) -> bool:
        """Record ``step`` as the last TOTP time step used if it is later than the one
        recorded, atomically; False when it is not (a replayed code)."""
        ...

    async def add_scram_keys(self, name: str, password_hash: str, scram_keys: str) -> bool:
        """Store SCRAM keys for the password hashed as ``password_hash`` — only if that
        is still the account's password and it has no keys yet; False otherwise."""
        ...

    async def app_password_used(self, name: str, selector: str, when: int) -> None:
        """Note that the app password with ``selector`` signed in at ``when``."""
        ...

    async def replace_app_password_hash(
        self, name: str, selector: str, old_hash: str, new_hash: str
    ) -> None:
        """Store the same app password hashed another way (``auth/app_passwords.py``),
        if the one with ``selector`` still has ``old_hash``."""
        ...

    async def remember_sign_in_address(self, name: str, address: str, when: int) -> None:
        """``address`` (a client address key) signed in to the account ``name`` (as
        tried, any case) at ``when`` (epoch seconds); a bounded number kept per name."""
        ...

    async def last_sign_in_from(self, name: str, address: str) -> int | None:
        """When ``address`` last signed in to ``name`` (epoch seconds), if it is kept."""
        ...

    async def instance_secret(self) -> bytes:
        """A random secret made once per store and never shown (for SCRAM mock salts)."""
        ...


class CredentialStore(SignInStore, Protocol):
    """The credentials side of ``base.Store``: sign-in, plus what the command-line tools
    change. Every method takes an account name in any case; NoSuchAccount where absent
    (but ``get_sign_in_record``, which answers None)."""

    async def set_password(self, name: str, password_hash: str, scram_keys: str | None) -> None:
        """A new password: its hash and its SCRAM keys (None: none), in one transaction,
        so the old password stops working everywhere at once."""
        ...

    async def set_totp_secret(self, name: str, secret: str | None) -> None:
        """Two-factor on with ``secret``, or off with None; the last step is forgotten."""
        ...

    async def add_app_password(self, name: str, app_password: AppPasswordRecord) -> None:
        """CannotDoThat when the account has one with that label (in any case) or that
        selector already."""
        ...

    async def delete_app_password(self, name: str, label: str) -> bool:
        """Revoke the app password with ``label`` (any case); False if there was none."""
        ...
