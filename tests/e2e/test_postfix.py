"""Debian's Postfix in front of Roost, for real: a private Postfix (tests/support/
postfix.py) takes mail from swaks over SMTP and hands it to Roost over LMTP. Every
message is then read back over IMAP byte for byte, with Roost's Return-Path (and
Delivered-To where there is one recipient) on top of what the sender wrote.

Covered: plain, 8-bit, UTF-8 headers with SMTPUTF8 (smtplib: swaks cannot ask for it),
a 20 MB message, one message to three recipients, an unknown recipient (Roost says
550 5.1.1 at RCPT, Postfix bounces, nothing is stored), and a message sent while Roost
is stopped (Postfix queues it; once Roost is back and the queue is flushed, it arrives
once). Waiting is a bounded loop of short polls of the mailbox, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
import smtplib
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from roost.auth.authenticator import StoreAuthenticator
from roost.auth.passwords import hash_password
from roost.auth.throttle import LoginThrottle, ThrottlePolicy
from roost.config import AuthSettings, DeliverySettings, Settings
from roost.runtime.app import Server
from roost.store.sqlite import SqliteStore
from tests.conftest import FAST_HASHER, PASSWORD
from tests.support.imap_client import ImapClient
from tests.support.postfix import PrivatePostfix, missing

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

SENDER = "sender@example.net"
POLL = 0.05
POLL_ROUNDS = 1200  # 60 s at most for any one arrival


def make_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="pf-", dir="/tmp"))
    root.chmod(0o755)  # Postfix's daemons run as "postfix" and must reach their queue
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_roost(store: SqliteStore, data_dir: Path, lmtp_port: int) -> Server:
    settings = Settings.for_dev(
        data_dir, ["127.0.0.1:0"], [], [], [], lmtp_listen=[f"127.0.0.1:{lmtp_port}"]
    )
    settings = settings.replace(
        auth=AuthSettings.without_delays(),
        imap=dataclasses.replace(settings.imap, starttls=False),
        delivery=DeliverySettings(domains=("example.org",), strip_domain=True),
    )
    authenticator = StoreAuthenticator(
        store, LoginThrottle(ThrottlePolicy.disabled()), hasher=FAST_HASHER, rehash=False
    )
    server = Server(settings, store=store, authenticator=authenticator)
    await server.start()
    return server


async def swaks(smtp_port: int, to: str, data: bytes) -> None:
    process = await asyncio.create_subprocess_exec(
        "swaks", "--server", "127.0.0.1", "--port", str(smtp_port), "--from", SENDER,
        "--to", to, "--data", "-", "--helo", "client.test",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    # swaks ends the data with CRLF before the final dot itself.
    out, _ = await process.communicate(data.removesuffix(b"\r\n"))
    assert process.returncode == 0, out.decode(errors="replace")[-2000:]


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(POLL_ROUNDS):
        if await condition():
            return
        await asyncio.sleep(POLL)
    raise AssertionError(f"timed out waiting for {what}")


class Mailboxes:
    """IMAP sessions of every account, to poll counts and read messages back."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.sessions: dict[str, ImapClient] = {}

    async def session(self, user: str) -> ImapClient:
        if user not in self.sessions:
            client = await ImapClient.connect("127.0.0.1", self.server.address()[1])
            await client.login(user, PASSWORD)
            self.sessions[user] = client
        return self.sessions[user]

    async def count(self, user: str) -> int:
        reply = await (await self.session(user)).ok("STATUS INBOX (MESSAGES)")
        found = re.search(rb"MESSAGES (\d+)", b"".join(reply.untagged))
        assert found is not None
        return int(found.group(1))

    async def wait_for(self, user: str, count: int) -> None:
        async def arrived() -> bool:
            return await self.count(user) >= count

        await until(arrived, f"{user}'s message {count}")
        assert await self.count(user) == count

    async def message(self, user: str, number: int) -> bytes:
        client = await self.session(user)
        await client.ok("EXAMINE INBOX")
        reply = await client.ok(f"FETCH {number} BODY.PEEK[]")
        data = b"".join(reply.untagged)
        found = re.search(rb"BODY\[\] \{(\d+)\}\r\n", data)
        assert found is not None, data[:300]
        return data[found.end() : found.end() + int(found.group(1))]

    async def close(self) -> None:
        for client in self.sessions.values():
            await client.close()
        self.sessions.clear()


def check_delivered(stored: bytes, sent: bytes, *, sender: str, recipient: str | None) -> None:
    expected_top = f"Return-Path: <{sender}>\r\n".encode()
    if recipient is not None:
        expected_top += f"Delivered-To: {recipient}\r\n".encode()
    expected_top += b"Received: from mx.test"
    assert stored.startswith(expected_top), stored[:400]
    assert stored.endswith(sent), (stored[-300:], sent[-300:])
    # Postfix's own Received line sits between Roost's and the sender's first line.
    assert stored.count(b"\r\nReceived: from client.test") == 1


