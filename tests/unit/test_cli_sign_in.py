"""``roost user app-password`` and ``roost user totp``, and the SCRAM keys that ``user
add`` and ``user passwd`` make (CliRunner, the real SQLite store in a temporary
directory)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from click.testing import CliRunner, Result

from roost.auth import scram
from roost.cli import main
from roost.store.credentials import SignInRecord
from roost.store.sqlite import SqliteStore


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def record(data_dir: Path, name: str) -> SignInRecord:
    async def read() -> SignInRecord:
        store = await SqliteStore.open(data_dir, durable=False)
        try:
            found = await store.get_sign_in_record(name)
            assert found is not None
            return found
        finally:
            await store.close()

    return asyncio.run(read())


def add_alice(data_dir: Path, password: str = "pencil") -> None:
    result = invoke(
        "user", "add", "alice", "--password-stdin", "--data-dir", str(data_dir), input=password
    )
    assert result.exit_code == 0, result.output


def test_user_add_and_passwd_store_scram_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    add_alice(data)
    keys = record(data, "alice").scram_keys
    assert keys is not None and keys.startswith("SCRAM-SHA-256$")
    parsed = scram.ScramKeys.decode(keys)
    assert parsed == scram.derive_keys("pencil", salt=parsed.salt, iterations=parsed.iterations)
    result = invoke(
        "user", "passwd", "alice", "--password-stdin", "--data-dir", str(data), input="crayon\n"
    )
    assert result.exit_code == 0 and result.output == "Changed the password of alice.\n"
    assert record(data, "alice").scram_keys != keys


def test_passwords_scram_cannot_use_get_a_note(tmp_path: Path) -> None:
    data = tmp_path / "data"
    add_alice(data, "bell\u0007\n")
    result = invoke(
        "user", "passwd", "alice", "--password-stdin", "--data-dir", str(data), input="bell\u0007\n"
    )
    assert "SCRAM-SHA-256 will fail for this account" in result.output
    assert record(data, "alice").scram_keys is None


def test_app_password_add_list_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    dir_args = ["--data-dir", str(data)]
    add_alice(data)
    result = invoke("user", "app-password", "list", "ALICE", *dir_args)
    assert result.exit_code == 0 and result.output == "alice has no app passwords.\n"

    result = invoke("user", "app-password", "add", "ALICE", "Phone", *dir_args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    match = re.fullmatch(r"App password 'Phone' of alice: ((?:[a-z]{4}-){6}[a-z]{4})", lines[0])
    assert match is not None, lines
    assert "it is not shown again" in lines[1]
    assert invoke("user", "app-password", "add", "alice", "Laptop", *dir_args).exit_code == 0

    result = invoke("user", "app-password", "add", "alice", "phone", *dir_args)
    assert result.exit_code == 2
    assert result.stderr == "roost: alice already has an app password labelled 'phone'\n"

    result = invoke("user", "app-password", "list", "alice", *dir_args)
    lines = result.output.splitlines()
    assert lines[0].split() == ["LABEL", "CREATED", "LAST", "USED"]
    assert sorted(line.split()[0] for line in lines[1:]) == ["Laptop", "Phone"]
    assert all(line.endswith("never") for line in lines[1:])
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", lines[1])

    result = invoke("user", "app-password", "revoke", "alice", "PHONE", *dir_args)
    assert result.exit_code == 0 and result.output == "Revoked the app password 'PHONE' of alice.\n"
    result = invoke("user", "app-password", "revoke", "alice", "Phone", *dir_args)
    assert result.exit_code == 1
    assert result.stderr == "roost: alice has no app password labelled 'Phone'\n"
    assert [a.label for a in record(data, "alice").app_passwords] == ["Laptop"]

    result = invoke("user", "app-password", "add", "bob", "Phone", *dir_args)
    assert result.exit_code == 1 and result.stderr == "roost: no account 'bob'\n"
    result = invoke("user", "app-password", "add", "alice", "bad\nlabel", *dir_args)
    assert result.exit_code == 2 and "invalid label" in result.stderr


def test_totp_enable_and_disable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    dir_args = ["--data-dir", str(data)]
    add_alice(data)
    result = invoke("user", "totp", "enable", "alice", "--issuer", "Example Mail", *dir_args)
    assert result.exit_code == 0, result.output
    secret = record(data, "alice").totp_secret
    assert secret is not None
    uri = f"otpauth://totp/Example%20Mail:alice?secret={secret}&issuer=Example%20Mail"
    assert uri in result.output.splitlines()
    assert "\u2588" in result.output or "\u2580" in result.output  # the QR code
    assert "hunter2123456" in result.output

    result = invoke("user", "totp", "enable", "alice", *dir_args)
    assert result.exit_code == 1 and "already on" in result.stderr

    result = invoke("user", "totp", "disable", "alice", *dir_args)
    assert result.output == "Two-factor sign-in is off for alice.\n"
    assert record(data, "alice").totp_secret is None
    result = invoke("user", "totp", "disable", "alice", *dir_args)
    assert result.output == "Two-factor sign-in was not on for alice.\n"

    result = invoke("user", "totp", "enable", "alice", "--no-qr", *dir_args)
    assert "\u2588" not in result.output and "otpauth://totp/Roost:alice?" in result.output
    result = invoke("user", "totp", "enable", "nobody", *dir_args)
    assert result.exit_code == 1 and result.stderr == "roost: no account 'nobody'\n"
