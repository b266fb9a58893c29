"""SEARCH, UID SEARCH, ESEARCH, SEARCHRES, SORT, ESORT and THREAD on the wire: every
search key of RFC 9051 §6.4.4 and RFC 3501 §6.4.4, WITHIN (RFC 5032), MODSEQ (RFC 7162
§3.1.5), RETURN options (RFC 4731, RFC 5267), "$" (RFC 5182), SORT and THREAD (RFC
5256, RFC 5957), and the errors."""

from __future__ import annotations

import pytest

from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, Reply

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)


def raw(
    n: int,
    subject: str,
    *,
    sender: str,
    to: str,
    date: str | None,
    body: str,
    extra: str = "",
) -> bytes:
    date_line = f"Date: {date}\r\n" if date else ""
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n{date_line}"
        f"Message-ID: <{n}@test>\r\n{extra}\r\n{body}\r\n"
    ).encode()


# Five messages. 1-4 are appended before SELECT and re-SELECT (so not \Recent); 5 arrives
# while selected, without a date (INTERNALDATE now), and is the one \Recent message.
MESSAGES: list[tuple[str, str, bytes]] = [
    (
        "(\\Seen \\Answered)",
        '"06-Jan-2025 09:05:00 +0000"',
        raw(
            1,
            "Project kickoff",
            sender="Alice Example <alice@example.org>",
            to="bob@example.org",
            date="Mon, 06 Jan 2025 09:00:00 +0000",
            body="Let us start the project on Monday.",
            extra="Cc: Carol <carol@example.net>\r\nX-Priority: 1\r\n",
        ),
    ),
    (
        "(\\Flagged $Important)",
        '"07-Jan-2025 23:30:00 +0100"',
        raw(
            2,
            "Re: Project kickoff",
            sender="Bob <bob@example.org>",
            to="Alice <alice@example.org>",
            date="Tue, 07 Jan 2025 10:00:00 +0100",
            body="Sounds good. Budget attached.",
            extra="In-Reply-To: <1@test>\r\nReferences: <1@test>\r\nBcc: secret@example.com\r\n",
        ),
    ),
    (
        "(\\Deleted)",
        '"01-Feb-2025 12:00:00 +0000"',
        raw(
            3,
            "=?utf-8?q?Gr=C3=BC=C3=9Fe?=",
            sender="=?utf-8?q?J=C3=BCrgen?= <juergen@example.de>",
            to="alice@example.org",
            date="Sat, 01 Feb 2025 12:00:00 +0000",
            body="Sch=C3=B6ne Gr=C3=BC=C3=9Fe aus M=C3=BCnchen",
            extra="Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n",
        ),
    ),
    (
        "(\\Draft)",
        '"15-Mar-2025 08:00:00 +0000"',
        raw(
            4,
            "Lunch",
            sender="Carol <carol@example.net>",
            to="team@example.org",
            date=None,
            body="x" * 2000 + " pizza",
        ),
    ),
]
FIFTH = raw(
    5,
    "RE: project kickoff",
    sender="carol@example.net",
    to="alice@example.org",
    date="Wed, 08 Jan 2025 08:00:00 +0000",
    body="Count me in.",
    extra="References: <1@test> <2@test>\r\n",
)


async def append(client: ImapClient, flags: str, date: str, data: bytes) -> None:
    await client.ok(f"APPEND INBOX {flags} {date} {{{len(data)}+}}\r\n".encode() + data)


@pytest.fixture
async def client(imap: ImapServer) -> ImapClient:
    client = await imap.login()
    for flags, date, data in MESSAGES:
        await append(client, flags, date, data)
    await client.ok("SELECT INBOX")
    await client.ok("SELECT INBOX")  # the first SELECT took \Recent for 1-4
    await client.append("INBOX", FIFTH)
    await client.ok("NOOP")  # 5 is announced, and \Recent in this session
    return client


