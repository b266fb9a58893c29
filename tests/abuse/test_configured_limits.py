"""Issue 13 item 14: limits that were constants are settings, and an account's number of
mailboxes is bounded (``max_mailboxes``: CREATE beyond it is ``NO [LIMIT]``)."""

from __future__ import annotations

import pytest

from roost.auth.oauth import TokenError, TokenValidator
from roost.config import ConfigError, Settings
from roost.mime.parse import MimeLimits, parse_message
from roost.store.sqlite.mailboxes import DEFAULT_MAILBOXES
from tests.abuse.conftest import StartServer
from tests.support.tokens import TokenMaker

NO_TLS = "[imap]\ntls_listen = []\nstarttls = false\n[pop3]\ntls_listen = []\nstarttls = false\n"


async def test_create_beyond_max_mailboxes_is_refused(start_server: StartServer) -> None:
    defaults = len(DEFAULT_MAILBOXES)  # a new account has these
    handle = await start_server(max_mailboxes=defaults + 2)  # and room for two more
    client = await handle.login("alice")
    await client.ok("CREATE a")
    reply = await client.no("CREATE x/y")  # two new: x and x/y
    assert b"[LIMIT]" in reply.line and b"max_mailboxes" in reply.line
    await client.ok("CREATE b")
    reply = await client.no("CREATE c")
    assert b"[LIMIT]" in reply.line
    list_reply = await client.ok('LIST "" "*"')
    assert len(list_reply.untagged) == defaults + 2
    await client.ok("DELETE a")
    await client.ok("CREATE c")  # room again


async def test_mailbox_name_length_and_levels_are_settings(start_server: StartServer) -> None:
    handle = await start_server(max_mailbox_name_bytes=10, max_mailbox_levels=3)
    client = await handle.login("alice")
    await client.ok("CREATE abcdefghij")  # 10 bytes
    reply = await client.command("CREATE abcdefghijk")
    assert reply.status in ("NO", "BAD") and b"10 bytes" in reply.line
    await client.ok("CREATE a/b/c")
    reply = await client.command("CREATE a/b/c/d")
    assert reply.status in ("NO", "BAD")


def nested(depth: int) -> bytes:
    """A message wrapping ``depth`` message/rfc822 parts."""
    data = b"Subject: inner\r\n\r\nbody\r\n"
    for _ in range(depth):
        data = b"Content-Type: message/rfc822\r\n\r\n" + data
    return data


def tree_depth(node: object) -> int:
    children = getattr(node, "children", [])
    return 1 + max((tree_depth(child) for child in children), default=0)


def test_mime_depth_and_parts_are_passed_in() -> None:
    message = nested(10)
    assert tree_depth(parse_message(message)) == 11
    assert tree_depth(parse_message(message, MimeLimits(max_depth=3))) == 4
    parts = b"".join(b"--b\r\n\r\npart\r\n" for _ in range(20))
    multipart = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + b"--b--\r\n"
    assert len(parse_message(multipart).children) == 20
    assert len(parse_message(multipart, MimeLimits(max_parts=5)).children) == 4


def test_limits_are_read_from_the_configuration() -> None:
    settings = Settings.from_toml(
        NO_TLS + "[limits]\nmax_mailboxes = 50\nmax_mailbox_name_bytes = 200\n"
        "max_mailbox_levels = 8\nmax_mime_depth = 20\nmax_mime_parts = 500\n"
        "tls_handshake_timeout = 5.0\n[auth]\nmax_token_size = 32768\n"
    )
    imap = settings.imap_limits()
    assert (imap.max_mailboxes, imap.max_mailbox_name_bytes, imap.max_mailbox_levels) == (
        50,
        200,
        8,
    )
    assert settings.limits.mime_limits() == MimeLimits(max_depth=20, max_parts=500)
    assert settings.limits.tls_handshake_timeout == 5.0
    assert settings.auth.max_token_size == 32768
    with pytest.raises(ConfigError, match="max_token_size"):
        Settings.from_toml(NO_TLS + "[auth]\nmax_token_size = 1000000\n")


def test_the_token_size_is_a_setting() -> None:
    maker = TokenMaker()
    token = maker.token()
    short = TokenValidator([maker.issuer()], max_token_size=len(token) - 1)
    with pytest.raises(TokenError, match="too long"):
        short.validate(token)
    assert TokenValidator([maker.issuer()], max_token_size=len(token)).validate(token)
