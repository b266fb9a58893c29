"""A full disk (ARCHITECTURE.md decision 8): APPEND answers ``NO [LIMIT]`` with a clear
reason, nothing already stored is damaged, other commands fail cleanly or work, and
the server recovers by itself when space returns.

The data directory lives on a small (8 MiB) tmpfs mounted by the test (root only; skipped with
the reason where mounting is not permitted). The server is the real one, durable, as
a child process; its log is kept outside the small disk.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from roost.auth.passwords import hash_password
from roost.store.sqlite import SqliteStore
from tests.support.imap_client import ImapClient
from tests.support.server_process import RoostProcess, integrity_check, write_config

USER, PASSWORD = "full", "full password"
SPOOL_THRESHOLD = 16 * 1024
DISK = "8m"
BALLAST = 4 * 1024 * 1024
FULL = re.compile(rb"^A\d+ NO \[(LIMIT|OVERQUOTA)\] .*full", re.IGNORECASE)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs, unmounted afterwards whatever happens."""
    if sys.platform != "linux":
        pytest.skip("needs a Linux tmpfs mount")
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(path: Path) -> int:
    """Write ``path`` until the disk is full; return how many bytes it took."""
    written = 0
    with path.open("wb", buffering=0) as filler:
        try:
            while True:
                written += filler.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return written


