"""App passwords: one generated password per device or program, each revocable alone.

An app password is 28 random lowercase letters (131 bits), shown once in seven groups,
``abcd-efgh-ijkl-mnop-qrst-uvwx-yzab``, easy to type on a phone. At sign-in, case,
spaces and hyphens do not matter. Its first four letters, the *selector*, are stored in
clear next to its hash: a password that looks like an app password is checked only
against the hash its selector picks, so an account's many app passwords cost one check.

Why a fast hash, not argon2id: a slow hash only makes *guessing* expensive, and a
secret Roost drew with 131 bits (112 beyond the public selector) cannot be guessed at
any speed — 2^112 SHA-256 evaluations is out of reach. So it is stored as
``$sha256$<hex>``, plain SHA-256 of a fixed label and the letters, checked in
microseconds. A pepper (a keyed HMAC with a secret kept outside ``users.db``) would add
nothing against brute force here, and would be one more secret to copy to every node
and into every backup (ARCHITECTURE.md §11: nodes are stateless).

Older app passwords had 16 letters (75 bits, 56 beyond the selector): 2^56 SHA-256 is
within a GPU farm's reach, so those keep their argon2id hash (the authentication cache,
``cache.py``, makes them cheap after the first sign-in). An argon2id hash of a
strong one is replaced by the fast form at its next successful use.

App passwords open every protocol even with two-factor on: they are the way for mail
programs, which sign in again and again on their own, to work with two-factor.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
GROUPS = 7
GROUP_LENGTH = 4
LENGTH = GROUPS * GROUP_LENGTH
LEGACY_LENGTH = 16  # app passwords made before they were hashed fast
SELECTOR_LENGTH = 4
MAX_PER_ACCOUNT = 32
MAX_LABEL_LENGTH = 64
FAST_HASH_PREFIX = "$sha256$"
_SHAPE = re.compile(rf"[a-z]{{{LEGACY_LENGTH}}}|[a-z]{{{LENGTH}}}")
_SEPARATORS = re.compile(r"[ \-]")
_DOMAIN = b"roost app password\x00"


def generate() -> str:
    """A new app password in its display form, ``abcd-efgh-...-yzab``."""
    letters = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(letters[i : i + GROUP_LENGTH] for i in range(0, LENGTH, GROUP_LENGTH))


def normalise(candidate: str) -> str | None:
    """The letters of ``candidate`` if it has an app password's shape (28 letters, or 16
    for an older one), else None."""
    if len(candidate) > 2 * LENGTH:
        return None
    letters = _SEPARATORS.sub("", candidate).lower()
    return letters if _SHAPE.fullmatch(letters) else None


def selector(normalised: str) -> str:
    return normalised[:SELECTOR_LENGTH]


def is_strong(normalised: str) -> bool:
    """True when the secret has the full 131 bits, so a fast hash of it is safe."""
    return len(normalised) >= LENGTH


def fast_hash(normalised: str) -> str:
    return FAST_HASH_PREFIX + hashlib.sha256(_DOMAIN + normalised.encode()).hexdigest()


def is_fast_hash(password_hash: str) -> bool:
    return password_hash.startswith(FAST_HASH_PREFIX)


def verify_fast(password_hash: str, normalised: str) -> bool:
    """True when ``normalised`` matches the fast hash (compared in constant time)."""
    return hmac.compare_digest(password_hash.encode(), fast_hash(normalised).encode())


def label_problem(label: str) -> str | None:
    """Why ``label`` cannot name an app password, or None when it can."""
    if not label or not label.strip():
        return "a label cannot be empty"
    if len(label) > MAX_LABEL_LENGTH:
        return f"a label has at most {MAX_LABEL_LENGTH} characters"
    if any(not ch.isprintable() for ch in label):
        return "a label cannot contain control characters"
    return None
