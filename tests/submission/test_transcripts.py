"""The submission dialogue (RFC 6409, RFC 4954, RFC 3207) against a real server."""

from __future__ import annotations

import base64

from tests.conftest import PASSWORD
from tests.submission.conftest import SubmissionServer, message, submission_server


async def test_happy_path_relays_with_received_and_files_sent(
    submission: SubmissionServer,
) -> None:
    client = await submission.signed_in()
    reply = await client.send_message("alice@example.org", ["carol@elsewhere.test"], message())
    assert reply.startswith("250 2.0.0 Sent: Ok: queued as FAKE1"), reply
    (relayed,) = submission.relay.messages
    assert relayed.mail.startswith("MAIL FROM:<alice@example.org>")
    assert relayed.rcpts == ["RCPT TO:<carol@elsewhere.test>"]
    assert relayed.data.startswith(b"Received: from client.example ([127.0.0.1])\r\n")
    assert b"with ESMTPA" in relayed.data and b"for <carol@elsewhere.test>" in relayed.data
    assert relayed.data.endswith(message())  # dot-stuffing undone both ways
    (sent,) = await submission.mailbox("alice", "Sent")
    assert sent == message()  # the copy is what the client sent, without our trace


async def test_ehlo_advertises_submission_extensions(submission: SubmissionServer) -> None:
    client = await submission.connect()
    reply = await client.command("EHLO client.example")
    for keyword in ("SIZE 52428800", "PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING"):
        assert f"250-{keyword}\r\n" in reply or f"250 {keyword}\r\n" in reply, reply
    assert "AUTH PLAIN LOGIN SCRAM-SHA-256" in reply
    assert "STARTTLS" in reply


async def test_mail_before_auth_is_refused(submission: SubmissionServer) -> None:
    """RFC 4954 §6: 530 5.7.0 until the client has authenticated."""
    client = await submission.connect()
    await client.command("EHLO client.example")
    assert (await client.command("MAIL FROM:<alice@example.org>")).startswith("530 5.7.0")


async def test_no_auth_before_starttls_when_plaintext_is_not_allowed() -> None:
    """RFC 8314 §3 / RFC 4954 §4: AUTH is neither offered nor accepted in the clear;
    after STARTTLS it is, and the hello must be given again (RFC 3207 §4.2)."""
    async with submission_server(allow_plaintext_auth=False) as server:
        client = await server.connect()
        reply = await client.command("EHLO client.example")
        assert "AUTH" not in reply and "STARTTLS" in reply
        token = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
        assert (await client.command(f"AUTH PLAIN {token}")).startswith("530 5.7.0")
        await client.starttls()
        assert (await client.command(f"AUTH PLAIN {token}")).startswith("503")  # no EHLO
        reply = await client.command("EHLO client.example")
        assert "AUTH PLAIN" in reply and "STARTTLS" not in reply
        assert (await client.command(f"AUTH PLAIN {token}")).startswith("235 2.7.0")


async def test_implicit_tls_listener_offers_auth_at_once() -> None:
    async with submission_server(allow_plaintext_auth=False) as server:
        client = await server.connect(tls=True)
        reply = await client.command("EHLO client.example")
        assert "AUTH PLAIN" in reply and "STARTTLS" not in reply
        assert (await client.login()).startswith("235 ")
        reply = await client.send_message("alice@example.org", ["x@y.test"], message())
        assert reply.startswith("250 "), reply
        assert b"with ESMTPSA" in server.relay.messages[0].data


async def test_auth_login_prompts_exactly_as_outlook_expects(
    submission: SubmissionServer,
) -> None:
    client = await submission.connect()
    await client.command("EHLO client.example")
    assert await client.command("AUTH LOGIN") == "334 VXNlcm5hbWU6\r\n"  # "Username:"
    assert await client.command(base64.b64encode(b"alice").decode()) == "334 UGFzc3dvcmQ6\r\n"
    reply = await client.command(base64.b64encode(PASSWORD.encode()).decode())
    assert reply.startswith("235 2.7.0"), reply


async def test_auth_failures(submission: SubmissionServer) -> None:
    client = await submission.connect()
    await client.command("EHLO client.example")
    bad = base64.b64encode(b"\0alice\0wrong").decode()
    assert (await client.command(f"AUTH PLAIN {bad}")).startswith("535 5.7.8")
    assert (await client.command("AUTH CRAM-MD5")).startswith("504 5.5.4")
    assert (await client.command("AUTH PLAIN !!!")).startswith("501 5.5.2")
    assert (await client.command("AUTH PLAIN")) == "334 \r\n"
    assert (await client.command("*")).startswith("501 5.7.0")  # cancelled
    assert (await client.login()).startswith("235")
    assert (await client.command("AUTH PLAIN")).startswith("503 5.5.1")  # already


async def test_scram_sha_256(submission: SubmissionServer) -> None:
    from tests.support.scram_client import ScramClient

    await submission.signed_in()  # a password sign-in derives the SCRAM keys
    client = await submission.connect()
    await client.command("EHLO client.example")
    scram = ScramClient("alice", PASSWORD)
    first = base64.b64encode(scram.first()).decode()
    reply = await client.command(f"AUTH SCRAM-SHA-256 {first}")
    assert reply.startswith("334 "), reply
    final = scram.final(base64.b64decode(reply[4:].strip()))
    reply = await client.command(base64.b64encode(final).decode())
    assert reply.startswith("334 "), reply
    assert scram.verify(base64.b64decode(reply[4:].strip()))
    assert (await client.command("")).startswith("235 2.7.0")


