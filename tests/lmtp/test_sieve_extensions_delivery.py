"""Each Sieve extension Roost announces, exercised through a real LMTP delivery: the
script is the account's active one, the message arrives over LMTP, and the test looks
where it was filed (the engine's own unit tests are in tests/unit/sieve). Every script
files into a folder of its own with ``fileinto :create`` (RFC 5490 §3.2), so a test
that does not match leaves the message in INBOX and fails."""

from __future__ import annotations

import pytest

from roost.config.sections import SieveSettings
from tests.lmtp.conftest import lmtp_server
from tests.lmtp.test_sieve_delivery import activate, server_with_relay

MESSAGE = (
    b"Received: from mx2.example.net by mail.example.org; Mon, 7 Dec 2026 10:00:05 +0100\r\n"
    b"Received: from second.example.net by mx2.example.net; Mon, 7 Dec 2026 10:00:01 +0100\r\n"
    b"From: Sender <sender@example.net>\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: hello there\r\n"
    b"Date: Mon, 7 Dec 2026 10:00:00 +0100\r\n"
    b"Message-ID: <ext@example.net>\r\n"
    b"X-Spam-Score: 12.5\r\n"
    b"X-Virus-Score: 5\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"The invoice is attached, with the numbers for the quarter.\r\n"
)

REQUIRE = 'require ["fileinto", "mailbox", {extensions}];\n'

# (extension under test, the rest of the require list, the test, the folder it files to)
CASES = [
    # RFC 5228 §5.4: the envelope test, with the LMTP MAIL FROM.
    ("envelope", '"envelope"', 'envelope :is "from" "sender@example.net"', "Envelope"),
    # RFC 5228 §2.4.2.4: "${hex:...}" in a string is "hello".
    (
        "encoded-character",
        '"encoded-character"',
        'header :contains "subject" "${hex:68 65 6c 6c 6f}"',
        "Encoded",
    ),
    # RFC 5173: the body test on the decoded text.
    ("body", '"body"', 'body :text :contains "invoice"', "Body"),
    # RFC 5231: relational with the i;ascii-numeric comparator.
    (
        "relational",
        '"relational", "comparator-i;ascii-numeric"',
        'header :value "ge" :comparator "i;ascii-numeric" "x-virus-score" "4"',
        "Relational",
    ),
    # RFC 5233: the detail of the envelope recipient (alice+lists@...).
    ("subaddress", '"envelope", "subaddress"', 'envelope :detail "to" "lists"', "Detail"),
    # RFC 5260 §4: the date test on the Date header.
    (
        "date",
        '"date", "relational"',
        'date :value "ge" :originalzone "date" "year" "2026"',
        "Dated",
    ),
    # RFC 5260 §6: :index 1 :last is the last (oldest) Received field; counting from
    # the top would depend on the Received: line delivery itself puts on top.
    (
        "index",
        '"index"',
        'header :index 1 :last :contains "received" "second.example.net"',
        "Oldest",
    ),
    # RFC 5235: spamtest 10 is "certainly spam" (12.5 over a maximum of 15: 9, so :value ge 8).
    (
        "spamtest",
        '"spamtest", "relational", "comparator-i;ascii-numeric"',
        'spamtest :value "ge" :comparator "i;ascii-numeric" "8"',
        "Junk",
    ),
    # RFC 5235 §3.3: virustest 5 is "known virus" (5 of a maximum of 5).
    (
        "virustest",
        '"virustest", "relational", "comparator-i;ascii-numeric"',
        'virustest :value "eq" :comparator "i;ascii-numeric" "5"',
        "Quarantine",
    ),
]


@pytest.mark.parametrize(
    ("extension", "extensions", "test", "folder"), CASES, ids=[c[0] for c in CASES]
)
async def test_extension_files_the_delivered_message(
    extension: str, extensions: str, test: str, folder: str
) -> None:
    settings = SieveSettings(
        spam_header="X-Spam-Score",
        spam_max_score=15.0,
        virus_header="X-Virus-Score",
        virus_max_score=5.0,
    )
    async with lmtp_server(sieve=settings) as server:
        script = (
            REQUIRE.format(extensions=extensions) + f'if {test} {{ fileinto :create "{folder}"; }}'
        )
        await activate(server.store, script)
        client = await server.connect()
        _, final = await client.send_message(
            "sender@example.net", ["alice+lists@example.org"], MESSAGE
        )
        assert final[0].startswith("250"), final
        assert await server.messages() == [], f"{extension}: the test did not match"
        (stored,) = await server.messages(mailbox=folder)
        assert stored.endswith(MESSAGE)


async def test_variables_name_the_folder() -> None:
    """RFC 5229: a match variable of :matches (§3.2) and ``set`` with a modifier (§4)
    build the folder's name."""
    async with lmtp_server() as server:
        await activate(
            server.store,
            'require ["fileinto", "mailbox", "variables"];\n'
            'if header :matches "subject" "* there" { set :upperfirst "word" "${1}"; }\n'
            'fileinto :create "Lists/${word}";',
        )
        client = await server.connect()
        _, final = await client.send_message("sender@example.net", ["alice@example.org"], MESSAGE)
        assert final[0].startswith("250")
        assert len(await server.messages(mailbox="Lists/Hello")) == 1
        assert await server.messages() == []


async def test_vacation_seconds_replies_through_the_relay() -> None:
    """RFC 6131: ``:seconds`` instead of ``:days``; the reply is sent once within it."""
    async with server_with_relay() as (server, relay):
        await activate(
            server.store,
            'require "vacation-seconds"; vacation :seconds 3600 :subject "Away" "Back soon.";',
        )
        client = await server.connect()
        for _ in range(2):
            _, final = await client.send_message(
                "sender@example.net", ["alice@example.org"], MESSAGE
            )
            assert final[0].startswith("250")
        (reply,) = relay.received
        assert reply.recipients == ["sender@example.net"]
        assert b"Subject: Away\r\n" in reply.data
        assert len(await server.messages()) == 2
