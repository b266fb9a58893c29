"""IMAP URL parsing (RFC 5092 §11 grammar; URLAUTH fields of RFC 4467 §2 kept opaque)."""

from __future__ import annotations

import pytest

from roost.imapurl import Form, ImapUrl, UrlError, parse


def test_rfc4469_relative_urls() -> None:
    """The absolute-path URLs of RFC 4469 §5's examples; parameter names ignore case."""
    url = parse("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME")
    assert url == ImapUrl(
        Form.ABSOLUTE_PATH, mailbox="Drafts", uidvalidity=385759045, uid=20, section="1.MIME"
    )
    assert url.names_message
    assert parse("/Drafts;UIDVALIDITY=385759045/;UID=30").section is None


def test_absolute_url_with_every_component() -> None:
    """RFC 4467 §7's example shape: a URLAUTH URL, its rump ending at the access id."""
    text = (
        "imap://joe;AUTH=*@example.com:143/fred%20x/Stuff;UIDVALIDITY=1/;UID=5"
        "/;SECTION=HEADER.FIELDS%20(To%20From)/;PARTIAL=10.200"
        ";EXPIRE=2026-12-31T23:59:59Z;URLAUTH=submit+fred:internal:91354a473744909de610943775f92038"
    )
    url = parse(text)
    assert (url.form, url.host, url.port, url.user, url.auth_type) == (
        Form.ABSOLUTE,
        "example.com",
        143,
        "joe",
        "*",
    )
    assert (url.mailbox, url.uidvalidity, url.uid) == ("fred x/Stuff", 1, 5)
    assert url.section == "HEADER.FIELDS (To From)"
    assert url.partial == (10, 200)
    assert url.expire == "2026-12-31T23:59:59Z"
    assert (url.access, url.mechanism, url.token) == (
        "submit+fred",
        "internal",
        "91354a473744909de610943775f92038",
    )
    assert url.rump == text[: text.index(":internal")]


def test_server_only_mailbox_and_search_urls() -> None:
    assert parse("imap://MAIL.example.org") == ImapUrl(Form.ABSOLUTE, host="mail.example.org")
    assert parse("imap://h/").mailbox is None
    url = parse("imap://h/INBOX;UIDVALIDITY=7?SUBJECT%20%22x%22")
    assert (url.mailbox, url.uidvalidity, url.search, url.uid) == ("INBOX", 7, 'SUBJECT "x"', None)
    assert not url.names_message
    assert parse("//[::1]:993/INBOX/;UID=2").host == "[::1]"
    assert parse("/%C3%A4rger/;UID=1/;PARTIAL=5").mailbox == "ärger"
    assert parse("/a/;UID=1/;PARTIAL=5").partial == (5, None)


def test_relative_urls_resolve_against_a_base() -> None:
    base = parse("imap://alice@h/INBOX;UIDVALIDITY=3/;UID=4/;SECTION=2")
    assert parse(";UID=9").resolve(base) == ImapUrl(
        Form.ABSOLUTE, host="h", user="alice", mailbox="INBOX", uidvalidity=3, uid=9
    )
    assert parse(";SECTION=1.TEXT").resolve(base).section == "1.TEXT"
    assert parse(";SECTION=1.TEXT").resolve(base).uid == 4
    partial = parse(";PARTIAL=0.10").resolve(base)
    assert (partial.uid, partial.section, partial.partial) == (4, "2", (0, 10))
    other = parse("/Sent/;UID=1").resolve(base)
    assert (other.host, other.user, other.mailbox) == ("h", "alice", "Sent")
    assert other.uidvalidity is None
    absolute = parse("imap://bob@elsewhere/INBOX/;UID=1")
    assert absolute.resolve(base) is absolute
    with pytest.raises(UrlError):
        parse(";UID=1").resolve(ImapUrl(Form.ABSOLUTE, host="h"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x",
        "http://h/INBOX",
        "/;UID=1",  # no mailbox
        "/INBOX;UID=1",  # the "/" before ;UID= is missing
        "/INBOX/;UIDVALIDITY=1",  # ... and stands before ;UIDVALIDITY=
        "/INBOX/;UID=1;SECTION=1",
        "/INBOX/;UID=0",
        "/INBOX/;UID=4294967296",
        "/INBOX/;UID=x",
        "/INBOX/;UID=1/",
        "/INBOX/;SECTION=1/;UID=1",  # out of order
        "/INBOX/;UID=1/;UID=2",
        "/INBOX/;UID=1/;FOO=2",
        "/INBOX/;UID=1/;SECTION=",
        "/INBOX/;UID=1/;PARTIAL=1.0",
        "/INBOX/;UID=1/;PARTIAL=a",
        "/INBOX/;UID=1?SUBJECT%20x",  # a search only follows a mailbox
        "/INBOX;URLAUTH=anonymous",  # URLAUTH only after a message part
        "/INBOX/;UID=1;EXPIRE=2026-01-01T00:00:00Z",  # EXPIRE without URLAUTH
        "/IN BOX/;UID=1",
        "/IN%ZZBOX/;UID=1",
        "/%FF/;UID=1",  # not UTF-8
        "imap://@h/",
        "imap://h:99999/",
        "imap://u;FOO=x@h/",
        ";UIDVALIDITY=1/;UID=1",
        "INBOX/;UID=1",
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(UrlError):
        parse(text)
