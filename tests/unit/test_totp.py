"""TOTP (RFC 6238) and app passwords: pure functions, fixed times."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from roost.auth import app_passwords, totp

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
T = 1_700_000_010.0  # 10 s into a step


def code(offset_steps: int = 0) -> str:
    return totp.code_at(SECRET, totp.time_step(T) + offset_steps)


def test_codes_agree_with_pyotp_at_a_fixed_time() -> None:
    assert code() == pyotp.TOTP(SECRET).at(T)


def test_rfc_6238_appendix_b_sha1_vector() -> None:
    # RFC 6238 Appendix B: secret "12345678901234567890", T=59 -> 94287082 (8 digits).
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert pyotp.TOTP(secret, digits=8).generate_otp(totp.time_step(59)) == "94287082"
    assert totp.code_at(secret, totp.time_step(59)) == "287082"


def test_current_and_neighbouring_steps_match() -> None:
    step = totp.time_step(T)
    assert totp.matching_step(SECRET, code(), T, 0) == step
    assert totp.matching_step(SECRET, code(-1), T, 0) == step - 1
    assert totp.matching_step(SECRET, code(+1), T, 0) == step + 1
    assert totp.matching_step(SECRET, code(-2), T, 0) is None
    assert totp.matching_step(SECRET, code(+2), T, 0) is None
    assert totp.matching_step(SECRET, "000000" if code() != "000000" else "111111", T, 0) is None


def test_codes_at_or_before_the_last_accepted_step_are_replays() -> None:
    step = totp.time_step(T)
    assert totp.matching_step(SECRET, code(), T, last_step=step) is None
    assert totp.matching_step(SECRET, code(-1), T, last_step=step - 1) is None
    assert totp.matching_step(SECRET, code(+1), T, last_step=step) == step + 1


@pytest.mark.parametrize(
    ("password", "split"),
    [
        ("hunter2123456", ("hunter2", "123456")),
        ("pass word 000000", ("pass word ", "000000")),
        ("123456", None),  # the code alone: no password
        ("hunter2", None),
        ("hunter212345", ("hunter", "212345")),  # the last six digits, whatever they are
        ("hunter2 12345x", None),
        ("pw\u0661\u0662\u0663\u0664\u0665\u0666", None),  # Arabic-Indic digits are not a code
    ],
)
def test_split_code(password: str, split: tuple[str, str] | None) -> None:
    assert totp.split_code(password) == split


def test_provisioning_uri_and_qr_code() -> None:
    uri = totp.provisioning_uri(SECRET, "alice@example.org")
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    query = parse_qs(parsed.query)
    assert query["secret"] == [SECRET] and query["issuer"] == ["Roost"]
    assert "alice%40example.org" in parsed.path
    drawing = totp.qr_code_text(uri)
    lines = drawing.splitlines()
    assert len(lines) > 10 and len({len(line) for line in lines}) == 1
    assert set(drawing) <= set(" \xa0\u2580\u2584\u2588\n")  # qrcode draws blanks as NBSP


def test_new_secrets_are_160_bits_of_base32() -> None:
    secret = totp.new_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret) and secret != totp.new_secret()


# ---- app passwords -------------------------------------------------------------------


def test_generated_app_passwords_have_the_display_shape() -> None:
    password = app_passwords.generate()
    assert re.fullmatch(r"[a-z]{4}(-[a-z]{4}){6}", password)
    assert password != app_passwords.generate()
    normalised = app_passwords.normalise(password)
    assert normalised == password.replace("-", "")
    assert app_passwords.selector(normalised) == password[:4]


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("abcd-efgh-ijkl-mnop", "abcdefghijklmnop"),
        ("abcd efgh ijkl mnop", "abcdefghijklmnop"),
        ("ABCDEFGHIJKLMNOP", "abcdefghijklmnop"),
        ("abcd-efgh-ijkl-mnop-qrst-uvwx-yzab", "abcdefghijklmnopqrstuvwxyzab"),
        ("abcd-efgh-ijkl-mnop-qrst-uvwx-yza", None),
        ("abcd-efgh-ijkl-mno", None),
        ("abcd-efgh-ijkl-mnop1", None),
        ("abcd_efgh_ijkl_mnop", None),
        ("äbcd-efgh-ijkl-mnop", None),
        ("", None),
    ],
)
def test_app_password_normalisation(typed: str, normalised: str | None) -> None:
    assert app_passwords.normalise(typed) == normalised


def test_app_password_labels() -> None:
    assert app_passwords.label_problem("Phone") is None
    assert app_passwords.label_problem("Laptop (work) ✓") is None
    assert app_passwords.label_problem("") is not None
    assert app_passwords.label_problem("   ") is not None
    assert app_passwords.label_problem("a\nb") is not None
    assert app_passwords.label_problem("x" * 65) is not None