async def numbers(client: ImapClient, command: str) -> list[int]:
    """The numbers of the one ``* SEARCH`` (or ``* SORT``) line ``command`` answers,
    without its ``(MODSEQ n)``."""
    reply = await client.ok(command)
    lines = [u for u in reply.untagged if u.startswith((b"* SEARCH", b"* SORT"))]
    assert len(lines) == 1, reply.untagged
    return [int(n) for n in lines[0].split(b" (MODSEQ ")[0].split()[2:]]


KEYS: list[tuple[str, list[int]]] = [
    ("ALL", [1, 2, 3, 4, 5]),
    ("ANSWERED", [1]),
    ("UNANSWERED", [2, 3, 4, 5]),
    ("DELETED", [3]),
    ("UNDELETED", [1, 2, 4, 5]),
    ("DRAFT", [4]),
    ("UNDRAFT", [1, 2, 3, 5]),
    ("FLAGGED", [2]),
    ("UNFLAGGED", [1, 3, 4, 5]),
    ("SEEN", [1]),
    ("UNSEEN", [2, 3, 4, 5]),
    ("KEYWORD $important", [2]),
    ("KEYWORD $Nothing", []),
    ("UNKEYWORD $Important", [1, 3, 4, 5]),
    ("RECENT", [5]),
    ("NEW", [5]),
    ("OLD", [1, 2, 3, 4]),
    ("BCC secret", [2]),
    ("CC carol", [1]),
    ("FROM bob", [2]),
    ("FROM example.net", [4, 5]),
    ('FROM "Alice Example"', [1]),
    ("TO alice@example.org", [2, 3, 5]),
    ("TO team", [4]),
    ("SUBJECT kickoff", [1, 2, 5]),
    ('SUBJECT "re: project"', [2, 5]),
    ("SUBJECT lu", [4]),
    ("BODY budget", [2]),
    ("BODY pizza", [4]),
    ("BODY kickoff", []),
    ("TEXT kickoff", [1, 2, 5]),
    ("TEXT MONDAY", [1]),
    ('HEADER X-Priority ""', [1]),
    ("HEADER x-priority 1", [1]),
    ("HEADER In-Reply-To <1@test>", [2]),
    ("HEADER References 2@test", [5]),
    ("HEADER X-Missing x", []),
    ("BEFORE 7-Jan-2025", [1]),
    ("ON 7-Jan-2025", [2]),  # 23:30 +0100 is the 7th in its own zone
    ("SINCE 1-Feb-2025", [3, 4, 5]),
    ("SENTBEFORE 7-Jan-2025", [1]),
    ("SENTON 07-Jan-2025", [2]),
    ('SENTSINCE "1-Feb-2025"', [3, 4]),  # 4 has no Date: its INTERNALDATE counts
    ("SENTON 15-Mar-2025", [4]),
    ("LARGER 1500", [4]),
    ("SMALLER 1500", [1, 2, 3, 5]),
    ("OLDER 3600", [1, 2, 3, 4]),
    ("YOUNGER 3600", [5]),
    ("UID 2:4", [2, 3, 4]),
    ("UID 4:*", [4, 5]),
    ("2,4:5", [2, 4, 5]),
    ("*", [5]),
    ("NOT SEEN", [2, 3, 4, 5]),
    ("OR SEEN FLAGGED", [1, 2]),
    ("OR OR SEEN FLAGGED DRAFT", [1, 2, 4]),
    ("(SEEN ANSWERED)", [1]),
    ("NOT (SUBJECT kickoff UNDELETED)", [3, 4]),
    ("UNDELETED OR SUBJECT lunch BODY budget SINCE 1-Jan-2025", [2, 4]),
    ("MODSEQ 1", [1, 2, 3, 4, 5]),
]


async def test_every_search_key(client: ImapClient) -> None:
    """One session runs the whole table (a fresh server per key would cost seconds);
    every mismatch is reported at once."""
    wrong = {}
    for key, expected in KEYS:
        found = await numbers(client, f"SEARCH {key}")
        if found != expected:
            wrong[key] = f"found {found}, expected {expected}"
    assert not wrong, wrong


