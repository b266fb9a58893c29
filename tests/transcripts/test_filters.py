"""FILTERS (RFC 5466): named searches stored as METADATA server entries and used with
the FILTER search key, after the RFC's examples; a missing filter is NO [NONEXISTENT]."""

from __future__ import annotations

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


def _message(sender: str, subject: str, body: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: alice@example.com\r\nSubject: {subject}\r\n"
        f"Date: Mon, 7 Dec 2026 06:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()


async def _mailbox(imap: ImapServer) -> ImapClient:
    """INBOX with 1: a short note from the boss, 2: a long one from a friend, 3: a
    short one from a friend, selected."""
    client = await imap.login()
    await client.append("INBOX", _message("boss@example.com", "Budget", "short"))
    await client.append("INBOX", _message("friend@example.net", "Trip", "x" * 6000))
    await client.append("INBOX", _message("friend@example.net", "Hi", "short"))
    await client.ok("SELECT INBOX")
    return client


async def test_capability(imap: ImapServer) -> None:
    client = await imap.login()
    caps = (await client.ok("CAPABILITY")).untagged[0].split()
    assert {b"FILTERS", b"METADATA-SERVER"} <= set(caps)


async def test_a_stored_filter_is_used_by_search(imap: ImapServer) -> None:
    """RFC 5466 §3.2: the client stores a filter (and its description) as server
    entries, then SEARCH FILTER name matches what the stored program matches; it
    combines with other keys like any search key (§3.1)."""
    client = await _mailbox(imap)
    await client.ok(
        'SETMETADATA "" (/private/filters/values/small "SMALLER 5000"'
        ' /private/filters/descriptions/small "Messages smaller than 5KB")'
    )
    assert (await client.ok("SEARCH FILTER small")).untagged == [b"* SEARCH 1 3"]
    reply = await client.ok('SEARCH FILTER small FROM "friend"')
    assert reply.untagged == [b"* SEARCH 3"]
    assert (await client.ok("SEARCH NOT FILTER small")).untagged == [b"* SEARCH 2"]
    assert (await client.ok("SEARCH OR FILTER Small SUBJECT Trip")).untagged == [b"* SEARCH 1 2 3"]
    assert (await client.ok("UID SEARCH FILTER SMALL")).untagged == [b"* SEARCH 1 3"]
    reply = await client.ok("SORT (REVERSE SUBJECT) UTF-8 FILTER small")
    assert reply.untagged == [b"* SORT 3 1"]


async def test_filters_may_use_filters_and_private_hides_shared(imap: ImapServer) -> None:
    client = await _mailbox(imap)
    await client.ok(
        'SETMETADATA "" (/shared/filters/values/friends "FROM friend"'
        ' /private/filters/values/chat "FILTER friends SMALLER 5000")'
    )
    assert (await client.ok("SEARCH FILTER friends")).untagged == [b"* SEARCH 2 3"]
    assert (await client.ok("SEARCH FILTER chat")).untagged == [b"* SEARCH 3"]
    await client.ok('SETMETADATA "" (/private/filters/values/friends "FROM boss")')
    assert (await client.ok("SEARCH FILTER friends")).untagged == [b"* SEARCH 1"]


async def test_a_missing_or_broken_filter_is_no(imap: ImapServer) -> None:
    """RFC 5466 §3.1: a filter that does not exist is NO [NONEXISTENT]; so is one
    that is gone after SETMETADATA removed it. A stored program that does not parse,
    or that uses itself, is NO as well: the command itself was well-formed."""
    client = await _mailbox(imap)
    reply = await client.no("SEARCH FILTER on-the-road")
    assert reply.line.startswith(reply.tag.encode() + b" NO [NONEXISTENT]")
    assert b"on-the-road" in reply.line and reply.untagged == []
    await client.ok('SETMETADATA "" (/private/filters/values/gone "ALL")')
    await client.ok('SETMETADATA "" (/private/filters/values/gone NIL)')
    assert b"[NONEXISTENT]" in (await client.no("SEARCH FILTER gone")).line
    await client.ok(
        'SETMETADATA "" (/private/filters/values/broken "SMALLER lots"'
        ' /private/filters/values/loop "OR FILTER loop2 ALL"'
        ' /private/filters/values/loop2 "FILTER loop")'
    )
    assert b"not a valid search program" in (await client.no("SEARCH FILTER broken")).line
    assert b"refers to itself" in (await client.no("SEARCH FILTER loop")).line
    await client.bad("SEARCH FILTER a/b")  # RFC 5466 §4: no "/" in a filter name
    await client.ok("NOOP")  # the session goes on


async def test_a_filter_with_message_numbers_after_uidonly(imap: ImapServer) -> None:
    """RFC 9586 §3.1: once UIDONLY is enabled, message numbers are refused, also
    when they come from a stored filter rather than the command itself."""
    client = await _mailbox(imap)
    await client.ok(
        'SETMETADATA "" (/private/filters/values/first "1:2" /private/filters/values/u "UID 1:2")'
    )
    await client.ok("ENABLE UIDONLY")
    reply = await client.bad("UID SEARCH FILTER first")
    assert b"[UIDREQUIRED]" in reply.line
    assert (await client.ok("UID SEARCH FILTER u")).untagged == [b"* SEARCH 1 2"]
