"""PREVIEW (RFC 8970): FETCH PREVIEW and PREVIEW (LAZY), from the RFC's examples."""

from __future__ import annotations

import sqlite3

import pytest

from roost.store.postgres import PostgresStore
from tests.conftest import ImapServer
from tests.support.imap_client import message

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


async def test_fetch_preview(imap: ImapServer) -> None:
    """RFC 8970 §5 example: ``FETCH 1 (PREVIEW)`` answers the text; PREVIEW does not
    set \\Seen (it is not a body section); non-ASCII goes in a literal before UTF-8 is
    enabled (RFC 8970 §3.1, nstring)."""
    client = await imap.login()
    caps = await client.ok("CAPABILITY")
    assert b" PREVIEW" in caps.untagged[0]
    await client.append("INBOX", message("one", body="Preview   text\r\nfor one.\r\n"))
    await client.append("INBOX", message("two", body="Gr\u00fc\u00dfe\r\n"))
    await client.ok("SELECT INBOX")
    reply = await client.ok("FETCH 1 (PREVIEW)")
    assert reply.untagged == [b'* 1 FETCH (PREVIEW "Preview text for one.")']
    reply = await client.ok("UID FETCH 1:2 (FLAGS PREVIEW)")
    assert (
        reply.untagged[0] == b'* 1 FETCH (UID 1 FLAGS (\\Recent) PREVIEW "Preview text for one.")'
    )
    assert (
        reply.untagged[1]
        == b"* 2 FETCH (UID 2 FLAGS (\\Recent) PREVIEW {7}\r\nGr\xc3\xbc\xc3\x9fe)"
    )
    await client.ok("ENABLE UTF8=ACCEPT")
    reply = await client.ok("FETCH 2 PREVIEW")
    assert reply.untagged == [b'* 2 FETCH (PREVIEW "Gr\xc3\xbc\xc3\x9fe")']


async def test_fetch_preview_lazy(imap: ImapServer) -> None:
    """RFC 8970 §5 example: ``FETCH 1:3 (PREVIEW (LAZY))`` gives NIL for a preview
    not made yet (here: messages stored before previews were kept); a FETCH without
    LAZY makes it, and later LAZY requests see it."""
    client = await imap.login()
    for n in range(3):
        await client.append("INBOX", message(f"m{n}", body=f"Text {n}\r\n"))
    forget = "UPDATE analyses SET preview = NULL WHERE id != (SELECT min(id) FROM analyses)"
    if isinstance(imap.store, PostgresStore):
        await imap.store.database.pool.execute(forget)
    else:
        [directory] = (imap.data_dir / "data" / "accounts").iterdir()
        with sqlite3.connect(directory / "mail.db") as conn:
            conn.execute(forget)
    await client.ok("SELECT INBOX")
    reply = await client.ok("FETCH 1:3 (PREVIEW (LAZY))")
    assert reply.untagged == [
        b'* 1 FETCH (PREVIEW "Text 0")',
        b"* 2 FETCH (PREVIEW NIL)",
        b"* 3 FETCH (PREVIEW NIL)",
    ]
    reply = await client.ok("FETCH 2 PREVIEW")
    assert reply.untagged == [b'* 2 FETCH (PREVIEW "Text 1")']
    reply = await client.ok("FETCH 1:3 PREVIEW (LAZY)")
    assert reply.untagged[1:] == [b'* 2 FETCH (PREVIEW "Text 1")', b"* 3 FETCH (PREVIEW NIL)"]
    await client.bad("FETCH 1 (PREVIEW (FAST))")
