"""Every command finds the data directory the server uses: --data-dir, else the
configuration (--config, $ROOST_CONFIG, else /etc/roost/roost.toml), else the --dev
server's ./roost-data when it exists. Run from the wrong directory, an admin command
refuses and names what it looked for, instead of creating a data directory and an
account that no server reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from roost.cli import common, main


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no roost-data, no $ROOST_CONFIG, no default config."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROOST_CONFIG", raising=False)
    monkeypatch.setattr(common, "DEFAULT_CONFIG", tmp_path / "etc" / "roost.toml")
    return tmp_path


def test_user_add_from_the_wrong_directory_refuses_and_creates_nothing(elsewhere: Path) -> None:
    result = invoke("user", "add", "alice", "--password-stdin", input="a long password\n")
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert message.startswith("roost: no data directory:")
    assert str(elsewhere / "roost-data") in message
    assert "roost.toml" in message and "--data-dir" in message
    assert list(elsewhere.iterdir()) == []


def test_the_default_configuration_is_read_when_no_other_is_named(elsewhere: Path) -> None:
    config = common.DEFAULT_CONFIG
    config.parent.mkdir()
    config.write_text(
        f'[server]\ndata_dir = "{elsewhere / "var"}"\n'
        "[imap]\ntls_listen = []\nstarttls = false\n"
        "[pop3]\ntls_listen = []\nstarttls = false\n"
    )
    added = invoke("user", "add", "alice", "--password-stdin", input="a long password\n")
    assert added.exit_code == 0, added.output
    assert (elsewhere / "var" / "users.db").exists()
    listed = invoke("user", "list")
    assert listed.exit_code == 0 and "alice" in listed.output


def test_the_dev_servers_data_directory_is_used_when_it_exists(elsewhere: Path) -> None:
    (elsewhere / "roost-data").mkdir(mode=0o700)
    added = invoke("user", "add", "bob", "--password-stdin", input="a long password\n")
    assert added.exit_code == 0, added.output
    assert (elsewhere / "roost-data" / "users.db").exists()


def test_serve_without_any_configuration_names_the_default_file(elsewhere: Path) -> None:
    result = invoke("serve")
    assert result.exit_code == 2
    assert str(common.DEFAULT_CONFIG) in result.output
