"""What one ManageSieve connection needs from the server around it, passed explicitly."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from roost.auth.base import Authenticator
from roost.runtime.account_limits import AccountConnections, SessionLimits
from roost.store.base import Store


@dataclass(frozen=True, slots=True)
class ManageSieveLimits:
    max_script_size: int = 64 * 1024  # PUTSCRIPT/CHECKSCRIPT literal; beyond: QUOTA/MAXSIZE
    max_scripts: int = 32  # per account; a new one beyond: QUOTA/MAXSCRIPTS
    max_name_length: int = 128  # characters of a script name
    timeout: float = 600.0  # seconds of client silence before BYE
    max_bad_commands: int = 10  # close after this many bad commands in a row
    max_redirects: int = 4  # advertised as MAXREDIRECTS


@dataclass(slots=True)
class ManageSieveContext:
    store: Store
    authenticator: Authenticator
    limits: ManageSieveLimits = field(default_factory=ManageSieveLimits)
    tls_context: ssl.SSLContext | None = None  # None: STARTTLS not offered
    allow_plaintext_auth: bool = False  # AUTHENTICATE before TLS
    account_connections: SessionLimits = field(default_factory=AccountConnections)
