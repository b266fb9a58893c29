"""LMTP dialogues against a real server (RFC 2033, RFC 2920, RFC 3030, RFC 1870)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from roost.observability import metrics
from roost.store.errors import QuotaExceeded, StorageFull
from roost.store.sqlite.account import SqliteAccount
from roost.store.values import QuotaOverride
from tests.lmtp.conftest import LmtpServer

MESSAGE = b"From: sender@example.net\r\nSubject: hi\r\n\r\nHello.\r\n"


async def test_one_reply_per_recipient_in_rcpt_order(lmtp: LmtpServer) -> None:
    """RFC 2033 §4.2: after DATA, one reply per accepted RCPT, in order."""
    client = await lmtp.connect()
    rcpt, final = await client.send_message(
        "sender@example.net",
        ["alice@example.org", "bob@example.org", "nobody@example.org"],
        MESSAGE,
    )
    assert [r[:9] for r in rcpt] == ["250 2.1.5", "250 2.1.5", "550 5.1.1"]
    assert [r[:9] for r in final] == ["250 2.0.0", "250 2.0.0"]
    for user in ("alice", "bob"):
        (stored,) = await lmtp.messages(user)
        assert stored.endswith(MESSAGE)
        assert stored.startswith(b"Return-Path: <sender@example.net>\r\nReceived: from mta.example")
        assert b"Delivered-To" not in stored  # two recipients: one shared copy


async def test_trace_fields_with_one_recipient(lmtp: LmtpServer) -> None:
    client = await lmtp.connect()
    _, final = await client.send_message("s@example.net", ["Alice@Example.org"], MESSAGE)
    assert final[0].startswith("250 2.0.0")
    (stored,) = await lmtp.messages()
    header, _, rest = stored.partition(b"Received: ")
    assert header == b"Return-Path: <s@example.net>\r\nDelivered-To: Alice@Example.org\r\n"
    assert re.match(
        rb"from mta\.example \(\[127\.0\.0\.1\]\)\r\n\tby localhost with LMTP id [0-9A-F]+\r\n"
        rb"\tfor <Alice@Example\.org>; .+\r\n" + re.escape(MESSAGE) + rb"$",
        rest,
    ), rest


async def test_pipelined_transactions(lmtp: LmtpServer) -> None:
    """RFC 2920: a whole batch of commands at once gets its replies in order."""
    client = await lmtp.connect()
    batch = b""
    for n in range(3):
        body = MESSAGE.replace(b"hi", b"hi %d" % n)
        batch += b"MAIL FROM:<s@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"
        batch += body + b".\r\n"
    await client.send(batch + b"QUIT\r\n")
    codes = [(await client.reply())[:3] for _ in range(3 * 4 + 1)]
    assert codes == ["250", "250", "354", "250"] * 3 + ["221"]
    subjects = [m.split(b"Subject: ")[1][:4] for m in await lmtp.messages()]
    assert subjects == [b"hi 0", b"hi 1", b"hi 2"]


async def test_bdat(lmtp: LmtpServer) -> None:
    """RFC 3030: chunks add up; bare LFs in BDAT are stored as CRLF."""
    client = await lmtp.connect()
    assert (await client.command("MAIL FROM:<s@example.net>")).startswith("250")
    assert (await client.command("RCPT TO:<alice@example.org>")).startswith("250")
    assert (await client.command("RCPT TO:<bob@example.org>")).startswith("250")
    first, second = b"From: x@example.net\nSubject: b\r", b"\n\r\nBody\n"
    await client.send(b"BDAT %d\r\n" % len(first) + first)
    assert (await client.reply()).startswith("250")
    await client.send(b"BDAT %d LAST\r\n" % len(second) + second)
    assert (await client.reply()).startswith("250 2.0.0")
    assert (await client.reply()).startswith("250 2.0.0")
    (stored,) = await lmtp.messages()
    assert stored.endswith(b"\r\nFrom: x@example.net\r\nSubject: b\r\n\r\nBody\r\n")


async def test_bad_input_is_a_clean_5xx(lmtp: LmtpServer) -> None:
    client = await lmtp.connect()
    assert (await client.command("RCPT TO:<alice@example.org>")).startswith("503 5.5.1")
    assert (await client.command("MAIL FROM:<s@example.net>")).startswith("250")
    assert (await client.command("DATA")).startswith("503 5.5.1")  # no recipients
    assert (await client.command("RSET")).startswith("250")
    await client.send(b"X" * (2 * 1024 * 1024) + b"\r\n")
    assert (await client.reply()).startswith("500 5.5.2")
    assert (await client.command("NOOP")).startswith("250")
    # A message over SIZE: refused at MAIL when declared, and after DATA when not.
    size = lmtp.server.settings.lmtp.max_message_size
    reply = await client.command(f"MAIL FROM:<s@example.net> SIZE={size + 1}")
    assert reply.startswith("552 5.3.4")
    await client.send("MAIL FROM:<s@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
    assert [(await client.reply())[:3] for _ in range(3)] == ["250", "250", "354"]
    line = b"x" * 998 + b"\r\n"
    await client.send(line * (size // len(line) + 1) + b".\r\n")
    assert (await client.reply()).startswith("552 5.3.4")
    # The connection is still usable.
    _, final = await client.send_message("s@example.net", ["alice@example.org"], MESSAGE)
    assert final[0].startswith("250")
    assert len(await lmtp.messages()) == 1


async def test_bare_lf_in_data_is_stored_as_crlf(lmtp: LmtpServer) -> None:
    client = await lmtp.connect()
    _, final = await client.send_message(
        "s@example.net", ["alice@example.org"], b"Subject: lf\nX: y\r\n\r\nbody\nend\r\n"
    )
    assert final[0].startswith("250")
    (stored,) = await lmtp.messages()
    assert stored.endswith(b"Subject: lf\r\nX: y\r\n\r\nbody\r\nend\r\n")
    assert b"\n" not in stored.replace(b"\r\n", b"")


async def test_duplicate_rcpt_delivers_once(lmtp: LmtpServer) -> None:
    client = await lmtp.connect()
    rcpt, final = await client.send_message(
        "s@example.net", ["alice@example.org", "ALICE@example.org"], MESSAGE
    )
    assert [r[:3] for r in rcpt] == ["250", "250"]
    assert [r[:3] for r in final] == ["250", "250"]
    assert final[0] == final[1]
    assert len(await lmtp.messages()) == 1


async def test_subaddress_into_folder(lmtp: LmtpServer) -> None:
    account = await lmtp.store.open_account("alice")
    await account.create_mailbox("lists")
    await account.close()
    client = await lmtp.connect()
    for address in ("alice+lists@example.org", "alice+nofolder@example.org"):
        _, final = await client.send_message("s@example.net", [address], MESSAGE)
        assert final[0].startswith("250")
    assert len(await lmtp.messages(mailbox="lists")) == 1
    assert len(await lmtp.messages()) == 1


async def test_other_domain_is_unknown(lmtp: LmtpServer) -> None:
    client = await lmtp.connect()
    assert (await client.command("MAIL FROM:<>")).startswith("250")
    assert (await client.command("RCPT TO:<alice@example.com>")).startswith("550 5.1.1")


async def test_idle_session_is_told(lmtp: LmtpServer) -> None:
    imap = await lmtp.imap()
    tag = await imap.idle()
    client = await lmtp.connect()
    _, final = await client.send_message("s@example.net", ["alice@example.org"], MESSAGE)
    assert final[0].startswith("250")
    assert await imap.read_response() == b"* 1 EXISTS"
    await imap.done(tag)


async def test_notify_watchers_are_told(lmtp: LmtpServer) -> None:
    """RFC 5465: a session that selected another mailbox and asked NOTIFY for
    MessageNew in its personal mailboxes hears of an LMTP delivery to INBOX as a STATUS
    response (§5.1), during IDLE too; one that selected INBOX with NOTIFY on the selected
    mailbox gets EXISTS and the FETCH it asked for (§5.2)."""
    elsewhere = await lmtp.imap(select="Archive")  # a special folder made at creation
    await elsewhere.ok(
        "NOTIFY SET (selected (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge))"
    )
    tag = await elsewhere.idle()
    selected = await lmtp.imap(user="alice")
    await selected.ok("NOTIFY SET (selected (MessageNew (UID) MessageExpunge))")
    client = await lmtp.connect()
    _, final = await client.send_message("s@example.net", ["alice@example.org"], MESSAGE)
    assert final[0].startswith("250")
    line = await elsewhere.read_response()
    assert line.startswith(b"* STATUS INBOX (MESSAGES 1 UIDNEXT 2 "), line
    await elsewhere.done(tag)
    assert await selected.read_response() == b"* 1 EXISTS"
    assert await selected.read_response() == b"* 1 RECENT"
    assert await selected.read_response() == b"* 1 FETCH (UID 1)"


async def test_headers_byte_exact_over_imap(lmtp: LmtpServer) -> None:
    client = await lmtp.connect()
    _, final = await client.send_message("s@example.net", ["alice@example.org"], MESSAGE)
    assert final[0].startswith("250")
    (stored,) = await lmtp.messages()
    imap = await lmtp.imap()
    reply = await imap.ok("FETCH 1 BODY.PEEK[]")
    literal = b"{%d}\r\n" % len(stored) + stored
    assert literal in b"".join(reply.untagged), reply.untagged


async def test_big_message(lmtp: LmtpServer) -> None:
    """20 MB goes through the file spool and arrives whole."""
    client = await lmtp.connect()
    line = b"0123456789" * 7 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (20 * 1024 * 1024 // len(line))
    _, final = await client.send_message("s@example.net", ["alice@example.org"], body)
    assert final[0].startswith("250")
    (stored,) = await lmtp.messages()
    assert stored.endswith(body)
    assert not list((lmtp.data_dir / "spool").iterdir())  # the spool file is gone


@pytest.mark.parametrize(
    ("error", "expected"),
    [(QuotaExceeded("over quota"), "552 5.2.2"), (StorageFull("disk full"), "451 4.3.0")],
)
async def test_full_mailbox_among_others(
    lmtp: LmtpServer, monkeypatch: pytest.MonkeyPatch, error: Exception, expected: str
) -> None:
    """The issue's example: alice, bob and a full mailbox get 250, 250, 552 in that
    order; a full disk is 451 (try later), never a 5xx."""
    original = SqliteAccount.append

    async def append(self: SqliteAccount, mailbox: int | str, messages: Any) -> Any:
        if self.name == "carol":
            raise error
        return await original(self, mailbox, messages)

    monkeypatch.setattr(SqliteAccount, "append", append)
    client = await lmtp.connect()
    _, final = await client.send_message(
        "s@example.net", ["alice@example.org", "bob@example.org", "carol@example.org"], MESSAGE
    )
    assert [r[:9] for r in final] == ["250 2.0.0", "250 2.0.0", expected]


async def test_a_full_mailbox_is_refused_at_rcpt(lmtp: LmtpServer) -> None:
    """As Dovecot's LMTP does: a recipient whose quota has no room for the declared
    SIZE (RFC 1870) gets 552 5.2.2 at RCPT, so the MTA bounces without sending the
    message; the others are accepted."""
    await lmtp.store.set_quota_override("carol", QuotaOverride(storage=100, messages=None))
    client = await lmtp.connect()
    assert (await client.command("MAIL FROM:<s@example.net> SIZE=500")).startswith("250")
    assert (await client.command("RCPT TO:<alice@example.org>")).startswith("250")
    assert (await client.command("RCPT TO:<carol@example.org>")).startswith("552 5.2.2")
    await client.command("RSET")
    assert (await client.command("MAIL FROM:<s@example.net> SIZE=50")).startswith("250")
    assert (await client.command("RCPT TO:<carol@example.org>")).startswith("250")


async def test_each_delivery_is_logged_and_counted(
    lmtp: LmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 16: one log line per delivery (queue id, sender, recipient, folder, size,
    ms, result), the queue id the one in the Received: line, and the deliveries metric
    counted by result."""
    delivered = metrics.DELIVERIES.labels("ok")
    before = delivered._value.get()  # type: ignore[attr-defined]
    caplog.set_level(logging.INFO, logger="roost.delivery")
    client = await lmtp.connect()
    _, final = await client.send_message(
        "s@example.net", ["alice+lists@example.org", "bob@example.org"], MESSAGE
    )
    assert [reply[:3] for reply in final] == ["250", "250"]
    lines = {
        record.account: record  # type: ignore[attr-defined]
        for record in caplog.records
        if record.getMessage().startswith("delivery ")
    }
    assert sorted(lines) == ["alice", "bob"]
    (stored,) = await lmtp.messages()
    found = re.search(rb"\r\n\tid ([0-9A-F]+)", stored) or re.search(rb" id ([0-9A-F]+)", stored)
    assert found is not None, stored[:400]
    queue_id = found.group(1).decode()
    text = lines["alice"].getMessage()
    assert text.startswith(
        f"delivery queue={queue_id} from=<s@example.net> to=<alice+lists@example.org>"
        f" account=alice folder=INBOX size={len(stored)} ms="
    ), text
    assert text.endswith(" result=ok Saved as UID 1"), text
    record = lines["alice"]
    assert record.queue_id == queue_id  # type: ignore[attr-defined]
    assert record.result == "ok" and isinstance(record.ms, int)  # type: ignore[attr-defined]
    after = delivered._value.get()  # type: ignore[attr-defined]
    assert after - before == 2
