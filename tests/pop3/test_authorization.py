"""The AUTHORIZATION state: greeting, CAPA (RFC 2449), USER/PASS (RFC 1939 §7), AUTH
(RFC 5034), STLS (RFC 2595), response codes (RFC 2449 §8, RFC 3206), the maildrop lock
and the per-account limit shared with IMAP."""

from __future__ import annotations

import base64
from pathlib import Path

from roost.pop3.context import Pop3Limits
from tests.conftest import PASSWORD
from tests.pop3.conftest import Pop3Server, pop3_server
from tests.support.imap_client import ImapClient, message


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


async def test_greeting_has_no_apop_timestamp(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    assert client.greeting == b"+OK Roost POP3 server ready"


async def test_capa_before_sign_in(pop3: Pop3Server) -> None:
    """RFC 2449 §5; USER and SASL since plaintext is allowed on loopback in --dev."""
    client = await pop3.connect()
    status, capabilities = await client.multi("CAPA")
    assert status == b"+OK Capability list follows"
    assert capabilities == [
        b"TOP",
        b"UIDL",
        b"RESP-CODES",
        b"AUTH-RESP-CODE",
        b"PIPELINING",
        b"EXPIRE NEVER",
        b"STLS",
        b"USER",
        b"SASL PLAIN LOGIN SCRAM-SHA-256",
        b"IMPLEMENTATION Roost",
    ]


async def test_capa_after_sign_in_drops_sign_in_capabilities(pop3: Pop3Server) -> None:
    client = await pop3.login()
    _, capabilities = await client.multi("CAPA")
    assert b"STLS" not in capabilities and b"USER" not in capabilities
    assert b"TOP" in capabilities and b"UIDL" in capabilities


async def test_capa_shows_configured_expire_and_login_delay(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, expire_days=30, login_delay=900) as server:
        client = await server.connect()
        _, capabilities = await client.multi("CAPA")
        assert b"EXPIRE 30" in capabilities
        assert b"LOGIN-DELAY 900" in capabilities


async def test_user_pass(pop3: Pop3Server) -> None:
    await pop3.deliver(message("one"), message("two"))
    client = await pop3.connect()
    assert await client.ok("USER alice") == b"+OK Send your password"
    assert await client.ok(f"PASS {PASSWORD}") == b"+OK Signed in; 2 messages"


async def test_user_name_matches_without_regard_to_case(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    await client.login("ALICE", PASSWORD)
    await client.ok("STAT")


async def test_wrong_password_is_auth_and_needs_user_again(pop3: Pop3Server) -> None:
    """RFC 3206 §4: [AUTH] marks a credentials problem."""
    client = await pop3.connect()
    await client.ok("USER alice")
    assert await client.err("PASS wrong") == b"-ERR [AUTH] Authentication failed"
    assert await client.err(f"PASS {PASSWORD}") == b"-ERR Send USER first"
    await client.login("alice", PASSWORD)


async def test_unknown_user_answers_like_a_wrong_password(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    assert await client.ok("USER nobody") == b"+OK Send your password"
    assert await client.err("PASS whatever") == b"-ERR [AUTH] Authentication failed"


async def test_pass_without_user(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    assert await client.err("PASS x") == b"-ERR Send USER first"


async def test_transaction_commands_need_sign_in(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    for command in ("STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL"):
        name = command.split()[0]
        assert await client.err(command) == f"-ERR {name} needs you to sign in first".encode()


async def test_authorization_commands_after_sign_in(pop3: Pop3Server) -> None:
    client = await pop3.login()
    assert await client.err("USER alice") == b"-ERR USER: already signed in"
    assert await client.err("PASS x") == b"-ERR PASS: already signed in"
    assert await client.err("AUTH PLAIN") == b"-ERR AUTH: already signed in"
    assert await client.err("STLS") == b"-ERR STLS: already signed in"  # RFC 2595 §4


async def test_quit_in_authorization(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    assert await client.ok("QUIT") == b"+OK Roost POP3 server signing off"
    assert await client.expect_eof() == b""


async def test_unknown_and_apop_commands(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    assert await client.err("APOP alice 0123456789abcdef0123456789abcdef") == (
        b"-ERR Unknown command"
    )
    assert await client.err("XTND XMIT") == b"-ERR Unknown command"


# ---- AUTH (RFC 5034) -------------------------------------------------------------------


async def test_auth_plain_with_initial_response(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    assert await client.auth_plain("alice", PASSWORD) == b"+OK Signed in; 0 messages"
    await client.ok("STAT")


async def test_auth_plain_with_continuation(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    await client.send("AUTH PLAIN\r\n")
    assert await client.read_line() == b"+ "
    assert await client.command(b64(f"\0alice\0{PASSWORD}")) == b"+OK Signed in; 0 messages"


async def test_auth_plain_empty_initial_response_then_continuation(pop3: Pop3Server) -> None:
    """RFC 5034 §4: "=" is an empty initial response; PLAIN then needs its message."""
    client = await pop3.connect()
    await client.send("AUTH PLAIN =\r\n")
    assert await client.read_line() == b"-ERR [AUTH] Authentication failed"


async def test_auth_login_prompts(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    await client.send("AUTH LOGIN\r\n")
    assert await client.read_line() == b"+ " + b64("Username:").encode()
    assert await client.command(b64("alice")) == b"+ " + b64("Password:").encode()
    assert (await client.command(b64(PASSWORD))).startswith(b"+OK Signed in")


async def test_auth_cancelled(pop3: Pop3Server) -> None:
    """RFC 5034 §4: "*" cancels, and the server answers -ERR."""
    client = await pop3.connect()
    await client.send("AUTH LOGIN\r\n")
    await client.read_line()
    assert await client.err("*") == b"-ERR Authentication cancelled"
    # The next line is a command again.
    await client.multi("CAPA")


async def test_auth_wrong_password_and_bad_base64(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    assert await client.auth_plain("alice", "wrong") == b"-ERR [AUTH] Authentication failed"
    await client.send("AUTH PLAIN\r\n")
    await client.read_line()
    assert await client.err("not base64!") == b"-ERR Invalid base64 in the authentication response"
    assert await client.err("AUTH PLAIN %%%") == (
        b"-ERR AUTH: the initial response is not valid base64"
    )


async def test_auth_as_someone_else_is_refused(pop3: Pop3Server) -> None:
    await pop3.add_user("bob")
    client = await pop3.connect()
    token = b64(f"bob\0alice\0{PASSWORD}")
    assert await client.err(f"AUTH PLAIN {token}") == b"-ERR [AUTH] Authentication failed"


async def test_auth_unknown_mechanism_and_listing(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    assert await client.err("AUTH CRAM-MD5") == b"-ERR Unsupported mechanism CRAM-MD5"
    status, mechanisms = await client.multi("AUTH")
    assert status == b"+OK Mechanisms follow"
    assert mechanisms == [b"PLAIN", b"LOGIN", b"SCRAM-SHA-256"]


async def test_overlong_sasl_answer_ends_the_exchange(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, limits=Pop3Limits(max_line_length=512)) as server:
        client = await server.connect()
        await client.send("AUTH PLAIN\r\n")
        await client.read_line()
        reply = await client.err("A" * 600)
        assert reply == b"-ERR Line too long (600 octets; the limit is 512)"
        assert (await client.auth_plain("alice", PASSWORD)).startswith(b"+OK")


# ---- STLS (RFC 2595) and the plaintext rule --------------------------------------------


async def test_plaintext_sign_in_refused_before_stls(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, allow_plaintext_auth=False) as server:
        client = await server.connect()
        _, capabilities = await client.multi("CAPA")
        assert b"STLS" in capabilities
        assert b"USER" not in capabilities and not any(c.startswith(b"SASL") for c in capabilities)
        refusal = b"-ERR Sign-in needs TLS: use STLS first"
        assert await client.err("USER alice") == refusal
        assert await client.err(f"PASS {PASSWORD}") == refusal
        assert await client.err(f"AUTH PLAIN {b64(chr(0) + 'alice' + chr(0) + PASSWORD)}") == (
            refusal
        )
        await client.stls(server.client_tls)
        _, capabilities = await client.multi("CAPA")  # RFC 2595 §4: ask again after TLS
        assert b"STLS" not in capabilities and b"USER" in capabilities
        await client.login("alice", PASSWORD)
        await client.ok("STAT")


async def test_implicit_tls_allows_sign_in(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, allow_plaintext_auth=False) as server:
        client = await server.connect(implicit_tls=True)
        assert client.greeting == b"+OK Roost POP3 server ready"
        _, capabilities = await client.multi("CAPA")
        assert b"STLS" not in capabilities
        await client.login("alice", PASSWORD)


async def test_stls_twice_is_refused(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    await client.stls(pop3.client_tls)
    assert await client.err("STLS") == b"-ERR TLS is already active"
    client = await pop3.connect(implicit_tls=True)
    assert await client.err("STLS") == b"-ERR TLS is already active"


async def test_stls_unavailable_without_starttls(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, starttls=False) as server:
        client = await server.connect()
        _, capabilities = await client.multi("CAPA")
        assert b"STLS" not in capabilities
        assert await client.err("STLS") == b"-ERR STLS is not available"


async def test_commands_pipelined_behind_stls_are_dropped(tmp_path: Path) -> None:
    """RFC 2595 §4 (CVE-2011-0411 class): what a man in the middle appends after STLS
    in plaintext is never executed inside the TLS session."""
    async with pop3_server(tmp_path, allow_plaintext_auth=False) as server:
        client = await server.connect()
        await client.send(f"STLS\r\nUSER alice\r\nPASS {PASSWORD}\r\nQUIT\r\n")
        assert await client.read_line() == b"+OK Begin TLS negotiation now"
        await client.writer.start_tls(server.client_tls, server_hostname="localhost")
        # Nothing of USER/PASS/QUIT was answered or acted upon: still AUTHORIZATION.
        assert await client.err("STAT") == b"-ERR STAT needs you to sign in first"
        assert await client.err(f"PASS {PASSWORD}") == b"-ERR Send USER first"


async def test_user_given_before_stls_is_forgotten(pop3: Pop3Server) -> None:
    client = await pop3.connect()
    await client.ok("USER alice")
    await client.stls(pop3.client_tls)
    assert await client.err(f"PASS {PASSWORD}") == b"-ERR Send USER first"


# ---- one session per maildrop, limits shared with IMAP ---------------------------------


async def test_second_session_gets_in_use(pop3: Pop3Server) -> None:
    """RFC 1939 §8, RFC 2449 §8.1.1: the maildrop is locked for one session."""
    first = await pop3.login()
    second = await pop3.connect()
    await second.ok("USER alice")
    assert await second.err(f"PASS {PASSWORD}") == (
        b"-ERR [IN-USE] Another POP3 session is using this mailbox"
    )
    assert await second.auth_plain("alice", PASSWORD) == (
        b"-ERR [IN-USE] Another POP3 session is using this mailbox"
    )
    await first.ok("QUIT")
    await second.login("alice", PASSWORD)


async def test_lock_is_released_when_the_connection_drops(pop3: Pop3Server) -> None:
    first = await pop3.login()
    first.writer.write_eof()  # the server reads EOF, ends the session, then closes
    assert await first.expect_eof() == b""
    second = await pop3.connect()
    assert (await second.auth_plain("alice", PASSWORD)).startswith(b"+OK")


async def test_lock_is_per_account(pop3: Pop3Server) -> None:
    await pop3.add_user("bob")
    await pop3.login("alice")
    await pop3.login("bob")


async def test_imap_sessions_do_not_lock_pop3_out(pop3: Pop3Server) -> None:
    await pop3.imap()
    await pop3.login()


async def test_account_session_limit_is_shared_with_imap(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, max_connections_per_account=1) as server:
        imap = await server.imap()
        client = await server.connect()
        assert await client.auth_plain("alice", PASSWORD) == (
            b"-ERR [SYS/TEMP] Too many connections for this account (max_connections_per_account)"
        )
        await imap.ok("LOGOUT")
        await imap.expect_eof()  # the session is released before the socket closes
        assert (await client.auth_plain("alice", PASSWORD)).startswith(b"+OK")
        # And POP3 counts too: now IMAP is the one refused.
        other = await ImapClient.connect(server.host, server.imap_port)
        server.clients.append(other)
        reply = await other.no(f'LOGIN alice "{PASSWORD}"')
        assert b"[LIMIT]" in reply.line


async def test_login_delay(tmp_path: Path) -> None:
    """RFC 2449 §6.8, §8.1.2: a sign-in sooner than LOGIN-DELAY after the last one is
    refused with [LOGIN-DELAY]."""
    async with pop3_server(tmp_path, login_delay=300) as server:
        now = [1000.0]
        server.server.pop3_context.clock = lambda: now[0]
        client = await server.login()
        await client.ok("QUIT")
        again = await server.connect()
        assert await again.auth_plain("alice", PASSWORD) == (
            b"-ERR [LOGIN-DELAY] Signed in less than 300 s ago; wait 300 s"
        )
        now[0] += 299.5
        assert b"wait 1 s" in await again.auth_plain("alice", PASSWORD)
        now[0] += 0.5
        assert (await again.auth_plain("alice", PASSWORD)).startswith(b"+OK")
