"""The Authenticator every protocol uses: the store's credentials behind a throttle.

Order of a password attempt, the same whether or not the account exists:

1. The throttle may refuse the address outright (too many failures) — no hashing then.
2. Otherwise wait the delay the earlier failures call for.
3. Read the account's credentials — the store matches names case-insensitively — and
   check the password with exactly one argon2id verification: against the app password
   its selector picks, if it has an app password's shape (``app_passwords.py``);
   otherwise against the account password (with two-factor on, the password is what
   precedes the 6-digit code: ``totp.py``); against a fixed dummy hash when there is no
   such account, so the time taken does not tell an attacker which accounts exist. (An
   app-password-shaped password whose selector matches but whose hash does not is
   then also checked as the account password: two verifications, for a password that
   already names a secret selector.) An app password with a fast hash is checked in
   microseconds (``app_passwords.py`` says why that is safe).
   The authentication cache (``cache.py``) may stand in for the argon2id check of a
   secret that passed it lately — but only for the same credential record, read in step
   3 at every sign-in, and only on the way to a success: a failure always costs one
   argon2id verification (a dummy one when the cache vouched for a password whose
   two-factor code then failed), so failures take as long as without the cache.
4. Success clears that account's failures from that address; a failure is recorded and
   logged at WARNING as ``auth failure ip=... user=... protocol=... reason=...``.
5. On success with a hash made under older parameters, the hash is upgraded (an
   argon2id hash of a strong app password to the fast form).

SCRAM (``scram_parameters`` then ``verify_scram``) and bearer tokens
(``authenticate_token``) follow the same steps: throttle first, one lookup, made-up
SCRAM parameters where an account has no usable keys, every failure recorded and logged.
Two-factor accounts cannot use SCRAM (it never carries the code) and must use an app
password with PLAIN or LOGIN; a bearer token needs no code (its issuer did the checks).

The result names the account in its canonical spelling, as first stored.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from functools import partial

from argon2 import PasswordHasher

from roost.auth import app_passwords, legacy_hashes, scram, totp
from roost.auth.base import AuthResult, ScramParameters, ScramVerdict
from roost.auth.cache import AuthCache
from roost.auth.oauth import TokenError, TokenValidator
from roost.auth.passwords import (
    DEFAULT_HASHER,
    dummy_hash_async,
    hash_password_async,
    needs_rehash,
    run_off_loop,
    verify_password_async,
)
from roost.auth.throttle import LoginThrottle, address_key
from roost.observability import metrics
from roost.store.base import Store, StoreError
from roost.store.credentials import AppPasswordRecord, SignInRecord, SignInStore

log = logging.getLogger("roost.auth")

# Longer user names are refused before any lookup; RFC 5321 caps an address at 254.
MAX_USERNAME_LENGTH = 255
# "Last used" of an app password is written at most this often (seconds).
APP_PASSWORD_USE_RESOLUTION = 60


def account_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an account, or None when it can: 1 to 255 characters,
    no whitespace, no control characters, no "/" ("@" and "." are fine); not "anyone"
    nor starting with "-", which are ACL identifiers of their own (RFC 4314 §2)."""
    if not name:
        return "an account name cannot be empty"
    if name.casefold() == "anyone" or name.startswith("-"):
        return 'an account name cannot be "anyone" or start with "-" (RFC 4314 §2)'
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
    """Implements ``roost.auth.base.Authenticator`` over a store's credentials."""

    def __init__(
        self,
        store: SignInStore,
        throttle: LoginThrottle | None = None,
        *,
        hasher: PasswordHasher = DEFAULT_HASHER,
        rehash: bool = True,
        tokens: TokenValidator | None = None,
        scram: bool = True,
        clock: Callable[[], float] = time.time,
        cache: AuthCache | None = None,
    ) -> None:
        self.store = store
        self.throttle = throttle or LoginThrottle()
        self.hasher = hasher
        self.rehash = rehash
        self.tokens = tokens
        self.scram_enabled = scram
        self.clock = clock  # wall-clock seconds: TOTP steps, "last used"
        # None unless given (many tests count hashes); it is empty, hence falsy, at first.
        self.cache = cache if cache is not None else AuthCache(size=0)
        self._secret: bytes | None = None

    @property
    def offers_scram(self) -> bool:
        return self.scram_enabled

    @property
    def accepts_tokens(self) -> bool:
        return bool(self.tokens)

    # ---- passwords -----------------------------------------------------------------

    async def authenticate(
        self, username: str, password: str, *, remote_ip: str, protocol: str
    ) -> AuthResult:
        if not await self.throttle.wait_turn(remote_ip, username):
            return self._failed(username, remote_ip, protocol, "throttled", throttled=True)
        record = await self._record(username)
        if record is None:
            # Spend the same time as for a real account, then fail.
            await self._spend_a_verification(password)
            return await self._failure(username, remote_ip, protocol, "no such account")

        app_password = await self._matching_app_password(record, password)
        if app_password is not None:
            await self._note_use(record, app_password)
            method = f"app_password:{_printable(app_password.label, 32)}"
            return await self._success(record.name, username, remote_ip, protocol, method)

        if record.totp_secret is None:
            cached = self.cache.contains(self.cache.password_tag(record, password))
            if not cached and not await self._verify(record.password_hash, password):
                return await self._failure(username, remote_ip, protocol, "wrong password")
            await self._succeeded_with_password(record, password, cached)
            return await self._success(record.name, username, remote_ip, protocol, "password")

        # Two-factor: "password" + "123456". One hash check whatever the shape.
        split = totp.split_code(password)
        account_password, code = split if split is not None else (password, None)
        cached = self.cache.contains(self.cache.password_tag(record, account_password))
        if not cached and not await self._verify(record.password_hash, account_password):
            return await self._failure(username, remote_ip, protocol, "wrong password")
        problem = await self._totp_problem(record, code)
        if problem is not None:
            if cached:  # the slow check the cache saved: a failure costs what it did
                await self._spend_a_verification(password)
            return await self._failure(username, remote_ip, protocol, problem)
        await self._succeeded_with_password(record, account_password, cached)
        return await self._success(record.name, username, remote_ip, protocol, "password+totp")

    async def _totp_problem(self, record: SignInRecord, code: str | None) -> str | None:
        """Why ``code`` does not complete a two-factor sign-in, or None when it does
        (then its step is recorded as used: RFC 6238 §5.2, no replays)."""
        assert record.totp_secret is not None
        if code is None:
            return "two-factor code missing"
        step = totp.matching_step(record.totp_secret, code, self.clock(), record.totp_last_step)
        if step is None:
            return "wrong or reused two-factor code"
        if not await self.store.accept_totp_step(record.name, step):
            return "reused two-factor code"
        return None

    async def _succeeded_with_password(
        self, record: SignInRecord, password: str, cached: bool
    ) -> None:
        """Upgrade what needs it, then cache the password under the record as it now
        is, so that an upgrade does not make the next sign-in miss."""
        stored_hash = await self._upgrade(record, password)
        if not cached:
            current = dataclasses.replace(record, password_hash=stored_hash)
            self.cache.add(self.cache.password_tag(current, password))

    async def _spend_a_verification(self, password: str) -> None:
        hash_to_check = await dummy_hash_async(self.hasher)
        await verify_password_async(hash_to_check, password, hasher=self.hasher)

    async def _matching_app_password(
        self, record: SignInRecord, password: str
    ) -> AppPasswordRecord | None:
        candidate = app_passwords.normalise(password)
        if candidate is None:
            return None
        wanted = app_passwords.selector(candidate)
        app_password = next((a for a in record.app_passwords if a.selector == wanted), None)
        if app_password is None:
            return None
        tag = self.cache.app_password_tag(record, app_password, candidate)
        if self.cache.contains(tag):
            return app_password
        stored = app_password.password_hash
        if app_passwords.is_fast_hash(stored):
            matches = app_passwords.verify_fast(stored, candidate)
        else:
            matches = await self._verify(stored, candidate)
        if not matches:
            return None
        # An app password opens the account on its own (no two-factor code): a success.
        if not app_passwords.is_fast_hash(stored) and app_passwords.is_strong(candidate):
            await self._upgrade_app_password(record, app_password, candidate)
        else:
            self.cache.add(tag)
        return app_password

    async def _upgrade_app_password(
        self, record: SignInRecord, app_password: AppPasswordRecord, candidate: str
    ) -> None:
        """Replace the argon2id hash of a strong app password by its fast form."""
        try:
            await self.store.replace_app_password_hash(
                record.name,
                app_password.selector,
                app_password.password_hash,
                app_passwords.fast_hash(candidate),
            )
        except (StoreError, OSError):
            log.warning("could not upgrade an app password hash of %s", record.name)

    async def _note_use(self, record: SignInRecord, app_password: AppPasswordRecord) -> None:
        now = int(self.clock())
        last = app_password.last_used
        if last is not None and now - last < APP_PASSWORD_USE_RESOLUTION:
            return
        try:
            await self.store.app_password_used(record.name, app_password.selector, now)
        except (StoreError, OSError):
            log.warning("could not note the use of an app password of %s", record.name)

    async def _verify(self, password_hash: str, password: str) -> bool:
        return await verify_password_async(password_hash, password, hasher=self.hasher)

    async def _upgrade(self, record: SignInRecord, password: str) -> str:
        """After a correct account password: make the SCRAM keys it lacks (a password
        set before Roost kept them), and rehash it under newer parameters. Returns the
        account's password hash as now stored."""
        if record.scram_keys is None and self.scram_enabled:
            await self._add_scram_keys(record, password)
        # An imported Dovecot hash is replaced even where rehashing is off: it is the
        # one chance to, and its scheme may be far weaker than argon2id.
        upgrade = self.rehash or legacy_hashes.is_legacy(record.password_hash)
        if not upgrade or not needs_rehash(record.password_hash, hasher=self.hasher):
            return record.password_hash
        try:
            new_hash = await hash_password_async(password, hasher=self.hasher)
            await self.store.set_password_hash(record.name, new_hash)
        except (StoreError, OSError):
            log.warning("could not upgrade the password hash of %s", record.name, exc_info=True)
            return record.password_hash
        return new_hash

    async def _add_scram_keys(self, record: SignInRecord, password: str) -> None:
        try:
            keys = await run_off_loop(partial(_derive_scram_keys, password))
            if keys is not None and await self.store.add_scram_keys(
                record.name, record.password_hash, keys
            ):
                log.info("made the SCRAM keys of %s at sign-in", _printable(record.name))
        except (StoreError, OSError):
            log.warning("could not store the SCRAM keys of %s", record.name, exc_info=True)

    # ---- SCRAM ---------------------------------------------------------------------

    async def scram_parameters(
        self, username: str, *, remote_ip: str, protocol: str
    ) -> ScramParameters | AuthResult:
        if not await self.throttle.wait_turn(remote_ip, username):
            return self._failed(username, remote_ip, protocol, "throttled", throttled=True)
        keys, _, _ = await self._scram_keys(username)
        return keys.parameters

    async def verify_scram(
        self,
        username: str,
        auth_message: bytes,
        client_proof: bytes,
        *,
        remote_ip: str,
        protocol: str,
    ) -> ScramVerdict:
        keys, problem, account = await self._scram_keys(username)
        server_signature = scram.check_proof(keys, auth_message, client_proof)
        if problem is not None or server_signature is None:
            reason = problem or "wrong password"
            return ScramVerdict(await self._failure(username, remote_ip, protocol, reason))
        return ScramVerdict(
            await self._success(account, username, remote_ip, protocol, "scram"), server_signature
        )

    async def _scram_keys(self, username: str) -> tuple[scram.ScramKeys, str | None, str]:
        """The account's keys, None and its name; or made-up keys, why there are no real
        ones, and the name as given."""
        record = await self._record(username)
        problem: str
        if record is None:
            problem = "no such account"
        elif record.totp_secret is not None:
            problem = "SCRAM refused: two-factor is on (use an app password with PLAIN)"
        elif record.scram_keys is None:
            problem = "no SCRAM keys: set the password again (roost user passwd)"
        else:
            try:
                return scram.ScramKeys.decode(record.scram_keys), None, record.name
            except ValueError:
                problem = "unusable SCRAM keys: set the password again (roost user passwd)"
        if self._secret is None:
            self._secret = await self.store.instance_secret()
        return scram.mock_keys(self._secret, username), problem, username

    # ---- bearer tokens -------------------------------------------------------------

    async def authenticate_token(
        self, username: str | None, token: str, *, remote_ip: str, protocol: str
    ) -> AuthResult:
        # A token without a name is throttled by address alone: one shared key for all
        # of them would let anyone refuse everyone's anonymous tokens.
        named = username or f"(token from {address_key(remote_ip)})"
        if not await self.throttle.wait_turn(remote_ip, named):
            return self._failed(named, remote_ip, protocol, "throttled", throttled=True)
        if not self.tokens:
            return await self._failure(named, remote_ip, protocol, "no token issuer configured")
        try:
            subject = self.tokens.validate(token)
        except TokenError as error:
            return await self._failure(named, remote_ip, protocol, f"token refused: {error}")
        if username and username.casefold() != subject.casefold():
            return await self._failure(named, remote_ip, protocol, "token issued for another user")
        record = await self._record(subject)
        if record is None:
            return await self._failure(subject, remote_ip, protocol, "no such account")
        return await self._success(record.name, subject, remote_ip, protocol, "token")

    # ---- common --------------------------------------------------------------------

    async def _record(self, username: str) -> SignInRecord | None:
        if not 0 < len(username) <= MAX_USERNAME_LENGTH:
            return None
        return await self.store.get_sign_in_record(username)

    async def _success(
        self, account: str, tried: str, ip: str, protocol: str, method: str
    ) -> AuthResult:
        await self.throttle.succeeded(ip, tried)
        log.info(
            "auth success ip=%s user=%s protocol=%s method=%s",
            ip,
            _printable(account),
            protocol,
            method,
            extra={"event": "auth_success", "ip": ip, "user": account, "method": method},
        )
        metrics.SIGN_INS.labels(protocol, method.partition(":")[0], "ok").inc()
        return AuthResult(account=account)

    async def _failure(self, username: str, ip: str, protocol: str, reason: str) -> AuthResult:
        await self.throttle.failed(ip, username)
        return self._failed(username, ip, protocol, reason)

    def _failed(
        self, username: str, ip: str, protocol: str, reason: str, *, throttled: bool = False
    ) -> AuthResult:
        user = _printable(username)
        log.warning(
            "auth failure ip=%s user=%s protocol=%s reason=%s",
            ip,
            user,
            protocol,
            _printable(reason.replace(" ", "_"), 160),
            extra={
                "event": "auth_failure",
                "ip": ip,
                "user": user,
                "protocol": protocol,
                "reason": reason,
            },
        )
        result = "throttled" if throttled else "failed"
        metrics.SIGN_INS.labels(protocol, "any", result).inc()
        return AuthResult(account=None, reason=reason, throttled=throttled)


def _derive_scram_keys(password: str) -> str | None:
    try:
        return scram.derive_keys(password).encode()
    except ValueError:  # SASLprep refuses the password: SCRAM cannot use it
        return None


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
