"""The messy-mail corpus through the whole server: every message stored by APPEND and
fetched back with ENVELOPE, BODYSTRUCTURE and sections gives a strictly valid response,
and BODY[] gives back exactly the bytes stored — the bytes sent, with bare LF made
CRLF on the way in (RFC 9051 §6.3.12) — (issue "Message model": "the answer is always
a valid response")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roost.store.line_endings import to_crlf
from tests.conftest import ImapServer
from tests.corpus.sexp import parse

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "messages"
_PREFIX = re.compile(rb"\* (\d+) FETCH ")


async def test_corpus_fetches_are_valid_imap(imap: ImapServer) -> None:
    messages = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
    assert len(messages) >= 200
    client = await imap.login()
    stored = [m for m in messages if m]  # an empty message cannot be appended
    for data in stored:
        await client.append("INBOX", data)
    await client.ok("SELECT INBOX")
    reply = await client.ok(
        "FETCH 1:* (UID RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[] "
        "BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[TEXT]<0.100>)"
    )
    assert len(reply.untagged) == len(stored)
    for line in reply.untagged:
        match = _PREFIX.match(line)
        assert match, line[:80]
        items = parse(line[match.end() :])  # strict: no 8-bit, CR, LF or NUL in quotes
        assert isinstance(items, list)
        values = dict(zip(items[::2], items[1::2], strict=True))
        original = to_crlf(stored[int(match.group(1)) - 1])
        assert values["RFC822.SIZE"] == len(original)
        assert values["BODY[]"] == original.replace(b"\x00", b"\x80")
