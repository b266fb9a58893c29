"""RFC 5260: date and currentdate with zones and date parts; index on header tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from roost.sieve import AddHeader, FileInto

from .helpers import FakeHost, message, sieve, summary

DATED = message(
    "From: boss@example.com",
    "Date: Tue, 1 Dec 2026 16:30:05 -0500",
    "Received: from a by b; Wed, 2 Dec 2026 03:00:00 +0100",
    "Received: from c by d (relay [192.0.2.1]); Wed, 2 Dec 2026 02:00:00 +0100",
)


@pytest.mark.parametrize(
    ("part", "original", "utc"),
    [
        ("year", "2026", "2026"),
        ("month", "12", "12"),
        ("day", "01", "01"),
        ("date", "2026-12-01", "2026-12-01"),
        ("julian", "61375", "61375"),
        ("hour", "16", "21"),
        ("minute", "30", "30"),
        ("second", "05", "05"),
        ("time", "16:30:05", "21:30:05"),
        ("iso8601", "2026-12-01T16:30:05-05:00", "2026-12-01T21:30:05+00:00"),
        ("std11", "Tue, 01 Dec 2026 16:30:05 -0500", "Tue, 01 Dec 2026 21:30:05 +0000"),
        ("zone", "-0500", "+0000"),
        ("weekday", "2", "2"),
    ],
)
def test_date_parts(part: str, original: str, utc: str) -> None:
    script = (
        'require ["date", "variables", "fileinto"];'
        f'if date :originalzone :matches "date" "{part}" "*" {{ set "a" "${{1}}"; }}'
        f'if date :zone "+0000" :matches "date" "{part}" "*" {{ set "b" "${{1}}"; }}'
        'fileinto "${a}|${b}";'
    )
    result = sieve(script, DATED)
    assert result.actions == [FileInto(f"{original}|{utc}")]


def test_default_zone_is_the_hosts() -> None:
    # The host's clock is UTC; the Date header is converted to it.
    script = 'require "date"; if date :is "date" "hour" "21" { discard; }'
    assert summary(sieve(script, DATED)) == ["discard"]


def test_rfc5260_business_hours_example() -> None:
    script = """
    require ["date", "relational", "fileinto"];
    if allof(header :is "from" "boss@example.com",
             date :value "ge" :originalzone "date" "hour" "09",
             date :value "lt" :originalzone "date" "hour" "17")
    { fileinto "urgent"; }
    """
    assert summary(sieve(script, DATED)) == ["fileinto urgent"]


def test_rfc5260_vacation_week_example() -> None:
    script = """
    require ["date", "relational", "vacation"];
    if allof(currentdate :value "ge" "date" "2026-12-01",
             currentdate :value "le" "date" "2026-12-07")
    { vacation :days 7 "I'm away during the first week of December."; }
    """
    assert summary(sieve(script)) == ["vacation alice@example.com", "keep"]
    later = FakeHost(clock=datetime(2026, 12, 8, tzinfo=UTC))
    assert summary(sieve(script, host=later)) == ["keep"]


def test_rfc5260_month_year_example() -> None:
    script = """
    require ["date", "variables", "fileinto"];
    if currentdate :matches "month" "*" { set "month" "${1}"; }
    if currentdate :matches "year"  "*" { set "year" "${1}"; }
    fileinto "${month}-${year}";
    """
    assert summary(sieve(script)) == ["fileinto 12-2026"]


def test_received_date_and_processing_header_example() -> None:
    script = """
    require ["variables", "date", "editheader", "index"];
    if date :matches :zone "+0000" :index 1 "received" "iso8601" "*" {set "date" "${1}";}
    addheader "Processing-date" "${date}";
    """
    result = sieve(script, DATED)
    assert result.header_edits == [AddHeader("Processing-date", "2026-12-02T02:00:00+00:00")]


def test_currentdate_zone() -> None:
    script = 'require "date"; if currentdate :zone "+0900" :is "hour" "18" { discard; }'
    assert summary(sieve(script)) == ["discard"]


def test_unparsable_date_does_not_match() -> None:
    script = 'require "date"; if date :matches "date" "year" "*" { discard; }'
    assert summary(sieve(script, message("Date: yesterday-ish"))) == ["keep"]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (":index 1", "a by b"),
        (":index 2", "c by d"),
        (":index 1 :last", "c by d"),
        (":index 2 :last", "a by b"),
    ],
)
def test_index_on_header(tags: str, expected: str) -> None:
    script = (
        'require ["index", "variables", "fileinto"];'
        f'if header {tags} :matches "received" "from * (*;*" {{ set "x" "${{1}}"; }}'
        f'if header {tags} :matches "received" "from *;*" {{ set "x" "${{1}}"; }}'
        'fileinto "${x}";'
    )
    (action,) = sieve(script, DATED).actions
    assert isinstance(action, FileInto)
    assert action.mailbox.startswith(expected)


def test_index_out_of_range_matches_nothing() -> None:
    script = 'require "index"; if header :index 3 :contains "received" "" { discard; }'
    assert summary(sieve(script, DATED)) == ["keep"]


def test_index_on_address() -> None:
    mail = message("To: a@x.test", "To: b@y.test")
    script = 'require "index"; if address :index 2 :domain :is "to" "y.test" { discard; }'
    assert summary(sieve(script, mail)) == ["discard"]
