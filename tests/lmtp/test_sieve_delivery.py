"""Sieve at delivery through LMTP (RFC 5228 and extensions; ARCHITECTURE decision 9):
every kind of action carried out after the script ends, a failing script keeps the mail,
reject refused at the protocol level (RFC 5429 §2.1.1), redirect and vacation sent
through the relay (a fake one here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from roost import sieve
from roost.config.sections import ListenAddress, SieveSettings
from roost.store.base import Store
from tests.lmtp.conftest import LmtpServer, lmtp_server
from tests.support.smtp_relay import FakeRelay, fake_relay

MESSAGE = (
    b"From: Sender <sender@example.net>\r\nTo: alice@example.org\r\n"
    b"Subject: hello there\r\nMessage-ID: <m1@example.net>\r\n\r\nHello.\r\n"
)


async def activate(store: Store, source: str, user: str = "alice", name: str = "main") -> None:
    account = await store.open_account(user)
    try:
        compiled = sieve.compile_script(source)
        await account.put_script(name, source, compiled.to_json(), sieve.FORMAT_VERSION)
        await account.set_active_script(name)
    finally:
        await account.close()


@asynccontextmanager
async def server_with_relay(
    refuse: bool = False, **sieve_settings: object
) -> AsyncIterator[tuple[LmtpServer, FakeRelay]]:
    async with fake_relay(refuse) as relay:
        settings = SieveSettings(relay=ListenAddress("127.0.0.1", relay.port), **sieve_settings)  # type: ignore[arg-type]
        async with lmtp_server(sieve=settings) as server:
            yield server, relay


async def deliver(
    server: LmtpServer, message: bytes = MESSAGE, sender: str = "sender@example.net"
) -> str:
    client = await server.connect()
    _, final = await client.send_message(sender, ["alice@example.org"], message)
    return final[0]


async def mailbox_names(server: LmtpServer, user: str = "alice") -> set[str]:
    account = await server.store.open_account(user)
    try:
        return {box.name for box in await account.list_mailboxes()}
    finally:
        await account.close()


async def test_fileinto_existing_folder_with_flags(lmtp: LmtpServer) -> None:
    await activate(
        lmtp.store,
        'require ["fileinto", "imap4flags"];\n'
        'if header :contains "subject" "hello" { fileinto :flags "\\\\Flagged" "Archive"; }',
    )
    assert (await deliver(lmtp)).startswith("250 2.0.0")
    assert await lmtp.messages() == []
    (stored,) = await lmtp.messages(mailbox="Archive")
    assert stored.endswith(MESSAGE)
    imap = await lmtp.imap(select="Archive")
    reply = await imap.ok("FETCH 1 FLAGS")
    assert b"\\Flagged" in reply.untagged[0]


async def test_fileinto_missing_folder_keeps_in_inbox(lmtp: LmtpServer) -> None:
    """RFC 5228 §4.1: a fileinto that cannot be done falls back to keep."""
    await activate(lmtp.store, 'require "fileinto"; fileinto "Nowhere";')
    assert (await deliver(lmtp)).startswith("250")
    assert len(await lmtp.messages()) == 1
    assert "Nowhere" not in await mailbox_names(lmtp)


async def test_fileinto_create(lmtp: LmtpServer) -> None:
    """RFC 5490 §3.2: ``:create`` makes the folder."""
    await activate(lmtp.store, 'require ["fileinto", "mailbox"]; fileinto :create "Lists/new";')
    assert (await deliver(lmtp)).startswith("250")
    assert len(await lmtp.messages(mailbox="Lists/new")) == 1
    assert await lmtp.messages() == []


async def test_fileinto_copy_also_keeps(lmtp: LmtpServer) -> None:
    """RFC 3894: ``:copy`` does not cancel the implicit keep."""
    await activate(lmtp.store, 'require ["fileinto", "copy"]; fileinto :copy "Archive";')
    assert (await deliver(lmtp)).startswith("250")
    assert len(await lmtp.messages()) == 1
    assert len(await lmtp.messages(mailbox="Archive")) == 1


async def test_discard(lmtp: LmtpServer) -> None:
    await activate(lmtp.store, "discard;")
    assert (await deliver(lmtp)).startswith("250")
    assert await lmtp.messages() == []


async def test_reject_is_550_for_that_recipient_only(lmtp: LmtpServer) -> None:
    """RFC 5429 §2.1.1: refused at the protocol level, one reply per recipient."""
    await activate(lmtp.store, 'require "reject"; reject "Go away\r\nnow";')
    client = await lmtp.connect()
    _, final = await client.send_message(
        "sender@example.net", ["alice@example.org", "bob@example.org"], MESSAGE
    )
    assert final[0] == "550 5.7.1 Go away now\r\n"
    assert final[1].startswith("250")
    assert await lmtp.messages() == []
    assert len(await lmtp.messages("bob")) == 1


async def test_ereject(lmtp: LmtpServer) -> None:
    await activate(lmtp.store, 'require "ereject"; ereject "no thanks";')
    assert (await deliver(lmtp)) == "550 5.7.1 no thanks\r\n"


async def test_header_edits_are_stored(lmtp: LmtpServer) -> None:
    """RFC 5293: the stored message carries the edits."""
    await activate(
        lmtp.store,
        'require "editheader"; addheader "X-Filtered" "yes"; deleteheader "Message-ID";',
    )
    assert (await deliver(lmtp)).startswith("250")
    (stored,) = await lmtp.messages()
    assert stored.startswith(b"X-Filtered: yes\r\n")
    assert b"Message-ID" not in stored


async def test_failing_script_keeps_in_inbox(
    lmtp: LmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 5228 §2.10.6: a run-time error means implicit keep, logged."""
    await activate(lmtp.store, 'require "include"; include :personal "missing";')
    assert (await deliver(lmtp)).startswith("250")
    assert len(await lmtp.messages()) == 1
    assert "missing" in caplog.text


