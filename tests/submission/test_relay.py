"""What the submitting client is told when the relay misbehaves: Roost does not queue,
so every transient trouble is 451 4.4.1 (RFC 3463 "no answer from host") and the
client retries; a relay's permanent refusal is passed through."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from roost.config.submission import RelayTarget
from roost.runtime.tls import ensure_self_signed
from roost.smtp import MailParams, RcptParams
from roost.submission.relay import RelayEnvelope, relay_message
from tests.submission.conftest import message, submission_server
from tests.support.fake_relay import EXTENSIONS, FakeRelay


async def _send_one(
    fake: FakeRelay | None = None, **settings: Any
) -> tuple[str, FakeRelay, list[bytes]]:
    fake = fake or FakeRelay()
    async with submission_server(fake, **settings) as server:
        client = await server.signed_in()
        reply = await client.send_message("alice@example.org", ["carol@elsewhere.test"], message())
        # The connection goes on: a second message after a failure is judged afresh.
        assert (await client.command("NOOP")).startswith("250")
        return reply, fake, await server.mailbox("alice", "Sent")


async def test_relay_down() -> None:
    closed = FakeRelay()
    port = await closed.start()
    await closed.stop()  # nothing listens there now
    reply, _, sent = await _send_one(relay=RelayTarget("127.0.0.1", port))
    assert reply.startswith("451 4.4.1"), reply
    assert sent == []  # nothing sent, nothing filed


async def test_relay_refuses_recipient_permanently() -> None:
    relay = FakeRelay(rcpt_replies={"carol@elsewhere.test": "550 5.1.1 No such user"})
    reply, relay, sent = await _send_one(relay)
    assert reply.startswith("550 5.1.1 Relay refused <carol@elsewhere.test>: No such user")
    assert relay.messages == [] and sent == []


async def test_relay_refuses_temporarily() -> None:
    relay = FakeRelay(final_reply="452 4.3.1 Insufficient system storage")
    reply, _, sent = await _send_one(relay)
    assert reply.startswith("451 4.4.1"), reply
    assert "452 4.3.1" in reply and sent == []


async def test_relay_refuses_message_permanently() -> None:
    relay = FakeRelay(final_reply="554 5.7.1 Spam")
    reply, _, sent = await _send_one(relay)
    assert reply.startswith("554 5.7.1 Relay refused the message: Spam"), reply
    assert sent == []


async def test_relay_times_out() -> None:
    relay = FakeRelay(stall_after_data=True)
    reply, _, sent = await _send_one(relay, relay_timeout=0.3)
    assert reply.startswith("451 4.4.1"), reply
    assert "timed out" in reply and sent == []


async def test_relay_closes_mid_data() -> None:
    for extensions in (EXTENSIONS, ("PIPELINING", "8BITMIME")):  # BDAT, then DATA
        relay = FakeRelay(close_mid_data=True, extensions=extensions)
        reply, _, sent = await _send_one(relay)
        assert reply.startswith("451 4.4.1"), reply
        assert sent == []


async def test_plain_data_without_chunking_is_dot_stuffed() -> None:
    relay = FakeRelay(extensions=("8BITMIME",))  # no PIPELINING, no CHUNKING
    reply, relay, sent = await _send_one(relay)
    assert reply.startswith("250 "), reply
    assert relay.messages[0].data.endswith(message())
    assert "DATA" in relay.messages[0].commands
    assert len(sent) == 1


async def test_relay_auth_and_dsn_passed_through() -> None:
    relay = FakeRelay(auth=("roost", "relay secret"))
    port = await relay.start()
    target = RelayTarget("127.0.0.1", port, False, "roost", "relay secret")
    async with submission_server(relay, relay=target) as server:
        client = await server.signed_in()
        await client.command("MAIL FROM:<alice@example.org> RET=HDRS ENVID=abc")
        await client.command("RCPT TO:<x@y.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;x@y.test")
        assert (await client.command("DATA")).startswith("354")
        await client.send(message() + b".\r\n")
        assert (await client.reply()).startswith("250 ")
        (relayed,) = relay.messages
        assert "RET=HDRS" in relayed.mail and "ENVID=abc" in relayed.mail
        assert relayed.rcpts == ["RCPT TO:<x@y.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;x@y.test"]


async def test_wrong_relay_credentials_are_a_temporary_failure(
    request: pytest.FixtureRequest,
) -> None:
    request.keywords["allow_server_errors"] = True  # a misconfiguration: logged as error
    relay = FakeRelay(auth=("roost", "relay secret"))
    port = await relay.start()
    target = RelayTarget("127.0.0.1", port, False, "roost", "wrong")
    async with submission_server(relay, relay=target) as server:
        client = await server.signed_in()
        reply = await client.send_message("alice@example.org", ["x@y.test"], message())
        assert reply.startswith("451 4.4.1"), reply


def test_relay_url() -> None:
    target = RelayTarget.parse("smtps://user:p%40ss@relay.example:4650")
    assert (target.host, target.port, target.tls) == ("relay.example", 4650, True)
    assert (target.username, target.password) == ("user", "p@ss")
    assert str(target) == "smtps://user@relay.example:4650"  # no password in logs
    assert RelayTarget.parse("smtp://127.0.0.1:10025") == RelayTarget("127.0.0.1", 10025)
    for bad in ("http://x:1", "smtp://x:1/path", "smtp://user@x:1", "smtp://:25"):
        try:
            RelayTarget.parse(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


async def test_concurrent_submissions_each_get_their_verdict() -> None:
    async with submission_server() as server:
        clients = [await server.signed_in() for _ in range(5)]
        replies = await asyncio.gather(
            *(c.send_message("alice@example.org", ["x@y.test"], message()) for c in clients)
        )
        assert all(r.startswith("250 ") for r in replies)
        assert len(server.relay.messages) == 5


def _relay_tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A relay's server context with a self-signed certificate for 127.0.0.1, and a
    client context that trusts exactly that certificate."""
    cert, key = ensure_self_signed(tmp_path / "relay-tls")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


