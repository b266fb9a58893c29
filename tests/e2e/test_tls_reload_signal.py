"""Certificate renewal: SIGHUP makes a running server (each worker, under a supervisor)
load the new certificate; new handshakes get it and connections already open go on."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import ssl
import time
from pathlib import Path

import pytest

from roost.runtime.tls import ensure_self_signed
from tests.support.server_process import RoostProcess

pytestmark = pytest.mark.timeout(120)


def config(path: Path, data_dir: Path, cert: Path, key: Path, workers: int) -> Path:
    path.write_text(
        f"""[server]
data_dir = {str(data_dir)!r}
shutdown_timeout = 2.0
workers = {workers}
[imap]
listen = ["127.0.0.1:0"]
tls_listen = []
starttls = true
allow_plaintext_auth = true
[pop3]
listen = []
tls_listen = []
starttls = false
[tls]
cert = {str(cert)!r}
key = {str(key)!r}
[log]
level = "info"
"""
    )
    return path


async def starttls(port: int) -> tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"t STARTTLS\r\n")
    assert (await reader.readline()).startswith(b"t OK")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    await writer.start_tls(client)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return der, reader, writer


def der_of(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


def replace(source: Path, target: Path) -> None:
    shutil.copyfile(source, target.with_suffix(".new"))
    os.replace(target.with_suffix(".new"), target)


@pytest.mark.parametrize("workers", [1, 2])
async def test_sighup_reloads_the_certificate(tmp_path: Path, workers: int) -> None:
    old_cert, old_key = ensure_self_signed(tmp_path / "old")
    new_cert, new_key = ensure_self_signed(tmp_path / "new")
    live = tmp_path / "live"
    live.mkdir()
    cert, key = live / "cert.pem", live / "key.pem"
    shutil.copyfile(old_cert, cert)
    shutil.copyfile(old_key, key)
    log_path = tmp_path / "server.log"
    server = RoostProcess(
        config(tmp_path / "roost.toml", tmp_path / "data", cert, key, workers), log_path
    )
    port = await asyncio.to_thread(server.start)
    try:
        der, reader, writer = await starttls(port)
        assert der == der_of(old_cert)
        replace(new_cert, cert)
        replace(new_key, key)
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while log_path.read_text().count("certificate reloaded") < workers:
            assert time.monotonic() < deadline, log_path.read_text()[-2000:]
            await asyncio.sleep(0.05)  # the reload happens in another process
        for _ in range(2 * workers + 2):
            der_after, _reader, other = await starttls(port)
            assert der_after == der_of(new_cert)
            other.close()
        writer.write(b"n NOOP\r\n")  # the connection from before the reload goes on
        assert (await reader.readline()).startswith(b"n OK")
        writer.close()
    finally:
        await asyncio.to_thread(server.stop)
