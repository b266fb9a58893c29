"""The Authenticator every protocol uses: the store's argon2id hashes behind a throttle.

Order of an attempt, the same whether or not the account exists:

1. The throttle may refuse the address outright (too many failures) — no hashing then.
2. Otherwise wait the delay the earlier failures call for.
3. Look the account's hash up — the store matches names case-insensitively — and check
   the password against it, or against a fixed dummy hash when there is no such
   account, so the time taken does not tell an attacker which accounts exist.
4. Success clears that account's failures from that address; a failure is recorded and
   logged at WARNING as ``auth failure ip=... user=... protocol=... reason=...``.
5. On success with a hash made under older parameters, the hash is upgraded.

The result names the account in its canonical spelling (as first stored), found in a
cache that is refreshed from ``list_accounts`` only after a correct password, so
strangers cannot make the server list its accounts.
"""

from __future__ import annotations

import logging

from argon2 import PasswordHasher

from roost.auth.base import AuthResult
from roost.auth.passwords import (
    DEFAULT_HASHER,
    dummy_hash_async,
    hash_password_async,
    needs_rehash,
    verify_password_async,
)
from roost.auth.throttle import LoginThrottle
from roost.store.base import Store, StoreError

log = logging.getLogger("roost.auth")

# Longer user names are refused before any lookup; RFC 5321 caps an address at 254.
MAX_USERNAME_LENGTH = 255


def account_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an account, or None when it can: 1 to 255 characters,
    no whitespace, no control characters, no "/" ("@" and "." are fine)."""
    if not name:
        return "an account name cannot be empty"
    if len(name) > MAX_USERNAME_LENGTH:
        return f"an account name has at most {MAX_USERNAME_LENGTH} characters"
    for ch in name:
        if ch.isspace():
            return "an account name cannot contain whitespace"
        if not ch.isprintable():
            return "an account name cannot contain control characters"
        if ch == "/":
            return 'an account name cannot contain "/"'
    return None


async def find_account(store: Store, name: str) -> str | None:
    """The canonical spelling of the account called ``name`` in any case, or None.
    It lists every account: for the command-line tools, not for each sign-in."""
    accounts = await store.list_accounts()
    if name in accounts:
        return name
    wanted = name.casefold()
    for account in accounts:
        if account.casefold() == wanted:
            return account
    return None


class StoreAuthenticator:
    """Implements ``roost.auth.base.Authenticator`` over a ``Store``."""

    def __init__(
        self,
        store: Store,
        throttle: LoginThrottle | None = None,
        *,
        hasher: PasswordHasher = DEFAULT_HASHER,
        rehash: bool = True,
    ) -> None:
        self.store = store
        self.throttle = throttle or LoginThrottle()
        self.hasher = hasher
        self.rehash = rehash
        self._canonical_names: dict[str, str] = {}  # casefolded -> as stored

    async def authenticate(
        self, username: str, password: str, *, remote_ip: str, protocol: str
    ) -> AuthResult:
        if not await self.throttle.wait_turn(remote_ip, username):
            return self._failed(username, remote_ip, protocol, "throttled", throttled=True)

        password_hash: str | None = None
        if 0 < len(username) <= MAX_USERNAME_LENGTH:
            password_hash = await self.store.get_password_hash(username)
        if password_hash is None:
            # Spend the same time as for a real account, then fail.
            hash_to_check = await dummy_hash_async(self.hasher)
            await verify_password_async(hash_to_check, password, hasher=self.hasher)
            self.throttle.record_failure(remote_ip, username)
            return self._failed(username, remote_ip, protocol, "no such account")

        if not await verify_password_async(password_hash, password, hasher=self.hasher):
            self.throttle.record_failure(remote_ip, username)
            return self._failed(username, remote_ip, protocol, "wrong password")

        self.throttle.record_success(remote_ip, username)
        account = await self._canonical_name(username)
        if self.rehash and needs_rehash(password_hash, hasher=self.hasher):
            await self._upgrade_hash(account, password)
        log.info(
            "auth success ip=%s user=%s protocol=%s",
            remote_ip,
            _printable(account),
            protocol,
            extra={"event": "auth_success", "ip": remote_ip, "user": account},
        )
        return AuthResult(account=account)

    async def _canonical_name(self, name: str) -> str:
        key = name.casefold()
        found = self._canonical_names.get(key)
        if found is None:
            accounts = await self.store.list_accounts()
            self._canonical_names = {account.casefold(): account for account in accounts}
            found = self._canonical_names.get(key, name)
        return found

    async def _upgrade_hash(self, account: str, password: str) -> None:
        try:
            new_hash = await hash_password_async(password, hasher=self.hasher)
            await self.store.set_password_hash(account, new_hash)
        except (StoreError, OSError):
            log.warning("could not upgrade the password hash of %s", account, exc_info=True)

    def _failed(
        self, username: str, ip: str, protocol: str, reason: str, *, throttled: bool = False
    ) -> AuthResult:
        user = _printable(username)
        log.warning(
            "auth failure ip=%s user=%s protocol=%s reason=%s",
            ip,
            user,
            protocol,
            reason.replace(" ", "_"),
            extra={
                "event": "auth_failure",
                "ip": ip,
                "user": user,
                "protocol": protocol,
                "reason": reason,
            },
        )
        return AuthResult(account=None, reason=reason, throttled=throttled)


def _printable(text: str, limit: int = 64) -> str:
    """A user-supplied name made safe for one log line: no spaces or control characters
    (they could forge log fields or lines), at most ``limit`` characters."""
    shown = text[:limit]
    escaped = "".join(
        ch if ch.isprintable() and not ch.isspace() else f"\\x{ord(ch):02x}" for ch in shown
    )
    if len(text) > limit:
        escaped += "..."
    return escaped or '""'
