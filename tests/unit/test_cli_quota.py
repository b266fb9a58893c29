"""``roost user quota set|show|recalc`` and the ``[quota]`` section."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from roost.cli import main
from roost.config import ConfigError, Settings, format_size, parse_size
from roost.store.base import MessageSource, NewMessage, QuotaExceeded, QuotaLimits
from roost.store.sqlite import SqliteStore

QUIET_TLS = "[imap]\ntls_listen = []\nstarttls = false\n[pop3]\ntls_listen = []\nstarttls = false\n"


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def data(tmp_path: Path) -> list[str]:
    options = ["--data-dir", str(tmp_path / "data")]
    result = invoke("user", "add", "alice", "--password-stdin", *options, input="pw\n")
    assert result.exit_code == 0, result.output
    return options


def lines(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_set_and_show(data: list[str]) -> None:
    assert lines(invoke("user", "quota", "show", "alice", *data)) == [
        "Quota of alice:",
        "  storage   0 octets used, limit unlimited (the default)",
        "  messages  0 used, limit unlimited (the default)",
    ]
    result = invoke(
        "user", "quota", "set", "ALICE", "--storage", "2G", "--messages", "100000", *data
    )
    assert lines(result) == ["Quota of alice: storage 2G, messages 100000."]
    assert lines(invoke("user", "quota", "show", "alice", *data))[1:] == [
        "  storage   0 octets used, limit 2G (this account's own)",
        "  messages  0 used, limit 100000 (this account's own)",
    ]
    # Only what is given changes; none goes back to the default, unlimited lifts it.
    result = invoke("user", "quota", "set", "alice", "--storage", "none", *data)
    assert lines(result) == ["Quota of alice: storage the default, messages 100000."]
    result = invoke("user", "quota", "set", "alice", "--messages", "unlimited", *data)
    assert lines(result) == ["Quota of alice: storage the default, messages unlimited."]


def test_show_takes_the_default_from_the_config(tmp_path: Path, data: list[str]) -> None:
    config = tmp_path / "roost.toml"
    config.write_text(
        f'[server]\ndata_dir = "data"\n{QUIET_TLS}[quota]\nstorage = "500M"\nmessages = 20\n'
    )
    invoke("user", "quota", "set", "alice", "--messages", "5", *data)
    assert lines(invoke("user", "quota", "show", "alice", "--config", str(config)))[1:] == [
        "  storage   0 octets used, limit 500M (the default)",
        "  messages  0 used, limit 5 (this account's own)",
    ]


def test_bad_input_is_one_line_and_exit_2(data: list[str]) -> None:
    for args, error in [
        ((), "roost: give --storage, --messages or both"),
        (("--storage", "2X"), "roost: invalid value for --storage: '2X' is not a size"),
        (("--messages", "-1"), "roost: invalid value for --messages: '-1' is not a number"),
    ]:
        result = invoke("user", "quota", "set", "alice", *args, *data)
        assert result.exit_code == 2
        assert result.output.startswith(error), result.output
    result = invoke("user", "quota", "set", "bob", "--storage", "1G", *data)
    assert (result.exit_code, result.output) == (1, "roost: no account 'bob'\n")


def test_set_is_enforced_and_recalc_repairs(tmp_path: Path, data: list[str]) -> None:
    assert invoke("user", "quota", "set", "alice", "--messages", "1", *data).exit_code == 0

    async def append_two() -> int:
        store = await SqliteStore.open(tmp_path / "data", durable=False)
        account = await store.open_account("alice")
        stored = 0
        try:
            for n in range(2):
                source = MessageSource(data=b"Subject: %d\r\n\r\nbody\r\n" % n)
                try:
                    await account.append("INBOX", [NewMessage(source)])
                except QuotaExceeded:
                    continue
                stored += 1
        finally:
            await account.close()
            await store.close()
        return stored

    assert asyncio.run(append_two()) == 1
    assert lines(invoke("user", "quota", "recalc", "alice", *data))[0] == (
        "The usage of alice was right."
    )
    [mail_db] = (tmp_path / "data" / "accounts").glob("*/mail.db")
    with sqlite3.connect(mail_db) as conn:
        conn.execute("UPDATE counters SET storage = 7, messages = 3")
    assert lines(invoke("user", "quota", "recalc", "alice", *data)) == [
        "Corrected the usage of alice: was 7 octets in 3 messages.",
        "Quota of alice:",
        "  storage   20 octets used, limit unlimited (the default)",
        "  messages  1 used, limit 1 (this account's own)",
    ]


def test_quota_section() -> None:
    settings = Settings.from_toml(
        f'{QUIET_TLS}[quota]\nstorage = "2G"\nmessages = 100000\nover_quota_tempfail = true\n'
    )
    assert settings.quota.limits == QuotaLimits(2 * 1024**3, 100000)
    assert settings.quota.over_quota_tempfail
    assert Settings.from_toml(QUIET_TLS).quota.limits == QuotaLimits(None, None)
    assert Settings.from_toml(f"{QUIET_TLS}[quota]\nstorage = 1000\n").quota.storage == 1000
    for bad in ('storage = "lots"', "storage = -1", "messages = -5", 'messages = "10"', "size = 1"):
        with pytest.raises(ConfigError, match="quota"):
            Settings.from_toml(f"{QUIET_TLS}[quota]\n{bad}\n")


@pytest.mark.parametrize(
    ("text", "octets"),
    [
        ("0", 0),
        ("1000", 1000),
        ("64K", 65536),
        ("500M", 500 * 1024**2),
        ("2g", 2 * 1024**3),
        ("2GiB", 2 * 1024**3),
        ("1 TB", 1024**4),
        (12, 12),
    ],
)
def test_parse_size(text: str | int, octets: int) -> None:
    assert parse_size(text) == octets


@pytest.mark.parametrize("text", ["", "G", "1.5G", "2X", "-1", "2 G B"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_format_size() -> None:
    assert [format_size(n) for n in (0, 1000, 1536 * 1024, 2 * 1024**3)] == [
        "0",
        "1000",
        "1536K",
        "2G",
    ]
