"""``roost sieve``: test prints the actions without delivering; put|list|activate|get|
delete manage a user's scripts with the same checks as ManageSieve."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from roost.cli import main

MESSAGE = b"From: boss@example.net\r\nTo: alice@example.org\r\nSubject: Urgent\r\n\r\nNow.\r\n"


def invoke(*args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def setup(tmp_path: Path) -> list[str]:
    data = ["--data-dir", str(tmp_path / "data")]
    (tmp_path / "data").mkdir()
    assert invoke("user", "add", "alice", "--password-stdin", *data, input="pw\n").exit_code == 0
    return data


def test_sieve_test_prints_actions(tmp_path: Path) -> None:
    data = setup(tmp_path)
    script = tmp_path / "s.sieve"
    script.write_text(
        'require ["fileinto", "vacation"];\n'
        'if header :is "subject" "Urgent" { fileinto "Archive"; }\n'
        'vacation :subject "Away" "Back Monday.";\n'
    )
    message = tmp_path / "m.eml"
    message.write_bytes(MESSAGE)
    result = invoke(
        "sieve", "test", "alice", str(script), str(message), "--to", "alice@example.org", *data
    )
    assert result.exit_code == 0, result.output
    assert "file into 'Archive'" in result.output
    assert "send vacation reply to <sender@example.net>" in result.output
    # Nothing delivered, nothing remembered: the same test says the same again.
    again = invoke(
        "sieve", "test", "alice", str(script), str(message), "--to", "alice@example.org", *data
    )
    assert again.output == result.output


def test_sieve_test_reports_syntax_errors(tmp_path: Path) -> None:
    data = setup(tmp_path)
    script = tmp_path / "bad.sieve"
    script.write_text('require "fileinto";\nfileinto;\n')
    message = tmp_path / "m.eml"
    message.write_bytes(MESSAGE)
    result = invoke("sieve", "test", "alice", str(script), str(message), *data)
    assert result.exit_code == 65
    assert "line 2" in result.stderr


def test_put_list_activate_get_delete(tmp_path: Path) -> None:
    data = setup(tmp_path)
    script = tmp_path / "s.sieve"
    script.write_text("discard;\n")
    assert invoke("sieve", "put", "alice", "main", str(script), *data).exit_code == 0
    assert invoke("sieve", "list", "alice", *data).output == "main\n"
    assert invoke("sieve", "activate", "alice", "main", *data).exit_code == 0
    assert invoke("sieve", "list", "alice", *data).output == "main  (active)\n"
    assert invoke("sieve", "get", "alice", "main", *data).output == "discard;\n"
    refused = invoke("sieve", "delete", "alice", "main", *data)
    assert refused.exit_code != 0 and "active" in refused.stderr
    assert invoke("sieve", "activate", "alice", *data).exit_code == 0
    assert invoke("sieve", "delete", "alice", "main", *data).exit_code == 0
    assert invoke("sieve", "list", "alice", *data).output == ""
    bad = tmp_path / "bad.sieve"
    bad.write_text("frobnicate;\n")
    result = invoke("sieve", "put", "alice", "bad", str(bad), *data)
    assert result.exit_code == 65 and "line 1" in result.stderr
    assert invoke("sieve", "list", "alice", *data).output == ""
