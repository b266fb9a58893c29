"""I18NLEVEL=1 (RFC 5255 §4): SEARCH and SORT compare with i;unicode-casemap (RFC 5051)."""

from __future__ import annotations

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def mailbox(imap: ImapServer, subjects: list[str], body: str = "x\r\n") -> ImapClient:
    client = await imap.login()
    for subject in subjects:
        data = message("", body=body).replace(b"Subject: \r\n", b"")
        header = f"Subject: {subject}\r\nMIME-Version: 1.0\r\n".encode()
        header += b"Content-Type: text/plain; charset=utf-8\r\n"
        await client.append("INBOX", header + data)
    await client.ok("ENABLE UTF8=ACCEPT")
    await client.ok("SELECT INBOX")
    return client


async def search(client: ImapClient, criteria: str) -> bytes:
    reply = await client.ok(f"UID SEARCH {criteria}".encode())
    return reply.untagged[-1]


async def test_search_matches_by_unicode_casemap(imap: ImapServer) -> None:
    """RFC 5051 §2: titlecase then NFKD, so case, composition and compatibility forms
    do not matter — precomposed é matches e + U+0301, fullwidth letters their plain
    ones, final sigma the other one — and diacritics do. Short needles,
    which the trigram index cannot answer, follow the same rule."""
    client = await mailbox(
        imap,
        [
            "Caf\u00e9 au lait",
            "\uff32\uff2f\uff2f\uff33\uff34 news",
            "\u039f\u0394\u039f\u03a3 map",
            "cafe au lait",
        ],
    )
    caps = await client.ok("CAPABILITY")
    assert b" I18NLEVEL=1" in caps.untagged[0]
    assert await search(client, 'SUBJECT "CAFE\u0301"') == b"* SEARCH 1"
    assert await search(client, 'SUBJECT "roost"') == b"* SEARCH 2"
    assert await search(client, 'SUBJECT "\u03bf\u03b4\u03bf\u03c2"') == b"* SEARCH 3"
    # Decomposed, "cafe" is a substring of "café" (RFC 5051 substring), "cafe au" not.
    assert await search(client, 'SUBJECT "cafe"') == b"* SEARCH 1 4"
    assert await search(client, 'SUBJECT "cafe au"') == b"* SEARCH 4"
    assert await search(client, 'SUBJECT "\u00c9"') == b"* SEARCH 1"  # one character
    assert await search(client, 'TEXT "caf\u00c9 AU"') == b"* SEARCH 1"


async def test_sort_orders_by_unicode_casemap(imap: ImapServer) -> None:
    """RFC 5255 §4.3 and RFC 5051: SORT compares the casemapped keys' octets, so an
    accented capital sorts with its small letter (ASCII-only upper-casing put "éclair"
    after "Zebra")."""
    client = await mailbox(imap, ["\u00e9clair", "Zebra", "apple", "\u00c9a"])
    reply = await client.ok("SORT (SUBJECT) UTF-8 ALL")
    assert reply.untagged == [b"* SORT 3 4 1 2"]
