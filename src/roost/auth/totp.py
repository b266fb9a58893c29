"""Two-factor sign-in with TOTP (RFC 6238): 6 digits, 30-second steps, SHA-1 — what
every authenticator app does by default.

With two-factor on, a client signs in with an app password, or with the account
password followed directly by the current code, no space: password ``hunter2`` and code
``123456`` make ``hunter2123456``. (A space is not accepted: it would make a password
that ends in a space ambiguous.)

A code is accepted for its own 30-second step and the one before and after (clock skew),
and only once: the step of each accepted code is stored, and no code of that step or an
earlier one is accepted again (RFC 6238 §5.2), so a code seen on the wire is useless.
"""

from __future__ import annotations

import hmac
import io
import re

import pyotp
import qrcode

DIGITS = 6
PERIOD = 30
SKEW_STEPS = 1
_CODE = re.compile(rf"[0-9]{{{DIGITS}}}")


def new_secret() -> str:
    """A random secret: 32 base32 characters, 160 bits (RFC 4226 §4 recommends 160)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str = "Roost") -> str:
    """The otpauth:// URI that authenticator apps read (from a QR code, or typed)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_code_text(data: str) -> str:
    """``data`` as a QR code drawn with block characters, for a terminal."""
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(data)
    code.make(fit=True)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()


def time_step(now: float) -> int:
    return int(now // PERIOD)


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).generate_otp(step)


def split_code(password: str) -> tuple[str, str] | None:
    """(password, code) from "password123456", or None without a trailing code."""
    if len(password) <= DIGITS or not _CODE.fullmatch(password[-DIGITS:]):
        return None
    return password[:-DIGITS], password[-DIGITS:]


def matching_step(secret: str, code: str, now: float, last_step: int) -> int | None:
    """The time step ``code`` belongs to, if it is one of now ± SKEW_STEPS and later than
    ``last_step`` (the last one accepted), else None. Every candidate is computed, so
    the time taken does not depend on which one matched."""
    current = time_step(now)
    found: int | None = None
    for step in range(current - SKEW_STEPS, current + SKEW_STEPS + 1):
        matches = hmac.compare_digest(code_at(secret, step), code)
        if matches and step > last_step and found is None:
            found = step
    return found