def message(number: int, size: int) -> bytes:
    header = b"Subject: message %d\r\n\r\n" % number
    line = b"%d " % number + b"x" * 70 + b"\r\n"
    return header + line * (size // len(line) + 1)


async def fetch_all(client: ImapClient) -> dict[int, bytes]:
    await client.ok("EXAMINE INBOX")
    reply = await client.ok("UID FETCH 1:* (BODY.PEEK[])")
    messages = {}
    for line in reply.untagged:
        found = re.search(rb"UID (\d+) BODY\[\] \{(\d+)\}\r\n", line)
        assert found, line[:100]
        start = found.end()
        messages[int(found.group(1))] = line[start : start + int(found.group(2))]
    return messages


async def append(client: ImapClient, body: bytes, *, sync: bool = False) -> bytes:
    tag = client.next_tag()
    if sync:
        await client.send(f"{tag} APPEND INBOX {{{len(body)}}}\r\n")
        line = await client.read_response()
        assert line.startswith(b"+"), line
        await client.send(body + b"\r\n")
    else:
        await client.send(f"{tag} APPEND INBOX {{{len(body)}+}}\r\n".encode() + body + b"\r\n")
    return (await client.read_until_tagged(tag)).line


async def test_full_disk(small_disk: Path, tmp_path: Path) -> None:
    data_dir = small_disk / "data"
    store = await SqliteStore.open(data_dir, durable=True)
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    await store.create_account(USER, hash_password(PASSWORD, hasher=hasher))
    await store.close()
    config = write_config(
        tmp_path / "roost.toml", data_dir, limits={"spool_threshold": SPOOL_THRESHOLD}
    )
    server = RoostProcess(config, tmp_path / "server.log")
    try:
        port = await asyncio.to_thread(server.start)
        await check_full_disk(port, small_disk)
        assert server.stop() == 0
        # Restarted on the same directory, everything acknowledged is still there.
        port = await asyncio.to_thread(server.start)
        client = await ImapClient.connect("127.0.0.1", port)
        await client.login(USER, PASSWORD)
        assert len(await fetch_all(client)) > 0
        await client.close()
        assert server.stop() == 0
    finally:
        server.stop()
    integrity_check(data_dir)
    assert server.errors_logged() == []


async def check_full_disk(port: int, disk: Path) -> None:
    client = await ImapClient.connect("127.0.0.1", port)
    await client.login(USER, PASSWORD)
    stored: dict[int, bytes] = {}
    # What the administrator will free later: most of the disk.
    ballast = disk / "ballast"
    ballast.write_bytes(b"\0" * BALLAST)

    # Fill the rest with mail, spooled (big) and in-memory (small) literals in turn.
    refusal = b""
    for number in range(200):
        body = message(number, 100_000 if number % 2 else 6_000)
        line = await append(client, body)
        if b" OK " not in line:
            refusal = line
            break
        stored[appended_uid(line)] = body
    assert FULL.match(refusal), refusal
    assert len(stored) >= 3

    # Then to the last byte, and every kind of APPEND is refused the same clear way.
    fill(disk / "filler")
    for number, (size, sync) in enumerate([(100_000, False), (100_000, True), (500, False)]):
        line = await append(client, message(1000 + number, size), sync=sync)
        assert FULL.match(line), (size, sync, line)
    await client.ok("NOOP")  # the connection goes on

    # Nothing already stored is damaged, and a second client can sign in and read it.
    other = await ImapClient.connect("127.0.0.1", port)
    await other.login(USER, PASSWORD)
    assert await fetch_all(other) == stored
    await other.close()

    # Other writes on the full disk work or fail cleanly; SELECT works (no \Recent then).
    await client.ok("SELECT INBOX")
    last = max(stored)
    outcomes = []
    for command in [
        "STORE 1 +FLAGS (\\Flagged)",
        "CREATE Overflow",
        "COPY 1 Trash",
        f"UID STORE {last} +FLAGS (\\Deleted)",
        "EXPUNGE",
    ]:
        reply = await client.command(command)
        assert reply.status == "OK" or FULL.match(reply.line), (command, reply.line)
        outcomes.append(reply.status)
    if outcomes[-2:] == ["OK", "OK"]:  # flagged \Deleted, then expunged
        del stored[last]
    assert await fetch_all(client) == stored

    # Space returns: the same server accepts mail again, without a restart.
    ballast.unlink()
    (disk / "filler").unlink()
    for number, (size, sync) in enumerate([(100_000, False), (100_000, True), (500, False)]):
        body = message(2000 + number, size)
        line = await append(client, body, sync=sync)
        assert b" OK [APPENDUID " in line, line
        stored[appended_uid(line)] = body
    assert await fetch_all(client) == stored
    await client.ok("LOGOUT")
    await client.close()


def appended_uid(line: bytes) -> int:
    found = re.search(rb"APPENDUID \d+ (\d+)", line)
    assert found, line
    return int(found.group(1))


# ---- the receiver alone, on any system ------------------------------------------------


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["write", "create"])
def test_a_literal_that_cannot_be_spooled_drops_its_command_only(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by test_full_disk: an ENOSPC while spooling escaped the receiver and ended
    the connection with an internal error. Now the command is read to its end and
    becomes SpoolFailed; the next command is parsed as usual and no file is left. When
    the file cannot even be created for a synchronizing literal, the command fails at
    once: the client is not asked for data that has nowhere to go (RFC 9051 §7.5)."""
    from roost.imap.wire import receiver as receiver_module
    from roost.imap.wire.commands import Noop
    from roost.imap.wire.receiver import NeedData, NeedLiteral, Receiver, SpoolFailed

    if where == "write":
        monkeypatch.setattr(receiver_module, "_write_all", _no_space)
    else:
        monkeypatch.setattr(receiver_module.tempfile, "mkstemp", _no_space)
    receiver = Receiver(spool_threshold=4, spool_dir=tmp_path)
    failed = SpoolFailed("a", os.strerror(errno.ENOSPC), no_space=True)
    cases = [
        (b"a APPEND INBOX {10+}\r\n0123456789 {3+}\r\nabc\r\nb NOOP\r\n", [failed]),
        (
            b"a APPEND INBOX {10}\r\n0123456789 {3+}\r\nabc\r\nb NOOP\r\n",
            [NeedLiteral(10), failed],
        ),
    ]
    if where == "create":
        cases[1] = (b"a APPEND INBOX {10}\r\nb NOOP\r\n", [failed])
    for data, expected in cases:
        events = []
        for byte in data:
            receiver.feed(bytes([byte]))
            while not isinstance(event := receiver.next_event(), NeedData):
                events.append(event)
        assert events == [*expected, Noop("b")]
    receiver.close()
    assert list(tmp_path.iterdir()) == []
