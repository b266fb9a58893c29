"""The small HTTP listener (``[http] listen``): metrics, health, and client autoconfiguration.

One request per connection (``Connection: close``), GET (and POST for autodiscover)
only, every size and time bounded: it faces Prometheus, a load balancer's health probe
and mail clients looking for their settings, never a browser session.

- ``/metrics``: Prometheus text format (observability/metrics.py).
- ``/healthz``: 200 while the process runs its event loop.
- ``/readyz``: 200 when the listeners are bound and the store answers, else 503.
- ``/mail/config-v1.1.xml`` and ``/.well-known/autoconfig/mail/config-v1.1.xml``:
  Thunderbird's autoconfig (the "clientConfig" format), from ``server.hostname`` and the
  configured listeners.
- ``/autodiscover/autodiscover.xml`` (any case): Outlook's POX autodiscover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from roost.config import ListenAddress, Settings
from roost.runtime.listeners import ListenError

log = logging.getLogger("roost.http")

MAX_HEAD = 16 * 1024  # request line and headers
MAX_BODY = 64 * 1024  # an autodiscover request is a few hundred bytes
TIMEOUT = 10.0  # seconds for the whole request

_EMAIL = re.compile(r"^[^\s@<>&\"']{1,128}@[A-Za-z0-9.-]{1,253}$")
_AUTODISCOVER_EMAIL = re.compile(rb"<EMailAddress>\s*([^<\s]{1,300})\s*</EMailAddress>", re.I)


@dataclass(frozen=True)
class MailService:
    """A way in for a mail client: protocol ("imap", "pop3", "smtp"), port, and how TLS
    starts ("SSL" implicit, "STARTTLS")."""

    protocol: str
    port: int
    socket_type: str


@dataclass(frozen=True)
class ClientSettings:
    hostname: str
    services: tuple[MailService, ...]


@dataclass
class HttpApp:
    """What the listener serves; the runtime fills it in."""

    metrics: Callable[[], bytes]
    ready: Callable[[], Awaitable[bool]]
    clients: ClientSettings


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def parse_head(head: bytes) -> tuple[str, str, dict[str, list[str]], dict[str, str]]:
    """Method, path, query and headers (names lower-cased) of a request head."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as error:  # pragma: no cover - latin-1 decodes anything
        raise BadRequest(400, "undecodable request") from error
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "malformed request line")
    method, target, _version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, "malformed header")
        headers[name.lower()] = value.strip()
    url = urlsplit(target)
    return method, url.path, parse_qs(url.query), headers


async def read_request(reader: asyncio.StreamReader) -> Request:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as error:
        raise BadRequest(431, "request head too large") from error
    except asyncio.IncompleteReadError as error:
        raise BadRequest(400, "incomplete request") from error
    method, path, query, headers = parse_head(head[:-4])
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        raise BadRequest(400, "bad Content-Length")
    length = int(length_text)
    if length > MAX_BODY:
        raise BadRequest(413, "request body too large")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise BadRequest(411, "chunked bodies are not accepted")
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, query, headers, body)


def _response(status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    reasons = {
        200: "OK",
        400: "Bad Request",
        404: "Not Found",
        405: "Method Not Allowed",
        408: "Request Timeout",
        411: "Length Required",
        413: "Content Too Large",
        431: "Request Header Fields Too Large",
        503: "Service Unavailable",
    }
    head = (
        f"HTTP/1.1 {status} {reasons.get(status, 'Error')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def _domain_of(address: str | None, host: str | None) -> str | None:
    """The mail domain asked about: the address's, else the Host header's less an
    ``autoconfig.`` or ``autodiscover.`` label."""
    if address and _EMAIL.match(address):
        return address.rpartition("@")[2].lower()
    if host:
        name = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else ""
        for prefix in ("autoconfig.", "autodiscover."):
            if name.startswith(prefix):
                return name[len(prefix) :]
        return name or None
    return None


def autoconfig_xml(clients: ClientSettings, domain: str) -> bytes:
    """Thunderbird's clientConfig 1.1: implicit TLS first, then STARTTLS, per protocol."""
    host = escape(clients.hostname)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<clientConfig version="1.1">',
        f'  <emailProvider id="{escape(domain)}">',
        f"    <domain>{escape(domain)}</domain>",
        f"    <displayName>{escape(domain)} mail</displayName>",
        f"    <displayShortName>{escape(domain)}</displayShortName>",
    ]
    ordered = sorted(clients.services, key=lambda s: (s.protocol, s.socket_type != "SSL"))
    for service in ordered:
        kind = "outgoingServer" if service.protocol == "smtp" else "incomingServer"
        lines += [
            f'    <{kind} type="{service.protocol}">',
            f"      <hostname>{host}</hostname>",
            f"      <port>{service.port}</port>",
            f"      <socketType>{service.socket_type}</socketType>",
            "      <authentication>password-cleartext</authentication>",
            "      <username>%EMAILADDRESS%</username>",
            f"    </{kind}>",
        ]
    lines += ["  </emailProvider>", "</clientConfig>", ""]
    return "\n".join(lines).encode("utf-8")


def autodiscover_xml(clients: ClientSettings, address: str) -> bytes:
    """Outlook's POX autodiscover answer (the 2006a "outlook" response schema)."""
    host = escape(clients.hostname)
    protocols = []
    for kind, protocol in (("IMAP", "imap"), ("POP3", "pop3"), ("SMTP", "smtp")):
        choices = [s for s in clients.services if s.protocol == protocol]
        if not choices:
            continue
        service = min(choices, key=lambda s: s.socket_type != "SSL")
        encryption = "SSL" if service.socket_type == "SSL" else "TLS"
        protocols.append(
            "      <Protocol>\n"
            f"        <Type>{kind}</Type>\n"
            f"        <Server>{host}</Server>\n"
            f"        <Port>{service.port}</Port>\n"
            f"        <LoginName>{escape(address)}</LoginName>\n"
            "        <DomainRequired>off</DomainRequired>\n"
            "        <SPA>off</SPA>\n"
            f"        <Encryption>{encryption}</Encryption>\n"
            "        <AuthRequired>on</AuthRequired>\n"
            "      </Protocol>\n"
        )
    text = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/'
        'responseschema/2006">\n'
        '  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/'
        'outlook/responseschema/2006a">\n'
        "    <Account>\n"
        "      <AccountType>email</AccountType>\n"
        "      <Action>settings</Action>\n" + "".join(protocols) + "    </Account>\n"
        "  </Response>\n"
        "</Autodiscover>\n"
    )
    return text.encode("utf-8")


