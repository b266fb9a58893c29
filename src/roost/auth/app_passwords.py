"""App passwords: one generated password per device or program, each revocable alone.

An app password is 16 random lowercase letters (75 bits), shown once in four groups,
``abcd-efgh-ijkl-mnop``, easy to type on a phone. At sign-in, case, spaces and hyphens
do not matter. Its first four letters, the *selector*, are stored in clear next to its
argon2id hash: a password that looks like an app password is checked only against the
hash its selector picks, so an account's many app passwords cost one hash check, not one
each. (The selector tells an attacker holding users.db 19 of the 75 bits; the hash of
the whole password still stands between him and the other 56.)

App passwords open every protocol even with two-factor on: they are the way for mail
programs, which sign in again and again on their own, to work with two-factor.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
GROUPS = 4
GROUP_LENGTH = 4
LENGTH = GROUPS * GROUP_LENGTH
SELECTOR_LENGTH = 4
MAX_PER_ACCOUNT = 32
MAX_LABEL_LENGTH = 64
_SHAPE = re.compile(rf"[a-z]{{{LENGTH}}}")
_SEPARATORS = re.compile(r"[ \-]")


def generate() -> str:
    """A new app password in its display form, ``abcd-efgh-ijkl-mnop``."""
    letters = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(letters[i : i + GROUP_LENGTH] for i in range(0, LENGTH, GROUP_LENGTH))


def normalise(candidate: str) -> str | None:
    """The 16 letters of ``candidate`` if it has an app password's shape, else None."""
    if len(candidate) > 2 * LENGTH:
        return None
    letters = _SEPARATORS.sub("", candidate).lower()
    return letters if _SHAPE.fullmatch(letters) else None


def selector(normalised: str) -> str:
    return normalised[:SELECTOR_LENGTH]


def label_problem(label: str) -> str | None:
    """Why ``label`` cannot name an app password, or None when it can."""
    if not label or not label.strip():
        return "a label cannot be empty"
    if len(label) > MAX_LABEL_LENGTH:
        return f"a label has at most {MAX_LABEL_LENGTH} characters"
    if any(not ch.isprintable() for ch in label):
        return "a label cannot contain control characters"
    return None
