"""Debian's ``sieve-connect`` against Roost's ManageSieve (RFC 5804): upload, list,
activate, download, delete — an independent client, as people use it."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.managesieve.conftest import SieveServer, managesieve_server

SIEVE_CONNECT = shutil.which("sieve-connect")
pytestmark = pytest.mark.skipif(
    SIEVE_CONNECT is None, reason="sieve-connect is not installed (apt-get install sieve-connect)"
)

SCRIPT = 'require ["fileinto"];\nif header :contains "subject" "[list]" { fileinto "Lists"; }\n'


async def sieve_connect(server: SieveServer, *args: str) -> tuple[int, str]:
    """Run sieve-connect with the password on a pipe (--passwordfd). It starts TLS when
    offered; the test server's certificate is self-signed (--notlsverify)."""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, PASSWORD.encode() + b"\n")
    os.close(write_fd)
    assert SIEVE_CONNECT is not None
    try:
        process = await asyncio.create_subprocess_exec(
            SIEVE_CONNECT,
            *("--server", "127.0.0.1", "--port", str(server.port), "--user", "alice"),
            *("--passwordfd", str(read_fd), "--notlsverify", "--authmech", "PLAIN"),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            pass_fds=(read_fd,),
        )
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        os.close(read_fd)
    return process.returncode or 0, output.decode("utf-8", "replace")


async def test_upload_list_activate_download_delete(tmp_path: Path) -> None:
    local = tmp_path / "filter.sieve"
    local.write_text(SCRIPT)
    async with managesieve_server() as server:
        code, out = await sieve_connect(
            server, "--upload", "--localsieve", str(local), "--remotesieve", "filter"
        )
        assert code == 0, out
        code, out = await sieve_connect(server, "--activate", "--remotesieve", "filter")
        assert code == 0, out
        code, out = await sieve_connect(server, "--list")
        assert code == 0, out
        assert "filter" in out and "ACTIVE" in out.upper()
        downloaded = tmp_path / "copy.sieve"
        code, out = await sieve_connect(
            server, "--download", "--remotesieve", "filter", "--localsieve", str(downloaded)
        )
        assert code == 0, out
        assert downloaded.read_text() == SCRIPT
        code, out = await sieve_connect(server, "--deactivate")
        assert code == 0, out
        code, out = await sieve_connect(server, "--delete", "--remotesieve", "filter")
        assert code == 0, out
        code, out = await sieve_connect(server, "--list")
        assert code == 0 and "filter" not in out, out


async def test_starttls_upload(tmp_path: Path) -> None:
    """With sign-in refused before TLS, sieve-connect's STARTTLS path is the only one."""
    local = tmp_path / "filter.sieve"
    local.write_text(SCRIPT)
    async with managesieve_server(allow_plaintext_auth=False) as server:
        code, out = await sieve_connect(
            server, "--upload", "--localsieve", str(local), "--remotesieve", "f"
        )
        assert code == 0, out
        account = await server.store.open_account("alice")
        try:
            assert (await account.get_script("f")).source == SCRIPT
        finally:
            await account.close()
