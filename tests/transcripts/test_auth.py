"""Sign-in and any-state commands: greeting, CAPABILITY, LOGIN, AUTHENTICATE, STARTTLS,
ID, ENABLE, LOGOUT (RFC 9051 §6.1 to §6.2, RFC 3501 §6.1 to §6.2)."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

from tests.conftest import PASSWORD, ImapServer, start_imap_server, stop_imap_server
from tests.support.imap_client import ImapClient


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


async def test_greeting_carries_capabilities(imap: ImapServer) -> None:
    client = await imap.connect()
    assert client.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    assert b"STARTTLS" in client.greeting
    # RFC 9051 §7.2.2: both revisions, so a rev2 client can ENABLE IMAP4rev2.
    assert b"IMAP4rev1 IMAP4rev2 " in client.greeting


async def test_capability_before_and_after_login(imap: ImapServer) -> None:
    client = await imap.connect()
    reply = await client.ok("CAPABILITY")
    (line,) = reply.lines_starting(b"* CAPABILITY ")
    assert b"AUTH=PLAIN" in line and b"UIDPLUS" not in line
    login = await client.login("alice", PASSWORD)
    assert b"[CAPABILITY IMAP4rev1" in login.line
    for cap in (b"UIDPLUS", b"MOVE", b"IDLE", b"SPECIAL-USE", b"LIST-EXTENDED", b"APPENDLIMIT="):
        assert cap in login.line


async def test_login_wrong_password_rfc5530_code(imap: ImapServer) -> None:
    client = await imap.connect()
    reply = await client.no('LOGIN alice "wrong"')
    assert b"[AUTHENTICATIONFAILED]" in reply.line
    await client.no("LOGIN nobody x")
    await client.login("alice", PASSWORD)


async def test_login_name_case_insensitive(imap: ImapServer) -> None:
    client = await imap.connect()
    await client.login("ALICE", PASSWORD)
    await client.ok("SELECT INBOX")


async def test_login_with_literals(imap: ImapServer) -> None:
    client = await imap.connect()
    await client.ok(f"LOGIN {{5}}\r\nalice {{{len(PASSWORD)}}}\r\n{PASSWORD}")


async def test_logout_says_bye_then_ok(imap: ImapServer) -> None:
    client = await imap.connect()
    reply = await client.ok("LOGOUT")
    assert reply.untagged == [b"* BYE Roost logging out"]
    assert await client.expect_eof() == b""


async def test_commands_in_wrong_state_are_bad(imap: ImapServer) -> None:
    client = await imap.connect()
    await client.bad("SELECT INBOX")
    await client.bad("FETCH 1 FLAGS")
    await client.login("alice", PASSWORD)
    await client.bad("FETCH 1 FLAGS")
    await client.bad("LOGIN alice x")
    await client.bad("STARTTLS")


async def test_authenticate_plain_with_initial_response(imap: ImapServer) -> None:
    """RFC 4959 SASL-IR."""
    client = await imap.connect()
    reply = await client.ok(f"AUTHENTICATE PLAIN {plain('alice', PASSWORD)}")
    assert b"[CAPABILITY " in reply.line


async def test_authenticate_plain_with_continuation(imap: ImapServer) -> None:
    client = await imap.connect()
    await client.send("a1 AUTHENTICATE PLAIN\r\n")
    assert (await client.read_response()).startswith(b"+")
    await client.send(plain("alice", PASSWORD) + "\r\n")
    reply = await client.read_until_tagged("a1")
    assert reply.status == "OK"


async def test_authenticate_plain_wrong_password(imap: ImapServer) -> None:
    client = await imap.connect()
    reply = await client.no(f"AUTHENTICATE PLAIN {plain('alice', 'nope')}")
    assert b"[AUTHENTICATIONFAILED]" in reply.line


async def test_authenticate_cancelled_is_bad(imap: ImapServer) -> None:
    """RFC 9051 §6.2.2: "*" cancels with a tagged BAD."""
    client = await imap.connect()
    await client.send("a1 AUTHENTICATE PLAIN\r\n")
    await client.read_response()
    await client.send("*\r\n")
    assert (await client.read_until_tagged("a1")).status == "BAD"
    await client.ok("NOOP")


async def test_authenticate_login_mechanism_prompts(imap: ImapServer) -> None:
    client = await imap.connect()
    await client.send("a1 AUTHENTICATE LOGIN\r\n")
    assert await client.read_response() == b"+ " + base64.b64encode(b"Username:")
    await client.send(base64.b64encode(b"alice") + b"\r\n")
    assert await client.read_response() == b"+ " + base64.b64encode(b"Password:")
    await client.send(base64.b64encode(PASSWORD.encode()) + b"\r\n")
    assert (await client.read_until_tagged("a1")).status == "OK"


async def test_authenticate_unknown_mechanism(imap: ImapServer) -> None:
    client = await imap.connect()
    await client.no("AUTHENTICATE KERBEROS_V4")


async def test_id_and_enable(imap: ImapServer) -> None:
    """Thunderbird opens with ID and ENABLE UTF8=ACCEPT (CLIENTS.md)."""
    client = await imap.connect()
    reply = await client.ok('ID ("name" "Thunderbird" "version" "140.0")')
    assert reply.untagged[0].startswith(b'* ID ("name" "Roost"')
    await client.login("alice", PASSWORD)
    reply = await client.ok("ENABLE UTF8=ACCEPT X-UNKNOWN")
    assert reply.untagged == [b"* ENABLED UTF8=ACCEPT"]
    reply = await client.ok("ENABLE UTF8=ACCEPT")
    assert reply.untagged == [b"* ENABLED"]


async def test_pipelined_commands_answered_in_order(imap: ImapServer) -> None:
    client = await imap.connect()
    await client.send(f'p1 LOGIN alice "{PASSWORD}"\r\np2 SELECT INBOX\r\np3 NOOP\r\np4 LOGOUT\r\n')
    for tag in ("p1", "p2", "p3", "p4"):
        assert (await client.read_until_tagged(tag)).status == "OK"


# ---- TLS ----------------------------------------------------------------------------


async def test_logindisabled_before_starttls(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path, allow_plaintext_auth=False)
    await handle.add_user("alice")
    try:
        client = await handle.connect()
        assert b"LOGINDISABLED" in client.greeting
        assert b"AUTH=PLAIN" not in client.greeting
        reply = await client.no(f'LOGIN alice "{PASSWORD}"')
        assert b"[PRIVACYREQUIRED]" in reply.line
        await client.no(f"AUTHENTICATE PLAIN {plain('alice', PASSWORD)}")
        await client.ok("STARTTLS")
        await _upgrade(client, handle.client_tls)
        reply = await client.ok("CAPABILITY")
        assert b"LOGINDISABLED" not in reply.untagged[0]
        assert b"STARTTLS" not in reply.untagged[0]
        await client.login("alice", PASSWORD)
        await client.ok("SELECT INBOX")
    finally:
        await stop_imap_server(handle, server)


async def _upgrade(client: ImapClient, tls: ssl.SSLContext) -> None:
    await client.writer.start_tls(tls, server_hostname="localhost")


async def test_starttls_discards_pipelined_commands(tmp_path: Path) -> None:
    """RFC 9051 §6.2.1: commands sent before the handshake must not run (the classic
    STARTTLS command-injection attack)."""
    handle, server = await start_imap_server(tmp_path, allow_plaintext_auth=False)
    await handle.add_user("alice")
    try:
        client = await handle.connect()
        await client.send(f's1 STARTTLS\r\ns2 LOGIN alice "{PASSWORD}"\r\n')
        assert (await client.read_until_tagged("s1")).status == "OK"
        await _upgrade(client, handle.client_tls)
        reply = await client.ok("NOOP")
        assert not reply.untagged
        # The injected LOGIN never ran: we are still not signed in.
        await client.bad("SELECT INBOX")
    finally:
        await stop_imap_server(handle, server)


async def test_starttls_twice_is_bad(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path, allow_plaintext_auth=False)
    try:
        client = await handle.connect()
        await client.ok("STARTTLS")
        await _upgrade(client, handle.client_tls)
        await client.bad("STARTTLS")
    finally:
        await stop_imap_server(handle, server)


async def test_implicit_tls_listener(tmp_path: Path) -> None:
    handle, server = await start_imap_server(
        tmp_path, allow_plaintext_auth=False, implicit_tls=True
    )
    await handle.add_user("alice")
    try:
        client = await handle.connect(tls=True)
        assert b"STARTTLS" not in client.greeting
        assert b"LOGINDISABLED" not in client.greeting
        await client.login("alice", PASSWORD)
        ssl_object = client.writer.get_extra_info("ssl_object")
        assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        await stop_imap_server(handle, server)


async def test_tls_1_1_refused(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path, implicit_tls=True)
    try:
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            client = await ImapClient.connect(handle.host, handle.port, tls=old)
        except (ssl.SSLError, ConnectionError, OSError):
            return
        await client.close()
        raise AssertionError("a TLS 1.1 handshake succeeded")
    finally:
        await stop_imap_server(handle, server)


# ---- COMPRESS=DEFLATE (RFC 4978) -----------------------------------------------------


class _Deflated:
    """The client side of a compressed stream, for tests."""

    def __init__(self, client: ImapClient) -> None:
        import zlib

        self.client = client
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)
        self.buffer = b""

    async def send(self, data: bytes) -> None:
        import zlib

        await self.client.send(self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH))

    async def read_until_tagged(self, tag: bytes) -> list[bytes]:
        lines: list[bytes] = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = await self.client.reader.read(65536)
                assert chunk, "connection closed"
                self.buffer += self.inflate.decompress(chunk)
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines


async def test_compress_deflate(imap: ImapServer) -> None:
    client = await imap.login()
    caps = await client.ok("CAPABILITY")
    assert b"COMPRESS=DEFLATE" in caps.untagged[0]
    await client.bad("COMPRESS LZW")
    # A command pipelined right behind COMPRESS is already compressed.
    stream = _Deflated(client)
    await client.send(b"c1 COMPRESS DEFLATE\r\n")
    assert (await client.read_until_tagged("c1")).status == "OK"
    await stream.send(b"c2 SELECT INBOX\r\nc3 CAPABILITY\r\n")
    lines = await stream.read_until_tagged(b"c3")
    assert any(line.startswith(b"c2 OK [READ-WRITE]") for line in lines)
    capability = next(line for line in lines if line.startswith(b"* CAPABILITY"))
    assert b"COMPRESS=DEFLATE" not in capability
    await stream.send(b"c4 COMPRESS DEFLATE\r\n")
    lines = await stream.read_until_tagged(b"c4")
    assert lines[-1].startswith(b"c4 NO [COMPRESSIONACTIVE]")


async def test_compress_keeps_large_output_whole_and_in_order(imap: ImapServer) -> None:
    """Large compressed output is deflated off the loop while later pipelined commands
    are answered: the client still reads every response whole and in order, and the
    last of it before a LOGOUT closes the connection."""
    client = await imap.login()
    bodies = [
        b"Subject: %d\r\n\r\n" % n + b"%d line of a long message\r\n" % n * lines
        for n, lines in enumerate((9000, 3000, 2), start=1)
    ]
    for body in bodies:
        await client.append("INBOX", body)
    await client.ok("SELECT INBOX")
    await client.ok("COMPRESS DEFLATE")
    stream = _Deflated(client)
    await stream.send(
        b"f1 UID FETCH 1 (BODY.PEEK[])\r\nf2 UID FETCH 2 (BODY.PEEK[])\r\n"
        b"f3 FETCH 1:3 (BODY.PEEK[])\r\nf4 NOOP\r\nf5 UID FETCH 1 (BODY.PEEK[])\r\n"
        b"f6 LOGOUT\r\n"
    )
    received = b""
    while chunk := await client.reader.read(65536):
        received += stream.inflate.decompress(chunk)
    literal = b"{%d}\r\n%s)\r\n"
    one, two, three = (literal % (len(body), body) for body in bodies)
    expected = [one, b"f1 OK", two, b"f2 OK", one, two, three, b"f3 OK", b"f4 OK", one]
    expected += [b"f5 OK", b"* BYE", b"f6 OK"]
    position = 0
    for part in expected:
        position = received.index(part, position) + len(part)
    assert received.endswith(b"\r\n")


async def test_compress_over_tls(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path, implicit_tls=True)
    await handle.add_user("alice")
    try:
        client = await handle.connect(tls=True)
        await client.login("alice", PASSWORD)
        await client.ok("COMPRESS DEFLATE")
        stream = _Deflated(client)
        await stream.send(b'd1 LIST "" "*"\r\n')
        lines = await stream.read_until_tagged(b"d1")
        assert len(lines) == 7 and lines[-1].startswith(b"d1 OK")
    finally:
        await stop_imap_server(handle, server)


async def test_unauthenticate(imap: ImapServer) -> None:
    """RFC 8437: back to not authenticated; ENABLEd extensions are forgotten."""
    client = await imap.login()
    await client.ok("ENABLE UTF8=ACCEPT")
    await client.ok("SELECT INBOX")
    await client.ok("UNAUTHENTICATE")
    await client.bad("SELECT INBOX")
    await client.bad("UNAUTHENTICATE")
    await client.login("alice", PASSWORD)
    reply = await client.ok("ENABLE UTF8=ACCEPT")
    assert reply.untagged == [b"* ENABLED UTF8=ACCEPT"]
