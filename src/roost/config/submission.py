"""[submission]: mail sent by signed-in users (RFC 6409), handed to the site's relay.

Kept apart from ``sections.py`` so the section and its relay URL syntax read in one
place; ``loading.py`` reads the TOML table into ``SubmissionSettings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from roost.config.sections import ListenAddress

DEV_SUBMISSION_LISTEN = "127.0.0.1:1587"
DEV_SUBMISSIONS_LISTEN = "127.0.0.1:1465"
DEFAULT_RELAY = "smtp://127.0.0.1:10025"


@dataclass(frozen=True, slots=True)
class RelayTarget:
    """Where submitted mail goes: ``smtp://[user:password@]host:port`` (plain; the
    relay is expected on loopback or a private network) or ``smtps://`` (implicit TLS,
    RFC 8314). Credentials, when given, are used with AUTH PLAIN."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> RelayTarget:
        """Raise ValueError with the reason when ``text`` is not a relay URL."""
        parts = urlsplit(text)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"{text!r}: the scheme must be smtp:// or smtps://")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{text!r}: only smtp[s]://[user:password@]host:port")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"{text!r}: the port must be a number from 1 to 65535") from None
        if not parts.hostname:
            raise ValueError(f"{text!r}: no host")
        tls = parts.scheme == "smtps"
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if (username is None) != (password is None):
            raise ValueError(f"{text!r}: give both user and password, or neither")
        return cls(parts.hostname, port or (465 if tls else 25), tls, username, password)

    def __str__(self) -> str:  # never the password: this goes into logs
        scheme = "smtps" if self.tls else "smtp"
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SubmissionSettings:
    listen: tuple[ListenAddress, ...] = ()  # 587: STARTTLS, AUTH only after it
    tls_listen: tuple[ListenAddress, ...] = ()  # 465: implicit TLS (RFC 8314 §3.3)
    # AUTH before STARTTLS on a plain listener; honoured only when every plain
    # submission listener is a loopback address (the password never leaves the host).
    allow_plaintext_auth: bool = False
    relay: RelayTarget = RelayTarget("127.0.0.1", 10025)
    relay_timeout: float = 60.0  # seconds per relay reply before 451 4.4.1
    max_message_size: int = 50 * 1024 * 1024  # advertised as SIZE; beyond: 552 5.3.4
    max_recipients: int = 100  # per message; beyond: 452 4.5.3
    max_messages_per_hour: int = 200  # per account, every worker; beyond: 450 4.7.1; 0: off
    hide_client_ip: bool = False  # the Received: line names no client address
    save_sent: bool = True  # file a copy of what was relayed in the \Sent mailbox
    timeout: float = 300.0  # seconds of client silence before 421 (RFC 5321 §4.5.3.2)
    spool_threshold: int = 1024 * 1024  # a message over this is spooled to a file

    @property
    def plaintext_auth_allowed(self) -> bool:
        return self.allow_plaintext_auth and all(a.is_loopback for a in self.listen)
