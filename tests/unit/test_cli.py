"""The ``roost`` command: exit codes and one-line messages (CliRunner, no real server).

Exit codes: 0 success, 1 runtime failure, 2 configuration or usage error. Account
commands run against the real SQLite store in a temporary data directory and are
skipped while it is not there.
"""

from __future__ import annotations

import importlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from roost.cli import main
from roost.cli import serve as cli
from roost.runtime.tls import ensure_self_signed


@pytest.fixture(autouse=True)
def keep_root_logging() -> Iterator[None]:
    """``serve`` configures the root logger; undo it after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def one_error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roost.toml"
    path.write_text(text)
    return path


def tls_config(tmp_path: Path, extra: str = "") -> Path:
    ensure_self_signed(tmp_path / "tls")
    return write_config(
        tmp_path,
        '[server]\ndata_dir = "data"\n'
        '[imap]\nlisten = ["127.0.0.1:0"]\ntls_listen = ["127.0.0.1:0"]\n'
        '[tls]\ncert = "tls/cert.pem"\nkey = "tls/key.pem"\n' + extra,
    )


# ---- general -------------------------------------------------------------------------


def test_help_and_version() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("serve", "user", "check-config"):
        assert command in result.output
    assert invoke("--version").output.startswith("roost, version ")


# ---- check-config --------------------------------------------------------------------


def test_check_config_ok(tmp_path: Path) -> None:
    path = tls_config(tmp_path)
    result = invoke("check-config", "--config", str(path))
    assert result.exit_code == 0
    assert result.output == f"{path}: OK\n"


def test_check_config_unknown_key(tmp_path: Path) -> None:
    path = tls_config(tmp_path, "[log]\nlevl = 'debug'\n")
    result = invoke("check-config", "--config", str(path))
    assert result.exit_code == 2
    assert one_error_line(result) == f"roost: unknown key 'log.levl' in {path}"


def test_check_config_invalid_value(tmp_path: Path) -> None:
    path = tls_config(tmp_path, "[limits]\nmax_line_length = 'big'\n")
    result = invoke("check-config", "--config", str(path))
    assert result.exit_code == 2
    assert one_error_line(result) == (
        f"roost: invalid value for 'limits.max_line_length' in {path}: must be an integer"
    )


def test_check_config_missing_certificate(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[tls]\ncert = "nope.pem"\nkey = "nope.key"\n')
    result = invoke("check-config", "--config", str(path))
    assert result.exit_code == 2
    assert one_error_line(result) == (
        f"roost: TLS certificate file {tmp_path / 'nope.pem'} does not exist ('tls.cert' in {path})"
    )


def test_check_config_mismatched_key(tmp_path: Path) -> None:
    path = tls_config(tmp_path)
    ensure_self_signed(tmp_path / "other")
    (tmp_path / "tls" / "key.pem").write_bytes((tmp_path / "other" / "key.pem").read_bytes())
    result = invoke("check-config", "--config", str(path))
    assert result.exit_code == 2
    assert one_error_line(result).startswith("roost: cannot use TLS certificate ")


def test_check_config_missing_file(tmp_path: Path) -> None:
    result = invoke("check-config", "--config", str(tmp_path / "absent.toml"))
    assert result.exit_code == 2
    assert one_error_line(result) == (
        f"roost: configuration file {tmp_path / 'absent.toml'} does not exist"
    )


def test_check_config_needs_a_file() -> None:
    result = CliRunner(env={"ROOST_CONFIG": None}).invoke(main, ["check-config"])
    assert result.exit_code == 2
    assert "--config" in result.stderr


# ---- serve ---------------------------------------------------------------------------


def test_serve_needs_config_or_dev() -> None:
    result = CliRunner(env={"ROOST_CONFIG": None}).invoke(main, ["serve"])
    assert result.exit_code == 2
    assert "give --config FILE" in result.stderr


def test_serve_dev_and_config_do_not_mix(tmp_path: Path) -> None:
    result = invoke("serve", "--dev", "--config", str(tls_config(tmp_path)))
    assert result.exit_code == 2
    assert "cannot be combined" in result.stderr


def test_serve_unknown_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[imap]\nlisen = []\n")
    result = invoke("serve", "--config", str(path))
    assert result.exit_code == 2
    assert one_error_line(result) == f"roost: unknown key 'imap.lisen' in {path}"


def test_serve_missing_certificate(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[tls]\ncert = "c.pem"\nkey = "k.pem"\n')
    result = invoke("serve", "--config", str(path))
    assert result.exit_code == 2
    assert one_error_line(result).startswith(
        f"roost: TLS certificate file {tmp_path / 'c.pem'} does not exist"
    )


def test_serve_bad_listen_option(tmp_path: Path) -> None:
    result = invoke("serve", "--dev", "--data-dir", str(tmp_path), "--imap-listen", "nowhere")
    assert result.exit_code == 2
    assert (
        one_error_line(result)
        == "roost: invalid value for --imap-listen: 'nowhere' is not HOST:PORT"
    )


def test_serve_bad_pop3_listen_option(tmp_path: Path) -> None:
    result = invoke("serve", "--dev", "--data-dir", str(tmp_path), "--pop3s-listen", "x:y")
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "roost: invalid value for --pop3s-listen: 'x:y': port must be a number from 0 to 65535"
    )


def test_serve_pop3_listen_options_override_the_config(tmp_path: Path) -> None:
    path = tls_config(tmp_path)
    settings = cli._serve_settings(
        path, False, None, (), (), ("127.0.0.1:2110",), (cli.NO_LISTENER,)
    )
    assert [str(a) for a in settings.pop3.listen] == ["127.0.0.1:2110"]
    assert settings.pop3.tls_listen == ()
    dev = cli._serve_settings(None, True, tmp_path, (), (), (cli.NO_LISTENER,), ())
    assert dev.pop3.listen == ()
    assert [str(a) for a in dev.pop3.tls_listen] == ["127.0.0.1:1995"]


def test_banner_lists_every_listener(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from roost.runtime.listeners import BoundAddress

    settings = cli.Settings.for_dev(tmp_path)
    addresses = [
        BoundAddress("127.0.0.1", 1143, False, "imap"),
        BoundAddress("127.0.0.1", 1993, True, "imap"),
        BoundAddress("127.0.0.1", 1110, False, "pop3"),
        BoundAddress("127.0.0.1", 1995, True, "pop3"),
    ]
    cli._print_banner(settings, addresses, starttls=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:5] == [
        "  IMAP with STARTTLS         127.0.0.1:1143",
        "  IMAP over TLS (SSL/TLS)    127.0.0.1:1993",
        "  POP3 with STLS             127.0.0.1:1110",
        "  POP3 over TLS (SSL/TLS)    127.0.0.1:1995",
    ]
    assert "Passwords are accepted before STARTTLS/STLS on these loopback listeners." in lines


class FakeStore:
    def __init__(self) -> None:
        self.accounts: dict[str, str] = {}
        self.closed = False

    async def list_accounts(self) -> list[str]:
        return list(self.accounts)

    async def create_account(self, name: str, password_hash: str) -> None:
        self.accounts[name] = password_hash

    async def get_password_hash(self, name: str) -> str | None:
        return self.accounts.get(name)

    async def set_password(self, name: str, password_hash: str, scram_keys: str | None) -> None:
        self.accounts[name] = password_hash

    async def close(self) -> None:
        self.closed = True


def test_serve_port_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FakeStore()

    async def open_store(data_dir: Path, **options: object) -> FakeStore:
        return store

    monkeypatch.setattr(cli, "open_store", open_store)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(
            "serve",
            "--dev",
            "--data-dir",
            str(tmp_path / "data"),
            "--imap-listen",
            f"127.0.0.1:{port}",
            "--imaps-listen",
            "127.0.0.1:0",
            "--pop3-listen",
            "127.0.0.1:0",
            "--pop3s-listen",
            "none",
            "--lmtp-listen",
            "none",
            "--managesieve-listen",
            "none",
            *("--submission-listen", "none", "--submissions-listen", "none"),
        )
    assert result.exit_code == 1
    assert one_error_line(result) == (
        f"roost: cannot listen on 127.0.0.1:{port}: the address is already in use"
    )
    assert store.closed
    # --dev made the certificate and the demo account, and said so once.
    assert (tmp_path / "data" / "tls" / "cert.pem").is_file()
    assert list(store.accounts) == ["demo"]
    assert "Created account demo with password " in result.stdout
    assert "it is not shown again" in result.stdout


async def test_banner_offers_the_demo_account_only_when_there_is_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dev makes the demo account only in an empty store: with other accounts and no
    demo, the banner must not say "Sign in as 'demo'" (issue 13, item 15)."""
    from roost.runtime.listeners import BoundAddress

    settings = cli.Settings.for_dev(tmp_path)
    addresses = [BoundAddress("127.0.0.1", 1143, False, "imap")]
    store = FakeStore()
    store.accounts["alice"] = "hash"
    demo = await cli._ensure_demo_account(store)  # type: ignore[arg-type]
    assert demo is None and list(store.accounts) == ["alice"]
    cli._print_banner(settings, addresses, starttls=True, demo=demo)
    out = capsys.readouterr().out
    assert "Sign in as" not in out
    assert "Your client must accept the self-signed certificate." in out
    empty = FakeStore()
    demo = await cli._ensure_demo_account(empty)  # type: ignore[arg-type]
    assert demo == "demo" and list(empty.accounts) == ["demo"]
    again = await cli._ensure_demo_account(empty)  # type: ignore[arg-type]
    assert again == "demo"  # made before: still offered
    cli._print_banner(settings, addresses, starttls=True, demo=demo)
    assert "Sign in as 'demo'; your client must accept" in capsys.readouterr().out


