"""``roost deliver``: sysexits codes, and delivery through a running server (whose
idling sessions are told) or straight into the store when none runs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from roost.auth.passwords import hash_password
from roost.store.sqlite import SqliteStore
from tests.conftest import FAST_HASHER, PASSWORD
from tests.lmtp.conftest import LmtpServer

MESSAGE = b"From: sender@example.net\nSubject: lda\n\nHello.\n"


async def roost_deliver(data_dir: Path, stdin: bytes, *args: str) -> tuple[int, bytes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "roost",
        "deliver",
        "--data-dir",
        str(data_dir),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, err


async def test_delivery_through_the_running_server(lmtp: LmtpServer) -> None:
    imap = await lmtp.imap()
    tag = await imap.idle()
    code, err = await roost_deliver(lmtp.data_dir, MESSAGE, "-d", "alice", "-f", "s@example.net")
    assert code == 0, err
    assert await imap.read_response() == b"* 1 EXISTS"
    await imap.done(tag)
    (stored,) = await lmtp.messages()
    assert stored.startswith(b"Return-Path: <s@example.net>\r\nDelivered-To: alice\r\n")
    assert stored.endswith(b"\r\nFrom: sender@example.net\r\nSubject: lda\r\n\r\nHello.\r\n")


async def test_folder_and_exit_codes_through_the_server(lmtp: LmtpServer) -> None:
    account = await lmtp.store.open_account("bob")
    await account.create_mailbox("Lists")
    await account.close()
    assert (await roost_deliver(lmtp.data_dir, MESSAGE, "-d", "bob", "-m", "Lists"))[0] == 0
    assert len(await lmtp.messages("bob", "Lists")) == 1
    assert (await roost_deliver(lmtp.data_dir, MESSAGE, "-d", "nobody"))[0] == 67
    assert (await roost_deliver(lmtp.data_dir, b"", "-d", "bob"))[0] == 65
    assert (await roost_deliver(lmtp.data_dir, b"no header\n\n", "-d", "bob"))[0] == 65
    assert (await roost_deliver(lmtp.data_dir, MESSAGE, "-d", "bob", "-f", "a b"))[0] == 64


async def test_delivery_without_a_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = await SqliteStore.open(data_dir, durable=False)
    await store.create_account("alice", hash_password(PASSWORD, hasher=FAST_HASHER))
    await store.close()
    mbox = b"From sender@example.net Mon Dec  7 00:00:00 2026\n" + MESSAGE
    code, err = await roost_deliver(data_dir, mbox, "-d", "alice", "-m", "Missing")
    assert code == 0, err
    assert (await roost_deliver(data_dir, MESSAGE, "-d", "nobody"))[0] == 67
    store = await SqliteStore.open(data_dir, durable=False)
    account = await store.open_account("alice")
    try:
        inbox = await account.get_mailbox("INBOX")  # the missing folder: INBOX instead
        (meta,) = await account.fetch_meta(inbox.id, (await account.snapshot(inbox.id)).uids)
        stored = b"".join([chunk async for chunk in account.read_message(meta)])
    finally:
        await account.close()
        await store.close()
    assert stored.startswith(b"Delivered-To: alice\r\nReceived: from localhost\r\n")
    assert stored.endswith(b"\r\nFrom: sender@example.net\r\nSubject: lda\r\n\r\nHello.\r\n")


async def test_sieve_reject_and_fileinto_with_roost_deliver(lmtp: LmtpServer) -> None:
    """``roost deliver`` runs the same filtering: a reject exits 77 (EX_NOPERM) with the
    reason on stderr, for the MTA's bounce (RFC 5429 §2.1.1); fileinto files."""
    from roost import sieve

    account = await lmtp.store.open_account("alice")
    source = 'require ["reject", "fileinto"];\n'
    source += 'if header :is "subject" "lda" { reject "Not here"; stop; }\n'
    source += 'fileinto "Archive";\n'
    await account.put_script(
        "s", source, sieve.compile_script(source).to_json(), sieve.FORMAT_VERSION
    )
    await account.set_active_script("s")
    await account.close()
    code, err = await roost_deliver(lmtp.data_dir, MESSAGE, "-d", "alice")
    assert code == 77 and b"Not here" in err, err
    other = MESSAGE.replace(b"Subject: lda", b"Subject: other")
    assert (await roost_deliver(lmtp.data_dir, other, "-d", "alice"))[0] == 0
    assert await lmtp.messages() == []
    assert len(await lmtp.messages(mailbox="Archive")) == 1
