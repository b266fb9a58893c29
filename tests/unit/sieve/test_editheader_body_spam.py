"""RFC 5293 editheader, RFC 5173 body, RFC 5235 spamtest/virustest."""

from __future__ import annotations

import pytest

from roost.sieve import AddHeader, DeleteHeader, ParsedMessage, ScoreSource

from .helpers import FakeHost, message, sieve, summary


def test_addheader_first_and_last_and_tests_see_it() -> None:
    script = (
        'require "editheader"; addheader "X-Sieve" "one"; addheader :last "X-Sieve" "two";'
        'if header :is "x-sieve" "one" { if header :index 2 :is "x-sieve" "two" { discard; } }'
    )
    result = sieve('require "index";' + script)
    assert result.header_edits == [AddHeader("X-Sieve", "one"), AddHeader("X-Sieve", "two", True)]
    assert summary(result) == ["discard"]


def test_addheader_value_is_unfolded() -> None:
    result = sieve('require "editheader"; addheader "X-A" "a\\r\\nB: forged";')
    assert result.header_edits == [AddHeader("X-A", "arnB: forged")]
    multi = sieve('require "editheader"; addheader "X-A" text:\nline1\nline2\n.\n;')
    assert multi.header_edits == [AddHeader("X-A", "line1 line2")]


def test_deleteheader_with_patterns_and_index() -> None:
    mail = message("X-Tag: alpha", "X-Tag: beta", "X-Tag: alphabet", "Subject: s")
    script = 'require "editheader"; deleteheader :matches "x-tag" "alpha*";'
    result = sieve(script, mail)
    assert result.header_edits == [DeleteHeader("x-tag", 2), DeleteHeader("x-tag", 0)]
    check = 'require "editheader"; deleteheader :index 1 :last "X-Tag";'
    check += 'if header :is "x-tag" "alphabet" { discard; }'
    assert summary(sieve(check, mail)) == ["keep"]
    assert sieve(check, mail).header_edits == [DeleteHeader("X-Tag", 2)]


def test_deleteheader_all_then_exists_is_false() -> None:
    script = 'require "editheader"; deleteheader "subject"; if not exists "subject" { discard; }'
    assert summary(sieve(script)) == ["discard"]


@pytest.mark.parametrize("field", ["Received", "Auto-Submitted", "RECEIVED"])
def test_protected_fields_cannot_be_deleted(field: str) -> None:
    mail = message("Received: from x", "Auto-Submitted: auto-replied")
    result = sieve(f'require "editheader"; deleteheader "{field}";', mail)
    assert result.header_edits == [] and result.warnings


def test_invalid_field_name_is_rejected() -> None:
    from roost.sieve import SieveSyntaxError, compile_script

    with pytest.raises(SieveSyntaxError, match="field name"):
        compile_script('require "editheader"; addheader "Bad Name" "x";')
    result = sieve('require ["editheader", "variables"]; set "n" "a:b"; addheader "${n}" "x";')
    assert result.status == "error"


MIME = ParsedMessage(
    b"From: a@b.test\r\n"
    b"Subject: parts\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Caf=C3=A9 meeting at noon\r\n"
    b"--XX\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<p>Caf&eacute; <b>meeting</b></p>\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"c2VjcmV0IHBheWxvYWQ=\r\n"
    b"--XX--\r\n"
)


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ('body :contains "café meeting"', True),  # :text (default), decoded
        ('body :text :contains "Café meeting"', True),  # html rendered as text
        ('body :text :contains "<b>"', False),
        ('body :raw :contains "Caf=C3=A9"', True),
        ('body :raw :contains "café"', False),
        ('body :content "text/html" :contains "<b>meeting</b>"', True),
        ('body :content "text" :contains "noon"', True),
        ('body :content "application" :contains "secret payload"', True),
        ('body :content "text/plain" :contains "secret"', False),
        ('body :content "" :contains "secret"', True),
        ('body :text :contains "secret"', False),
    ],
)
def test_rfc5173_body(test: str, expected: bool) -> None:
    script = f'require "body"; if {test} {{ discard; }}'
    assert summary(sieve(script, MIME)) == (["discard"] if expected else ["keep"])


SCORES = {
    "spamtest": ScoreSource("X-Spam-Score", 10.0),
    "virustest": ScoreSource("X-Virus-Score", 100.0),
}


@pytest.mark.parametrize(
    ("headers", "test", "expected"),
    [
        (["X-Spam-Score: 7.5"], 'spamtest :value "ge" :comparator "i;ascii-numeric" "8"', True),
        (["X-Spam-Score: 6.0"], 'spamtest :value "ge" :comparator "i;ascii-numeric" "8"', False),
        (["X-Spam-Score: 25"], 'spamtest :is "10"', True),
        (["X-Spam-Score: -3"], 'spamtest :is "1"', True),
        ([], 'spamtest :is "0"', True),
        (["X-Spam-Score: 7.5"], 'spamtest :percent :is "75"', True),
        (
            ["X-Spam-Score: Yes, score=9.1"],
            'spamtest :percent :value "gt" :comparator "i;ascii-numeric" "90"',
            True,
        ),
        (["X-Virus-Score: 100"], 'virustest :is "5"', True),
        (["X-Virus-Score: 0"], 'virustest :is "1"', True),
        ([], 'virustest :is "0"', True),
    ],
)
def test_rfc5235_scores(headers: list[str], test: str, expected: bool) -> None:
    script = (
        'require ["spamtestplus", "virustest", "relational", "comparator-i;ascii-numeric"];'
        f"if {test} {{ discard; }}"
    )
    host = FakeHost(scores=SCORES)
    assert summary(sieve(script, message(*headers), host)) == (
        ["discard"] if expected else ["keep"]
    )


def test_spamtest_without_configured_header_is_untested() -> None:
    script = 'require "spamtest"; if spamtest :is "0" { discard; }'
    assert summary(sieve(script, message("X-Spam-Score: 9"))) == ["discard"]
