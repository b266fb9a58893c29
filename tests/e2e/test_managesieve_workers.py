"""ManageSieve in a real ``roost serve`` with two workers: the listener is bound by the
supervisor and inherited by the workers; a script uploaded there files the next LMTP
delivery, whichever worker takes either connection."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.auth.passwords import hash_password
from roost.store.sqlite import SqliteStore
from tests.conftest import FAST_HASHER
from tests.managesieve.conftest import SieveClient
from tests.support.lmtp_client import LmtpClient
from tests.support.server_process import RoostProcess

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes need POSIX")

SCRIPT = b'require "fileinto";\r\nfileinto "Archive";\r\n'


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rmw-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_upload_then_deliver_across_workers(short_dir: Path) -> None:
    data_dir = short_dir / "d"
    store = await SqliteStore.open(data_dir)
    await store.create_account("alice", hash_password("pw", hasher=FAST_HASHER))
    await store.close()
    config = short_dir / "roost.toml"
    config.write_text(
        f"[server]\ndata_dir = {str(data_dir)!r}\nshutdown_timeout = 2.0\nworkers = 2\n"
        '[imap]\nlisten = ["127.0.0.1:0"]\ntls_listen = []\nstarttls = false\n'
        "[pop3]\nlisten = []\ntls_listen = []\nstarttls = false\n"
        "[auth]\nfailure_delay = 0.0\n"
        '[lmtp]\nlisten = ["127.0.0.1:0"]\n'
        '[delivery]\ndomains = ["example.org"]\nstrip_domain = true\n'
        '[managesieve]\nlisten = ["127.0.0.1:0"]\nstarttls = false\nallow_plaintext_auth = true\n'
    )
    server = RoostProcess(config, short_dir / "roost.log")
    server.start()
    try:
        assert server.managesieve_port
        reader, writer = await asyncio.open_connection("127.0.0.1", server.managesieve_port)
        client = SieveClient(reader, writer)
        assert (await client.response())[1].startswith(b"OK")
        token = base64.b64encode(b"\0alice\0pw").decode()
        assert (await client.command(f'AUTHENTICATE "PLAIN" "{token}"'))[1].startswith(b"OK")
        put = b'PUTSCRIPT "s" {%d+}\r\n' % len(SCRIPT) + SCRIPT
        assert (await client.command(put))[1].startswith(b"OK")
        assert (await client.command('SETACTIVE "s"'))[1].startswith(b"OK")
        await client.command("LOGOUT")
        await client.close()
        for _ in range(4):  # several connections: both workers serve some
            lmtp = await LmtpClient.connect("127.0.0.1", server.lmtp_port)
            assert (await lmtp.lhlo()).startswith("250")
            _, final = await lmtp.send_message(
                "s@example.net", ["alice@example.org"], b"Subject: x\r\n\r\nHi.\r\n"
            )
            assert final[0].startswith("250 2.0.0"), final
            await lmtp.close()
    finally:
        assert server.stop() == 0
    assert not server.errors_logged()
    store = await SqliteStore.open(data_dir)
    account = await store.open_account("alice")
    try:
        archive = await account.get_mailbox("Archive")
        inbox = await account.get_mailbox("INBOX")
        assert len((await account.snapshot(archive.id)).uids) == 4
        assert len((await account.snapshot(inbox.id)).uids) == 0
    finally:
        await account.close()
        await store.close()
