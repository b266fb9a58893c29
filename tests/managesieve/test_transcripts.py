"""ManageSieve transcripts against a real server (RFC 5804), bad input included."""

from __future__ import annotations

import re

from roost import sieve
from tests.managesieve.conftest import SieveServer, managesieve_server

SCRIPT = 'require "fileinto";\r\nif header :contains "subject" "x" { fileinto "Junk"; }\r\n'


def literal(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return b"{%d+}\r\n" % len(data) + data


async def test_greeting_lists_capabilities(managesieve: SieveServer) -> None:
    """RFC 5804 §1.7: SIEVE lists exactly the engine's extensions; no NOTIFY."""
    client = await managesieve.connect(greeting=False)
    data, final = await client.response()
    assert final.startswith(b"OK")
    caps = dict(re.match(rb'"([^"]+)"(?: "([^"]*)")?', line).groups() for line in data)  # type: ignore[union-attr]
    assert set(caps[b"SIEVE"].decode().split()) == set(sieve.EXTENSIONS)
    assert b"PLAIN" in caps[b"SASL"].split()
    assert caps[b"IMPLEMENTATION"] == b"Roost"
    assert caps[b"VERSION"] == b"1.0"
    assert b"NOTIFY" not in caps


async def test_put_list_activate_get_rename_delete(managesieve: SieveServer) -> None:
    client = await managesieve.signed_in()
    _, final = await client.command(b'PUTSCRIPT "main" ' + literal(SCRIPT))
    assert final.startswith(b"OK"), final
    assert (await client.command('HAVESPACE "other" 100'))[1].startswith(b"OK")
    data, final = await client.command("LISTSCRIPTS")
    assert data == [b'"main"'] and final.startswith(b"OK")
    assert (await client.command('SETACTIVE "main"'))[1].startswith(b"OK")
    data, _ = await client.command("LISTSCRIPTS")
    assert data == [b'"main" ACTIVE']
    data, final = await client.command('GETSCRIPT "main"')
    assert data == [SCRIPT.encode(), b""] or data == [SCRIPT.encode()]
    assert final.startswith(b"OK")
    _, final = await client.command('DELETESCRIPT "main"')
    assert final.startswith(b"NO (ACTIVE)")
    assert (await client.command('RENAMESCRIPT "main" "renamed"'))[1].startswith(b"OK")
    data, _ = await client.command("LISTSCRIPTS")
    assert data == [b'"renamed" ACTIVE']
    assert (await client.command('SETACTIVE ""'))[1].startswith(b"OK")
    assert (await client.command('DELETESCRIPT "renamed"'))[1].startswith(b"OK")
    _, final = await client.command('GETSCRIPT "renamed"')
    assert final.startswith(b"NO (NONEXISTENT)")


async def test_putscript_with_syntax_error_stores_nothing(managesieve: SieveServer) -> None:
    client = await managesieve.signed_in()
    _, final = await client.command(b'PUTSCRIPT "bad" ' + literal("if true {\r\n  frob;\r\n}\r\n"))
    assert final.startswith(b'NO "line 2'), final
    assert (await client.command("LISTSCRIPTS"))[0] == []
    _, final = await client.command(b"CHECKSCRIPT " + literal("keep;"))
    assert final.startswith(b"OK")


async def test_invalid_utf8_script_is_refused(managesieve: SieveServer) -> None:
    client = await managesieve.signed_in()
    _, final = await client.command(b'PUTSCRIPT "bin" ' + literal(b"keep; # \xff\xfe\r\n"))
    assert final.startswith(b'NO "The script is not UTF-8'), final
    assert (await client.command("LISTSCRIPTS"))[0] == []


async def test_huge_literal_refused_before_it_is_read(managesieve: SieveServer) -> None:
    """A 100 MB literal: refused from its announcement alone, then the connection closes
    (none of it was sent, so an answer proves the server did not wait for it)."""
    client = await managesieve.signed_in()
    await client.send(b'PUTSCRIPT "big" {104857600+}\r\n')
    _, final = await client.response()
    assert final.startswith(b"NO (QUOTA/MAXSIZE)")
    assert (await client.line()).startswith(b"BYE")
    assert await client.reader.read() == b""


async def test_oversized_literal_within_skip_limit_keeps_the_session() -> None:
    async with managesieve_server(max_script_size=100) as server:
        client = await server.signed_in()
        _, final = await client.command(b'PUTSCRIPT "big" ' + literal("#" * 200 + "\r\nkeep;"))
        assert final.startswith(b"NO (QUOTA/MAXSIZE)")
        assert (await client.command("NOOP"))[1].startswith(b"OK")
        _, final = await client.command('HAVESPACE "big" 101')
        assert final.startswith(b"NO (QUOTA/MAXSIZE)")


async def test_script_count_limit() -> None:
    async with managesieve_server(max_scripts=1) as server:
        client = await server.signed_in()
        assert (await client.command(b'PUTSCRIPT "a" ' + literal("keep;")))[1].startswith(b"OK")
        assert (await client.command(b'PUTSCRIPT "a" ' + literal("stop;")))[1].startswith(b"OK")
        _, final = await client.command(b'PUTSCRIPT "b" ' + literal("keep;"))
        assert final.startswith(b"NO (QUOTA/MAXSCRIPTS)")


async def test_script_including_itself_warns(managesieve: SieveServer) -> None:
    """RFC 6609 §3.2: recursion fails at run time; PUTSCRIPT says so (OK (WARNINGS))."""
    client = await managesieve.signed_in()
    _, final = await client.command(
        b'PUTSCRIPT "loop" ' + literal('require "include";\r\ninclude :personal "loop";\r\n')
    )
    assert final.startswith(b'OK (WARNINGS) "line 2: the script includes itself'), final


async def test_commands_need_authentication(managesieve: SieveServer) -> None:
    client = await managesieve.connect()
    _, final = await client.command("LISTSCRIPTS")
    assert final.startswith(b"NO")
    _, final = await client.command('AUTHENTICATE "PLAIN" "AGFsaWNlAHdyb25n"')
    assert final.startswith(b"NO")


async def test_authenticate_with_challenge_and_unauthenticate(managesieve: SieveServer) -> None:
    """RFC 5804 §2.1: without an initial response the server sends an empty challenge."""
    import base64

    from tests.conftest import PASSWORD

    client = await managesieve.connect()
    await client.send(b'AUTHENTICATE "PLAIN"\r\n')
    assert await client.line() == b'""'
    token = base64.b64encode(f"\0alice\0{PASSWORD}".encode())
    await client.send(b"{%d+}\r\n" % len(token) + token + b"\r\n")
    _, final = await client.response()
    assert final.startswith(b"OK")
    assert (await client.command("UNAUTHENTICATE"))[1].startswith(b"OK")
    assert (await client.command("LISTSCRIPTS"))[1].startswith(b"NO")


async def test_noop_tag_and_logout(managesieve: SieveServer) -> None:
    client = await managesieve.connect()
    _, final = await client.command('NOOP "abc"')
    assert final.startswith(b'OK (TAG "abc")')
    _, final = await client.command("LOGOUT")
    assert final.startswith(b"OK")
    assert await client.reader.read() == b""


async def test_garbage_is_refused_and_many_close(managesieve: SieveServer) -> None:
    client = await managesieve.connect()
    for _ in range(9):
        assert (await client.command('"unterminated'))[1].startswith(b"NO")
    _, final = await client.command("BOGUS")
    assert final.startswith(b"NO")
    assert (await client.line()).startswith(b"BYE")


async def test_starttls_then_capabilities_again(managesieve: SieveServer) -> None:
    """RFC 5804 §2.2: after the handshake the server sends its capabilities and OK."""
    import ssl

    client = await managesieve.connect()
    _, final = await client.command("STARTTLS")
    assert final.startswith(b"OK")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    await client.writer.start_tls(context, server_hostname="localhost")
    data, final = await client.response()
    assert final.startswith(b"OK")
    assert not any(line.startswith(b'"STARTTLS"') for line in data)
    assert (await client.login()).startswith(b"OK")
    _, final = await client.command("STARTTLS")
    assert final.startswith(b"NO")


async def test_app_password_and_two_factor_as_imap(managesieve: SieveServer) -> None:
    """The one Authenticator: an app password signs in; with two-factor on, the account
    password alone does not, the password followed by the current code does."""
    import time

    from roost.auth import manage, totp
    from tests.conftest import PASSWORD

    store = managesieve.store
    app_password = await manage.add_app_password(store, "alice", "phone")
    client = await managesieve.connect()
    assert (await client.login(password=app_password)).startswith(b"OK")
    secret = await manage.enable_totp(store, "alice")
    other = await managesieve.connect()
    assert (await other.login()).startswith(b"NO")
    code = totp.code_at(secret, totp.time_step(time.time()))
    assert (await other.login(password=PASSWORD + code)).startswith(b"OK")


async def test_scram_sha_256_final_message_in_ok(managesieve: SieveServer) -> None:
    """RFC 5804 §2.1 and RFC 7677: SCRAM's server-final message comes back in
    ``OK (SASL "...")``, not as another challenge."""
    import base64

    from roost.auth import scram
    from roost.auth.passwords import hash_password
    from tests.conftest import FAST_HASHER, PASSWORD
    from tests.support.scram_client import ScramClient

    keys = scram.derive_keys(PASSWORD, iterations=4096).encode()
    await managesieve.store.set_password("alice", hash_password(PASSWORD, hasher=FAST_HASHER), keys)
    client = await managesieve.connect()
    scram_client = ScramClient("alice", PASSWORD)
    first = base64.b64encode(scram_client.first()).decode()
    await client.send(f'AUTHENTICATE "SCRAM-SHA-256" "{first}"\r\n')
    server_first = base64.b64decode((await client.line()).strip(b'"'))
    final = base64.b64encode(scram_client.final(server_first)).decode()
    _, reply = await client.command(f'"{final}"')
    found = re.fullmatch(rb'OK \(SASL "([^"]+)"\)(?: .*)?', reply)
    assert found is not None, reply
    assert scram_client.verify(base64.b64decode(found.group(1)))
    assert (await client.command("LISTSCRIPTS"))[1].startswith(b"OK")


async def test_throttled_sign_in_is_trylater(managesieve: SieveServer) -> None:
    """The IMAP throttle applies: after too many failures from an address, even the right
    password gets ``NO (TRYLATER)`` (RFC 5804 §1.3), and the delays are the throttle's."""
    from roost.auth.throttle import LoginThrottle, ThrottlePolicy

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    managesieve.authenticator.throttle = LoginThrottle(
        ThrottlePolicy(base_delay=1.0, max_failures_per_ip=3), sleep=sleep
    )
    client = await managesieve.connect()
    for _ in range(3):
        assert (await client.login(password="wrong")).startswith(b'NO "Authentication failed"')
    assert (await client.login()).startswith(b"NO (TRYLATER)")
    assert slept  # the failures were delayed, as for IMAP
