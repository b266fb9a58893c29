"""IMAP URL parsing for URLAUTH (RFC 5092, RFC 4467 §2) and the INTERNAL token."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from roost.urlauth.access import Requester, allowed, token
from roost.urlauth.url import UrlError, parse_url

# RFC 4467 §9 (the example scenario).
EXAMPLE = (
    "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred"
    ":internal:91354a473744909de610943775f92038"
)


def test_rfc4467_example() -> None:
    url = parse_url(EXAMPLE)
    assert (url.user, url.host, url.mailbox, url.uid) == ("joe", "example.com", "INBOX", 20)
    assert (url.section, url.part, url.text) == ("1.2", (1, 2), None)
    assert url.access == "submit+fred" and url.mechanism == "INTERNAL"
    assert url.rump == EXAMPLE.rsplit(":internal:", 1)[0]
    assert url.token == "91354a473744909de610943775f92038"
    assert url.full == url.rump + ":INTERNAL:91354a473744909de610943775f92038"


def test_full_syntax() -> None:
    url = parse_url(
        "IMAP://alice;AUTH=*@mail.example.org:143/Sent%20Items;UIDVALIDITY=385759045"
        "/;UID=7/;SECTION=2.MIME/;PARTIAL=10.20;EXPIRE=2030-01-01T00:00:00Z;URLAUTH=anonymous"
    )
    assert url.mailbox == "Sent Items" and url.uidvalidity == 385759045
    assert (url.part, url.text, url.partial) == ((2,), "MIME", (10, 20))
    assert url.expire == datetime(2030, 1, 1, tzinfo=UTC)
    assert url.mechanism is None and url.token is None


@pytest.mark.parametrize(
    "text",
    [
        "imap://joe@example.com/INBOX/;uid=20",  # no URLAUTH
        "imap://example.com/INBOX/;uid=20;urlauth=anonymous",  # no user
        "imap://joe@example.com/INBOX;urlauth=anonymous",  # no UID
        "imap://joe@example.com/INBOX/;uid=0;urlauth=anonymous",
        "imap://joe@example.com/INBOX/;uid=1;urlauth=nobody",
        "imap://joe@example.com/INBOX/;uid=1/;section=1.X;urlauth=anonymous",
        "imap://joe@example.com/INBOX/;uid=1;urlauth=anonymous:internal:abc",  # short token
        "http://joe@example.com/INBOX/;uid=1;urlauth=anonymous",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(UrlError):
        parse_url(text)


def test_access_rules() -> None:
    imap_fred = Requester(account="Fred")
    submit_fred = Requester(submit_for="fred")
    assert allowed("submit+fred", submit_fred) and not allowed("submit+fred", imap_fred)
    assert allowed("user+fred", imap_fred) and not allowed("user+fred", submit_fred)
    assert allowed("authuser", imap_fred) and allowed("authuser", submit_fred)
    assert not allowed("authuser", Requester()) and allowed("anonymous", Requester())


def test_token_depends_on_key_and_rump() -> None:
    rump = parse_url(EXAMPLE).rump
    assert token(b"k1", rump) != token(b"k2", rump)
    assert token(b"k1", rump) != token(b"k1", rump + "x")
    assert len(token(b"k1", rump)) == 64
