"""``roost user alias add|del|list``: the addresses an account may send as."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from roost.cli import main


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def data(tmp_path: Path) -> list[str]:
    options = ["--data-dir", str(tmp_path / "data")]
    for user in ("alice", "bob"):
        result = invoke("user", "add", user, "--password-stdin", *options, input="pw\n")
        assert result.exit_code == 0, result.output
    return options


def test_add_list_del(data: list[str]) -> None:
    result = invoke("user", "alias", "add", "alice", "a.smith@example.org", *data)
    assert result.exit_code == 0 and "alice may now send as a.smith@example.org" in result.output
    invoke("user", "alias", "add", "ALICE", "postmaster@example.org", *data)
    result = invoke("user", "alias", "list", "alice", *data)
    assert result.output.splitlines() == ["a.smith@example.org", "postmaster@example.org"]
    # One account per address, in any case.
    result = invoke("user", "alias", "add", "bob", "A.Smith@example.org", *data)
    assert result.exit_code != 0 and "already an alias" in result.output
    result = invoke("user", "alias", "del", "alice", "a.smith@example.org", *data)
    assert result.exit_code == 0
    assert invoke("user", "alias", "list", "alice", *data).output.splitlines() == [
        "postmaster@example.org"
    ]
    result = invoke("user", "alias", "del", "alice", "a.smith@example.org", *data)
    assert result.exit_code != 0 and "has no alias" in result.output


def test_refuses_what_is_not_an_address_or_an_account(data: list[str]) -> None:
    for bad in ("not an address", "a@", "<a@b>", "a@b c"):
        result = invoke("user", "alias", "add", "alice", bad, *data)
        assert result.exit_code != 0, bad
        assert "is not an email address" in result.output
    result = invoke("user", "alias", "add", "carol", "c@example.org", *data)
    assert result.exit_code != 0
