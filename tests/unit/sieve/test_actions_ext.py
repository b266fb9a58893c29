"""fileinto, reject/ereject (RFC 5429), copy (RFC 3894), imap4flags (RFC 5232), mailbox
(RFC 5490): actions, their folding and their conflicts."""

from __future__ import annotations

import pytest

from roost.sieve import FileInto

from .helpers import FakeHost, sieve, summary


def test_fileinto_cancels_implicit_keep() -> None:
    assert summary(sieve('require "fileinto"; fileinto "Lists";')) == ["fileinto Lists"]


def test_fileinto_same_mailbox_twice_is_one_action() -> None:
    script = 'require "fileinto"; fileinto "Lists"; fileinto "Lists"; fileinto "Other";'
    assert summary(sieve(script)) == ["fileinto Lists", "fileinto Other"]


def test_keep_and_fileinto_inbox_fold() -> None:
    assert summary(sieve('require "fileinto"; keep; fileinto "INBOX";')) == ["keep"]


def test_copy_keeps_implicit_keep() -> None:
    # RFC 3894 §3: fileinto/redirect :copy do not cancel the implicit keep.
    script = 'require ["fileinto", "copy"]; fileinto :copy "Archive"; redirect :copy "b@c.test";'
    assert summary(sieve(script)) == ["fileinto Archive :copy", "redirect b@c.test :copy", "keep"]


def test_reject_alone() -> None:
    result = sieve('require "reject"; reject text:\nNo thanks.\n.\n;')
    assert summary(result) == ["reject"]
    assert not result.implicit_keep


def test_ereject() -> None:
    assert summary(sieve('require "ereject"; ereject "go away";')) == ["ereject"]


@pytest.mark.parametrize(
    "script",
    [
        'require ["reject", "fileinto"]; reject "no"; fileinto "x";',
        'require ["reject", "fileinto"]; fileinto "x"; reject "no";',
        'require "reject"; keep; reject "no";',
        'require "reject"; reject "no"; redirect "a@b.test";',
        'require ["reject", "vacation"]; vacation "away"; reject "no";',
        'require ["ereject", "reject"]; reject "no"; ereject "no";',
    ],
)
def test_reject_conflicts_are_runtime_errors(script: str) -> None:
    # RFC 5429 §2.1: reject is incompatible with delivering actions and vacation.
    result = sieve(script)
    assert summary(result) == ["error", "keep"]
    assert "conflicts" in str(result.error)


def test_flags_internal_variable_and_implicit_keep() -> None:
    script = (
        'require ["imap4flags", "fileinto"];'
        'setflag "\\\\Seen"; addflag ["$Work", "\\\\Flagged"]; addflag "\\\\seen";'
        'removeflag "\\\\Flagged"; fileinto "A";'
        'addflag "$Late"; keep;'
    )
    assert summary(sieve(script)) == [
        "fileinto A [\\Seen $Work]",
        "keep [\\Seen $Work $Late]",
    ]


def test_flags_tag_overrides_internal_variable() -> None:
    script = (
        'require ["imap4flags", "fileinto"];'
        'setflag "\\\\Seen"; fileinto :flags ["\\\\Answered", "$x $x"] "A";'
    )
    assert summary(sieve(script)) == ["fileinto A [\\Answered $x]"]


def test_implicit_keep_carries_flags() -> None:
    assert summary(sieve('require "imap4flags"; addflag "$Spam";')) == ["keep [$Spam]"]


def test_flag_variables_and_hasflag() -> None:
    # RFC 5232 §4: hasflag on a named variable and on the internal one.
    script = (
        'require ["imap4flags", "variables", "fileinto"];'
        'setflag "myflags" "A B"; addflag "myflags" "C";'
        'if hasflag "myflags" "c" { fileinto "has-c"; }'
        'if hasflag :is "B" { fileinto "internal"; }'
        'if hasflag :count "eq" :comparator "i;ascii-numeric" "myflags" "3" { fileinto "three"; }'
    )
    result = sieve('require ["relational", "comparator-i;ascii-numeric"]; ' + script)
    assert summary(result) == ["fileinto has-c", "fileinto three"]


def test_mailboxexists_and_create() -> None:
    host = FakeHost(mailboxes={"INBOX", "Lists"})
    script = (
        'require ["mailbox", "fileinto"];'
        'if mailboxexists "Lists" { fileinto "Lists"; }'
        'if mailboxexists ["Lists", "Nope"] { discard; }'
        'fileinto :create "New";'
    )
    result = sieve(script, host=host)
    assert summary(result) == ["fileinto Lists", "fileinto New"]
    assert result.actions[1] == FileInto("New", create=True)


def test_fileinto_empty_name_is_runtime_error() -> None:
    script = 'require ["fileinto", "variables"]; fileinto "${nothing}";'
    assert summary(sieve(script)) == ["error", "keep"]
