"""The SMTP client of redirect and vacation (delivery/outbound.py) against a fake relay:
dot-stuffing, the null sender, STARTTLS when offered and wanted, refusals as SendError."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from roost.delivery.outbound import Relay, SendError, send_message
from roost.runtime.tls import ensure_self_signed
from tests.support.smtp_relay import fake_relay

MESSAGE = b"Subject: x\r\n\r\n.leading dot\r\nbare\nLF\r\n"


async def test_sends_with_dot_stuffing_and_null_sender() -> None:
    async with fake_relay() as relay:
        await send_message(
            Relay("127.0.0.1", relay.port, "roost.test"), "", ["a@b.example"], MESSAGE
        )
    (got,) = relay.received
    assert (got.sender, got.recipients) == ("", ["a@b.example"])
    assert got.data == b"Subject: x\r\n\r\n.leading dot\r\nbare\r\nLF\r\n"
    assert relay.tls_used == [False]


async def test_starttls_when_offered(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path / "tls")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    async with fake_relay(tls=server) as relay:
        target = Relay("localhost", relay.port, "roost.test", tls=client)
        await send_message(target, "s@example.net", ["a@b.example"], MESSAGE)
    assert relay.tls_used == [True]


async def test_refusal_and_no_relay_raise() -> None:
    async with fake_relay(refuse=True) as relay:
        with pytest.raises(SendError, match="550"):
            await send_message(Relay("127.0.0.1", relay.port, "r"), "s@x.example", ["a@b"], MESSAGE)
        port = relay.port
    with pytest.raises(SendError, match="cannot connect"):
        await send_message(Relay("127.0.0.1", port, "r", timeout=5), "", ["a@b"], MESSAGE)
