"""The delivery path's pure parts: [lmtp]/[delivery] settings, recipient resolution,
the spool's line endings, and how outcomes map to LMTP replies and exit codes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from roost.cli.deliver import EX_CANTCREAT, EX_NOUSER, EX_OK, EX_TEMPFAIL, exit_code
from roost.cli.serve import _serve_settings
from roost.config import ConfigError, ListenAddress, Settings, UnixAddress
from roost.config.sections import DeliverySettings
from roost.delivery import DeliveryStatus, MessageSpool, Outcome, Target, resolve
from roost.lmtp.connection import status_reply
from roost.runtime.unix_sockets import UnixSocketError, bind_unix_socket
from roost.store.sqlite import SqliteStore

BASE = "[imap]\ntls_listen = []\nstarttls = false\n[pop3]\ntls_listen = []\nstarttls = false\n"


def settings(text: str) -> Settings:
    return Settings.from_toml(BASE + text, base_dir=Path("/etc/roost"))


def test_lmtp_settings() -> None:
    loaded = settings(
        '[lmtp]\nlisten = ["unix:/run/roost/lmtp", "127.0.0.1:24", "unix:rel"]\n'
        'socket_mode = 0o600\nsocket_group = "postfix"\n'
        '[delivery]\ndomains = ["Example.ORG."]\nstrip_domain = true\n'
    )
    assert loaded.lmtp.listen == (
        UnixAddress(Path("/run/roost/lmtp")),
        ListenAddress("127.0.0.1", 24),
        UnixAddress(Path("/etc/roost/rel")),
    )
    assert loaded.lmtp.socket_mode == 0o600 and loaded.lmtp.socket_group == "postfix"
    assert loaded.delivery.domains == ("example.org",)
    assert ("lmtp.listen", ListenAddress("127.0.0.1", 24)) in loaded.listeners()
    paths = [address.path for address, _, _ in loaded.unix_listeners()]
    assert paths[-1] == loaded.private_lmtp_socket


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[lmtp]\nlisten = ["0.0.0.0:24"]\n', "not a loopback address"),
        ('[lmtp]\nlisten = ["unix:"]\n', "no path"),
        ("[lmtp]\nsocket_mode = 4096\n", "socket_mode"),
        ("[lmtp]\nlisen = []\n", "unknown key 'lmtp.lisen'"),
        ('[delivery]\nsubaddress_separator = "++"\n', "subaddress_separator"),
        ("[delivery]\ndomains = [1]\n", "delivery.domains"),
    ],
)
def test_bad_settings(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(text)


def test_remote_lmtp_when_allowed() -> None:
    loaded = settings('[lmtp]\nlisten = ["0.0.0.0:24"]\nallow_remote = true\n')
    assert loaded.lmtp.allow_remote


async def test_resolve(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path, durable=False)
    try:
        await store.create_account("alice", "x")
        await store.create_account("bob@example.org", "x")
        stripped = DeliverySettings(domains=("example.org",), strip_domain=True)
        assert await resolve(store, stripped, "ALICE+Lists@example.org") == Target("alice", "Lists")
        assert await resolve(store, stripped, "alice@example.com") is None
        assert await resolve(store, stripped, "alice") == Target("alice", None)
        assert await resolve(store, stripped, "+x@example.org") is None
        full = DeliverySettings()
        assert await resolve(store, full, "Bob@Example.org") == Target("bob@example.org", None)
        assert await resolve(store, full, "alice@example.org") is None
        plain = DeliverySettings(subaddress_separator="")
        assert await resolve(store, plain, "bob+x@example.org") is None
    finally:
        await store.close()


@pytest.mark.parametrize("split", [1, 2, 3, 7, 1000])
def test_spool_makes_crlf_wherever_chunks_split(tmp_path: Path, split: int) -> None:
    data = b"A: b\nC: d\r\n\r\nline\n\nend\r\n"
    spool = MessageSpool(tmp_path, threshold=8)
    for start in range(0, len(data), split):
        spool.write(data[start : start + split])
    source = spool.finish()
    assert source.path is not None  # over the threshold: in a file
    assert source.path.read_bytes() == b"A: b\r\nC: d\r\n\r\nline\r\n\r\nend\r\n"
    assert spool.size == len(source.path.read_bytes())
    spool.discard()
    assert not list(tmp_path.iterdir())


def test_outcomes() -> None:
    quota = DeliveryStatus(Outcome.QUOTA, "full")
    assert status_reply(quota, over_quota_tempfail=False).code == 552
    assert status_reply(quota, over_quota_tempfail=True).enhanced == "4.2.2"
    assert (
        status_reply(DeliveryStatus(Outcome.TEMPORARY, "x"), over_quota_tempfail=False).code == 451
    )
    assert exit_code(quota, over_quota_tempfail=False) == EX_CANTCREAT
    assert exit_code(quota, over_quota_tempfail=True) == EX_TEMPFAIL
    assert exit_code(DeliveryStatus(Outcome.OK, ""), over_quota_tempfail=False) == EX_OK
    nouser = DeliveryStatus(Outcome.NO_SUCH_USER, "")
    assert exit_code(nouser, over_quota_tempfail=False) == EX_NOUSER
    assert not Settings().quota.over_quota_tempfail


def test_lmtp_listen_option(tmp_path: Path) -> None:
    dev = _serve_settings(None, True, tmp_path, (), ())
    assert dev.lmtp.listen == (ListenAddress("127.0.0.1", 1024),)
    assert _serve_settings(None, True, tmp_path, (), (), lmtp_listen=("none",)).lmtp.listen == ()
    config = tmp_path / "roost.toml"
    config.write_text(BASE)
    given = _serve_settings(config, False, None, (), (), lmtp_listen=("unix:/run/x", "[::1]:24"))
    assert given.lmtp.listen == (UnixAddress(Path("/run/x")), ListenAddress("::1", 24))
    with pytest.raises(ConfigError, match="not a loopback"):
        _serve_settings(config, False, None, (), (), lmtp_listen=("192.0.2.1:24",))


def test_unix_socket_mode_and_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "lmtp"
    first = bind_unix_socket(path, 0o620, None, 5)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o620
        with pytest.raises(UnixSocketError, match="another server"):
            bind_unix_socket(path, 0o600, None, 5)
    finally:
        first.close()
    second = bind_unix_socket(path, 0o600, None, 5)  # the dead one's file is replaced
    second.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.unlink()
    path.write_text("not a socket")
    with pytest.raises(UnixSocketError, match="not a socket"):
        bind_unix_socket(path, 0o600, None, 5)
    with pytest.raises(ConfigError, match="socket_group"):
        bind_unix_socket(tmp_path / "other", 0o600, "no-such-group-here", 5)
