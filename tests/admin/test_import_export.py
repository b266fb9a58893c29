"""``roost import`` and ``roost export`` against a real SQLite store: folders, flags,
keywords and internal dates survive, and import(export(x)) == x."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from roost.admin import exporter, importer
from roost.cli import main
from roost.cli.mail_io import ProgressLine
from roost.store.interface import Account
from roost.store.sqlite import SqliteStore
from roost.store.values import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN, MessageSource, NewMessage

Dump = dict[str, list[tuple[bytes, frozenset[str], int]]]

MESSAGES = {
    "INBOX": [
        (b"Subject: one\r\n\r\nFrom the start\r\n>From quoted\r\n", {SEEN, "$Label1"}),
        (b"Subject: two\r\n\r\nbody\r\n", set()),
    ],
    "Work/2024": [(b"Subject: three\r\n\r\n>>From deep\r\n", {ANSWERED, FLAGGED, DRAFT})],
    "Trash": [(b"Subject: four\r\n\r\nx\r\n", {DELETED, SEEN, "Junk"})],
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(tmp_path / "data", durable=False)
    for name in ("alice", "bob"):
        await store.create_account(name, "x")
    yield store
    await store.close()


async def fill(account: Account) -> None:
    await account.create_mailbox("Work/2024")
    await account.create_mailbox("Empty")
    for folder, messages in MESSAGES.items():
        for number, (data, flags) in enumerate(messages):
            date = datetime(2023, 1 + number, 2, 3, 4, 5, tzinfo=UTC)
            await account.append(
                folder, [NewMessage(MessageSource(data=data), frozenset(flags), date)]
            )


async def dump(account: Account, *, lf: bool = False) -> Dump:
    """Every selectable folder's messages: bytes, flags, internal date (epoch)."""
    result: Dump = {}
    for info in await account.list_mailboxes():
        if info.noselect:
            continue
        snapshot = await account.snapshot(info.id)
        metas = await account.fetch_meta(info.id, list(snapshot.uids), with_model=False)
        rows = []
        for meta in metas:
            data = b"".join([chunk async for chunk in account.read_message(meta)])
            if lf:  # mbox is LF; the store's CRLF normalisation is not asserted on here
                data = data.replace(b"\r\n", b"\n")
            rows.append((data, meta.flags, int(meta.internaldate.timestamp())))
        result[info.name] = rows
    return result


@pytest.mark.parametrize("fmt", ["maildir", "mbox"])
async def test_import_of_export_is_identity(store: SqliteStore, tmp_path: Path, fmt: str) -> None:
    alice = await store.open_account("alice")
    bob = await store.open_account("bob")
    try:
        await fill(alice)
        out = tmp_path / "out"
        report = await exporter.export_mail(alice, out, fmt)
        assert report.messages == 4
        source = importer.open_source(out)
        assert source.total == 4
        imported = await importer.import_mail(bob, source, batch_messages=1)
        assert imported.messages == 4
        lf = fmt == "mbox"
        assert await dump(bob, lf=lf) == await dump(alice, lf=lf)
        assert "Empty" in await dump(bob)
    finally:
        await alice.close()
        await bob.close()


async def test_import_batches_and_progress(store: SqliteStore, tmp_path: Path) -> None:
    path = tmp_path / "in.mbox"
    path.write_bytes(
        b"".join(
            f"From x Mon Mar  3 10:00:0{n} 2025\nSubject: {n}\n\nbody\n\n".encode()
            for n in range(7)
        )
    )
    calls: list[tuple[int, int]] = []
    account = await store.open_account("alice")
    try:
        source = importer.open_source(path, folder="Archive/Old")
        report = await importer.import_mail(
            account, source, batch_messages=3, progress=lambda d, t, b: calls.append((d, t))
        )
        assert calls == [(3, 7), (6, 7), (7, 7)]
        assert report.folders == {"Archive/Old": 7}
        info = await account.get_mailbox("Archive/Old")
        assert info.uidnext == 8
        status = await account.status(info.id)
        assert status.unseen == 7
    finally:
        await account.close()


async def test_import_drops_keywords_that_are_not_atoms(store: SqliteStore, tmp_path: Path) -> None:
    path = tmp_path / "in.mbox"
    path.write_bytes(
        b"From x Mon Mar  3 10:00:00 2025\nX-Keywords: good (bad) \\Recent\nS: 1\n\nb\n\n"
    )
    account = await store.open_account("alice")
    try:
        report = await importer.import_mail(account, importer.open_source(path))
        assert report.dropped_keywords == {"(bad)"}
        [meta] = await account.fetch_meta((await account.get_mailbox("INBOX")).id, [1])
        assert meta.flags == {"good"}
    finally:
        await account.close()


def test_cli_import_and_export(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner = CliRunner()
    added = runner.invoke(
        main, ["user", "add", "carol", "--password-stdin", "--data-dir", str(data)], input="pw\n"
    )
    assert added.exit_code == 0, added.output
    path = tmp_path / "in.mbox"
    path.write_bytes(b"From x Mon Mar  3 10:00:00 2025\nStatus: RO\nSubject: s\n\nb\n\n")
    result = runner.invoke(main, ["import", "carol", str(path), "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "progress 1/1" in result.stderr
    assert "Imported 1 messages" in result.stdout
    out = tmp_path / "export"
    result = runner.invoke(
        main, ["export", "carol", str(out), "--format", "mbox", "--data-dir", str(data)]
    )
    assert result.exit_code == 0, result.output
    written = (out / "INBOX").read_bytes()
    assert written.startswith(b"From MAILER-DAEMON Mon Mar  3 10:00:00 2025\n")
    assert b"Status: RO\n" in written
    missing = runner.invoke(main, ["import", "nobody", str(path), "--data-dir", str(data)])
    assert missing.exit_code == 1
    assert "no account 'nobody'" in missing.stderr


def test_progress_on_a_terminal_redraws_one_line() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream, "imported", terminal=True)
    line(500, 1000, 2_000_000)
    line(1000, 1000, 4_000_000)
    line.finish()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "imported 1,000/1,000 messages  4.0 MB" in text
    assert "ETA --:--" in text
    plain = io.StringIO()
    ProgressLine(plain, "imported", terminal=False)(500, 1000, 1)
    assert plain.getvalue() == "progress 500/1000\n"