# ---- user ----------------------------------------------------------------------------


def _sqlite_store_available() -> bool:
    try:
        module = importlib.import_module("roost.store.sqlite")
    except ImportError:
        return False
    return hasattr(module, "SqliteStore")


needs_store = pytest.mark.skipif(
    not _sqlite_store_available(), reason="the SQLite store is not there yet"
)


def test_user_add_rejects_bad_names(tmp_path: Path) -> None:
    result = invoke("user", "add", "a/b", "--data-dir", str(tmp_path), "--password-stdin")
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "roost: invalid account name 'a/b': an account name cannot contain \"/\""
    )


def test_user_commands_need_an_existing_data_dir(tmp_path: Path) -> None:
    for args in (["list"], ["passwd", "x"], ["del", "x", "--yes"]):
        result = invoke("user", *args, "--data-dir", str(tmp_path / "absent"))
        assert result.exit_code == 1
        assert one_error_line(result) == (
            f"roost: data directory {tmp_path / 'absent'} does not exist"
        )


def test_user_password_stdin_must_not_be_empty(tmp_path: Path) -> None:
    result = invoke(
        "user", "add", "alice", "--data-dir", str(tmp_path), "--password-stdin", input="\n"
    )
    assert result.exit_code == 2
    assert one_error_line(result) == "roost: no password on standard input"


