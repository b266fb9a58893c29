"""URLAUTH (RFC 4467) in IMAP and BURL (RFC 4468) in submission: a client forwards an
attachment it never downloads. The URL shapes follow RFC 4467 §9's example
(``imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred``)."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD
from tests.submission.conftest import SubmissionServer, message, submission_server
from tests.support.imap_client import ImapClient


def forged(url: str) -> str:
    """The URL with its token's last hex digit changed, so it can never verify (a fixed
    replacement would leave the URL intact whenever the token already ended in it)."""
    last = url[-1]
    return url[:-1] + ("0" if last != "0" else "1")


ATTACHMENT = b"Si vis pacem, para bellum.\r\n"
STORED = (
    b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: report\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=xyz\r\n\r\n"
    b"--xyz\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
    b"--xyz\r\nContent-Type: text/plain; name=quote.txt\r\n\r\n" + ATTACHMENT + b"--xyz--\r\n"
)
# The part's body, without the CRLF that belongs to the next boundary (RFC 2046 §5.1.1).
PART = ATTACHMENT.removesuffix(b"\r\n")
RUMP = "imap://alice@localhost/INBOX/;uid=1/;section=2;urlauth={access}"


async def genurlauth(imap: ImapClient, rump: str) -> str:
    reply = await imap.ok(f'GENURLAUTH "{rump}" INTERNAL')
    (line,) = reply.lines_starting(b"* GENURLAUTH ")
    url = line.removeprefix(b"* GENURLAUTH ").decode().strip('"')
    assert re.fullmatch(re.escape(rump) + ":INTERNAL:[0-9a-f]{64}", url), url
    return url


async def urlfetch(imap: ImapClient, url: str) -> bytes | None:
    reply = await imap.ok(f'URLFETCH "{url}"')
    (line,) = reply.lines_starting(b"* URLFETCH ")
    rest = line.removeprefix(b"* URLFETCH ").removeprefix(url.encode() + b" ")
    if rest == b"NIL":
        return None
    found = re.match(rb"\{(\d+)\}\r\n", rest)
    assert found, line
    return rest[found.end() :]


async def test_capability_and_rfc4467_example(submission: SubmissionServer) -> None:
    """RFC 4467 §9: GENURLAUTH of a part, then URLFETCH of the URL it gave."""
    imap = await submission.imap()
    capability = (await imap.ok("CAPABILITY")).untagged[0]
    assert b" URLAUTH" in capability
    await imap.append("INBOX", STORED)
    user_url = await genurlauth(imap, RUMP.format(access="user+alice"))
    assert await urlfetch(imap, user_url) == PART
    # submit+alice is for the submission server acting for alice, not an IMAP session.
    submit_url = await genurlauth(imap, RUMP.format(access="submit+alice"))
    assert await urlfetch(imap, submit_url) is None
    # A changed token, section or access identifier is refused alike.
    assert await urlfetch(imap, user_url[:-1] + ("0" if user_url[-1] != "0" else "1")) is None
    assert await urlfetch(imap, user_url.replace("section=2", "section=1")) is None
    # The whole message, a MIME header, and a partial range.
    whole = await genurlauth(imap, "imap://alice@localhost/INBOX/;uid=1;urlauth=user+alice")
    assert await urlfetch(imap, whole) == STORED
    mime = await genurlauth(
        imap, "imap://alice@localhost/INBOX/;uid=1/;section=2.MIME;urlauth=user+alice"
    )
    assert await urlfetch(imap, mime) == b"Content-Type: text/plain; name=quote.txt\r\n\r\n"
    part = await genurlauth(
        imap, "imap://alice@localhost/INBOX/;uid=1/;section=2/;partial=3.4;urlauth=user+alice"
    )
    assert await urlfetch(imap, part) == PART[3:7]


async def test_access_identifiers_and_resetkey(submission: SubmissionServer) -> None:
    alice = await submission.imap()
    await alice.append("INBOX", STORED)
    bob = await submission.imap("bob")
    for_bob = await genurlauth(alice, RUMP.format(access="user+bob"))
    anyone = await genurlauth(alice, RUMP.format(access="authuser"))
    anonymous = await genurlauth(alice, RUMP.format(access="anonymous"))
    assert await urlfetch(bob, for_bob) == PART
    assert await urlfetch(alice, for_bob) is None  # user+bob is bob's only
    assert await urlfetch(bob, anyone) == PART
    assert await urlfetch(bob, anonymous) == PART
    # RFC 4467 §7.2: RESETKEY voids every URL signed with the old key.
    await alice.ok("RESETKEY INBOX")
    assert await urlfetch(bob, for_bob) is None
    again = await genurlauth(alice, RUMP.format(access="user+bob"))
    assert again != for_bob and await urlfetch(bob, again) == PART
    await alice.ok("RESETKEY")
    assert await urlfetch(bob, again) is None


async def test_expired_and_refused_urls(submission: SubmissionServer) -> None:
    imap = await submission.imap()
    await imap.append("INBOX", STORED)
    past = "imap://alice@localhost/INBOX/;uid=1;expire=2000-01-01T00:00:00Z;urlauth=anonymous"
    assert await urlfetch(imap, await genurlauth(imap, past)) is None
    future = past.replace("2000", "2999")
    assert await urlfetch(imap, await genurlauth(imap, future)) == STORED
    # Only one's own messages; only existing mailboxes; a rump, not a full URL.
    await imap.no('GENURLAUTH "imap://bob@localhost/INBOX/;uid=1;urlauth=anonymous" INTERNAL')
    reply = await imap.no(
        'GENURLAUTH "imap://alice@localhost/Nope/;uid=1;urlauth=anonymous" INTERNAL'
    )
    assert b"NONEXISTENT" in reply.line
    await imap.bad('GENURLAUTH "imap://alice@localhost/INBOX/;uid=1" INTERNAL')
    await imap.bad(f'GENURLAUTH "{future}" FANCY')
    await imap.bad(f'GENURLAUTH "{future}:INTERNAL:{"0" * 32}" INTERNAL')
    await imap.no("RESETKEY Nope")
    assert await urlfetch(imap, "http://example.com/") is None


async def test_burl_forwards_an_attachment_without_downloading_it(
    submission: SubmissionServer,
) -> None:
    """RFC 4468 §3: BDAT the new message's start, BURL the stored part, BDAT the end."""
    imap = await submission.imap()
    await imap.append("INBOX", STORED)
    url = await genurlauth(imap, RUMP.format(access="submit+alice"))
    client = await submission.signed_in()
    assert "250 BURL imap\r\n" in await client.command("EHLO client.example")
    head = (
        b"From: alice@example.org\r\nTo: carol@elsewhere.test\r\nSubject: Fwd\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=fw\r\n\r\n"
        b"--fw\r\nContent-Type: text/plain\r\n\r\nHere it is.\r\n"
        b"--fw\r\nContent-Type: text/plain; name=quote.txt\r\n\r\n"
    )
    tail = b"\r\n--fw--\r\n"
    assert (await client.command("MAIL FROM:<alice@example.org>")).startswith("250")
    assert (await client.command("RCPT TO:<carol@elsewhere.test>")).startswith("250")
    await client.send(f"BDAT {len(head)}\r\n".encode() + head)
    assert (await client.reply()).startswith("250")
    assert (await client.command(f"BURL {url}")).startswith("250 2.0.0 26 octets")
    await client.send(f"BDAT {len(tail)} LAST\r\n".encode() + tail)
    assert (await client.reply()).startswith("250 2.0.0 Sent")
    (relayed,) = submission.relay.messages
    assert relayed.data.endswith(head + PART + tail)
    # BURL ... LAST ends the message itself.
    assert (await client.command("MAIL FROM:<alice@example.org>")).startswith("250")
    assert (await client.command("RCPT TO:<carol@elsewhere.test>")).startswith("250")
    whole = await genurlauth(imap, "imap://alice@localhost/INBOX/;uid=1;urlauth=submit+alice")
    assert (await client.command(f"BURL {whole} LAST")).startswith("250 2.0.0 Sent")
    assert submission.relay.messages[1].data.endswith(STORED)