async def test_decoded_text_and_charsets(client: ImapClient) -> None:
    """Encoded words, quoted-printable and UTF-8 are undone; CHARSET UTF-8 strings may
    be literals; US-ASCII is accepted (RFC 9051 §6.4.4)."""
    utf8 = "münchen".encode()
    reply = await client.ok(b"SEARCH CHARSET UTF-8 BODY {%d}\r\n" % len(utf8) + utf8)
    assert reply.untagged == [b"* SEARCH 3"]
    reply = await client.ok('SEARCH CHARSET UTF-8 SUBJECT "Grüße" FROM "jürgen"'.encode())
    assert reply.untagged == [b"* SEARCH 3"]
    assert await numbers(client, "SEARCH CHARSET US-ASCII FROM juergen") == [3]
    assert await numbers(client, 'SEARCH CHARSET "utf-8" TEXT "SCHÖNE"') == [3]


async def test_uid_search(client: ImapClient) -> None:
    await client.ok("STORE 3 -FLAGS.SILENT (\\Deleted)")
    assert await numbers(client, "UID SEARCH ALL") == [1, 2, 3, 4, 5]
    await client.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    await client.ok("EXPUNGE")
    assert await numbers(client, "UID SEARCH ALL") == [1, 3, 4, 5]
    assert await numbers(client, "SEARCH ALL") == [1, 2, 3, 4]
    assert await numbers(client, "UID SEARCH SUBJECT kickoff") == [1, 5]
    assert await numbers(client, "SEARCH SUBJECT kickoff") == [1, 4]
    assert await numbers(client, "UID SEARCH 3") == [4]  # message 3 is UID 4
    assert await numbers(client, "SEARCH UID 4") == [3]


async def test_esearch_return_options(client: ImapClient) -> None:
    """RFC 4731: MIN, MAX, COUNT, ALL; RETURN () is ALL; empty results omit MIN, MAX,
    ALL; UID SEARCH answers UIDs, flagged as such."""

    async def esearch(command: str) -> bytes:
        reply = await client.ok(command)
        [line] = reply.untagged
        prefix = f'* ESEARCH (TAG "{reply.tag}")'.encode()
        assert line.startswith(prefix), line
        return line[len(prefix) :]

    assert await esearch("SEARCH RETURN (MIN COUNT) UNSEEN") == b" MIN 2 COUNT 4"
    assert await esearch("SEARCH RETURN (MAX) SUBJECT kickoff") == b" MAX 5"
    assert await esearch("SEARCH RETURN (ALL) UNSEEN") == b" ALL 2:5"
    assert await esearch("SEARCH RETURN () OR SEEN DRAFT") == b" ALL 1,4"
    assert await esearch("SEARCH RETURN (COUNT MIN MAX ALL) BODY nothing") == b" COUNT 0"
    assert await esearch("SEARCH RETURN (MIN) BODY nothing") == b""
    assert await esearch("UID SEARCH RETURN (MIN MAX COUNT) ALL") == b" UID MIN 1 MAX 5 COUNT 5"


async def test_searchres_save_and_dollar(client: ImapClient) -> None:
    """RFC 5182: RETURN (SAVE) keeps the result for "$" in any later command; alone it
    answers no ESEARCH; with MIN/MAX only those are kept."""
    reply = await client.ok("SEARCH RETURN (SAVE) SUBJECT kickoff")
    assert reply.untagged == []
    reply = await client.ok("FETCH $ (UID)")
    assert reply.untagged == [
        b"* 1 FETCH (UID 1)",
        b"* 2 FETCH (UID 2)",
        b"* 5 FETCH (UID 5)",
    ]
    assert await numbers(client, "SEARCH $ UNSEEN") == [2, 5]
    assert await numbers(client, "UID SEARCH UID $") == [1, 2, 5]
    await client.ok("STORE $ +FLAGS.SILENT (\\Flagged)")
    assert await numbers(client, "SEARCH FLAGGED") == [1, 2, 5]
    reply = await client.ok("SEARCH RETURN (SAVE MIN MAX) UNSEEN")
    assert reply.untagged == [f'* ESEARCH (TAG "{reply.tag}") MIN 2 MAX 5'.encode()]
    assert await numbers(client, "SEARCH $") == [2, 5]
    reply = await client.ok("UID SEARCH RETURN (SAVE COUNT MIN) UNSEEN")
    assert reply.untagged == [f'* ESEARCH (TAG "{reply.tag}") UID MIN 2 COUNT 4'.encode()]
    assert await numbers(client, "SEARCH $") == [2, 3, 4, 5]
    # A SAVE that fails leaves "$" empty.
    await client.no("SEARCH RETURN (SAVE) CHARSET BOGUS ALL")
    assert await numbers(client, "SEARCH $") == []


