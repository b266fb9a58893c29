"""The state machine of one POP3 connection, with no sockets.

States (RFC 1939 §3): AUTHORIZATION until sign-in, TRANSACTION while the client works
on its maildrop, UPDATE once it sent QUIT — only then are deletions carried out.
``finished`` tells the connection to close after writing what it has.

The session holds what one connection knows — its state, account, maildrop and lock —
and the facts handlers ask for. It runs no command itself: ``dispatch.handle_line``
does, and is the one choke point for errors. This module imports no handler.

The connection reads ``tls_requested`` after each line: STLS was accepted, and the TLS
handshake must come before anything else is read (RFC 2595 §4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.pop3.context import Pop3Context
from roost.pop3.handler_types import State
from roost.pop3.maildrop import Maildrop
from roost.pop3.wire.responses import Ok
from roost.store.base import Account

if TYPE_CHECKING:
    from roost.auth.sasl import SaslSignIn
    from roost.pop3.locks import MaildropLease


class Session:
    def __init__(self, context: Pop3Context, *, tls_active: bool, remote_ip: str) -> None:
        self.context = context
        self.tls_active = tls_active
        self.remote_ip = remote_ip
        self.state = State.AUTHORIZATION
        self.finished = False
        self.tls_requested = False
        self.username: str | None = None  # from USER, waiting for PASS
        self.sasl: SaslSignIn | None = None  # an AUTH exchange waiting for a line
        self.account_name: str | None = None
        self.account: Account | None = None
        self.maildrop: Maildrop | None = None
        self.lease: MaildropLease | None = None
        self.counted_account: str | None = None  # counted in context.account_connections
        self.invalid_in_a_row = 0

    # ---- facts handlers need ---------------------------------------------------------

    @property
    def plaintext_auth_allowed(self) -> bool:
        return self.tls_active or self.context.allow_plaintext_auth

    @property
    def stls_offered(self) -> bool:
        return (
            self.state is State.AUTHORIZATION
            and not self.tls_active
            and self.context.tls_context is not None
        )

    def require_maildrop(self) -> Maildrop:
        assert self.maildrop is not None  # the dispatch table allows only TRANSACTION
        return self.maildrop

    def greeting(self) -> Ok:
        # No APOP timestamp: APOP is not offered (MD5 of a shared secret, RFC 1939 §7).
        return Ok(f"{self.context.server_name} POP3 server ready")

    # ---- TLS and the end -------------------------------------------------------------

    def tls_started(self) -> None:
        self.tls_active = True
        self.tls_requested = False
        self.username = None  # RFC 2595 §4: forget what was said before TLS

    async def release(self) -> None:
        """Give back the maildrop lock, the account count and the account handle."""
        if self.lease is not None:
            lease, self.lease = self.lease, None
            await lease.release()
        if self.counted_account is not None:
            self.context.account_connections.release(self.counted_account, self.remote_ip)
            self.counted_account = None
        self.maildrop = None
        if self.account is not None:
            account, self.account = self.account, None
            await account.close()

    async def close(self) -> None:
        """The connection ended, by QUIT or not: no UPDATE state here (RFC 1939 §6)."""
        self.sasl = None
        await self.release()
