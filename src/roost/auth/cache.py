"""The authentication cache: a sign-in that succeeded costs microseconds next time.

Like Dovecot's ``auth_cache``: after a password passed the slow check (argon2id,
~130 ms of CPU), the authenticator keeps a *tag* — HMAC-SHA-256, under a key drawn at
random in this process, of the account's name, a fingerprint of its credential record
and the accepted secret — for ``[auth] cache_ttl`` seconds, at most ``[auth]
cache_size`` tags, least recently used evicted first. The same secret for the same
account within that time makes the same tag, found in a dict instead of hashed again.

Invariants:

- **The password is never stored**, only the tag; the key never leaves the process
  memory. (Whoever can read that memory could test guesses against the tags at HMAC
  speed — as he could read the passwords passing through it.)
- **Failures are never cached.** A wrong secret makes another tag: a miss, so the slow
  check runs as it does without the cache, and a failure costs what it costs today.
  The authenticator adds a tag only after the whole sign-in succeeded (with two-factor,
  after the code was accepted too).
- **No invalidation messages.** Each sign-in still reads the account's credential
  record from the store (one indexed row read, a fraction of a millisecond), and the
  tag covers what in it decides the answer: the account's name, its password hash
  (a new salt at every password change), its two-factor secret (or none), and for an
  app password that password's selector and hash. So a password change, an app
  password revoked, two-factor turned on or off, an account deleted (no record: the
  cache is not even asked) or re-created, made by any process on any node, changes the
  fingerprint and misses the cache at once — in every worker, without a message. Stale
  tags just age out or are evicted. (A hash upgraded to newer parameters also misses
  once. Two-factor turned on and off again gives back the record of before, and a tag
  made then matches again: rightly, it says that this password matches this hash.)
- **Two-factor is never skipped.** The cache only answers "is this the account
  password"; the 6-digit code is checked at every sign-in, as without the cache.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from roost.store.credentials import AppPasswordRecord, SignInRecord

DEFAULT_TTL = 3600.0
DEFAULT_SIZE = 10_000


class AuthCache:
    """Tags of secrets that recently passed the slow check, with their expiry times."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        size: int = DEFAULT_SIZE,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.size > 0 and self.ttl > 0

    def __len__(self) -> int:
        return len(self._expiry)

    def password_tag(self, record: SignInRecord, password: str) -> bytes:
        """The tag of ``password`` as the account password (without a TOTP code)."""
        return self._tag("password", *_fingerprint(record), password)

    def app_password_tag(
        self, record: SignInRecord, app_password: AppPasswordRecord, normalised: str
    ) -> bytes:
        """The tag of ``normalised`` as the app password ``app_password``."""
        return self._tag(
            "app password",
            *_fingerprint(record),
            app_password.selector,
            app_password.password_hash,
            normalised,
        )

    def contains(self, tag: bytes) -> bool:
        """True when ``tag`` was added less than ``ttl`` seconds ago (and is kept)."""
        expiry = self._expiry.get(tag)
        if expiry is None:
            return False
        if expiry <= self.clock():
            del self._expiry[tag]
            return False
        self._expiry.move_to_end(tag)
        return True

    def add(self, tag: bytes) -> None:
        """Remember ``tag`` for ``ttl`` seconds, evicting the least recently used."""
        if not self.enabled:
            return
        self._expiry[tag] = self.clock() + self.ttl
        self._expiry.move_to_end(tag)
        while len(self._expiry) > self.size:
            self._expiry.popitem(last=False)

    def _tag(self, *fields: str) -> bytes:
        # Each field length-prefixed, so that no two field lists make the same message.
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for field in fields:
            data = field.encode("utf-8", "surrogatepass")
            mac.update(len(data).to_bytes(4, "big"))
            mac.update(data)
        return mac.digest()


def _fingerprint(record: SignInRecord) -> tuple[str, str, str]:
    """What in the record decides whether an account password or an app password is
    accepted; not the last TOTP step (it changes at every two-factor sign-in and is
    checked anyway), nor the SCRAM keys (PLAIN and LOGIN do not use them)."""
    return record.name, record.password_hash, record.totp_secret or ""
