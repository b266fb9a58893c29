"""The HTTP listener: metrics, health, readiness, Thunderbird autoconfig and Outlook
autodiscover, over a real socket on port 0; every request bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.config import Settings
from roost.observability import metrics
from roost.runtime.http import (
    ClientSettings,
    HttpApp,
    MailService,
    autoconfig_xml,
    autodiscover_xml,
    client_settings,
    start_http,
)

CLIENTS = ClientSettings(
    "mail.example.org",
    (
        MailService("imap", 993, "SSL"),
        MailService("imap", 143, "STARTTLS"),
        MailService("pop3", 995, "SSL"),
    ),
)


class Ready:
    value = True

    async def __call__(self) -> bool:
        return self.value


@pytest.fixture
async def http() -> AsyncIterator[tuple[int, Ready]]:
    ready = Ready()
    app = HttpApp(metrics=metrics.exposition, ready=ready, clients=CLIENTS)
    server = await start_http(app, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, ready
    finally:
        server.close()
        await server.wait_closed()


async def fetch(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def get(path: str, host: str = "mail.example.org") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def test_health_and_readiness(http: tuple[int, Ready]) -> None:
    port, ready = http
    assert await fetch(port, get("/healthz")) == (200, b"ok\n")
    assert await fetch(port, get("/readyz")) == (200, b"ready\n")
    ready.value = False
    assert (await fetch(port, get("/readyz")))[0] == 503


async def test_metrics_are_in_prometheus_text_format(http: tuple[int, Ready]) -> None:
    metrics.declare("imap", ["NOOP"])
    metrics.COMMANDS.labels("imap", "NOOP", "ok").inc()
    status, body = await fetch(http[0], get("/metrics"))
    assert status == 200
    text = body.decode()
    assert "# TYPE roost_commands_total counter" in text
    assert 'roost_commands_total{command="NOOP",protocol="imap",result="ok"}' in text
    assert 'roost_sign_ins_total{method="any",protocol="imap",result="throttled"}' in text


def test_unknown_command_names_share_one_label() -> None:
    known = frozenset({"NOOP", "FETCH"})
    assert metrics.command_label("noop", known) == "NOOP"
    assert metrics.command_label("XYZZY" * 40, known) == "other"


async def test_thunderbird_autoconfig_names_the_listeners(http: tuple[int, Ready]) -> None:
    status, body = await fetch(
        http[0], get("/mail/config-v1.1.xml?emailaddress=alice%40example.org")
    )
    assert status == 200
    text = body.decode()
    assert '<emailProvider id="example.org">' in text
    assert text.index("<port>993</port>") < text.index("<port>143</port>")  # TLS first
    assert "<socketType>STARTTLS</socketType>" in text
    assert '<incomingServer type="pop3">' in text
    assert "<username>%EMAILADDRESS%</username>" in text
    # The well-known path, the domain taken from the autoconfig. host name.
    status, body = await fetch(
        http[0],
        get("/.well-known/autoconfig/mail/config-v1.1.xml", host="autoconfig.example.net"),
    )
    assert status == 200 and b'<emailProvider id="example.net">' in body


async def test_outlook_autodiscover(http: tuple[int, Ready]) -> None:
    body = (
        b'<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
        b'autodiscover/outlook/requestschema/2006"><Request>'
        b"<EMailAddress>alice@example.org</EMailAddress>"
        b"<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/"
        b"outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"
    )
    request = (
        b"POST /Autodiscover/Autodiscover.xml HTTP/1.1\r\nHost: autodiscover.example.org\r\n"
        b"Content-Type: text/xml\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    status, answer = await fetch(http[0], request + body)
    assert status == 200
    text = answer.decode()
    assert "<Type>IMAP</Type>" in text and "<Port>993</Port>" in text
    assert "<Encryption>SSL</Encryption>" in text
    assert "<LoginName>alice@example.org</LoginName>" in text
    assert "<Type>SMTP</Type>" not in text  # no submission listener configured


async def test_bad_requests_get_a_status_not_a_hang(http: tuple[int, Ready]) -> None:
    port = http[0]
    assert (await fetch(port, get("/nothing")))[0] == 404
    assert (await fetch(port, b"BREW /pot\r\n\r\n"))[0] == 400
    assert (await fetch(port, b"POST /metrics HTTP/1.1\r\n\r\n"))[0] == 405
    huge = b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n"
    assert (await fetch(port, huge))[0] == 431
    big_body = b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nContent-Length: 999999\r\n\r\n"
    assert (await fetch(port, big_body))[0] == 413
    assert (await fetch(port, get("/mail/config-v1.1.xml", host="")))[0] == 400


def test_submission_listeners_are_announced_as_the_outgoing_server(tmp_path: Path) -> None:
    """A client set up from autoconfig must be able to send too: the submission
    listeners are its outgoing server, implicit TLS (465) before STARTTLS (587)."""
    settings = Settings.from_toml(
        f"""
        [server]
        data_dir = "{tmp_path}"
        hostname = "mail.example.org"
        [tls]
        cert = "{tmp_path}/cert.pem"
        key = "{tmp_path}/key.pem"
        [imap]
        tls_listen = ["127.0.0.1:993"]
        [submission]
        listen = ["127.0.0.1:587"]
        tls_listen = ["127.0.0.1:465"]
        """
    )
    clients = client_settings(settings)
    assert MailService("smtp", 465, "SSL") in clients.services
    assert MailService("smtp", 587, "STARTTLS") in clients.services
    text = autoconfig_xml(clients, "example.org").decode()
    outgoing = text[text.index('<outgoingServer type="smtp">') :]
    assert text.index("</incomingServer>") < text.index("<outgoingServer")
    assert outgoing.index("<port>465</port>") < outgoing.index("<port>587</port>")
    assert "<socketType>STARTTLS</socketType>" in outgoing
    pox = autodiscover_xml(clients, "alice@example.org").decode()
    smtp = pox[pox.index("<Type>SMTP</Type>") :]
    assert "<Port>465</Port>" in smtp.split("</Protocol>")[0]
    assert "<Encryption>SSL</Encryption>" in smtp.split("</Protocol>")[0]


def test_without_submission_listeners_no_outgoing_server_is_announced(tmp_path: Path) -> None:
    settings = Settings.from_toml(
        f'[server]\ndata_dir = "{tmp_path}"\n[tls]\ncert = "{tmp_path}/c"\nkey = "{tmp_path}/k"\n'
    )
    assert all(s.protocol != "smtp" for s in client_settings(settings).services)
