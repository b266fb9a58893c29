"""Checking password hashes imported from Dovecot (``{SCHEME}hash``), until upgraded.

``roost user import-passwd`` stores a Dovecot passwd-file hash as it is, scheme prefix
and all, so users keep their passwords. ``passwords.verify_password`` sends any hash
that starts with "{" here; ``needs_rehash`` is always true for them, so the first
successful sign-in replaces the hash by Roost's argon2id (authenticator.py, _upgrade).

Schemes (Dovecot's names, case-insensitive; doc.dovecot.org "Password schemes"):

* ARGON2ID, ARGON2I: the PHC string (argon2-cffi reads the variant from it).
* BLF-CRYPT: bcrypt (``$2y$``/``$2b$``/``$2a$``), via the ``bcrypt`` package.
* SHA512-CRYPT, SHA256-CRYPT: Drepper's SHA-crypt (``$6$``/``$5$``), implemented here
  from the published specification ("Unix crypt using SHA-256 and SHA-512",
  https://www.akkadia.org/drepper/SHA-crypt.txt), since Python 3.13 dropped ``crypt``.
* CRYPT: whichever of the crypt formats above its prefix names.
* SSHA512, SSHA256, SSHA: base64 of digest(password + salt) + salt; SHA512, SHA256,
  SHA: base64 of the digest. A ``.HEX`` suffix (``{SSHA512.HEX}``) means hex instead.
* PLAIN, CLEAR, CLEARTEXT (and ``.b64``): the password itself.

Anything else — DES or MD5 crypt, unknown schemes, malformed hashes — never matches.
Dovecot does not normalise passwords, so the password is tried as typed first and then
in NFC (the form Roost hashes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_SCHEME = re.compile(r"\{([A-Za-z0-9.-]+)\}(.*)", re.S)
_CRYPT64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ROUNDS_DEFAULT = 5000
_ROUNDS_MIN = 1000
_ROUNDS_MAX = 999_999_999
# SHA-crypt: the bytes of the final digest in the order the specification encodes them.
_SHA512_ORDER = [
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
    (18, 39, 60), (40, 61, 19), (62, 20, 41),
]  # fmt: skip
_SHA256_ORDER = [
    (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14),
    (15, 25, 5), (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29),
]  # fmt: skip
_ARGON2 = PasswordHasher()

SCHEMES = frozenset(
    {
        "ARGON2ID", "ARGON2I", "BLF-CRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "CRYPT",
        "SSHA512", "SSHA256", "SSHA", "SHA512", "SHA256", "SHA", "PLAIN", "CLEAR",
        "CLEARTEXT",
    }
)  # fmt: skip


def is_legacy(password_hash: str) -> bool:
    return password_hash.startswith("{")


def scheme_of(password_hash: str) -> str | None:
    """The scheme of ``{SCHEME}hash`` (upper case, without an encoding suffix), or None
    when it is not one this module checks."""
    match = _SCHEME.fullmatch(password_hash)
    if match is None:
        return None
    scheme = match.group(1).upper().removesuffix(".HEX").removesuffix(".B64")
    return scheme if scheme in SCHEMES else None


def verify(password_hash: str, password: str) -> bool:
    """True when ``password`` matches the Dovecot-style ``password_hash``."""
    match = _SCHEME.fullmatch(password_hash)
    scheme = scheme_of(password_hash)
    if match is None or scheme is None:
        return False
    encoding = match.group(1).upper()
    check = _CHECKS[scheme]
    stored = match.group(2)
    candidates = [password]
    if (normal := unicodedata.normalize("NFC", password)) != password:
        candidates.append(normal)
    try:
        return any(check(stored, candidate, encoding) for candidate in candidates)
    except (ValueError, TypeError, binascii.Error):
        return False


def _argon2(stored: str, password: str, _: str) -> bool:
    try:
        return _ARGON2.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _bcrypt(stored: str, password: str, _: str) -> bool:
    if not stored.startswith(("$2a$", "$2b$", "$2y$")):
        return False
    return bcrypt.checkpw(password.encode(), stored.encode("ascii"))


def _crypt(stored: str, password: str, encoding: str) -> bool:
    if stored.startswith(("$5$", "$6$")):
        return hmac.compare_digest(sha_crypt(password.encode(), stored), stored)
    if stored.startswith("$2"):
        return _bcrypt(stored, password, encoding)
    return False


def _digest(name: str, *, salted: bool) -> Callable[[str, str, str], bool]:
    size = hashlib.new(name).digest_size

    def check(stored: str, password: str, encoding: str) -> bool:
        raw = bytes.fromhex(stored) if encoding.endswith(".HEX") else base64.b64decode(stored)
        if len(raw) < size or (not salted and len(raw) != size):
            return False
        digest, salt = raw[:size], raw[size:]
        return hmac.compare_digest(hashlib.new(name, password.encode() + salt).digest(), digest)

    return check


def _plain(stored: str, password: str, encoding: str) -> bool:
    value = base64.b64decode(stored) if encoding.endswith(".B64") else stored.encode()
    return hmac.compare_digest(value, password.encode())


_CHECKS: dict[str, Callable[[str, str, str], bool]] = {
    "ARGON2ID": _argon2,
    "ARGON2I": _argon2,
    "BLF-CRYPT": _bcrypt,
    "SHA512-CRYPT": lambda s, p, e: s.startswith("$6$") and _crypt(s, p, e),
    "SHA256-CRYPT": lambda s, p, e: s.startswith("$5$") and _crypt(s, p, e),
    "CRYPT": _crypt,
    "SSHA512": _digest("sha512", salted=True),
    "SSHA256": _digest("sha256", salted=True),
    "SSHA": _digest("sha1", salted=True),
    "SHA512": _digest("sha512", salted=False),
    "SHA256": _digest("sha256", salted=False),
    "SHA": _digest("sha1", salted=False),
    "PLAIN": _plain,
    "CLEAR": _plain,
    "CLEARTEXT": _plain,
}


# ---- SHA-crypt (Drepper) ------------------------------------------------------------


def sha_crypt(password: bytes, setting: str) -> str:
    """The SHA-crypt string of ``password`` under ``setting`` (``$6$[rounds=N$]salt``,
    anything after the salt ignored), step by step as the specification numbers it."""
    match = re.match(r"\$([56])\$(?:rounds=(\d+)\$)?([^$]*)", setting)
    if match is None:
        raise ValueError("not a SHA-crypt setting")
    variant, rounds_text, salt_text = match.groups()
    algorithm = hashlib.sha512 if variant == "6" else hashlib.sha256
    size = 64 if variant == "6" else 32
    rounds = _ROUNDS_DEFAULT
    if rounds_text is not None:
        rounds = min(max(int(rounds_text), _ROUNDS_MIN), _ROUNDS_MAX)
    salt = salt_text.encode()[:16]
    length = len(password)
    # Steps 4-8: digest B of password, salt, password.
    alternate = algorithm(password + salt + password).digest()
    # Steps 1-3, 9-12: digest A.
    a = algorithm(password + salt)
    remaining = length
    while remaining > size:
        a.update(alternate)
        remaining -= size
    a.update(alternate[:remaining])
    bits = length
    while bits > 0:
        a.update(alternate if bits & 1 else password)
        bits >>= 1
    digest = a.digest()
    # Steps 13-16: P from the password repeated; 17-20: S from the salt repeated.
    p_digest = algorithm(password * length).digest()
    p_bytes = (p_digest * (length // size + 1))[:length]
    s_digest = algorithm(salt * (16 + digest[0])).digest()
    s_bytes = (s_digest * (len(salt) // size + 1))[: len(salt)]
    # Step 21: the rounds.
    for i in range(rounds):
        c = algorithm(p_bytes if i & 1 else digest)
        if i % 3:
            c.update(s_bytes)
        if i % 7:
            c.update(p_bytes)
        c.update(digest if i & 1 else p_bytes)
        digest = c.digest()
    # Step 22: the output string.
    head = f"${variant}$" + (f"rounds={rounds}$" if rounds_text is not None else "")
    return head + salt.decode() + "$" + _encode(digest, variant)


def _encode(digest: bytes, variant: str) -> str:
    out: list[str] = []

    def emit(b2: int, b1: int, b0: int, count: int) -> None:
        word = (b2 << 16) | (b1 << 8) | b0
        for _ in range(count):
            out.append(_CRYPT64[word & 0x3F])
            word >>= 6

    if variant == "6":
        for i, j, k in _SHA512_ORDER:
            emit(digest[i], digest[j], digest[k], 4)
        emit(0, 0, digest[63], 2)
    else:
        for i, j, k in _SHA256_ORDER:
            emit(digest[i], digest[j], digest[k], 4)
        emit(0, digest[31], digest[30], 3)
    return "".join(out)
