"""Issue 13 item 4: the data directory is private whatever the umask.

Under umask 022 (the usual default), everything a running server creates — account
directories, ``blobs/`` and its fan-out, ``mail.db`` with its ``-wal`` and ``-shm``,
``users.db``, ``spool/``, ``tls/`` and its key — has no group or other permission; an
existing directory opened to others is closed again at start, and one owned by
another user is refused."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.runtime.data_dir import DataDirError, private_umask, secure_data_dir
from roost.runtime.listeners import ServerError
from roost.runtime.opening import open_store
from tests.conftest import start_imap_server, stop_imap_server


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def open_to_others(root: Path) -> list[str]:
    found = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            found.append(f"{path.relative_to(root)} {stat.filemode(mode)}")
    return found


async def test_a_store_in_use_is_private_under_umask_022(tmp_path: Path, umask_022: None) -> None:
    handle, server = await start_imap_server(tmp_path)
    try:
        await handle.add_user("alice")
        client = await handle.login()
        big = b"Subject: big\r\n\r\n" + b"x" * 200_000 + b"\r\n"  # a blob, not inline
        await client.append("INBOX", big)
        await client.append("INBOX", b"Subject: small\r\n\r\nhi\r\n")
        data = tmp_path / "data"
        names = {path.name for path in data.rglob("*")}
        assert {"users.db", "mail.db", "mail.db-wal", "blobs"} <= names
        assert open_to_others(data) == []
    finally:
        await stop_imap_server(handle, server)


async def test_open_store_makes_an_existing_directory_private(
    tmp_path: Path, umask_022: None, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    store = await open_store(data)
    await store.create_account("alice", "x")
    await store.close()
    for path in [data, *data.rglob("*")]:  # as an older Roost under umask 022 left it
        path.chmod(0o755 if path.is_dir() else 0o644)
    (data / "spool").mkdir(mode=0o755)
    (data / "spool" / "roost-literal-x").write_bytes(b"left")
    assert open_to_others(data)
    with caplog.at_level(logging.WARNING, logger="roost.server"):
        store = await open_store(data)
    await store.close()
    assert open_to_others(data) == []
    assert "made private" in caplog.text


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
async def test_an_entry_of_another_user_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "users.db").write_bytes(b"")
    os.chown(data / "users.db", 65534, 65534)
    with pytest.raises(ServerError, match="belongs to uid 65534"):
        await open_store(data)
    with pytest.raises(DataDirError):
        secure_data_dir(data)


def test_private_umask(umask_022: None) -> None:
    assert private_umask() == 0o022
    assert os.umask(0o077) == 0o077
