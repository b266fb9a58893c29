"""What one submission connection needs from the server around it, passed explicitly."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from roost.auth.base import Authenticator
from roost.config import DeliverySettings
from roost.config.submission import SubmissionSettings
from roost.smtp import Dialect, ServerConfig
from roost.store.base import Store


@dataclass(frozen=True, slots=True)
class SubmissionContext:
    store: Store
    authenticator: Authenticator  # the one IMAP and POP3 use: same throttle and cache
    submission: SubmissionSettings
    delivery: DeliverySettings  # its domains make "alice" also alice@<domain>
    server_name: str
    spool_dir: Path
    tls_context: ssl.SSLContext | None  # STARTTLS on the plain listeners
    relay_tls_context: ssl.SSLContext | None = None  # smtps:// relays; None: verified default

    def core_config(self, mechanisms: tuple[str, ...]) -> ServerConfig:
        settings = self.submission
        return ServerConfig(
            dialect=Dialect.SMTP,
            max_message_size=settings.max_message_size,
            max_recipients=settings.max_recipients,
            dsn=True,  # passed through to the relay (RFC 3461)
            starttls=self.tls_context is not None,
            auth_mechanisms=mechanisms,
            burl=True,  # RFC 4468 with IMAP URLAUTH (roost.urlauth)
        )