async def test_dollar_without_a_saved_result_is_empty(client: ImapClient) -> None:
    assert await numbers(client, "SEARCH $") == []
    reply = await client.ok("FETCH $ (UID)")
    assert reply.untagged == []


async def test_saved_result_ends_with_the_selection(client: ImapClient) -> None:
    await client.ok("SEARCH RETURN (SAVE) ALL")
    await client.ok("SELECT INBOX")
    assert await numbers(client, "SEARCH $") == []


async def test_modseq_search_enables_condstore(client: ImapClient) -> None:
    """RFC 7162 §3.1.5: the answer carries the highest MODSEQ of what matched, and the
    command enables CONDSTORE, so later FETCH responses carry MODSEQ."""
    reply = await client.ok("FETCH 2 (MODSEQ)")
    modseq = int(reply.untagged[0].split(b"MODSEQ (")[1].split(b")")[0])
    await client.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
    changed = int((await client.ok("FETCH 2 (MODSEQ)")).untagged[0].split(b"(")[-1][:-2])
    assert changed > modseq
    reply = await client.ok(f"SEARCH MODSEQ {changed}")
    assert reply.untagged == [f"* SEARCH 2 (MODSEQ {changed})".encode()]
    reply = await client.ok(f'SEARCH MODSEQ "/flags/\\\\seen" all {changed + 1}')
    assert reply.untagged == [b"* SEARCH"]
    reply = await client.ok(f"SEARCH RETURN (COUNT) MODSEQ {changed}")
    assert reply.untagged == [f'* ESEARCH (TAG "{reply.tag}") COUNT 1 MODSEQ {changed}'.encode()]
    reply = await client.ok("STORE 1 +FLAGS (\\Flagged)")
    assert b"MODSEQ (" in reply.untagged[0]


async def test_modseq_search_enables_condstore_in_a_fresh_session(imap: ImapServer) -> None:
    client = await imap.login()
    await append(client, "()", '"01-Jan-2025 00:00:00 +0000"', FIFTH)
    await client.ok("SELECT INBOX")
    reply = await client.ok("STORE 1 +FLAGS (\\Seen)")
    assert b"MODSEQ" not in reply.untagged[0]
    reply = await client.ok("SEARCH MODSEQ 0")
    assert reply.untagged[0].startswith(b"* SEARCH 1 (MODSEQ ")
    reply = await client.ok("STORE 1 -FLAGS (\\Seen)")
    assert b"MODSEQ (" in reply.untagged[0]