@needs_store
def test_user_lifecycle(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    result = invoke("user", "add", "alice@example.org", "--password-stdin", *data, input="pw1\n")
    assert result.exit_code == 0, result.output
    assert result.output == "Created account alice@example.org.\n"

    result = invoke("user", "add", "bob", *data, input="s3cret\ns3cret\n")  # prompted twice
    assert result.exit_code == 0, result.output

    result = invoke("user", "add", "ALICE@example.org", "--password-stdin", *data, input="x\n")
    assert result.exit_code == 1
    assert one_error_line(result) == (
        "roost: account 'ALICE@example.org' already exists "
        "(as 'alice@example.org'; names ignore case)"
    )

    assert invoke("user", "list", *data).output == "alice@example.org\nbob\n"

    result = invoke("user", "passwd", "Bob", "--password-stdin", *data, input="new\n")
    assert result.exit_code == 0
    assert result.output == "Changed the password of bob.\n"

    result = invoke("user", "passwd", "carol", "--password-stdin", *data, input="new\n")
    assert result.exit_code == 1
    assert one_error_line(result) == "roost: no account 'carol'"

    result = invoke("user", "del", "bob", *data, input="n\n")
    assert result.exit_code == 1  # aborted
    assert "bob" in invoke("user", "list", *data).output

    result = invoke("user", "del", "bob", "--yes", *data)
    assert result.exit_code == 0
    assert result.output == "Deleted account bob.\n"
    assert invoke("user", "list", *data).output == "alice@example.org\n"


@needs_store
def test_user_commands_read_the_data_dir_from_the_config(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[server]\ndata_dir = "from-config"\n'
        + '[imap]\nlisten = ["127.0.0.1:143"]\ntls_listen = []\nstarttls = false\n'
        + '[pop3]\nlisten = ["127.0.0.1:110"]\ntls_listen = []\nstarttls = false\n',
    )
    result = invoke("user", "add", "carol", "--password-stdin", "--config", str(path), input="pw\n")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-config").is_dir()
    assert invoke("user", "list", "--config", str(path)).output == "carol\n"


@needs_store
def test_user_prompt_confirmation_must_match(tmp_path: Path) -> None:
    result = invoke(
        "user", "add", "dave", "--data-dir", str(tmp_path), input="one\ntwo\nsame\nsame\n"
    )
    assert result.exit_code == 0
    assert "do not match" in result.output


@needs_store
def test_user_add_names_the_special_folders_as_the_site_says(tmp_path: Path) -> None:
    """``[imap] special_use_names``: a new account's special folders take the site's
    names (Outlook's "Sent Items"); those not given keep theirs."""
    import asyncio

    from roost.store.sqlite import SqliteStore

    path = write_config(
        tmp_path,
        '[server]\ndata_dir = "data"\n'
        + '[imap]\nlisten = ["127.0.0.1:143"]\ntls_listen = []\nstarttls = false\n'
        + 'special_use_names = { sent = "Sent Items", trash = "Deleted Items" }\n'
        + '[pop3]\nlisten = ["127.0.0.1:110"]\ntls_listen = []\nstarttls = false\n',
    )
    result = invoke("user", "add", "erin", "--password-stdin", "--config", str(path), input="pw\n")
    assert result.exit_code == 0, result.output

    async def folders() -> dict[str, str | None]:
        store = await SqliteStore.open(tmp_path / "data", durable=False)
        try:
            account = await store.open_account("erin")
            try:
                return {m.name: m.special_use for m in await account.list_mailboxes()}
            finally:
                await account.close()
        finally:
            await store.close()

    assert asyncio.run(folders()) == {
        "INBOX": None,
        "Drafts": "\\Drafts",
        "Sent Items": "\\Sent",
        "Deleted Items": "\\Trash",
        "Junk": "\\Junk",
        "Archive": "\\Archive",
    }
