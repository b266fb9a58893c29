"""RFC 5230 vacation and RFC 6131 vacation-seconds: when to reply, and the reply's fields."""

from __future__ import annotations

import pytest

from roost.sieve import Envelope, Vacation

from .helpers import FakeHost, message, sieve, summary

PLAIN = (
    "From: Alice <alice@example.com>",
    "To: Me <me@example.org>",
    "Subject: Lunch?",
    "Message-ID: <m1@example.com>",
    "References: <m0@example.com>",
)


def reply(
    script: str, *headers: str, host: FakeHost | None = None, **envelope: str
) -> Vacation | None:
    env = Envelope(
        envelope.get("sender", "alice@example.com"), envelope.get("rcpt", "me@example.org")
    )
    result = sieve(
        'require ["vacation", "vacation-seconds"];' + script, message(*headers), host, env
    )
    assert result.status == "ok", result.error
    replies = [action for action in result.actions if isinstance(action, Vacation)]
    return replies[0] if replies else None


def test_reply_fields_and_defaults() -> None:
    action = reply('vacation "I am away.";', *PLAIN)
    assert action is not None
    assert action.recipient == "alice@example.com"
    assert action.from_address == "me@example.org"
    assert action.subject == "Auto: Lunch?"
    assert action.reason == "I am away."
    assert action.period_seconds == 7 * 86400
    assert action.in_reply_to == "<m1@example.com>"
    assert action.references == "<m0@example.com> <m1@example.com>"
    assert not action.mime


def test_rfc5230_example_with_tags() -> None:
    script = (
        'vacation :days 23 :addresses ["tjs@example.edu", "ts4z@landru.example.edu"]'
        ' :subject "Gone fishing" :from "tjs@example.edu" :handle "fish" :mime text:\n'
        "Content-Type: text/plain\n\nGone fishing.\n.\n;"
    )
    action = reply(script, "From: alice@example.com", "To: tjs@example.edu", "Subject: x")
    assert action is not None
    assert (action.subject, action.from_address, action.handle) == (
        "Gone fishing",
        "tjs@example.edu",
        "fish",
    )
    assert action.period_seconds == 23 * 86400 and action.mime


def test_seconds_bounded_by_site_minimum() -> None:
    action = reply('vacation :seconds 3600 "x";', *PLAIN)
    assert action is not None and action.period_seconds == 86400


def test_once_per_sender_and_handle() -> None:
    host = FakeHost(responded={("alice@example.com", "h1")})
    assert reply('vacation :handle "h1" "x";', *PLAIN, host=host) is None
    assert reply('vacation :handle "h2" "x";', *PLAIN, host=host) is not None


def test_handle_defaults_to_the_reply_contents() -> None:
    first = reply('vacation "one";', *PLAIN)
    second = reply('vacation "two";', *PLAIN)
    assert first is not None and second is not None and first.handle != second.handle


@pytest.mark.parametrize(
    ("extra", "envelope"),
    [
        (["Precedence: bulk"], {}),
        (["Precedence: list"], {}),
        (["Precedence: junk"], {}),
        (["List-Id: <x.lists.example.com>"], {}),
        (["List-Unsubscribe: <mailto:x@example.com>"], {}),
        (["Auto-Submitted: auto-replied"], {}),
        (["Auto-Submitted: auto-generated; x=y"], {}),
        ([], {"sender": ""}),
        ([], {"sender": "MAILER-DAEMON@example.com"}),
        ([], {"sender": "owner-list@example.com"}),
        ([], {"sender": "list-request@example.com"}),
        ([], {"sender": "me@example.org"}),
        ([], {"sender": "me+tag@example.org"}),
    ],
)
def test_no_reply_to_lists_bulk_automatic_or_self(
    extra: list[str], envelope: dict[str, str]
) -> None:
    assert reply('vacation "x";', *PLAIN, *extra, **envelope) is None


def test_auto_submitted_no_is_answered() -> None:
    assert reply('vacation "x";', *PLAIN, "Auto-Submitted: no") is not None


def test_recipient_must_be_visible() -> None:
    # RFC 5230 §4.5: one of the user's addresses must be in To/Cc/Bcc (and Resent-*).
    headers = ("From: alice@example.com", "To: list@example.com", "Subject: x")
    assert reply('vacation "x";', *headers) is None
    assert reply('vacation :addresses "list@example.com" "x";', *headers) is not None
    host = FakeHost(addresses=["me@example.org", "alias@example.org"])
    aliased = ("From: alice@example.com", "Cc: Alias <ALIAS@example.org>", "Subject: x")
    assert reply('vacation "x";', *aliased, host=host) is not None
    assert reply('vacation "x";', "From: a@b.test", "Resent-To: me@example.org") is not None


def test_two_vacations_are_an_error() -> None:
    result = sieve(
        'require "vacation"; vacation :handle "a" "x"; vacation :handle "b" "y";', message(*PLAIN)
    )
    assert summary(result) == ["error", "keep"]


def test_days_and_seconds_are_exclusive() -> None:
    from roost.sieve import SieveSyntaxError, compile_script

    with pytest.raises(SieveSyntaxError):
        compile_script('require "vacation-seconds"; vacation :days 1 :seconds 5 "x";')
    with pytest.raises(SieveSyntaxError, match="vacation-seconds"):
        compile_script('require "vacation"; vacation :seconds 5 "x";')