async def test_sort(client: ImapClient) -> None:
    """RFC 5256 §3 and RFC 5957: each key, REVERSE, several keys, ties by number."""
    assert await numbers(client, "SORT (ARRIVAL) UTF-8 ALL") == [1, 2, 3, 4, 5]
    assert await numbers(client, "SORT (REVERSE ARRIVAL) UTF-8 ALL") == [5, 4, 3, 2, 1]
    assert await numbers(client, "SORT (DATE) UTF-8 ALL") == [1, 2, 5, 3, 4]
    assert (await numbers(client, "SORT (SIZE) UTF-8 ALL"))[-1] == 4
    assert (await numbers(client, "SORT (REVERSE SIZE) UTF-8 ALL"))[0] == 4
    assert await numbers(client, "SORT (SUBJECT) UTF-8 ALL") == [3, 4, 1, 2, 5]
    assert await numbers(client, "SORT (SUBJECT REVERSE DATE) UTF-8 ALL") == [3, 4, 5, 2, 1]
    assert await numbers(client, "SORT (FROM) UTF-8 ALL") == [1, 2, 4, 5, 3]
    assert await numbers(client, "SORT (TO) UTF-8 ALL") == [2, 3, 5, 1, 4]
    assert await numbers(client, "SORT (CC) UTF-8 ALL") == [2, 3, 4, 5, 1]
    assert await numbers(client, "SORT (DISPLAYFROM) UTF-8 ALL") == [1, 2, 4, 5, 3]
    assert await numbers(client, "SORT (DISPLAYTO) UTF-8 ALL") == [2, 3, 5, 1, 4]
    assert await numbers(client, "SORT (SUBJECT) UTF-8 UNDELETED SUBJECT kickoff") == [1, 2, 5]
    assert await numbers(client, "UID SORT (REVERSE DATE) US-ASCII UID 1:3") == [3, 2, 1]


async def test_sort_by_number_after_expunge(client: ImapClient) -> None:
    await client.ok("EXPUNGE")  # message 3 (\Deleted) goes
    assert await numbers(client, "SORT (REVERSE ARRIVAL) UTF-8 ALL") == [4, 3, 2, 1]
    assert await numbers(client, "UID SORT (REVERSE ARRIVAL) UTF-8 ALL") == [5, 4, 2, 1]


async def test_esort(client: ImapClient) -> None:
    """RFC 5267 §3: MIN and MAX are the first and last in sort order; ALL in order."""
    reply = await client.ok("SORT RETURN (MIN MAX COUNT ALL) (REVERSE ARRIVAL) UTF-8 UNSEEN")
    assert reply.untagged == [
        f'* ESEARCH (TAG "{reply.tag}") MIN 5 MAX 2 ALL 5,4,3,2 COUNT 4'.encode()
    ]
    reply = await client.ok("UID SORT RETURN () (DATE) UTF-8 ALL")
    assert reply.untagged == [f'* ESEARCH (TAG "{reply.tag}") UID ALL 1:2,5,3:4'.encode()]


async def test_thread_references(client: ImapClient) -> None:
    """RFC 5256 §3 REFERENCES: 2 and 5 answer 1 (5 through 2)."""
    reply = await client.ok("THREAD REFERENCES UTF-8 ALL")
    assert reply.untagged == [b"* THREAD (1 2 5)(3)(4)"]
    reply = await client.ok("UID THREAD REFERENCES US-ASCII NOT UID 2")
    assert reply.untagged == [b"* THREAD (1 5)(3)(4)"]
    reply = await client.ok("THREAD REFERENCES UTF-8 BODY nothing")
    assert reply.untagged == [b"* THREAD"]


async def test_thread_orderedsubject(client: ImapClient) -> None:
    reply = await client.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")
    assert reply.untagged == [b"* THREAD (1 (2)(5))(3)(4)"]


async def test_capabilities(imap: ImapServer) -> None:
    client = await imap.login()
    [caps] = (await client.ok("CAPABILITY")).untagged
    for name in (
        b"ESEARCH",
        b"SEARCHRES",
        b"WITHIN",
        b"SORT",
        b"SORT=DISPLAY",
        b"ESORT",
        b"THREAD=ORDEREDSUBJECT",
        b"THREAD=REFERENCES",
    ):
        assert b" " + name + b" " in caps + b" ", name


# ---- errors ---------------------------------------------------------------------------


async def test_unknown_charset_is_badcharset(client: ImapClient) -> None:
    """RFC 9051 §6.4.4: NO [BADCHARSET (supported charsets)]."""
    for command in (
        "SEARCH CHARSET KOI8-R ALL",
        "SORT (DATE) ISO-8859-1 ALL",
        "THREAD REFERENCES Shift_JIS ALL",
    ):
        reply = await client.no(command)
        assert b"NO [BADCHARSET (UTF-8 US-ASCII)]" in reply.line


