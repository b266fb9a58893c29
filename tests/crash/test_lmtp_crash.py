"""Crash safety of LMTP (ARCHITECTURE decision 2): SIGKILL ``roost serve`` during a
flood of deliveries; every message answered ``250`` is there afterwards, whole and
once, and every SQLite file passes ``integrity_check``. A message not yet answered
may be there or not, but never half.

``ROOST_LMTP_CRASH_CYCLES`` (default 3) and ``ROOST_CRASH_SEED`` run it longer or
differently by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
from pathlib import Path

from roost.auth.passwords import hash_password
from roost.store.sqlite import SqliteStore
from tests.conftest import FAST_HASHER
from tests.crash.conftest import CRASH_STATS
from tests.support.lmtp_client import LmtpClient
from tests.support.server_process import RoostProcess, integrity_check

CYCLES = int(os.environ.get("ROOST_LMTP_CRASH_CYCLES", "3"))
SEED = int(os.environ.get("ROOST_CRASH_SEED", "20261207"))
CONNECTIONS = 4
USERS = ("alice", "bob")
LOST = (ConnectionError, OSError, asyncio.IncompleteReadError, AssertionError, TimeoutError)


def config_text(data_dir: Path) -> str:
    return "\n".join(
        [
            "[server]",
            f"data_dir = {str(data_dir)!r}",
            "shutdown_timeout = 2.0",
            "workers = 1",
            "[imap]",
            'listen = ["127.0.0.1:0"]',
            "tls_listen = []",
            "starttls = false",
            "[pop3]",
            "listen = []",
            "tls_listen = []",
            "starttls = false",
            "[lmtp]",
            'listen = ["127.0.0.1:0"]',
            "spool_threshold = 16384",
            "[delivery]",
            "strip_domain = true",
            "[log]",
            'level = "warning"',
        ]
    )


def body(tag: str, size: int) -> bytes:
    return f"Subject: {tag}\r\n\r\n".encode() + b"line of the message body\r\n" * size


async def flood(port: int, rng: random.Random, acked: dict[str, bytes], worker: int) -> None:
    """Deliver until the server dies; record each message answered 250 for all."""
    try:
        client = await LmtpClient.connect("127.0.0.1", port)
        assert (await client.lhlo()).startswith("250")
        n = 0
        while True:
            n += 1
            tag = f"w{worker}-{n}-{rng.randrange(10**9)}"
            message = body(tag, rng.choice((1, 10, 2000)))  # some take the file spool
            _, final = await client.send_message(
                "flood@example.net", [f"{user}@example.org" for user in USERS], message
            )
            if len(final) == len(USERS) and all(r.startswith("250") for r in final):
                acked[tag] = message
    except LOST:
        return


async def stored_messages(data_dir: Path) -> dict[str, list[bytes]]:
    """user -> the bytes of each message in INBOX."""
    store = await SqliteStore.open(data_dir, durable=False)
    out: dict[str, list[bytes]] = {}
    try:
        for user in USERS:
            account = await store.open_account(user)
            try:
                inbox = await account.get_mailbox("INBOX")
                uids = (await account.snapshot(inbox.id)).uids
                metas = await account.fetch_meta(inbox.id, uids, with_model=False)
                out[user] = [
                    b"".join([chunk async for chunk in account.read_message(meta)])
                    for meta in metas
                ]
            finally:
                await account.close()
    finally:
        await store.close()
    return out


async def test_sigkill_during_lmtp_flood(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    store = await SqliteStore.open(data_dir)
    for user in USERS:
        await store.create_account(user, hash_password("pw", hasher=FAST_HASHER))
    await store.close()
    config = tmp_path / "roost.toml"
    config.write_text(config_text(data_dir))
    server = RoostProcess(config, tmp_path / "roost.log")
    acked: dict[str, bytes] = {}
    checked = 0
    try:
        for _ in range(CYCLES):
            server.start()
            tasks = [
                asyncio.create_task(flood(server.lmtp_port, random.Random(rng.random()), acked, i))
                for i in range(CONNECTIONS)
            ]
            # Let deliveries pile up (bounded wait on the acknowledgements, no fixed sleep).
            target = len(acked) + rng.randrange(5, 40)
            for _ in range(2000):
                if len(acked) >= target:
                    break
                await asyncio.sleep(0.005)
            server.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*tasks), 30)
            integrity_check(data_dir)
            stored = await stored_messages(data_dir)
            for user in USERS:
                by_tag: dict[str, list[bytes]] = {}
                for message in stored[user]:
                    found = re.search(rb"\r\nSubject: (\S+)\r\n", message)
                    assert found is not None, message[:300]
                    by_tag.setdefault(found.group(1).decode(), []).append(message)
                for tag, message in acked.items():
                    copies = by_tag.get(tag, [])
                    assert len(copies) == 1, f"{user}: {tag} stored {len(copies)} times"
                    assert copies[0].endswith(message)
                    assert copies[0].startswith(b"Return-Path: <flood@example.net>\r\n")
                    checked += 1
                for tag, copies in by_tag.items():  # unacknowledged ones: whole or absent
                    for copy in copies:
                        size = copy.count(b"line of the message body\r\n")
                        assert copy.endswith(body(tag, size)), tag
        assert acked, "no delivery was acknowledged"
    finally:
        server.stop()
    assert not server.errors_logged()
    CRASH_STATS.append((CYCLES, len(acked), checked))