async def test_sender_must_be_the_accounts(submission: SubmissionServer) -> None:
    client = await submission.signed_in()
    for sender in ("bob@example.org", "alice@elsewhere.test"):
        reply = await client.command(f"MAIL FROM:<{sender}>")
        assert reply.startswith("553 5.7.1"), reply
    assert (await client.command("MAIL FROM:<>")).startswith("553 5.7.1")
    # A subaddress of one's own address, any case, is one's own.
    assert (await client.command("MAIL FROM:<Alice+lists@Example.ORG>")).startswith("250")


async def test_from_header_must_be_the_accounts(submission: SubmissionServer) -> None:
    client = await submission.signed_in()
    forged = message(sender="bob@example.org")
    reply = await client.send_message("alice@example.org", ["x@y.test"], forged)
    assert reply.startswith("553 5.7.1 From: <bob@example.org>"), reply
    no_from = b"To: x@y.test\r\nSubject: x\r\n\r\nbody\r\n"
    reply = await client.send_message("alice@example.org", ["x@y.test"], no_from)
    assert reply.startswith("553 5.7.1"), reply
    assert submission.relay.messages == []


async def test_alias_lets_an_account_send_as_another_address(
    submission: SubmissionServer,
) -> None:
    await submission.store.add_alias("alice", "a.smith@example.net")
    assert await submission.store.list_aliases("alice") == ["a.smith@example.net"]
    client = await submission.signed_in()
    reply = await client.send_message(
        "a.smith@example.net", ["x@y.test"], message(sender="a.smith@example.net")
    )
    assert reply.startswith("250 "), reply
    assert await submission.store.delete_alias("alice", "a.smith@example.net")


async def test_too_many_recipients_and_size() -> None:
    async with submission_server(max_recipients=2, max_message_size=2048) as server:
        client = await server.signed_in()
        await client.command("MAIL FROM:<alice@example.org> SIZE=5000")
        await client.command("RSET")
        reply = await client.command("MAIL FROM:<alice@example.org> SIZE=5000")
        assert reply.startswith("552 5.3.4"), reply
        assert (await client.command("MAIL FROM:<alice@example.org>")).startswith("250")
        for rcpt in ("a@x.test", "b@x.test"):
            assert (await client.command(f"RCPT TO:<{rcpt}>")).startswith("250")
        assert (await client.command("RCPT TO:<c@x.test>")).startswith("452 4.5.3")
        assert (await client.command("DATA")).startswith("354")
        await client.send(message() + (b"x" * 900 + b"\r\n") * 3 + b".\r\n")
        assert (await client.reply()).startswith("552 5.3.4")
        assert server.relay.messages == []


async def test_messages_per_hour_counted_in_the_store() -> None:
    async with submission_server(max_messages_per_hour=2) as server:
        client = await server.signed_in()
        for _ in range(2):
            reply = await client.send_message("alice@example.org", ["x@y.test"], message())
            assert reply.startswith("250 "), reply
        reply = await client.send_message("alice@example.org", ["x@y.test"], message())
        assert reply.startswith("450 4.7.1"), reply
        # Another account has its own count.
        other = await server.signed_in("bob")
        reply = await other.send_message(
            "bob@example.org", ["x@y.test"], message(sender="bob@example.org")
        )
        assert reply.startswith("250 "), reply


async def test_bdat_is_relayed(submission: SubmissionServer) -> None:
    """RFC 3030: chunks from the client, one BDAT LAST to the relay."""
    client = await submission.signed_in()
    await client.command("MAIL FROM:<alice@example.org> BODY=8BITMIME")
    await client.command("RCPT TO:<x@y.test>")
    body = message()
    half = len(body) // 2
    await client.send(f"BDAT {half}\r\n".encode() + body[:half])
    assert (await client.reply()).startswith("250")
    await client.send(f"BDAT {len(body) - half} LAST\r\n".encode() + body[half:])
    assert (await client.reply()).startswith("250 2.0.0 Sent"), body
    (relayed,) = submission.relay.messages
    assert "BODY=8BITMIME" in relayed.mail and relayed.data.endswith(body)
    assert any(c.startswith("BDAT ") and c.endswith(" LAST") for c in relayed.commands)


async def test_hide_client_ip() -> None:
    async with submission_server(hide_client_ip=True) as server:
        client = await server.signed_in()
        await client.send_message("alice@example.org", ["x@y.test"], message())
        data = server.relay.messages[0].data
        assert data.startswith(b"Received: from client.example\r\n"), data[:80]
        assert b"127.0.0.1" not in data


async def test_save_sent_off() -> None:
    async with submission_server(save_sent=False) as server:
        client = await server.signed_in()
        await client.send_message("alice@example.org", ["x@y.test"], message())
        assert await server.mailbox("alice", "Sent") == []


async def test_bad_input(submission: SubmissionServer) -> None:
    client = await submission.connect()
    # Before EHLO no enhanced codes (RFC 2034 §3).
    assert (await client.command("MAIL FROM:<a@b>")).startswith("503 Send hello first")
    assert (await client.command("LHLO x")).startswith("500")
    assert (await client.command("EHLO client.example")).startswith("250")
    assert (await client.command("FOO")).startswith("500 5.5.1")
    assert (await client.command("X" * 5000)).startswith("500 5.5.2")
    assert (await client.command("VRFY alice")).startswith("252")
    assert (await client.command("QUIT")).startswith("221")