async def test_charset_after_utf8_accept_is_bad(imap: ImapServer) -> None:
    """RFC 6855 §3: CHARSET conflicts with UTF8=ACCEPT."""
    client = await imap.login()
    await client.ok("ENABLE UTF8=ACCEPT")
    await client.ok("SELECT INBOX")
    await client.bad("SEARCH CHARSET UTF-8 ALL")
    await client.ok('SEARCH SUBJECT "Grüße"'.encode())


@pytest.mark.parametrize(
    "command",
    [
        "SEARCH",
        "SEARCH BOGUS",
        "SEARCH (SEEN",
        "SEARCH ON 32-Jan-2025",
        "SEARCH RETURN (PARTIAL 0:5) ALL",
        "SEARCH OLDER 0",
        "SORT (DATE) ALL",
        "SORT (NAME) UTF-8 ALL",
        "THREAD WHATEVER UTF-8 ALL",
        "UID SEARCH UID",
    ],
)
async def test_bad_syntax_is_tagged_bad(client: ImapClient, command: str) -> None:
    reply = await client.bad(command)
    assert reply.line.startswith(reply.tag.encode() + b" BAD")


async def test_invalid_utf8_string_is_bad(client: ImapClient) -> None:
    await client.bad(b"SEARCH CHARSET UTF-8 BODY {2}\r\n\xff\xfe")


async def test_search_in_the_wrong_state(imap: ImapServer) -> None:
    client = await imap.connect()
    reply = await client.bad("SEARCH ALL")
    assert b"sign in" in reply.line
    await client.login("alice", "secret pass")
    reply = await client.bad("UID SEARCH ALL")
    assert b"no mailbox selected" in reply.line
    await client.bad("SORT (DATE) UTF-8 ALL")
    await client.bad("THREAD REFERENCES UTF-8 ALL")


# ---- interplay with other sessions --------------------------------------------------


async def test_no_expunge_during_search_by_number(imap: ImapServer, client: ImapClient) -> None:
    """RFC 9051 §7.5.1: SEARCH by number must not renumber; UID SEARCH may."""
    other = await imap.login()
    await other.ok("SELECT INBOX")
    await other.ok("EXPUNGE")  # message 3 (\Deleted)
    reply: Reply = await client.ok("SEARCH ALL")
    assert not any(line.endswith(b"EXPUNGE") for line in reply.untagged)
    assert b"* SEARCH 1 2 4 5" in reply.untagged  # 3 is gone but still numbered
    reply = await client.ok("UID SEARCH ALL")
    assert reply.untagged == [b"* SEARCH 1 2 4 5", b"* 3 EXPUNGE"]
    assert await numbers(client, "SEARCH ALL") == [1, 2, 3, 4]


async def test_new_messages_appear_only_once_announced(
    imap: ImapServer, client: ImapClient
) -> None:
    other = await imap.login()
    await other.append("INBOX", FIFTH)
    reply = await client.ok("SEARCH SUBJECT kickoff")
    # The search answers for the messages this session knows; then the sync point.
    assert reply.untagged[0] == b"* SEARCH 1 2 5"
    assert b"* 6 EXISTS" in reply.untagged
    assert await numbers(client, "SEARCH SUBJECT kickoff") == [1, 2, 5, 6]


async def test_thunderbird_quick_filter(client: ImapClient) -> None:
    """CLIENTS.md: Thunderbird adds UNDELETED; its quick filter ORs several fields."""
    command = (
        'UID SEARCH UNDELETED OR OR OR FROM "kickoff" TO "kickoff" CC "kickoff" SUBJECT "kickoff"'
    )
    assert await numbers(client, command) == [1, 2, 5]
    assert await numbers(client, "UID SEARCH UNDELETED SINCE 1-Jan-2025 BODY a") == [1, 2, 4]