async def test_burl_refusals(submission: SubmissionServer) -> None:
    imap = await submission.imap()
    await imap.append("INBOX", STORED)
    for_bob = await genurlauth(imap, RUMP.format(access="submit+bob"))
    mine = await genurlauth(imap, RUMP.format(access="submit+alice"))
    client = await submission.signed_in()
    assert (await client.command(f"BURL {mine} LAST")).startswith("503 5.5.1")  # no MAIL
    await client.command("MAIL FROM:<alice@example.org>")
    await client.command("RCPT TO:<carol@elsewhere.test>")
    # Another user's submit URL, a forged one: 554 5.6.6 and the transaction is over.
    assert (await client.command(f"BURL {for_bob} LAST")).startswith("554 5.6.6")
    assert (await client.command("DATA")).startswith("503 5.5.1")
    await client.command("MAIL FROM:<alice@example.org>")
    await client.command("RCPT TO:<carol@elsewhere.test>")
    assert (await client.command(f"BURL {forged(mine)} LAST")).startswith("554 5.6.6")
    await client.command("MAIL FROM:<alice@example.org>")
    await client.command("RCPT TO:<carol@elsewhere.test>")
    assert (await client.command(f"BURL {mine} FIRST")).startswith("501")
    # Before AUTH, BURL is not offered.
    fresh = await submission.connect()
    assert "BURL" not in await fresh.command("EHLO client.example")
    assert submission.relay.messages == []


