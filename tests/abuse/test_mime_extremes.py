"""Extreme messages over IMAP (issue 13, item 8): a 20 MB one-line Subject is stored,
FETCH BODYSTRUCTURE ENVELOPE answers with the Subject cut to MAX_ENVELOPE_STRING, the
bytes served are the bytes stored, SEARCH finds what lies within the limits, and
another user is answered meanwhile. How much memory analysis takes is measured in
tests/unit/test_mime_limits.py; here, that the server's answers stay sane."""

from __future__ import annotations

import asyncio
import re

from roost.mime import limits
from tests.abuse.conftest import StartServer

MB = 1 << 20


async def test_a_20_mb_header_line_is_stored_and_fetched_cut(start_server: StartServer) -> None:
    handle = await start_server()
    client = await handle.login("alice")
    other = await handle.login("bob")
    subject = b"findme " + b"s" * (20 * MB)
    message = b"From: Ann <a@example.com>\r\nSubject: " + subject + b"\r\n\r\nbody\r\n"
    append = asyncio.create_task(client.append("INBOX", message))
    await other.ok("NOOP")  # answered while the big APPEND is read and analysed
    await append
    await client.ok("SELECT INBOX")

    reply = await client.ok("FETCH 1 (BODYSTRUCTURE ENVELOPE RFC822.SIZE)")
    [fetched] = reply.untagged
    assert len(fetched) < 4 * limits.MAX_ENVELOPE_STRING
    assert b'BODYSTRUCTURE ("text" "plain"' in fetched
    assert b"RFC822.SIZE %d" % len(message) in fetched
    quoted = re.search(
        rb'ENVELOPE \(NIL "(findme s*)" \(\("Ann" NIL "a" "example.com"\)\)', fetched
    )
    assert quoted is not None, fetched[:300]
    assert len(quoted.group(1)) == limits.MAX_ENVELOPE_STRING

    # the stored bytes are untouched
    reply = await client.ok("FETCH 1 (BODY.PEEK[HEADER])")
    assert reply.untagged[0].endswith(b"Subject: " + subject + b"\r\n\r\n)")

    assert (await client.ok("SEARCH SUBJECT findme")).untagged == [b"* SEARCH 1"]
    assert (await client.ok('SEARCH FROM "Ann"')).untagged == [b"* SEARCH 1"]


async def test_a_30_mb_encoded_word(start_server: StartServer) -> None:
    handle = await start_server()
    client = await handle.login("alice")
    word = b"=?utf-8?q?" + b"=C3=A9" * (5 * MB) + b"?="
    message = b"Subject: " + word + b"\r\nTo: b@example.com\r\n\r\nbody\r\n"
    await client.append("INBOX", message)
    await client.ok("SELECT INBOX")
    reply = await client.ok("FETCH 1 (ENVELOPE)")
    [fetched] = reply.untagged
    assert len(fetched) < 4 * limits.MAX_ENVELOPE_STRING
    assert b'(NIL NIL "b" "example.com")' in fetched
    assert (await client.ok("SEARCH TO b@example.com")).untagged == [b"* SEARCH 1"]
