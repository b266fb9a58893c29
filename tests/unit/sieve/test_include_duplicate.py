"""RFC 6609 include (locations, :once, :optional, return, global variables, recursion) and
RFC 7352 duplicate (handles, sources, tracking left to the host)."""

from __future__ import annotations

from roost.sieve import Limits, TrackDuplicate
from roost.sieve.conditions import duplicate_id

from .helpers import FakeHost, message, sieve, summary


def test_rfc6609_include_locations() -> None:
    host = FakeHost(
        scripts={
            ("personal", "always_allow"): 'if address :is "from" "friend@a.test" { keep; }',
            ("global", "spam_tests"): 'require "fileinto"; if exists "X-Spam" { fileinto "Junk"; }',
            ("personal", "spam_tests"): 'if header :contains "subject" "viagra" { discard; }',
        }
    )
    script = (
        'require "include"; include :personal "always_allow";'
        'include :global "spam_tests"; include :personal "spam_tests";'
    )
    assert summary(sieve(script, message("X-Spam: yes"), host)) == ["fileinto Junk"]
    assert summary(sieve(script, message("From: friend@a.test"), host)) == ["keep"]
    assert host.loaded.count("spam_tests") == 4


def test_missing_include_is_an_error_unless_optional() -> None:
    assert summary(sieve('require "include"; include "nope";')) == ["error", "keep"]
    assert summary(sieve('require "include"; include :optional "nope"; discard;')) == ["discard"]


def test_once_skips_repeated_includes() -> None:
    host = FakeHost(scripts={("personal", "r"): 'redirect "x@y.test";'})
    script = 'require "include"; include :once "r"; include :once "r";'
    assert summary(sieve(script, host=host)) == ["redirect x@y.test"]
    assert host.loaded == ["r"]


def test_recursive_include_is_an_error() -> None:
    host = FakeHost(
        scripts={
            ("personal", "a"): 'require "include"; include "b";',
            ("personal", "b"): 'require "include"; include "a";',
        }
    )
    result = sieve('require "include"; include "a";', host=host)
    assert summary(result) == ["error", "keep"]
    assert "recursive" in str(result.error)


def test_include_depth_limit() -> None:
    scripts = {("personal", f"s{i}"): f'require "include"; include "s{i + 1}";' for i in range(9)}
    host = FakeHost(scripts=scripts)
    result = sieve(
        'require "include"; include "s0";', host=host, limits=Limits(max_include_depth=3)
    )
    assert "nested too deeply" in str(result.error)


def test_return_ends_only_the_included_script_and_stop_ends_all() -> None:
    host = FakeHost(
        scripts={
            ("personal", "ret"): 'require "include"; return; discard;',
            ("personal", "halt"): "stop;",
        }
    )
    assert summary(sieve('require "include"; include "ret"; redirect "a@b.test";', host=host)) == [
        "redirect a@b.test"
    ]
    assert summary(sieve('require "include"; include "halt"; discard;', host=host)) == ["keep"]


def test_rfc6609_global_variables() -> None:
    host = FakeHost(
        scripts={
            ("personal", "subtest"): (
                'require ["include", "variables"]; global "test"; global "test_mailbox";'
                'set "test_mailbox" "${test}-sub"; set "local" "hidden";'
            )
        }
    )
    script = (
        'require ["include", "variables", "fileinto"];'
        'global "test"; global "test_mailbox"; set "test" "$$"; include "subtest";'
        'fileinto "${test_mailbox}|${global.test}|${local}";'
    )
    assert summary(sieve(script, host=host)) == ["fileinto $$-sub|$$|"]


DUPLICATE = (
    'require ["duplicate", "fileinto", "mailbox"];'
    'if duplicate { fileinto :create "Trash/Duplicate"; }'
)


def test_rfc7352_first_delivery_is_tracked() -> None:
    result = sieve(DUPLICATE)
    assert summary(result) == ["track", "keep"]
    assert result.actions[0] == TrackDuplicate(duplicate_id("", "<1234@example.com>"), 7 * 86400)


def test_rfc7352_second_delivery_is_a_duplicate() -> None:
    host = FakeHost(seen_duplicates={duplicate_id("", "<1234@example.com>")})
    assert summary(sieve(DUPLICATE, host=host)) == ["fileinto Trash/Duplicate"]


def test_duplicate_without_message_id_is_false_and_untracked() -> None:
    assert summary(sieve(DUPLICATE, message("Subject: x"))) == ["keep"]


def test_duplicate_uniqueid_handle_seconds_last() -> None:
    script = (
        'require ["duplicate", "variables", "imap4flags"];'
        'if header :matches "subject" "ALERT: *" {'
        '  if duplicate :handle "alerts" :seconds 60 :last :uniqueid "${1}" { setflag "\\\\Seen"; }'
        "}"
    )
    mail = message("Subject: ALERT: disk full")
    identifier = duplicate_id("alerts", "disk full")
    assert sieve(script, mail).actions[0] == TrackDuplicate(identifier, 60)
    host = FakeHost(seen_duplicates={identifier})
    # :last refreshes the record at every sighting.
    assert summary(sieve(script, mail, host)) == ["track", "keep [\\Seen]"]


def test_duplicate_header_source_and_period_cap() -> None:
    script = 'require "duplicate"; if duplicate :header "X-Id" :seconds 99999999 { discard; }'
    result = sieve(script, message("X-Id:  abc "))
    assert result.actions[0] == TrackDuplicate(duplicate_id("", "abc"), 90 * 86400)
