"""Commands in the wrong state (RFC 9051 §3), STARTTLS abuse (RFC 9051 §6.2.1) and
AUTHENTICATE garbage (RFC 9051 §6.2.2): each a tagged BAD or NO, never a state change,
and the connection stays usable — or, for a failed TLS handshake, closes cleanly
while the server serves everyone else."""

from __future__ import annotations

import base64

import pytest

from tests.abuse.conftest import StartServer
from tests.conftest import PASSWORD, ImapServer
from tests.support.imap_client import ImapClient, message

SELECTED_ONLY = [
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "FETCH 1 (FLAGS)",
    "UID FETCH 1 (FLAGS)",
    "STORE 1 +FLAGS (\\Deleted)",
    "UID STORE 1 +FLAGS (\\Deleted)",
    "COPY 1 Trash",
    "MOVE 1 Trash",
    "UID COPY 1 Trash",
    "UID MOVE 1 Trash",
    "UID EXPUNGE 1",
]
AUTHENTICATED = [
    "SELECT INBOX",
    "EXAMINE INBOX",
    "CREATE evil",
    "DELETE Trash",
    "RENAME Trash evil",
    "SUBSCRIBE Trash",
    "UNSUBSCRIBE Trash",
    'LIST "" "*"',
    'LSUB "" "*"',
    "NAMESPACE",
    "STATUS INBOX (MESSAGES)",
    "APPEND INBOX {10+}\r\nSubject: x",
    "ENABLE UTF8=ACCEPT",
    "IDLE",
]
PLAIN_ALICE = base64.b64encode(b"\x00alice\x00" + PASSWORD.encode()).decode()
NOT_AUTHENTICATED = [f'LOGIN alice "{PASSWORD}"', f"AUTHENTICATE PLAIN {PLAIN_ALICE}", "STARTTLS"]


async def _count_inbox(handle: ImapServer) -> int:
    client = await handle.login()
    reply = await client.ok("STATUS INBOX (MESSAGES)")
    await client.close()
    return int(reply.untagged[0].rsplit(b" ", 1)[1].rstrip(b")"))


async def test_commands_before_sign_in_are_bad(start_server: StartServer) -> None:
    handle = await start_server()
    client = await handle.connect()
    for number, command in enumerate(SELECTED_ONLY + AUTHENTICATED):
        reply = await client.command(command)
        assert reply.status == "BAD", (command, reply.line)
        if number % 10 == 9:
            await client.ok("NOOP")  # max_bad_commands counts BADs in a row
    await client.ok("NOOP")
    await client.login("alice", PASSWORD)  # no state was changed on the way
    assert await _count_inbox(handle) == 0
    assert b"evil" not in b"".join((await client.ok('LIST "" "*"')).untagged)


async def test_selected_commands_without_a_selected_mailbox_are_bad(
    start_server: StartServer,
) -> None:
    handle = await start_server()
    client = await handle.login()
    await client.append("INBOX", message())
    for command in SELECTED_ONLY:
        reply = await client.command(command)
        assert reply.status == "BAD", (command, reply.line)
    # A failed SELECT leaves no mailbox selected either (RFC 9051 §6.3.2).
    await client.ok("SELECT INBOX")
    await client.no("SELECT nowhere")
    for command in SELECTED_ONLY:
        reply = await client.command(command)
        assert reply.status == "BAD", (command, reply.line)
    assert await _count_inbox(handle) == 1


async def test_sign_in_commands_after_sign_in_are_bad(start_server: StartServer) -> None:
    handle = await start_server()
    client = await handle.login()
    for command in NOT_AUTHENTICATED:
        reply = await client.command(command)
        assert reply.status == "BAD", (command, reply.line)
    # Signing in as someone else over an open session is impossible.
    reply = await client.command(f'LOGIN bob "{PASSWORD}"')
    assert reply.status == "BAD"
    await client.ok("SELECT INBOX")


async def test_commands_after_logout_are_not_run(start_server: StartServer) -> None:
    handle = await start_server()
    client = await handle.login()
    await client.send(b"l1 LOGOUT\r\nl2 APPEND INBOX {10+}\r\nSubject: x\r\n")
    assert (await client.read_until_tagged("l1")).status == "OK"
    assert await client.expect_eof() == b""
    assert await _count_inbox(handle) == 0


async def _upgrade(client: ImapClient, handle: ImapServer) -> None:
    await client.writer.start_tls(handle.client_tls, server_hostname="localhost")


async def test_starttls_twice(start_server: StartServer) -> None:
    handle = await start_server()
    client = await handle.connect()
    # The second STARTTLS is pipelined before the handshake: it must be dropped unrun.
    await client.send(b"s1 STARTTLS\r\ns2 STARTTLS\r\n")
    assert (await client.read_until_tagged("s1")).status == "OK"
    await _upgrade(client, handle)
    reply = await client.bad("STARTTLS")
    assert b"s2 " not in b"".join(reply.untagged)
    await client.login("alice", PASSWORD)


async def test_starttls_after_sign_in_is_bad(start_server: StartServer) -> None:
    handle = await start_server()
    client = await handle.login()
    await client.bad("STARTTLS")
    await client.ok("SELECT INBOX")  # still the same plain session


async def test_starttls_on_implicit_tls_is_bad(start_server: StartServer) -> None:
    handle = await start_server(implicit_tls=True)
    client = await handle.connect(tls=True)
    await client.bad("STARTTLS")
    await client.login("alice", PASSWORD)


@pytest.mark.parametrize(
    "garbage",
    [b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\x05hello", b"a NOOP\r\n"],
)
async def test_starttls_followed_by_garbage_closes_cleanly(
    start_server: StartServer, garbage: bytes
) -> None:
    handle = await start_server()
    client = await handle.connect()
    assert (await client.command("STARTTLS")).status == "OK"
    await client.send(garbage)
    client.writer.write_eof()
    assert b"OK" not in await client.expect_eof()
    other = await handle.login("bob")
    await other.ok("NOOP")


@pytest.mark.parametrize(
    "answer",
    [
        b"!!!!",
        b"AGFsaWNl",  # valid base64 of a PLAIN message without its password part
        b"YWJj=",  # wrong padding
        b"====",
        b"A" * 5000,  # long, decodes to zeros
        b"\xff\xfe",
        b"",
        b"Zm9v YmFy",
    ],
)
async def test_authenticate_with_garbage_base64(start_server: StartServer, answer: bytes) -> None:
    handle = await start_server()
    client = await handle.connect()
    tag = client.next_tag()
    await client.send(tag.encode() + b" AUTHENTICATE PLAIN\r\n")
    assert (await client.read_response()).startswith(b"+")
    await client.send(answer + b"\r\n")
    reply = await client.read_until_tagged(tag)
    assert reply.status in ("BAD", "NO"), reply.line
    await client.bad("SELECT INBOX")  # not signed in
    await client.login("alice", PASSWORD)


async def test_authenticate_garbage_initial_responses(start_server: StartServer) -> None:
    handle = await start_server()
    client = await handle.connect()
    for command in [f"AUTHENTICATE PLAIN {i}" for i in ("!!!!", "YWJj=", "AGFsaWNl", "=", "*")] + [
        "AUTHENTICATE LOGIN"
    ]:
        tag = client.next_tag()
        await client.send(f"{tag} {command}\r\n")
        line = await client.read_response()
        if line.startswith(b"+"):  # a challenge: answer it with more garbage
            await client.send(b"%%%%\r\n")
            line = (await client.read_until_tagged(tag)).line
        assert line.split(b" ")[1] in (b"BAD", b"NO"), (command, line)
    await client.login("alice", PASSWORD)