async def test_burl_from_header_is_still_checked() -> None:
    """What BURL appends is checked like any message: the From: must be the user's."""
    async with submission_server() as server:
        imap = await server.imap()
        await imap.append("INBOX", message(sender="bob@example.org"))
        url = await genurlauth(imap, "imap://alice@localhost/INBOX/;uid=1;urlauth=submit+alice")
        client = await server.signed_in()
        await client.command("MAIL FROM:<alice@example.org>")
        await client.command("RCPT TO:<carol@elsewhere.test>")
        assert (await client.command(f"BURL {url} LAST")).startswith("553 5.7.1")
        assert PASSWORD  # the same account signs in to IMAP and submission


ENCODED = (
    b"From: alice@example.org\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
    b"\r\nAAEC/w==\r\n--b--\r\n"
)


async def test_urlauth_binary_extended_urlfetch(submission: SubmissionServer) -> None:
    """RFC 5524: BINARY undoes the transfer encoding (literal8 when it holds NUL),
    BODYPARTSTRUCTURE describes the part, BODY is the part as stored."""
    imap = await submission.imap()
    assert b" URLAUTH=BINARY" in (await imap.ok("CAPABILITY")).untagged[0]
    await imap.append("INBOX", ENCODED)
    url = await genurlauth(
        imap, "imap://alice@localhost/INBOX/;uid=1/;section=2;urlauth=user+alice"
    )
    reply = await imap.ok(f'URLFETCH ("{url}" BINARY BODYPARTSTRUCTURE)')
    (line,) = reply.lines_starting(b"* URLFETCH ")
    assert line.endswith(b" BINARY ~{4}\r\n\x00\x01\x02\xff)"), line
    # As FETCH BODYSTRUCTURE gives it for that part (types as the message wrote them).
    assert b'(BODYPARTSTRUCTURE ("application" "octet-stream" NIL NIL NIL "base64" 8 ' in line
    reply = await imap.ok(f'URLFETCH ("{url}" BODY) ("{url}") "{url}"')
    (line,) = reply.lines_starting(b"* URLFETCH ")
    assert line.count(b"(BODY {8}\r\nAAEC/w==)") == 2 and line.endswith(b" {8}\r\nAAEC/w==")
    reply = await imap.ok(f'URLFETCH ("{forged(url)}" BINARY)')
    assert reply.untagged[-1].endswith(b" NIL")
    await imap.bad(f'URLFETCH ("{url}" BODY BINARY)')
    await imap.bad(f'URLFETCH ("{url}" FANCY)')
