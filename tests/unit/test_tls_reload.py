"""A renewed certificate is put into the live context (SIGHUP): new handshakes get it,
open connections keep going, and a broken file leaves the old certificate serving."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from roost.runtime.tls import TlsError, ensure_self_signed, reload_certificate, server_context


def der_of(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


async def peer_certificate(port: int) -> tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return der, reader, writer


async def test_reload_serves_the_new_certificate(tmp_path: Path) -> None:
    old_cert, old_key = ensure_self_signed(tmp_path / "old")
    new_cert, new_key = ensure_self_signed(tmp_path / "new")
    context = server_context(old_cert, old_key)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        der, reader, writer = await peer_certificate(port)
        assert der == der_of(old_cert)
        reload_certificate(context, new_cert, new_key)
        der_after, _reader2, writer2 = await peer_certificate(port)
        assert der_after == der_of(new_cert)
        writer.write(b"still here\n")  # the connection made before the reload lives on
        assert await reader.readline() == b"still here\n"

        (tmp_path / "broken.pem").write_text("not a certificate")
        with pytest.raises(TlsError):
            reload_certificate(context, tmp_path / "broken.pem", new_key)
        der_broken, _reader3, writer3 = await peer_certificate(port)
        assert der_broken == der_of(new_cert)
        for w in (writer, writer2, writer3):
            w.close()
    finally:
        server.close()
        await server.wait_closed()
