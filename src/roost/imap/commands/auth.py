"""Commands valid in any state and sign-in: CAPABILITY, NOOP, LOGOUT, ID (RFC 2971),
ENABLE (RFC 5161), STARTTLS, LOGIN, AUTHENTICATE (with SASL-IR, RFC 4959).

Before TLS, LOGIN and AUTHENTICATE are refused unless the configuration allows
plaintext (RFC 9051 §6.2.3, LOGINDISABLED). Every attempt goes through the one
``Authenticator``, which throttles guessing and logs failures.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from roost import __version__
from roost.auth import sasl
from roost.auth.base import AuthResult
from roost.imap.handler_types import Awaiting, Done, State, bad, no
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import (
    CapabilityCode,
    CapabilityResponse,
    Continuation,
    Enabled,
    IdResponse,
    Response,
)

log = logging.getLogger("roost.auth")

# ENABLE accepts what we implement; IMAP4rev2 waits until the whole of RFC 9051 is there.
_ENABLEABLE = {"UTF8=ACCEPT", "CONDSTORE", "QRESYNC", "IMAP4REV2", "UIDONLY"}
_SPELLING = {"IMAP4REV2": "IMAP4rev2"}  # ENABLED names it as CAPABILITY does


async def capability(session: Session, cmd: c.Capability) -> AsyncIterator[Response | Done]:
    yield CapabilityResponse(session.capabilities())
    yield Done("CAPABILITY completed")


async def noop(session: Session, cmd: c.Noop) -> AsyncIterator[Response | Done]:
    # The sync point after every command does the real work of NOOP.
    yield Done("NOOP completed")


async def logout(session: Session, cmd: c.Logout) -> AsyncIterator[Response | Done]:
    session.state = State.LOGOUT
    yield Done("LOGOUT completed")


async def id_(session: Session, cmd: c.Id) -> AsyncIterator[Response | Done]:
    if cmd.params:
        session.client_id = dict(cmd.params)
    params = [("name", "Roost"), ("version", __version__)]
    if session.context.worker is not None:  # README: several worker processes
        params.append(("x-roost-worker", str(session.context.worker)))
    yield IdResponse(tuple(params))
    yield Done("ID completed")


async def enable(session: Session, cmd: c.Enable) -> AsyncIterator[Response | Done]:
    newly: list[str] = []
    for capability_name in cmd.capabilities:
        if capability_name in _ENABLEABLE and capability_name not in session.enabled:
            session.enabled.add(capability_name)
            newly.append(_SPELLING.get(capability_name, capability_name))
    if "IMAP4REV2" in session.enabled:
        session.rev2 = True
        if session.selected is not None:
            session.selected.rev2 = True
    if "UTF8=ACCEPT" in session.enabled or session.rev2:
        session.utf8 = True
    if "UIDONLY" in session.enabled:  # RFC 9586
        session.uidonly = True
        if session.selected is not None:
            session.selected.uidonly = True
    if "QRESYNC" in session.enabled:
        session.enable_qresync()
    elif "CONDSTORE" in session.enabled:
        session.enable_condstore()
    yield Enabled(tuple(newly))
    yield Done("ENABLE completed")


async def starttls(session: Session, cmd: c.StartTls) -> AsyncIterator[Response | Done]:
    if session.tls_active:
        raise bad("TLS is already active")
    if session.context.tls_context is None:
        raise bad("STARTTLS is not available")
    session.awaiting = Awaiting.TLS_HANDSHAKE
    yield Done("Begin TLS negotiation now")


def _require_privacy(session: Session) -> None:
    if not session.plaintext_auth_allowed:
        raise no("Sign-in needs TLS: use STARTTLS first", "PRIVACYREQUIRED")


async def _sign_in(session: Session, result: AuthResult) -> Done:
    """Act on the Authenticator's verdict (LOGIN, or any AUTHENTICATE mechanism)."""
    if result.throttled:
        raise no("Too many failed sign-ins; try again later", "UNAVAILABLE")
    if result.account is None:
        raise no("Authentication failed", "AUTHENTICATIONFAILED")
    refused_by = await session.context.account_connections.admit(result.account, session.remote_ip)
    if refused_by is not None:
        log.warning(
            "too many sessions ip=%s user=%s limit=%s",
            session.remote_ip,
            result.account,
            refused_by,
        )
        raise no(f"Too many connections for this account ({refused_by})", "LIMIT")
    session.counted_account = result.account
    session.account = await session.context.store.open_account(result.account)
    session.listener = session.account.listen()
    session.state = State.AUTHENTICATED
    return Done("Signed in", CapabilityCode(session.capabilities()))


async def unauthenticate(session: Session, cmd: c.Unauthenticate) -> AsyncIterator[Response | Done]:
    """RFC 8437: drop the sign-in and everything that came with it (selected mailbox,
    ENABLEd extensions, NOTIFY); TLS and COMPRESS stay."""
    await session.sign_out()
    yield Done("UNAUTHENTICATE completed")


async def login(session: Session, cmd: c.Login) -> AsyncIterator[Response | Done]:
    _require_privacy(session)
    try:
        username = cmd.username.decode("utf-8")
        password = cmd.password.decode("utf-8")
    except UnicodeDecodeError:
        raise no("Authentication failed", "AUTHENTICATIONFAILED") from None
    result = await session.context.authenticator.authenticate(
        username, password, remote_ip=session.remote_ip, protocol="imap"
    )
    yield await _sign_in(session, result)


async def authenticate(session: Session, cmd: c.Authenticate) -> AsyncIterator[Response | Done]:
    _require_privacy(session)
    exchange = sasl.SaslSignIn.for_mechanism(
        cmd.mechanism,
        session.context.authenticator,
        remote_ip=session.remote_ip,
        protocol="imap",
    )
    if exchange is None:
        raise no(f"Unsupported mechanism {cmd.mechanism}", "CANNOT")
    session.sasl = exchange
    async for response in _advance(session, await exchange.start(cmd.initial_response)):
        yield response


async def sasl_step(session: Session, line: bytes) -> AsyncIterator[Response | Done]:
    """The client's answer to a SASL challenge: base64, or "*" to cancel."""
    exchange = session.sasl
    if exchange is None:
        raise bad("No authentication in progress")
    async for response in _advance(session, await exchange.step(line)):
        yield response


async def _advance(session: Session, outcome: sasl.SignInOutcome) -> AsyncIterator[Response | Done]:
    if isinstance(outcome, sasl.Challenge):
        session.awaiting = Awaiting.SASL_RESPONSE
        yield Continuation(data=outcome.data)
        return
    session.sasl = None
    session.awaiting = Awaiting.NOTHING
    match outcome:
        case sasl.SaslVerdict(result=result):
            yield await _sign_in(session, result)
        case sasl.SaslCancelled():
            raise bad("Authentication cancelled")  # RFC 9051 §6.2.2
        case sasl.SaslFailure(bad_encoding=True):
            raise bad("Invalid base64 in authentication response")
        case sasl.SaslFailure(reason=reason):
            log.info("sasl failure ip=%s: %s", session.remote_ip, reason)
            raise no("Authentication failed", "AUTHENTICATIONFAILED")
