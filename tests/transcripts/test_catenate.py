"""CATENATE (RFC 4469): APPEND built from TEXT literals and IMAP URL parts, alone and
within MULTIAPPEND (RFC 3502), with [BADURL] and [TOOBIG]."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roost.imap.context import ImapLimits
from roost.store.base import QuotaOverride
from tests.conftest import ImapServer, start_imap_server, stop_imap_server
from tests.support.imap_client import ImapClient, message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)

BOUNDARY = "------------030308070208000400050907"  # RFC 4469 §5's examples
DRAFT = (
    "From: Bob <bob@example.org>\r\n"
    "To: Alice <alice@example.org>\r\n"
    "Subject: Project plan\r\n"
    "MIME-Version: 1.0\r\n"
    f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"\r\n'
    "\r\n"
    "This is a multi-part message in MIME format.\r\n"
    f"--{BOUNDARY}\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "Here is the plan.\r\n"
    f"--{BOUNDARY}\r\n"
    'Content-Type: multipart/alternative; boundary="inner"\r\n'
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "plain text\r\n"
    "--inner\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p>html</p>\r\n"
    "--inner--\r\n"
    f"--{BOUNDARY}--\r\n"
).encode()


def appenduid(line: bytes) -> tuple[int, list[int]]:
    match = re.search(rb"\[APPENDUID (\d+) ([0-9:,]+)\]", line)
    assert match, line
    uids: list[int] = []
    for item in match.group(2).split(b","):
        low, _, high = item.partition(b":")
        uids += range(int(low), int(high or low) + 1)
    return int(match.group(1)), uids


async def body(client: ImapClient, uid: int, section: str = "") -> bytes:
    reply = await client.ok(f"UID FETCH {uid} (BODY.PEEK[{section}])")
    line = reply.untagged[-1]
    literal = re.search(rb"\] \{\d+\}\r\n", line)
    if literal is None:  # a short value without CR or LF comes as a quoted string
        return line[line.index(b'] "') + 3 : line.rindex(b'")')]
    return line[literal.end() : line.rindex(b")")]


async def drafts_with_two_messages(imap: ImapServer) -> tuple[ImapClient, int, int, int]:
    """Drafts holding the RFC 4469 §5 situation: a multipart draft and a message."""
    client = await imap.login()
    uidvalidity, (draft,) = appenduid((await client.append("Drafts", DRAFT)).line)
    _, (other,) = appenduid((await client.append("Drafts", message("Forwarded"))).line)
    return client, uidvalidity, draft, other


async def messages_in(client: ImapClient, mailbox: str) -> int:
    reply = await client.ok(f"STATUS {mailbox} (MESSAGES)")
    match = re.search(rb"MESSAGES (\d+)", reply.untagged[0])
    assert match
    return int(match.group(1))


async def test_capability_advertises_catenate(imap: ImapServer) -> None:
    client = await imap.login()
    reply = await client.ok("CAPABILITY")
    assert b" CATENATE" in reply.untagged[0]
    assert b" MULTIAPPEND" in reply.untagged[0]


async def test_rfc4469_example_forward_with_new_text(imap: ImapServer) -> None:
    """RFC 4469 §5: the header of a draft, then TEXT and URL parts interleaved, each
    TEXT a synchronizing literal inside the CATENATE list, flags kept."""
    client, uidvalidity, draft, other = await drafts_with_two_messages(imap)
    url = f"/Drafts;UIDVALIDITY={uidvalidity}/;UID={draft}"
    boundary = f"\r\n--{BOUNDARY}\r\n"
    closing = f"\r\n--{BOUNDARY}--\r\n"
    assert (len(boundary), len(closing)) == (42, 44)  # the RFC's {42} and {44}
    reply = await client.ok(
        f'APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL "{url}/;section=HEADER"'
        f" TEXT {{42}}\r\n{boundary}"
        f' URL "{url}/;section=1.MIME" URL "{url}/;section=1" TEXT {{42}}\r\n{boundary}'
        f' URL "/Drafts;UIDVALIDITY={uidvalidity}/;UID={other}" TEXT {{44}}\r\n{closing})'
    )
    _, (new,) = appenduid(reply.line)
    header = DRAFT[: DRAFT.index(b"\r\n\r\n") + 4]
    expected = (
        header
        + boundary.encode()
        + b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        + b"Here is the plan."
        + boundary.encode()
        + message("Forwarded")
        + closing.encode()
    )
    await client.ok("SELECT Drafts")
    assert await body(client, new) == expected
    reply = await client.ok(f"UID FETCH {new} (FLAGS BODYSTRUCTURE)")
    assert b"\\Seen" in reply.untagged[0] and b"$MDNSent" in reply.untagged[0]
    assert b'"MIXED" ("BOUNDARY" "' + BOUNDARY.encode() in reply.untagged[0].upper()
    # The source was read with BODY.PEEK semantics: it did not become \Seen.
    reply = await client.ok(f"UID FETCH {draft} (FLAGS)")
    assert b"\\Seen" not in reply.untagged[0]


async def test_rfc4469_example_failure_is_badurl(imap: ImapServer) -> None:
    """RFC 4469 §5's second example: a URL to a message that is gone fails the whole
    APPEND with [BADURL url] and stores nothing. The RFC's example quotes the URL, but
    its grammar (url-resp-text, §6) has no quotes; like Dovecot, Roost sends it bare."""
    client, uidvalidity, draft, other = await drafts_with_two_messages(imap)
    await client.ok("SELECT Drafts")
    await client.ok(f"UID STORE {other} +FLAGS (\\Deleted)")
    await client.ok("EXPUNGE")
    gone = f"/Drafts;UIDVALIDITY={uidvalidity}/;UID={other}"
    reply = await client.no(
        f'APPEND Drafts CATENATE (URL "/Drafts;UIDVALIDITY={uidvalidity}/;UID={draft}'
        f'/;section=HEADER" TEXT {{4}}\r\nabcd URL "{gone}" TEXT {{2}}\r\nef)'
    )
    assert f"[BADURL {gone}]".encode() in reply.line
    assert await messages_in(client, "Drafts") == 1


async def test_sections_and_partial_match_fetch(imap: ImapServer) -> None:
    """Each URL section (RFC 5092 isection, as FETCH BODY[section]) and PARTIAL range
    copies exactly the bytes FETCH BODY.PEEK answers for it."""
    client, uidvalidity, draft, _ = await drafts_with_two_messages(imap)
    await client.ok("SELECT Drafts")
    for section in ("", "HEADER", "TEXT", "1", "1.MIME", "2", "2.1", "2.2.MIME", "2.MIME"):
        url = f"/Drafts;UIDVALIDITY={uidvalidity}/;UID={draft}"
        if section:
            url += f"/;SECTION={section}"
        reply = await client.ok(f'APPEND INBOX CATENATE (URL "{url}" TEXT {{2}}\r\n\r\n)')
        _, (new,) = appenduid(reply.line)
        await client.ok("EXAMINE INBOX")
        assert await body(client, new) == await _fetch(client, "Drafts", draft, section) + b"\r\n"
    fields = "HEADER.FIELDS%20(Subject%20To)"
    reply = await client.ok(f'APPEND INBOX CATENATE (URL "/Drafts/;UID={draft}/;SECTION={fields}")')
    _, (new,) = appenduid(reply.line)
    await client.ok("EXAMINE INBOX")
    assert await body(client, new) == (
        b"To: Alice <alice@example.org>\r\nSubject: Project plan\r\n\r\n"
    )
    partial = f"/Drafts/;UID={draft}/;SECTION=2.1/;PARTIAL=6.4"  # of "plain text"
    reply = await client.ok(f'APPEND INBOX CATENATE (URL "{partial}" TEXT {{3}}\r\n!\r\n)')
    _, (new,) = appenduid(reply.line)
    await client.ok("EXAMINE INBOX")
    assert await body(client, new) == b"text!\r\n"
    reply = await client.ok(f'APPEND INBOX CATENATE (URL "/Drafts/;UID={draft}/;PARTIAL=0.4")')
    _, (new,) = appenduid(reply.line)
    await client.ok("EXAMINE INBOX")
    assert await body(client, new) == b"From"


async def _fetch(client: ImapClient, mailbox: str, uid: int, section: str) -> bytes:
    await client.ok(f"EXAMINE {mailbox}")
    return await body(client, uid, section)


async def test_url_to_another_mailbox_and_relative_url(imap: ImapServer) -> None:
    """A URL to another mailbox of the same user works; with a mailbox selected, a
    relative ``;UID=`` URL is read against it (RFC 5092 §7.2)."""
    client = await imap.login()
    _, (uid,) = appenduid((await client.append("INBOX", message("Original"))).line)
    reply = await client.ok(f'APPEND Drafts CATENATE (URL "/INBOX/;UID={uid}/;SECTION=TEXT")')
    await client.ok("SELECT Drafts")
    assert await body(client, appenduid(reply.line)[1][0]) == b"Hi there.\r\n"
    await client.ok("SELECT INBOX")
    reply = await client.ok(f"APPEND Drafts CATENATE (URL ;UID={uid}/;SECTION=HEADER)")
    await client.ok("SELECT Drafts")
    header = message("Original")
    assert (
        await body(client, appenduid(reply.line)[1][0]) == header[: header.index(b"\r\n\r\n") + 4]
    )
    reply = await client.ok(f'APPEND Drafts CATENATE (URL "imap://alice@roost/INBOX/;UID={uid}")')
    assert appenduid(reply.line)[1]


async def test_bad_urls(imap: ImapServer) -> None:
    """Each of these is NO [BADURL url] (RFC 4469 §3): another user's or server's URL,
    URLAUTH (not offered), a wrong UIDVALIDITY, no such message, mailbox or part, a
    relative URL with nothing selected, and text that is no IMAP URL at all."""
    await imap.add_user("bob")
    bob = await imap.login("bob")
    await bob.append("INBOX", message("Bob's"))
    client = await imap.login()
    uidvalidity, (uid,) = appenduid((await client.append("INBOX", message())).line)
    for url in (
        "imap://bob@roost/INBOX/;UID=1",
        f"imap://alice@elsewhere.example/INBOX/;UID={uid}",
        f"/INBOX/;UID={uid};URLAUTH=anonymous",
        f"/INBOX;UIDVALIDITY={uidvalidity + 1}/;UID={uid}",
        f"/INBOX/;UID={uid + 1}",
        f"/Nowhere/;UID={uid}",
        f"/INBOX/;UID={uid}/;SECTION=3",
        f"/INBOX/;UID={uid}/;SECTION=BOGUS",
        f";UID={uid}",
        "/INBOX",
        "not a url",
    ):
        reply = await client.no(f'APPEND Drafts CATENATE (TEXT {{1}}\r\nx URL "{url}")')
        assert f"[BADURL {url}]".encode() in reply.line, reply.line
    assert await messages_in(client, "Drafts") == 0
    assert await messages_in(bob, "INBOX") == 1


async def test_nul_in_text_part_is_refused(imap: ImapServer) -> None:
    """RFC 9051 §4.3: a literal is never NUL, as for a plain APPEND."""
    client = await imap.login()
    reply = await client.no("APPEND INBOX CATENATE (TEXT {5}\r\nab\x00cd)")
    assert b"[CANNOT]" in reply.line
    assert await messages_in(client, "INBOX") == 0


async def test_multiappend_with_catenate_is_all_or_nothing(imap: ImapServer) -> None:
    """RFC 3502 §6.3.11 with RFC 4469: plain and catenated messages in one APPEND are
    stored together, or, when one part fails, none of them is."""
    client = await imap.login()
    _, (uid,) = appenduid((await client.append("INBOX", message("Source"))).line)
    plain = message("Plain")
    reply = await client.ok(
        f"APPEND Drafts {{{len(plain)}}}\r\n".encode()
        + plain
        + f' (\\Flagged) CATENATE (URL "/INBOX/;UID={uid}")'.encode()
        + f" CATENATE (TEXT {{{len(plain)}}}\r\n".encode()
        + plain
        + f' URL "/INBOX/;UID={uid}/;SECTION=TEXT")'.encode()
    )
    assert appenduid(reply.line)[1] == [1, 2, 3]
    await client.ok("SELECT Drafts")
    assert await body(client, 2) == message("Source")
    assert await body(client, 3) == plain + b"Hi there.\r\n"
    reply = await client.no(
        f"APPEND Drafts {{{len(plain)}}}\r\n".encode()
        + plain
        + f' CATENATE (URL "/INBOX/;UID={uid}") CATENATE (URL "/INBOX/;UID={uid + 5}")'.encode()
    )
    assert b"[BADURL" in reply.line
    assert await messages_in(client, "Drafts") == 3


def leftover_spools(directory: Path) -> list[Path]:
    return list(directory.glob("roost-catenate-*"))


async def test_too_big_and_big_results_spool(tmp_path: Path, store_url: str | None) -> None:
    """A result over APPENDLIMIT is NO [TOOBIG] (RFC 4469 §3); one over the spool
    threshold is copied into a spool file, which is gone after the APPEND."""
    limits = ImapLimits(max_literal_size=20_000, spool_threshold=4096)
    imap, server = await start_imap_server(tmp_path, limits=limits, store_url=store_url)
    try:
        await imap.add_user("alice")
        client = await imap.login()
        big = message("Big", "0123456789abcde\r\n" * 500)  # ~8.6 KB, over the threshold
        _, (uid,) = appenduid((await client.append("INBOX", big)).line)
        reply = await client.no(
            f'APPEND INBOX CATENATE (URL "/INBOX/;UID={uid}"'
            + (f' URL "/INBOX/;UID={uid}/;SECTION=TEXT"' * 2)
            + ")"
        )
        assert b"[TOOBIG]" in reply.line
        reply = await client.ok(
            f'APPEND INBOX CATENATE (URL "/INBOX/;UID={uid}" TEXT {{2}}\r\n--'
            f' URL "/INBOX/;UID={uid}/;SECTION=TEXT")'
        )
        _, (new,) = appenduid(reply.line)
        await client.ok("SELECT INBOX")
        text = big[big.index(b"\r\n\r\n") + 4 :]
        assert await body(client, new) == big + b"--" + text
        assert not leftover_spools(tmp_path)
        assert imap.context.spool_budget is not None and imap.context.spool_budget.used == 0
    finally:
        await stop_imap_server(imap, server)


async def test_multiappend_refusing_a_later_message_stores_none(imap: ImapServer) -> None:
    """RFC 3502 §6.3.11: "If the server returns NO for any message, then none of the
    messages is appended" — here the third message carries a NUL in a {n} literal
    (RFC 9051 §4.3), then an empty one; the first two are not stored either. (Over
    quota, all or none is pinned in test_quota.py.)"""
    client = await imap.login()
    first, second = message("first"), message("second")
    head = (
        f"APPEND INBOX {{{len(first)}+}}\r\n".encode()
        + first
        + f" (\\Seen) {{{len(second)}+}}\r\n".encode()
        + second
    )
    reply = await client.no(head + b" {3+}\r\na\x00b")
    assert b"[CANNOT]" in reply.line
    reply = await client.no(head + b" {0+}\r\n")
    assert b"[CANNOT]" in reply.line
    assert await messages_in(client, "INBOX") == 0
    reply = await client.ok(head)
    assert appenduid(reply.line)[1] == [1, 2]


async def test_store_rules_apply_to_the_result(imap: ImapServer) -> None:
    """A catenated message is stored as any APPEND is: bare LF in a TEXT part becomes
    CRLF (RFC 9051 §6.3.12), and the quota is checked (RFC 9208 §4.3, OVERQUOTA)."""
    client = await imap.login()
    _, (uid,) = appenduid((await client.append("INBOX", message("Source"))).line)
    reply = await client.ok(
        f'APPEND INBOX CATENATE (URL "/INBOX/;UID={uid}" TEXT {{6}}\r\nab\ncd\n)'
    )
    _, (new,) = appenduid(reply.line)
    await client.ok("SELECT INBOX")
    assert await body(client, new) == message("Source") + b"ab\r\ncd\r\n"
    await imap.store.set_quota_override("alice", QuotaOverride(1, None))  # 1 KiB
    filler = b"x" * 900
    reply = await client.no(
        f'APPEND INBOX CATENATE (URL "/INBOX/;UID={uid}" TEXT {{{len(filler)}}}\r\n'.encode()
        + filler
        + b")"
    )
    assert b"[OVERQUOTA]" in reply.line
    assert await messages_in(client, "INBOX") == 2


async def test_spool_budget_bounds_catenation(tmp_path: Path) -> None:
    """A result to be spooled counts against max_spool_bytes like a big literal: when
    it does not fit, NO [LIMIT] and no file is written."""
    limits = ImapLimits(spool_threshold=1024, max_spool_bytes=3000)
    imap, server = await start_imap_server(tmp_path, limits=limits)
    try:
        await imap.add_user("alice")
        client = await imap.login()
        source = message("Source", "y" * 1800 + "\r\n")
        _, (uid,) = appenduid((await client.append("INBOX", source)).line)
        reply = await client.no(f'APPEND INBOX CATENATE (URL "/INBOX/;UID={uid}" URL ;UID={uid})')
        assert b"[BADURL ;UID=" in reply.line  # nothing selected: relative URL is bad
        await client.ok("SELECT INBOX")
        reply = await client.no(f'APPEND INBOX CATENATE (URL "/INBOX/;UID={uid}" URL ;UID={uid})')
        assert b"[LIMIT]" in reply.line
        assert not leftover_spools(tmp_path)
        reply = await client.ok(f"APPEND INBOX CATENATE (URL ;UID={uid}/;PARTIAL=0.2900)")
        assert await body(client, appenduid(reply.line)[1][0]) == source[:2900]
    finally:
        await stop_imap_server(imap, server)


async def test_many_small_catenations_do_not_pile_up_in_memory(tmp_path: Path) -> None:
    """A MULTIAPPEND of small catenations keeps at most 4 x spool_threshold of them in
    memory, as the receiver does for literals; the rest must be spooled, here into a
    budget too small for them: NO [LIMIT]."""
    limits = ImapLimits(spool_threshold=1024, max_spool_bytes=500)
    imap, server = await start_imap_server(tmp_path, limits=limits)
    try:
        await imap.add_user("alice")
        client = await imap.login()
        source = message("Source", "z" * 700 + "\r\n")
        assert 820 < len(source) <= 1024
        _, (uid,) = appenduid((await client.append("INBOX", source)).line)
        one = f' CATENATE (URL "/INBOX/;UID={uid}")'
        reply = await client.ok("APPEND INBOX" + one * 4)
        assert appenduid(reply.line)[1] == [2, 3, 4, 5]
        reply = await client.no("APPEND INBOX" + one * 5)
        assert b"[LIMIT]" in reply.line
        assert await messages_in(client, "INBOX") == 5
    finally:
        await stop_imap_server(imap, server)