async def test_script_including_itself_keeps_in_inbox(lmtp: LmtpServer) -> None:
    """RFC 6609 §3.2: recursive include is a run-time error: implicit keep."""
    await activate(lmtp.store, 'require ["include", "fileinto"]; fileinto "Junk"; include "main";')
    assert (await deliver(lmtp)).startswith("250")
    assert len(await lmtp.messages()) == 1
    assert await lmtp.messages(mailbox="Junk") == []


async def test_duplicate_tracked_across_deliveries(lmtp: LmtpServer) -> None:
    """RFC 7352: the second copy with the same Message-ID is discarded."""
    await activate(lmtp.store, 'require "duplicate"; if duplicate { discard; }')
    assert (await deliver(lmtp)).startswith("250")
    assert (await deliver(lmtp)).startswith("250")
    assert len(await lmtp.messages()) == 1


async def test_redirect_sent_through_relay() -> None:
    async with server_with_relay() as (server, relay):
        await activate(server.store, 'redirect "bob@elsewhere.example";')
        assert (await deliver(server)).startswith("250")
        (sent,) = relay.received
        assert sent.sender == "sender@example.net"
        assert sent.recipients == ["bob@elsewhere.example"]
        assert sent.data.startswith(b"X-Sieve-Redirected-By: <alice@example.org>\r\n")
        assert sent.data.endswith(MESSAGE)
        assert await server.messages() == []


async def test_redirect_loop_is_detected() -> None:
    """A message that already went through the address is not redirected there again."""
    async with server_with_relay() as (server, relay):
        await activate(server.store, 'redirect "bob@elsewhere.example";')
        looped = b"X-Sieve-Redirected-By: <bob@elsewhere.example>\r\n" + MESSAGE
        assert (await deliver(server, looped)).startswith("250")
        assert relay.received == []
        assert len(await server.messages()) == 1


async def test_redirect_failure_keeps_a_copy() -> None:
    async with server_with_relay(refuse=True) as (server, relay):
        await activate(server.store, 'redirect "bob@elsewhere.example";')
        assert (await deliver(server)).startswith("250")
        assert relay.received == []
        assert len(await server.messages()) == 1


async def test_vacation_once_per_sender() -> None:
    """RFC 5230: a reply from <>, Auto-Submitted: auto-replied, once per :days."""
    async with server_with_relay() as (server, relay):
        await activate(
            server.store,
            'require "vacation"; vacation :days 3 :subject "Away" "I am away.";',
        )
        assert (await deliver(server)).startswith("250")
        assert (await deliver(server)).startswith("250")
        (reply,) = relay.received
        assert reply.sender == ""
        assert reply.recipients == ["sender@example.net"]
        assert b"Auto-Submitted: auto-replied\r\n" in reply.data
        assert b"Subject: Away\r\n" in reply.data
        assert b"In-Reply-To: <m1@example.net>\r\n" in reply.data
        assert reply.data.endswith(b"I am away.\r\n")
        assert len(await server.messages()) == 2  # vacation keeps the mail
        other = MESSAGE.replace(b"sender@example.net", b"other@example.net")
        assert (await deliver(server, other, sender="other@example.net")).startswith("250")
        assert [r.recipients for r in relay.received][1] == ["other@example.net"]


async def test_vacation_not_to_lists() -> None:
    async with server_with_relay() as (server, relay):
        await activate(server.store, 'require "vacation"; vacation "away";')
        listed = b"List-Id: <l.example.net>\r\n" + MESSAGE
        assert (await deliver(server, listed)).startswith("250")
        assert relay.received == []


async def test_global_before_and_after(tmp_path: Path) -> None:
    """[sieve] before runs first; the user's script only while the mail is kept."""
    before = tmp_path / "before.sieve"
    before.write_text(
        'require ["fileinto", "spamtest", "relational", "comparator-i;ascii-numeric"];\n'
        'if spamtest :value "ge" :comparator "i;ascii-numeric" "6" { fileinto "Junk"; stop; }\n'
    )
    after = tmp_path / "after.sieve"
    after.write_text('require "fileinto"; fileinto "Archive";')
    settings = SieveSettings(
        before=(before,), after=(after,), spam_header="X-Spam-Score", spam_max_score=10.0
    )
    async with lmtp_server(sieve=settings) as server:
        await activate(server.store, "keep;")
        spam = b"X-Spam-Score: 9.5\r\n" + MESSAGE
        assert (await deliver(server, spam)).startswith("250")
        assert len(await server.messages(mailbox="Junk")) == 1
        assert (await deliver(server)).startswith("250")
        assert len(await server.messages(mailbox="Archive")) == 1
        assert len(await server.messages()) == 0  # "after" filed it, cancelling the keep


def test_own_addresses_cover_the_site_domains() -> None:
    """``roost deliver -d alice`` knows no domain: alice@ each [delivery] domain counts
    as hers, so a vacation reply still finds her among the recipients (RFC 5230 §4.5)."""
    from roost.delivery.filtering import own_addresses

    assert own_addresses("alice", "alice", ("example.org",)) == ["alice", "alice@example.org"]
    assert own_addresses("bob@example.net", "b+x@example.net") == [
        "b+x@example.net",
        "bob@example.net",
    ]
