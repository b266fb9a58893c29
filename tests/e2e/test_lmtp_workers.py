"""LMTP in a real ``roost serve`` process tree with two workers: TCP and Unix-socket
listeners bound by the supervisor and inherited by the workers; an IMAP session idling
in one worker is told of every delivery, whichever worker took it, and of ``roost
deliver``'s through the private socket. The sockets have the configured modes."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.auth.passwords import hash_password
from roost.store.sqlite import SqliteStore
from tests.conftest import FAST_HASHER
from tests.support.imap_client import ImapClient
from tests.support.lmtp_client import LmtpClient
from tests.support.server_process import RoostProcess

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="worker processes need POSIX")

MESSAGE = b"Subject: workers\r\n\r\nHello.\r\n"


async def exists(imap: ImapClient) -> int:
    """The next EXISTS count the idling session is told (RECENT may come along)."""
    while True:
        line = await asyncio.wait_for(imap.read_response(), 10)
        if line.endswith(b" EXISTS"):
            return int(line.split()[1])
        assert line.endswith(b" RECENT"), line


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rw-", dir="/tmp"))  # Unix socket paths are short
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_lmtp_across_workers(short_dir: Path) -> None:
    data_dir = short_dir / "d"
    store = await SqliteStore.open(data_dir)
    await store.create_account("alice", hash_password("pw", hasher=FAST_HASHER))
    await store.close()
    socket_path = short_dir / "lmtp.sock"
    config = short_dir / "roost.toml"
    config.write_text(
        "\n".join(
            [
                "[server]",
                f"data_dir = {str(data_dir)!r}",
                "shutdown_timeout = 2.0",
                "workers = 2",
                "[imap]",
                'listen = ["127.0.0.1:0"]',
                "tls_listen = []",
                "starttls = false",
                "allow_plaintext_auth = true",
                "[pop3]",
                "listen = []",
                "tls_listen = []",
                "starttls = false",
                "[auth]",
                "failure_delay = 0.0",
                "[lmtp]",
                f'listen = ["127.0.0.1:0", "unix:{socket_path}"]',
                "socket_mode = 0o640",
                "[delivery]",
                'domains = ["example.org"]',
                "strip_domain = true",
            ]
        )
    )
    server = RoostProcess(config, short_dir / "roost.log")
    server.start()
    try:
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o640
        private = data_dir / "run" / "lmtp"
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        imap = await ImapClient.connect("127.0.0.1", server.port)
        await imap.login("alice", "pw")
        await imap.ok("SELECT INBOX")
        tag = await imap.idle()
        for n in range(1, 7):
            if n % 2:
                client = await LmtpClient.connect("127.0.0.1", server.lmtp_port)
            else:
                client = await LmtpClient.connect_unix(str(socket_path))
            assert (await client.lhlo()).startswith("250")
            _, final = await client.send_message("s@example.net", ["alice@example.org"], MESSAGE)
            assert final[0].startswith("250 2.0.0"), final
            await client.close()
            assert await exists(imap) == n
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "roost", "deliver", "-d", "alice", "--config", str(config),
            stdin=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await process.communicate(MESSAGE)
        assert process.returncode == 0
        assert await exists(imap) == 7
        await imap.done(tag)
        await imap.close()
    finally:
        assert server.stop() == 0
    assert not socket_path.exists()
    assert not server.errors_logged()