async def test_postfix_delivers_through_lmtp() -> None:
    root = make_root()
    smtp_port, lmtp_port = free_port(), free_port()
    store = await SqliteStore.open(root / "store", durable=False)
    for user in ("alice", "bob", "carol"):
        await store.create_account(user, hash_password(PASSWORD, hasher=FAST_HASHER))
    server = await start_roost(store, root / "roost", lmtp_port)
    mailboxes = Mailboxes(server)
    postfix = PrivatePostfix(root / "postfix", smtp_port, lmtp_port)
    (root / "postfix").mkdir()
    try:
        postfix.configure()
        postfix.start()

        plain = b"From: Sender <sender@example.net>\r\nTo: alice@example.org\r\n"
        plain += b"Subject: plain\r\nMessage-ID: <plain@example.net>\r\n"
        plain += b"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n\r\nHello, Alice.\r\n"
        await swaks(smtp_port, "alice@example.org", plain)
        await mailboxes.wait_for("alice", 1)
        check_delivered(
            await mailboxes.message("alice", 1), plain, sender=SENDER,
            recipient="alice@example.org",
        )  # fmt: skip

        eight_bit = plain.replace(b"Subject: plain", b"Subject: 8bit").replace(
            b"Hello, Alice.", "Grüße, Ålice — ça va?".encode()
        )
        eight_bit = eight_bit.replace(
            b"\r\n\r\n", b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n", 1
        )  # fmt: skip
        await swaks(smtp_port, "alice@example.org", eight_bit)
        await mailboxes.wait_for("alice", 2)
        check_delivered(
            await mailboxes.message("alice", 2), eight_bit, sender=SENDER,
            recipient="alice@example.org",
        )  # fmt: skip

        utf8_sender = "jörg@example.net"
        utf8 = "From: Jörg <jörg@example.net>\r\nTo: alice@example.org\r\n"
        utf8 += "Subject: Grüße aus Köln\r\nMessage-ID: <utf8@example.net>\r\n"
        utf8 += "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n\r\nHallo!\r\n"
        utf8_bytes = utf8.encode()

        def send_utf8() -> None:
            with smtplib.SMTP("127.0.0.1", smtp_port, local_hostname="client.test") as smtp:
                smtp.sendmail(
                    utf8_sender, ["alice@example.org"], utf8_bytes,
                    mail_options=["SMTPUTF8", "BODY=8BITMIME"],
                )  # fmt: skip

        await asyncio.to_thread(send_utf8)
        await mailboxes.wait_for("alice", 3)
        stored = await mailboxes.message("alice", 3)
        check_delivered(stored, utf8_bytes, sender=utf8_sender, recipient="alice@example.org")
        assert b" with UTF8LMTP id " in stored

        line = b"The quick brown fox jumps over the lazy dog, again and again.\r\n"
        big = b"From: sender@example.net\r\nTo: bob@example.org\r\nSubject: big\r\n"
        big += b"Message-ID: <big@example.net>\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n\r\n"
        big += line * (20 * 1024 * 1024 // len(line))
        await swaks(smtp_port, "bob@example.org", big)
        await mailboxes.wait_for("bob", 1)
        check_delivered(
            await mailboxes.message("bob", 1), big, sender=SENDER, recipient="bob@example.org"
        )

        three = plain.replace(b"Subject: plain", b"Subject: three")
        await swaks(smtp_port, "alice@example.org,bob@example.org,carol@example.org", three)
        for user, count in (("alice", 4), ("bob", 2), ("carol", 1)):
            await mailboxes.wait_for(user, count)
            check_delivered(
                await mailboxes.message(user, count), three, sender=SENDER, recipient=None
            )

        unknown = plain.replace(b"Subject: plain", b"Subject: unknown")
        await swaks(smtp_port, "nobody@example.org", unknown)

        async def bounced() -> bool:
            return "nobody@example.org" in postfix.log() and "status=bounced" in postfix.log()

        await until(bounced, "Postfix to bounce nobody@example.org")
        assert re.search(r"to=<nobody@example\.org>.*said: 550 5\.1\.1", postfix.log())
        assert [await mailboxes.count(u) for u in ("alice", "bob", "carol")] == [4, 2, 1]

        # Roost stopped: Postfix queues the message, and delivers it once Roost is back.
        await mailboxes.close()
        await server.shutdown()
        queued = plain.replace(b"Subject: plain", b"Subject: queued")
        await swaks(smtp_port, "carol@example.org", queued)

        async def deferred() -> bool:
            return "status=deferred" in postfix.log()

        await until(deferred, "Postfix to defer the message")
        server = await start_roost(store, root / "roost", lmtp_port)
        mailboxes = Mailboxes(server)
        postfix.flush()
        await mailboxes.wait_for("carol", 2)
        check_delivered(
            await mailboxes.message("carol", 2), queued, sender=SENDER,
            recipient="carol@example.org",
        )  # fmt: skip

        async def queue_empty() -> bool:
            return "Mail queue is empty" in postfix.queue()

        await until(queue_empty, "Postfix's queue to empty")
        assert await mailboxes.count("carol") == 2  # once
    finally:
        postfix.stop()
        await mailboxes.close()
        await server.shutdown()
        await store.close()
        shutil.rmtree(root, ignore_errors=True)
