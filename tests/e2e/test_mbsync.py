"""mbsync (Debian's isync) against a real Roost: a two-way sync of several folders and
1,000 messages, then changes on both sides, synced again, both sides checked equal.

mbsync uses UIDPLUS, LITERAL+, MOVE-less expunges, NAMESPACE and pipelining; it keys
its state on UIDVALIDITY, so any instability there shows up here as a re-download.
"""

from __future__ import annotations

import asyncio
import email.parser
import os
import shutil
from pathlib import Path

import pytest

from roost.store.base import DELETED, FLAGGED, SEEN, FlagOp, MessageSource, NewMessage
from tests.conftest import PASSWORD, ImapServer

pytestmark = pytest.mark.skipif(
    shutil.which("mbsync") is None, reason="mbsync not installed (Debian package isync)"
)

FOLDERS = {"INBOX": 500, "Work": 250, "Lists/python": 200, "Archive": 50}
MAILDIR_FLAGS = {"F": FLAGGED, "S": SEEN, "T": DELETED, "R": "\\Answered", "D": "\\Draft"}
_parser = email.parser.BytesHeaderParser()


def generated(folder: str, n: int) -> bytes:
    return (
        f"From: sender{n}@example.org\r\nTo: alice@example.org\r\n"
        f"Subject: {folder} message {n}\r\nMessage-ID: <{folder.replace('/', '.')}.{n}@gen>\r\n"
        f"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nBody of {n} in {folder}.\r\n"
    ).encode()


async def seed(imap: ImapServer) -> None:
    account = await imap.store.open_account("alice")
    try:
        for folder, count in FOLDERS.items():
            if folder not in ("INBOX", "Archive"):
                await account.create_mailbox(folder)
            info = await account.get_mailbox(folder)
            batch = [
                NewMessage(
                    MessageSource(data=generated(folder, n)),
                    frozenset({SEEN}) if n % 3 == 0 else frozenset(),
                )
                for n in range(count)
            ]
            await account.append(info.id, batch)
    finally:
        await account.close()


async def server_state(imap: ImapServer) -> dict[str, dict[str, frozenset[str]]]:
    """Folder → Message-ID → flags, as the server holds them."""
    account = await imap.store.open_account("alice")
    state: dict[str, dict[str, frozenset[str]]] = {}
    try:
        for folder in FOLDERS:
            info = await account.get_mailbox(folder)
            snapshot = await account.snapshot(info.id)
            metas = await account.fetch_meta(info.id, snapshot.uids)
            folder_state: dict[str, frozenset[str]] = {}
            for meta in metas:
                header = await account.read_range(meta, 0, meta.header_size)
                message_id = _parser.parsebytes(header)["Message-ID"]
                folder_state[message_id] = meta.flags & set(MAILDIR_FLAGS.values())
            state[folder] = folder_state
    finally:
        await account.close()
    return state


def maildir_files(root: Path, folder: str) -> list[Path]:
    base = root / folder
    return sorted(p for sub in ("cur", "new") for p in (base / sub).glob("*") if p.is_file())


def flags_of(path: Path) -> frozenset[str]:
    _, _, letters = path.name.partition(":2,")
    return frozenset(MAILDIR_FLAGS[ch] for ch in letters if ch in MAILDIR_FLAGS)


def local_state(root: Path) -> dict[str, dict[str, frozenset[str]]]:
    state: dict[str, dict[str, frozenset[str]]] = {}
    for folder in FOLDERS:
        folder_state: dict[str, frozenset[str]] = {}
        for path in maildir_files(root, folder):
            with path.open("rb") as handle:
                message_id = _parser.parse(handle)["Message-ID"]
            folder_state[message_id] = flags_of(path)
        state[folder] = folder_state
    return state


def write_config(tmp_path: Path, imap: ImapServer, cert: Path) -> Path:
    maildir = tmp_path / "mail"
    maildir.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"""IMAPAccount roost
Host 127.0.0.1
Port {imap.port}
User alice
Pass "{PASSWORD}"
SSLType STARTTLS
SSLVersions TLSv1.2 TLSv1.3
CertificateFile {cert}
PipelineDepth 20

IMAPStore roost-remote
Account roost

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel everything
Far :roost-remote:
Near :local:
Patterns INBOX Work Lists/python Archive
Create Both
Expunge Both
SyncState *
Sync All
"""
    )
    return config


async def run_mbsync(config: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        "mbsync",
        "-c",
        str(config),
        "-a",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "HOME": str(config.parent)},
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0, f"mbsync failed ({process.returncode}):\n{text}"
    return text


def rename_flags(path: Path, letters: str) -> None:
    base, _, _ = path.name.partition(":2,")
    path.rename(path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(letters))}")


@pytest.mark.timeout(600)
async def test_mbsync_two_way_sync(imap: ImapServer, tmp_path: Path) -> None:
    await seed(imap)
    config = write_config(tmp_path, imap, imap.data_dir / "tls" / "cert.pem")
    maildir = tmp_path / "mail"

    # 1. Initial sync: everything comes down, flags included.
    await run_mbsync(config)
    assert local_state(maildir) == await server_state(imap)
    assert sum(len(v) for v in local_state(maildir).values()) == 1000

    # 2. Changes on the server: flag some, delete and expunge others.
    account = await imap.store.open_account("alice")
    try:
        inbox = await account.get_mailbox("INBOX")
        uids = (await account.snapshot(inbox.id)).uids
        await account.store_flags(inbox.id, uids[:20], FlagOp.ADD, frozenset({FLAGGED}))
        await account.store_flags(inbox.id, uids[20:30], FlagOp.ADD, frozenset({DELETED}))
        await account.expunge(inbox.id)
        work = await account.get_mailbox("Work")
        work_uids = (await account.snapshot(work.id)).uids
        await account.store_flags(work.id, work_uids[:5], FlagOp.ADD, frozenset({SEEN}))
    finally:
        await account.close()

    # 3. Changes on the local side: flag some, delete some, add one.
    python_files = maildir_files(maildir, "Lists/python")
    for path in python_files[:10]:
        rename_flags(path, "FS")
    for path in python_files[10:15]:
        path.unlink()
    archive_files = maildir_files(maildir, "Archive")
    for path in archive_files[:3]:
        rename_flags(path, "S")
    new_message = generated("Work", 9999)
    (maildir / "Work" / "new" / "1800000000.local-new.host").write_bytes(new_message)

    await run_mbsync(config)
    server = await server_state(imap)
    local = local_state(maildir)
    assert local == server
    assert len(server["INBOX"]) == 490
    assert len(server["Lists/python"]) == 195
    assert len(server["Work"]) == 251
    assert sum(FLAGGED in flags for flags in server["Lists/python"].values()) == 10
    assert sum(FLAGGED in flags for flags in server["INBOX"].values()) == 20
    assert server["Work"]["<Work.9999@gen>"] == frozenset()

    # 4. A third run finds nothing to do: UIDVALIDITY and UIDs were stable.
    before = {f: [p.name for p in maildir_files(maildir, f)] for f in FOLDERS}
    await run_mbsync(config)
    assert {f: [p.name for p in maildir_files(maildir, f)] for f in FOLDERS} == before
    assert local_state(maildir) == await server_state(imap)
