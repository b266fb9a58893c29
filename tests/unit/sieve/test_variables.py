"""RFC 5229 variables: set, modifiers, match variables, string test; RFC 5231 relational
and RFC 5233 subaddress, with the RFCs' own examples."""

from __future__ import annotations

import pytest

from roost.sieve import Envelope, FileInto

from .helpers import message, sieve, summary

FILE = 'require ["fileinto", "variables"];'


def mailbox_after(script: str, *headers: str) -> str:
    result = sieve(FILE + script + ' fileinto "${out}";', message(*headers))
    assert result.status == "ok", result.error
    action = result.actions[0]
    assert isinstance(action, FileInto)
    return action.mailbox


def test_rfc5229_interpolation_is_case_insensitive() -> None:
    script = (
        'set "honorific" "Mr"; set "last_name" "Coyote";'
        'set "out" text:\nDear ${HONORIFIC} ${last_name},\n.\n;'
    )
    assert mailbox_after(script) == "Dear Mr Coyote,\r\n"


@pytest.mark.parametrize(
    ("modifiers", "expected"),
    [
        ("", "juMBlEd lETteRS"),
        (":length", "15"),
        (":lower", "jumbled letters"),
        (":upperfirst", "JuMBlEd lETteRS"),
        (":upperfirst :lower", "Jumbled letters"),
        (":lowerfirst :upper", "jUMBLED LETTERS"),
        (":length :upper", "15"),
    ],
)
def test_rfc5229_set_modifiers(modifiers: str, expected: str) -> None:
    script = f'set "a" "juMBlEd lETteRS"; set {modifiers} "out" "${{a}}";'
    assert mailbox_after(script) == expected


def test_quotewildcard() -> None:
    assert mailbox_after('set :quotewildcard "out" "Rock*?\\\\";') == "Rock\\*\\?\\\\"


def test_unknown_variable_is_empty_and_non_references_stay() -> None:
    assert mailbox_after('set "out" "a${nope}b${1x}c${}d$";') == "ab${1x}c${}d$"


def test_rfc5229_match_variables_examples() -> None:
    script = (
        'if header :matches "List-ID" "*<*@*" { set "out" "lists.${2}"; }'
        'elsif header :matches "Subject" "[*] *" { set "out" "${1}|${2}"; }'
    )
    subject = "Subject: [acme-users] [fwd] version 1.0 is out"
    assert mailbox_after(script, subject) == "acme-users|[fwd] version 1.0 is out"
    assert mailbox_after(script, "List-ID: Acme <acme-users@example.org>") == "lists.acme-users"


def test_rfc5229_double_star() -> None:
    script = (
        'if address :matches ["To", "Cc"] ["coyote@**.com", "wile@**.com"]'
        '{ set "out" "${0}|${1}|${2}"; }'
    )
    assert mailbox_after(script, "To: coyote@ACME.Example.COM") == (
        "coyote@ACME.Example.COM||ACME.Example"
    )


def test_failed_match_keeps_previous_match_variables() -> None:
    script = (
        'if header :matches "Subject" "* *" { set "x" "1"; }'
        'if header :matches "Subject" "nomatch*" { set "x" "2"; }'
        'set "out" "${1}";'
    )
    assert mailbox_after(script, "Subject: hello world") == "hello"


def test_question_mark_and_escape() -> None:
    script = 'if header :matches "Subject" "?\\\\*?" { set "out" "${1}${2}"; }'
    assert mailbox_after(script, "Subject: a*b") == "ab"
    result = sieve(FILE + script + ' fileinto "${out}";', message("Subject: axb"))
    assert result.status == "error"  # no match: ${out} stays empty, fileinto "" fails


def test_string_test_and_count_skips_empty() -> None:
    script = (
        'require ["relational", "comparator-i;ascii-numeric"];'
        'set "a" "x"; set "b" "";'
        'if string :count "eq" :comparator "i;ascii-numeric" ["${a}", "${b}"] "1"'
        '{ set "out" "one"; } else { set "out" "other"; }'
    )
    assert mailbox_after(script) == "one"


def test_variable_size_is_bounded() -> None:
    script = 'set "a" "0123456789";' + 'set "a" "${a}${a}";' * 12 + 'set :length "out" "${a}";'
    assert mailbox_after(script) == "4096"


RELATIONAL_MESSAGE = (
    "Received: from a by b; Mon, 7 Dec 2026 10:00:00 +0000",
    "Received: from c by d; Mon, 7 Dec 2026 09:00:00 +0000",
    "Subject: example",
    "To: foo@example.com, baz@example.com",
    "CC: qux@example.com",
)


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        # RFC 5231 §6 examples.
        ('address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["3"]', True),
        (
            'anyof (address :count "ge" :comparator "i;ascii-numeric" ["to"] ["3"],'
            ' address :count "ge" :comparator "i;ascii-numeric" ["cc"] ["3"])',
            False,
        ),
        ('header :count "ge" :comparator "i;ascii-numeric" ["received"] ["3"]', False),
        ('header :count "ge" :comparator "i;ascii-numeric" ["received", "subject"] ["3"]', True),
        ('header :count "eq" :comparator "i;ascii-numeric" "x-none" "0"', True),
        ('header :value "gt" "subject" "exa"', True),
        ('header :value "lt" "subject" "EXA"', False),
        ('header :value "ne" "subject" "example"', False),
        ('header :value "le" :comparator "i;octet" "subject" "Z"', False),
        ('address :value "lt" :comparator "i;ascii-numeric" "to" "5"', False),
    ],
)
def test_rfc5231_relational(test: str, expected: bool) -> None:
    script = f'require ["relational", "comparator-i;ascii-numeric"];if {test} {{ discard; }}'
    assert summary(sieve(script, message(*RELATIONAL_MESSAGE))) == (
        ["discard"] if expected else ["keep"]
    )


RFC5233_EXAMPLE = """
require ["envelope", "subaddress", "fileinto"];
if envelope :user "to" "postmaster" { fileinto "inbox.postmaster"; stop; }
if envelope :detail "to" "mta-filters" { fileinto "inbox.ietf-mta-filters"; }
if envelope :detail "to" "foo" { redirect "ken@example.net"; }
"""


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("postmaster@example.com", ["fileinto inbox.postmaster"]),
        ("postmaster+x@example.com", ["fileinto inbox.postmaster"]),
        ("ken+mta-filters@example.com", ["fileinto inbox.ietf-mta-filters"]),
        ("ken+foo@example.com", ["redirect ken@example.net"]),
        ("ken@example.com", ["keep"]),
    ],
)
def test_rfc5233_subaddress(recipient: str, expected: list[str]) -> None:
    envelope = Envelope("alice@example.com", recipient)
    assert summary(sieve(RFC5233_EXAMPLE, envelope=envelope)) == expected


def test_detail_absent_never_matches_but_empty_detail_does() -> None:
    script = 'require "subaddress"; if address :detail :matches "to" "*" { discard; }'
    assert summary(sieve(script, message("To: ken@example.com"))) == ["keep"]
    assert summary(sieve(script, message("To: ken+@example.com"))) == ["discard"]
