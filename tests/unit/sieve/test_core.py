"""RFC 5228: the base language — control, actions, tests, match types, comparators."""

from __future__ import annotations

import pickle

import pytest

from roost.sieve import (
    CompiledScript,
    CompiledVersionError,
    Envelope,
    compile_script,
    describe,
)

from .helpers import MESSAGE, FakeHost, message, sieve, summary

RFC5228_EXAMPLE = """
#
# Example Sieve Filter
# Declare any optional features or extension used by the script
#
require ["fileinto"];

# Move messages from IETF filter discussion list to filter mailbox
if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
# Keep all messages to or from people in my company
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }
# Try and catch unsolicited email.
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   # move to "spam" mailbox
        }
else
        {
        fileinto "personal";
        }
"""


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["Sender: owner-ietf-mta-filters@imc.org", "To: me@example.com"], ["fileinto filter"]),
        (["From: boss@example.com", "To: me@example.com"], ["keep"]),
        (["From: x@spam.test", "To: someone@else.test"], ["fileinto spam"]),
        (
            ["From: x@a.test", "To: l@l.test", "Cc: me@example.com", "Subject: MAKE MONEY FAST"],
            ["fileinto spam"],
        ),
        (
            ["From: friend@a.test", "To: l@lists.test", "Cc: me@example.com", "Subject: hi"],
            ["fileinto personal"],
        ),
    ],
)
def test_rfc5228_section9_example(headers: list[str], expected: list[str]) -> None:
    assert summary(sieve(RFC5228_EXAMPLE, message(*headers))) == expected


def test_implicit_keep_when_nothing_happens() -> None:
    result = sieve("if false { discard; }")
    assert summary(result) == ["keep"]
    assert result.implicit_keep and result.status == "ok"


def test_empty_script_keeps() -> None:
    assert summary(sieve("")) == ["keep"]


def test_discard_cancels_implicit_keep() -> None:
    result = sieve("discard;")
    assert summary(result) == ["discard"]
    assert not result.implicit_keep


def test_stop_ends_the_script() -> None:
    assert summary(sieve('redirect "a@b.test"; stop; discard;')) == ["redirect a@b.test"]


def test_keep_and_redirect() -> None:
    assert summary(sieve('keep; redirect "bob@example.net";')) == [
        "keep",
        "redirect bob@example.net",
    ]


def test_duplicate_redirects_are_folded() -> None:
    assert summary(sieve('redirect "a@b.test"; redirect "A@B.test";')) == ["redirect a@b.test"]


def test_redirect_limit_is_a_runtime_error() -> None:
    script = "".join(f'redirect "u{i}@example.net";' for i in range(5))
    result = sieve(script)
    assert summary(result) == ["error", "keep"]
    assert "more than 4 redirects" in str(result.error)


def test_redirect_loop_is_skipped_and_mail_kept() -> None:
    host = FakeHost(loops={"me@example.org"})
    result = sieve('redirect "me@example.org";', host=host)
    assert summary(result) == ["keep"]
    assert "loop" in result.warnings[0]


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ('header :is "subject" "[acme-users] [fwd] version 1.0 is out"', True),
        ('header :is "SUBJECT" "[ACME-USERS] [FWD] VERSION 1.0 IS OUT"', True),
        ('header :is :comparator "i;octet" "subject" "[ACME-users] [fwd] version 1.0*"', False),
        ('header :contains "subject" "VERSION"', True),
        ('header :contains :comparator "i;octet" "subject" "VERSION"', False),
        ('header :matches "subject" "*1.?*"', True),
        ('header :matches "subject" "\\\\[acme*"', True),
        ('header :matches "subject" "acme*"', False),
        ('header :contains "x-missing" ""', False),
        ('header :is "subject" ""', False),
        ('exists ["From", "Subject"]', True),
        ('exists ["From", "X-Nope"]', False),
        ("size :over 100", True),
        ("size :under 100", False),
        ("size :over 1M", False),
        ('address :is "from" "alice@example.com"', True),
        ('address :localpart :is "from" "alice"', True),
        ('address :domain :is "to" "EXAMPLE.NET"', True),
        ('address :all :is "from" "Alice Example <alice@example.com>"', False),
        ('envelope :is "from" "alice@example.com"', True),
        ('envelope :domain :is "to" "example.org"', True),
        ("not true", False),
        ("allof (true, false)", False),
        ("anyof (false, true)", True),
    ],
)
def test_tests(test: str, expected: bool) -> None:
    script = f'require "envelope"; if {test} {{ discard; }}'
    assert summary(sieve(script)) == (["discard"] if expected else ["keep"])


def test_rfc2047_header_values_are_decoded() -> None:
    mail = message("Subject: =?UTF-8?B?w6lsw6h2ZQ==?=")
    assert summary(sieve('if header :is "subject" "élève" { discard; }', mail)) == ["discard"]


def test_folded_header_is_unfolded() -> None:
    mail = message("Subject: long\r\n\tsubject line")
    assert summary(sieve('if header :is "subject" "long\tsubject line" { discard; }', mail)) == [
        "discard"
    ]


def test_null_envelope_sender() -> None:
    script = 'require "envelope"; if envelope :all :is "from" "" { discard; }'
    null = Envelope("", "me@example.org")
    assert summary(sieve(script, envelope=null)) == ["discard"]
    assert summary(sieve(script)) == ["keep"]


def test_ascii_numeric_comparator() -> None:
    script = (
        'require "comparator-i;ascii-numeric";'
        'if header :is :comparator "i;ascii-numeric" "x-n" "007" { discard; }'
    )
    assert summary(sieve(script, message("X-N: 7abc"))) == ["discard"]
    assert summary(sieve(script, message("X-N: 8"))) == ["keep"]


def test_compiled_form_round_trips_and_is_versioned() -> None:
    script = compile_script(RFC5228_EXAMPLE)
    assert CompiledScript.from_json(script.to_json()) == script
    assert pickle.loads(pickle.dumps(script)) == script
    stale = script.to_json().replace('"version":1', '"version":0')
    with pytest.raises(CompiledVersionError):
        CompiledScript.from_json(stale)


def test_instruction_budget() -> None:
    from roost.sieve import Limits

    script = "if true { keep; }" * 50
    result = sieve(script, limits=Limits(max_instructions=20))
    assert summary(result) == ["error", "keep"]
    assert "instructions" in str(result.error)


def test_describe_lists_actions() -> None:
    text = describe(sieve('require "fileinto"; fileinto "Lists"; redirect "b@c.test";'))
    assert text.splitlines() == ["file into 'Lists'", "redirect to <b@c.test>"]
    too_many = "".join(f'redirect "u{i}@b.test";' for i in range(9))
    assert describe(sieve(too_many)).startswith("error: line 1: more than 4 redirects")


def test_message_without_body_separator() -> None:
    from roost.sieve import ParsedMessage

    mail = ParsedMessage(b"Subject: only a header\r\n")
    assert summary(sieve('if header :is "subject" "only a header" { discard; }', mail)) == [
        "discard"
    ]
    assert MESSAGE  # the shared message is used by other tests


@pytest.mark.parametrize(
    "stored",
    ["not json", "[]", '{"version": 1}', '{"version": 1, "requires": [], "commands": [1]}'],
)
def test_unreadable_compiled_form_asks_for_recompilation(stored: str) -> None:
    with pytest.raises(CompiledVersionError):
        CompiledScript.from_json(stored)
