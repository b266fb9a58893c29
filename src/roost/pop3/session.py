"""The state machine of one POP3 connection, with no sockets.

States (RFC 1939 §3): AUTHORIZATION until sign-in, TRANSACTION while the client works
on its maildrop, UPDATE once it sent QUIT — only then are deletions carried out.
``finished`` tells the connection to close after writing what it has.

``Session.handle_line(line)`` yields the responses to one client line. It is the one
choke point for errors (STYLE.md §6): a handler raises ``CommandError`` for a client's
mistake, ``MessageUnavailable`` for a message number that cannot be used, store errors
become ``-ERR [SYS/TEMP]``, anything else ``-ERR [SYS/TEMP]`` with the traceback
logged. Every ``-ERR`` is logged. A failure after a multi-line response has begun
cannot be reported in the protocol, so it closes the connection (deleting nothing).

Invalid input — unknown commands, bad syntax, commands in the wrong state, lines over
the limit, failed sign-ins — counts towards ``max_bad_commands`` in a row; reaching it
ends the connection.

The connection reads ``tls_requested`` after each line: STLS was accepted, and the TLS
handshake must come before anything else is read (RFC 2595 §4).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING

from roost.pop3.context import Pop3Context
from roost.pop3.handler_types import CommandError, State
from roost.pop3.maildrop import Maildrop, MessageUnavailable
from roost.pop3.wire import commands as c
from roost.pop3.wire.responses import SYS_TEMP, Challenge, Err, Ok, Response
from roost.store.base import Account, StorageFull, StoreError

if TYPE_CHECKING:
    from roost.auth.sasl import SaslSignIn
    from roost.pop3.locks import MaildropLease

log = logging.getLogger("roost.pop3")


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

    # ---- the choke point -------------------------------------------------------------

    async def handle_line(self, line: bytes) -> AsyncGenerator[Response, None]:
        from roost.pop3.commands import DISPATCH, sasl_step

        if self.sasl is not None:
            responses = self._run("AUTH", sasl_step(self, line))
        else:
            command = c.parse_command(line)
            if isinstance(command, c.BadCommand):
                name = command.keyword or _keyword_for_log(line)
                responses = self._run(name, _fail(CommandError(command.message, invalid=True)))
            else:
                spec = DISPATCH[type(command)]
                if self.state not in spec.states:
                    error = CommandError(_wrong_state(spec.name, self.state), invalid=True)
                    responses = self._run(spec.name, _fail(error))
                else:
                    responses = self._run(spec.name, spec.handler(self, command))
        async for response in responses:
            yield response

    def line_too_long(self, length: int) -> Err:
        """A line over ``max_line_length`` was dropped: refuse it and go on."""
        name = "AUTH" if self.sasl is not None else "-"
        self.sasl = None  # an over-long SASL answer ends the exchange (RFC 5034 §4)
        limit = self.context.limits.max_line_length
        error = CommandError(f"Line too long ({length} octets; the limit is {limit})", invalid=True)
        return self._error_response(name, error)

    async def _run(self, name: str, steps: AsyncIterator[Response]) -> AsyncIterator[Response]:
        started = False
        last: Response | None = None
        try:
            async for response in steps:
                started = True
                last = response
                yield response
        except (CommandError, MessageUnavailable, StoreError) as error:
            if started:
                log.warning("pop3 %s failed midway ip=%s: %r", name, self.remote_ip, error)
                self._broken()
                return
            if isinstance(error, StoreError):
                log.warning("store error ip=%s command=%s: %r", self.remote_ip, name, error)
                text = "Server storage is full" if isinstance(error, StorageFull) else ""
                error = CommandError(text or "Temporary server error; try again later", SYS_TEMP)
            elif isinstance(error, MessageUnavailable):
                error = CommandError(str(error))
            yield self._error_response(name, error)
            return
        except Exception:
            log.exception("internal error ip=%s command=%s", self.remote_ip, name)
            if started:
                self._broken()
                return
            yield self._error_response(
                name, CommandError("Internal server error, logged", SYS_TEMP)
            )
            return
        if not isinstance(last, Challenge):  # a challenge is no success yet
            self.invalid_in_a_row = 0

    def _error_response(self, name: str, error: CommandError) -> Err:
        log.info(
            "pop3 error ip=%s user=%s command=%s: %s",
            self.remote_ip,
            self.account_name or "-",
            name,
            error.text,
        )
        text = error.text
        if error.invalid:
            self.invalid_in_a_row += 1
            if self.invalid_in_a_row >= self.context.limits.max_bad_commands:
                log.info("too many invalid commands ip=%s; closing", self.remote_ip)
                self.finished = True
                text += "; too many invalid commands, closing the connection"
        return Err(text, error.code)

    def _broken(self) -> None:
        """A failure in the middle of a multi-line response cannot be told to the client,
        so the connection ends (and, without QUIT, deletes nothing)."""
        log.info("closing the connection ip=%s: a response broke off", self.remote_ip)
        self.finished = True

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
            self.context.account_connections.release(self.counted_account)
            self.counted_account = None
        self.maildrop = None
        if self.account is not None:
            account, self.account = self.account, None
            await account.close()

    async def close(self) -> None:
        """The connection ended, by QUIT or not: no UPDATE state here (RFC 1939 §6)."""
        self.sasl = None
        await self.release()


async def _fail(error: CommandError) -> AsyncIterator[Response]:
    raise error
    yield  # an async generator that raises at once


def _wrong_state(name: str, state: State) -> str:
    if state is State.AUTHORIZATION:
        return f"{name} needs you to sign in first"
    if state is State.TRANSACTION:
        return f"{name}: already signed in"
    return f"{name} is not allowed now"


def _keyword_for_log(line: bytes) -> str:
    keyword = line.split(b" ", 1)[0][:16]
    return keyword.decode("ascii", "replace").upper() or "-"
