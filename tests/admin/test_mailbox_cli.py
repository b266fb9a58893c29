"""``roost mailbox ...`` and ``roost index rebuild``: on the store directly when no
server runs, and through the running server's control socket when one does (its IDLE
sessions then hear of the change)."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from roost.auth.passwords import hash_password
from roost.cli import main
from roost.store.query import MatchText, SearchQuery, TextField
from roost.store.sqlite import SqliteStore
from roost.store.values import MessageSource, NewMessage
from tests.support.server_process import RoostProcess, write_config

pytestmark = pytest.mark.timeout(120)

PASSWORD = "correct horse"


def message(subject: str, body: str = "hello") -> bytes:
    return f"From: a@example.org\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()


def setup(data: Path) -> None:
    async def go() -> None:
        store = await SqliteStore.open(data, durable=False)
        try:
            hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            await store.create_account("alice", hash_password(PASSWORD, hasher=hasher))
            account = await store.open_account("alice")
            old = datetime(2020, 1, 1, tzinfo=UTC)
            await account.append(
                "INBOX",
                [
                    NewMessage(MessageSource(data=message("old seen")), frozenset({"\\Seen"}), old),
                    NewMessage(MessageSource(data=message("old unseen")), frozenset(), old),
                    NewMessage(
                        MessageSource(data=message("new seen", "x" * 5000)), frozenset({"\\Seen"})
                    ),
                    NewMessage(MessageSource(data=message("new", "zebrafish")), frozenset()),
                ],
            )
            await account.close()
        finally:
            await store.close()

    asyncio.run(go())


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_mailbox_commands_on_the_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    setup(data)
    d = ("--data-dir", str(data))
    assert cli("mailbox", "create", "alice", "Work/2024", *d) == (0, "Created Work/2024.\n")
    code, output = cli("mailbox", "list", "ALICE", *d)
    assert code == 0 and "Trash \\Trash" in output.splitlines()
    assert [line for line in output.splitlines() if "\\" not in line] == [
        "INBOX",
        "Work",
        "Work/2024",
    ]
    assert cli("mailbox", "rename", "alice", "Work", "Jobs", *d)[0] == 0
    code, output = cli("mailbox", "list", "alice", "--format", "json", *d)
    names = [box["name"] for box in json.loads(output) if box["special_use"] is None]
    assert names == ["INBOX", "Jobs", "Jobs/2024"]
    assert cli("mailbox", "delete", "alice", "Jobs/2024", *d) == (0, "Deleted Jobs/2024.\n")
    code, output = cli("mailbox", "delete", "alice", "Nope", *d)
    assert code == 1 and "Nope" in output

    code, output = cli("mailbox", "status", "alice", "INBOX", *d)
    assert code == 0
    header, row = output.splitlines()
    assert header.split()[:4] == ["MAILBOX", "MESSAGES", "UNSEEN", "DELETED"]
    assert row.split()[:4] == ["INBOX", "4", "2", "0"]

    code, output = cli("mailbox", "expunge", "alice", "INBOX", *d)
    assert code == 2 and "--before" in output  # no criterion: refused
    result = cli("mailbox", "expunge", "alice", "INBOX", "--before", "2021-01-01", "--seen", *d)
    assert result == (0, "Expunged 1 messages from INBOX.\n")
    assert cli("mailbox", "expunge", "alice", "INBOX", "--larger", "1000", *d)[1] == (
        "Expunged 1 messages from INBOX.\n"
    )
    code, output = cli("mailbox", "status", "alice", "--format", "json", *d)
    counts = {s["name"]: s["messages"] for s in json.loads(output)}
    assert counts["INBOX"] == 2 and counts["Jobs"] == 0

    assert cli("index", "rebuild", "alice", *d) == (
        0,
        "Rebuilt the index of alice: 2 messages analysed.\n",
    )

    async def found() -> list[int]:
        store = await SqliteStore.open(data, durable=False)
        try:
            account = await store.open_account("alice")
            box = await account.get_mailbox("INBOX")
            result = await account.search(
                box.id, SearchQuery(MatchText(TextField.BODY, "zebrafish"))
            )
            await account.close()
            return result.uids
        finally:
            await store.close()

    assert asyncio.run(found()) == [4]
    code, output = cli("mailbox", "list", "nobody", *d)
    assert code == 1 and "no account 'nobody'" in output


def test_changes_go_through_the_running_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    setup(data)
    server = RoostProcess(write_config(tmp_path / "roost.toml", data), tmp_path / "server.log")
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            stream = sock.makefile("rwb")

            def send(line: str) -> None:
                stream.write(line.encode() + b"\r\n")
                stream.flush()

            stream.readline()
            send(f'a LOGIN alice "{PASSWORD}"')
            assert stream.readline().startswith(b"a OK")
            send("b SELECT INBOX")
            while not (line := stream.readline()).startswith(b"b "):
                pass
            assert line.startswith(b"b OK")
            send("c IDLE")
            assert stream.readline().startswith(b"+ ")
            code, output = cli(
                "mailbox", "expunge", "alice", "INBOX", "--seen", "--data-dir", str(data)
            )
            assert (code, output) == (0, "Expunged 2 messages from INBOX.\n")
            # Messages 1 and 3 are seen: 1 goes first, then the old 3 is now 2.
            assert stream.readline() == b"* 1 EXPUNGE\r\n"
            assert stream.readline() == b"* 2 EXPUNGE\r\n"
            send("DONE")
            assert stream.readline().startswith(b"c OK")
            code, output = cli("mailbox", "create", "alice", "Later", "--data-dir", str(data))
            assert code == 0
            send('d LIST "" Later')
            assert stream.readline().endswith(b'"/" Later\r\n')
    finally:
        server.stop()
    assert server.errors_logged() == []
