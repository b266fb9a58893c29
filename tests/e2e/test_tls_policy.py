"""The TLS policy as an outside scanner sees it (Debian's sslscan, installed by
.ci/run): TLS 1.2 and 1.3 only, forward-secret AEAD ciphers only, no compression, no
client renegotiation — on implicit TLS and after STARTTLS."""

from __future__ import annotations

import asyncio
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import start_imap_server, stop_imap_server

pytestmark = pytest.mark.skipif(
    shutil.which("sslscan") is None, reason="sslscan not installed (Debian package sslscan)"
)


async def scan(target: str, *extra: str) -> ET.Element:
    process = await asyncio.create_subprocess_exec(
        "sslscan",
        "--no-colour",
        "--xml=-",
        *extra,
        target,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, output[-2000:]
    start = output.index(b"<?xml")
    return ET.fromstring(output[start:])


def check_policy(report: ET.Element) -> None:
    enabled = {
        (p.get("type"), p.get("version"))
        for p in report.iter("protocol")
        if p.get("enabled") == "1"
    }
    assert enabled == {("tls", "1.2"), ("tls", "1.3")}
    ciphers = [c for c in report.iter("cipher")]
    assert ciphers
    for cipher in ciphers:
        name = cipher.get("cipher", "")
        if cipher.get("sslversion") == "TLSv1.2":
            assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name
        else:
            assert cipher.get("sslversion") == "TLSv1.3", name
    for compression in report.iter("compression"):
        assert compression.get("supported") == "0"
    for renegotiation in report.iter("renegotiation"):
        assert renegotiation.get("supported") == "0"


@pytest.mark.timeout(300)
async def test_implicit_tls_policy(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path, implicit_tls=True)
    try:
        check_policy(await scan(f"{handle.host}:{handle.port}"))
    finally:
        await stop_imap_server(handle, server)


@pytest.mark.timeout(300)
async def test_starttls_policy(tmp_path: Path) -> None:
    handle, server = await start_imap_server(tmp_path, allow_plaintext_auth=False)
    try:
        check_policy(await scan(f"{handle.host}:{handle.port}", "--starttls-imap"))
    finally:
        await stop_imap_server(handle, server)