async def test_smtps_relay_over_implicit_tls(tmp_path: Path) -> None:
    """``smtps://`` (RFC 8314 §3.3): the relay is spoken to over TLS from the first
    byte, its certificate verified, the message passed through whole."""
    server_tls, client_tls = _relay_tls(tmp_path)
    relay = FakeRelay(tls=server_tls)
    port = await relay.start()
    try:
        envelope = RelayEnvelope(
            "alice@example.org", MailParams(), (("carol@elsewhere.test", RcptParams()),)
        )
        data = message()

        async def content() -> AsyncIterator[bytes]:
            yield data

        reply = await relay_message(
            RelayTarget("127.0.0.1", port, True),
            envelope,
            content(),
            len(data),
            helo_name="mail.example.org",
            reply_timeout=5.0,
            tls_context=client_tls,
        )
        assert reply.code == 250, reply
        (relayed,) = relay.messages
        assert relayed.data == data
    finally:
        await relay.stop()


async def test_smtps_relay_with_an_untrusted_certificate_is_451(tmp_path: Path) -> None:
    """The relay's certificate is verified against the system's CAs by default: a
    self-signed one is refused, and the client is told to retry, nothing relayed."""
    server_tls, _ = _relay_tls(tmp_path)
    relay = FakeRelay(tls=server_tls)
    port = await relay.start()
    reply, _, sent = await _send_one(relay, relay=RelayTarget("127.0.0.1", port, True))
    assert reply.startswith("451 4.4.1"), reply
    assert relay.messages == [] and sent == []


async def test_smtputf8_message_is_relayed_as_it_came() -> None:
    """RFC 6531: an internationalised address and UTF-8 header fields go to the relay
    byte for byte, with SMTPUTF8 on its MAIL FROM, and the Sent copy is the same."""
    relay = FakeRelay()
    async with submission_server(relay) as server:
        client = await server.signed_in()
        body = (
            "From: Alice <alice@example.org>\r\nTo: José <josé@exämple.test>\r\n"
            "Subject: Grüße aus Köln\r\nMessage-ID: <u8@example.org>\r\n\r\nÇa va ?\r\n"
        ).encode()
        reply = await client.command("MAIL FROM:<alice@example.org> SMTPUTF8 BODY=8BITMIME")
        assert reply.startswith("250"), reply
        assert (await client.command("RCPT TO:<josé@exämple.test>")).startswith("250")
        assert (await client.command("DATA")).startswith("354")
        await client.send(body + b".\r\n")
        assert (await client.reply()).startswith("250 ")
        (relayed,) = relay.messages
        assert "SMTPUTF8" in relayed.mail
        assert relayed.rcpts[0].startswith("RCPT TO:<josé@exämple.test>")
        assert relayed.data.endswith(body)
        (sent,) = await server.mailbox("alice", "Sent")
        assert sent.endswith(body)