async def respond(app: HttpApp, request: Request) -> bytes:
    """The whole response to one request."""
    path = request.path
    if path.lower() == "/autodiscover/autodiscover.xml":
        if request.method not in ("POST", "GET"):
            return _response(405, b"POST or GET\n")
        found = _AUTODISCOVER_EMAIL.search(request.body)
        address = found.group(1).decode("utf-8", "replace") if found else ""
        if not _EMAIL.match(address):
            return _response(400, b"no EMailAddress in the request\n")
        return _response(200, autodiscover_xml(app.clients, address), "application/xml")
    if request.method != "GET":
        return _response(405, b"GET only\n")
    if path == "/metrics":
        metrics = await asyncio.get_running_loop().run_in_executor(None, app.metrics)
        return _response(200, metrics, "text/plain; version=0.0.4; charset=utf-8")
    if path == "/healthz":
        return _response(200, b"ok\n")
    if path == "/readyz":
        ready = await app.ready()
        return _response(200, b"ready\n") if ready else _response(503, b"not ready\n")
    if path in ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"):
        addresses = request.query.get("emailaddress")
        address = addresses[0] if addresses else None
        domain = _domain_of(address, request.headers.get("host"))
        if domain is None:
            return _response(400, b"which domain? give ?emailaddress=\n")
        return _response(200, autoconfig_xml(app.clients, domain), "application/xml")
    return _response(404, b"not found\n")


async def serve_http_connection(
    app: HttpApp, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    peer = writer.get_extra_info("peername")
    try:
        try:
            request = await asyncio.wait_for(read_request(reader), TIMEOUT)
            response = await respond(app, request)
        except BadRequest as error:
            log.info("http: refused request from %s: %s", peer, error)
            response = _response(error.status, f"{error}\n".encode())
        except TimeoutError:
            response = _response(408, b"too slow\n")
        writer.write(response)
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    except Exception:
        log.exception("http: request from %s failed", peer)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def start_http(app: HttpApp, host: str, port: int) -> asyncio.Server:
    """Listen for HTTP on ``host:port``; the caller closes the server."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_http_connection(app, reader, writer)

    return await asyncio.start_server(handle, host, port, limit=MAX_HEAD, reuse_address=True)


def client_settings(settings: Settings) -> ClientSettings:
    """What autoconfig and autodiscover announce: the host name, and each configured
    listener a mail client can use (implicit TLS, or STARTTLS where it is offered),
    incoming (IMAP, POP3) and outgoing (submission)."""
    services: list[MailService] = []
    for protocol, section in (("imap", settings.imap), ("pop3", settings.pop3)):
        services += [MailService(protocol, a.port, "SSL") for a in section.tls_listen]
        if section.starttls:
            services += [MailService(protocol, a.port, "STARTTLS") for a in section.listen]
    # Submission always offers STARTTLS on its plain listeners and takes AUTH only
    # after it (RFC 8314 §3.3 prefers the implicit-TLS port, so it comes first).
    submission = settings.submission
    services += [MailService("smtp", a.port, "SSL") for a in submission.tls_listen]
    services += [MailService("smtp", a.port, "STARTTLS") for a in submission.listen]
    return ClientSettings(settings.server.hostname, tuple(services))


class HttpListener:
    """Every ``[http] listen`` address of a process: the single server's, or with
    several workers the supervisor's (which merges their metrics)."""

    def __init__(self, app: HttpApp) -> None:
        self.app = app
        self._servers: list[asyncio.Server] = []

    @property
    def bound(self) -> list[tuple[str, int]]:
        return [sock.getsockname()[:2] for s in self._servers for sock in s.sockets]

    async def start(self, addresses: Sequence[ListenAddress]) -> None:
        try:
            for address in addresses:
                try:
                    server = await start_http(self.app, address.host, address.port)
                except OSError as error:
                    raise ListenError(f"cannot listen for HTTP on {address}: {error}") from None
                self._servers.append(server)
        except BaseException:
            await self.close()
            raise
        for host, port in self.bound:
            log.info("http: listening on %s:%d (metrics, health, autoconfig)", host, port)

    async def close(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=1.0)
