"""The POP3 commands: one handler per command, in RFC order (the table is dispatch.py).

AUTHORIZATION (RFC 1939 §4, RFC 2449, RFC 2595, RFC 5034): CAPA, STLS, USER, PASS,
AUTH, QUIT. TRANSACTION (RFC 1939 §5, §7): STAT, LIST, RETR, DELE, NOOP, RSET, TOP,
UIDL, and QUIT, which enters UPDATE (§6). APOP is not offered.

Sign-in goes through the one ``Authenticator`` (throttling, logging, app passwords and
two-factor rules), counts against the account's session limit shared with IMAP, and
takes the maildrop lock (``-ERR [IN-USE]``, RFC 2449 §8.1.1). AUTH offers and runs the
SASL mechanisms IMAP does — ``sasl.available_mechanisms`` and ``sasl.SaslSignIn``:
PLAIN, LOGIN, SCRAM-SHA-256 and, with a token issuer, OAUTHBEARER and XOAUTH2. Before
TLS, USER, PASS and AUTH are refused unless the configuration allows plaintext.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator

from roost.auth import sasl
from roost.auth.base import AuthResult
from roost.pop3.handler_types import CommandError, State
from roost.pop3.maildrop import INBOX, Maildrop
from roost.pop3.session import Session
from roost.pop3.wire import commands as c
from roost.pop3.wire.message import MessageEncoder
from roost.pop3.wire.responses import (
    AUTH,
    IN_USE,
    LOGIN_DELAY,
    SYS_TEMP,
    Challenge,
    End,
    ListLine,
    MessageData,
    Ok,
    Response,
)
from roost.store.base import MessageMeta, StoreError

log = logging.getLogger("roost.pop3")

# ---- AUTHORIZATION -------------------------------------------------------------------


def capabilities(session: Session) -> list[str]:
    """RFC 2449 §6: what this session may use now. Before TLS, when plaintext sign-in is
    not allowed, USER and SASL are left out — nothing would be accepted — as IMAP says
    LOGINDISABLED; RFC 2595 §4 has clients ask again after STLS."""
    policy = session.context.policy
    caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
    caps.append("EXPIRE NEVER" if policy.expire_days is None else f"EXPIRE {policy.expire_days}")
    if policy.login_delay:
        caps.append(f"LOGIN-DELAY {policy.login_delay}")
    if session.state is State.AUTHORIZATION:
        if session.stls_offered:
            caps.append("STLS")
        if session.plaintext_auth_allowed:
            caps += ["USER", "SASL " + " ".join(_mechanisms(session))]
    worker = session.context.worker  # README: several worker processes
    caps.append("IMPLEMENTATION Roost" + ("" if worker is None else f" worker-{worker}"))
    return caps


async def capa(session: Session, cmd: c.Capa) -> AsyncIterator[Response]:
    yield Ok("Capability list follows")
    for capability in capabilities(session):
        yield ListLine(capability.encode())
    yield End()


async def stls(session: Session, cmd: c.Stls) -> AsyncIterator[Response]:
    """RFC 2595 §4. The connection drops whatever was pipelined behind STLS."""
    if session.tls_active:
        raise CommandError("TLS is already active", invalid=True)
    if session.context.tls_context is None:
        raise CommandError("STLS is not available", invalid=True)
    session.tls_requested = True
    yield Ok("Begin TLS negotiation now")


def _require_privacy(session: Session) -> None:
    if not session.plaintext_auth_allowed:
        where = "use STLS first" if session.stls_offered else "use the TLS port"
        raise CommandError(f"Sign-in needs TLS: {where}", invalid=True)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError("Authentication failed", AUTH, invalid=True) from None


async def user(session: Session, cmd: c.User) -> AsyncIterator[Response]:
    _require_privacy(session)
    session.username = _text(cmd.name)
    # RFC 1939 §7: the answer must not tell whether such an account exists.
    yield Ok("Send your password")


async def pass_(session: Session, cmd: c.Pass) -> AsyncIterator[Response]:
    _require_privacy(session)
    if session.username is None:
        raise CommandError("Send USER first", invalid=True)
    username, session.username = session.username, None  # a failed PASS needs USER again
    yield await sign_in(session, username, _text(cmd.password))


def _mechanisms(session: Session) -> tuple[str, ...]:
    """The SASL mechanisms offered, the same as IMAP's ``AUTH=`` (``sasl.py``)."""
    return sasl.available_mechanisms(session.context.authenticator)


async def auth(session: Session, cmd: c.Auth) -> AsyncIterator[Response]:
    """RFC 5034 §4, with an initial response; without a mechanism, list them."""
    _require_privacy(session)
    if cmd.mechanism is None:
        yield Ok("Mechanisms follow")
        for name in _mechanisms(session):
            yield ListLine(name.encode())
        yield End()
        return
    exchange = sasl.SaslSignIn.for_mechanism(
        cmd.mechanism,
        session.context.authenticator,
        remote_ip=session.remote_ip,
        protocol="pop3",
    )
    if exchange is None:
        raise CommandError(f"Unsupported mechanism {cmd.mechanism}", invalid=True)
    outcome = await exchange.start(cmd.initial_response)
    async for response in _advance(session, exchange, outcome):
        yield response


async def sasl_step(session: Session, line: bytes) -> AsyncIterator[Response]:
    """The client's answer to a challenge: base64, or "*" to cancel."""
    exchange = session.sasl
    assert exchange is not None
    session.sasl = None  # _advance sets it again when another challenge follows
    async for response in _advance(session, exchange, await exchange.step(line)):
        yield response


async def _advance(
    session: Session, exchange: sasl.SaslSignIn, outcome: sasl.SignInOutcome
) -> AsyncIterator[Response]:
    """RFC 5034 §4: a challenge is "+ " and base64 — also SCRAM's server-final message
    and a refused token's JSON error, which the client answers before the verdict."""
    match outcome:
        case sasl.Challenge(data=data):
            session.sasl = exchange
            yield Challenge(data)
        case sasl.SaslVerdict(result=result):
            yield await _signed_in(session, result)
        case sasl.SaslCancelled():
            raise CommandError("Authentication cancelled")  # RFC 5034 §4: -ERR
        case sasl.SaslFailure(bad_encoding=True):
            raise CommandError("Invalid base64 in the authentication response", invalid=True)
        case sasl.SaslFailure(reason=reason):
            log.info("sasl failure ip=%s: %s", session.remote_ip, reason)
            raise CommandError("Authentication failed", AUTH, invalid=True)


async def sign_in(session: Session, username: str, password: str) -> Ok:
    """USER/PASS: check the password, then act on the verdict as for AUTH."""
    result = await session.context.authenticator.authenticate(
        username, password, remote_ip=session.remote_ip, protocol="pop3"
    )
    return await _signed_in(session, result)


async def _signed_in(session: Session, result: AuthResult) -> Ok:
    """Act on the Authenticator's verdict (PASS, or any AUTH mechanism): throttled is
    ``[SYS/TEMP]``, refused ``[AUTH]``; then LOGIN-DELAY, the account's session limit
    and the maildrop lock."""
    context = session.context
    if result.throttled:
        raise CommandError("Too many failed sign-ins; try again later", SYS_TEMP, invalid=True)
    if result.account is None:
        raise CommandError("Authentication failed", AUTH, invalid=True)
    name = result.account
    now = context.clock()
    delay = context.policy.login_delay
    last = await context.sign_in_times.last(name) if delay else None
    if last is not None and now - last < delay:
        wait = math.ceil(delay - (now - last))
        raise CommandError(f"Signed in less than {delay} s ago; wait {wait} s", LOGIN_DELAY)
    try:
        refused_by = await context.account_connections.admit(name, session.remote_ip)
        if refused_by is not None:
            log.warning(
                "too many sessions ip=%s user=%s limit=%s", session.remote_ip, name, refused_by
            )
            raise CommandError(f"Too many connections for this account ({refused_by})", SYS_TEMP)
        session.counted_account = name
        session.lease = await context.locks.try_acquire(name, INBOX)
        if session.lease is None:
            log.info("maildrop in use ip=%s user=%s", session.remote_ip, name)
            raise CommandError("Another POP3 session is using this mailbox", IN_USE)
        session.account = await context.store.open_account(name)
        session.maildrop = await Maildrop.open(
            session.account, context.sizes, context.limits.size_batch_size
        )
    except BaseException:
        await session.release()
        raise
    session.account_name = name
    session.state = State.TRANSACTION
    if delay:
        await context.sign_in_times.record(name, now)
    count = session.maildrop.count
    log.info("pop3 sign-in ip=%s user=%s messages=%d", session.remote_ip, name, count)
    return Ok(f"Signed in; {count} message{'' if count == 1 else 's'}")


async def quit_(session: Session, cmd: c.Quit) -> AsyncIterator[Response]:
    """In TRANSACTION, enter UPDATE (RFC 1939 §6): carry out the deletions, and only
    answer +OK once they are durable."""
    session.finished = True
    server = session.context.server_name
    if session.state is State.AUTHORIZATION:
        yield Ok(f"{server} POP3 server signing off")
        return
    session.state = State.UPDATE
    maildrop = session.require_maildrop()
    try:
        deleted = await maildrop.commit(session.context.policy)
    except StoreError as error:
        log.warning(
            "update failed ip=%s user=%s: %r", session.remote_ip, session.account_name, error
        )
        raise CommandError("Some deleted messages were not removed", SYS_TEMP) from None
    finally:
        # Unlock before answering, so a client that signs in again at once gets in.
        await session.release()
    log.info("pop3 quit ip=%s user=%s deleted=%d", session.remote_ip, session.account_name, deleted)
    yield Ok(f"{server} POP3 server signing off ({deleted} deleted)")


# ---- TRANSACTION ---------------------------------------------------------------------


async def stat(session: Session, cmd: c.Stat) -> AsyncIterator[Response]:
    maildrop = session.require_maildrop()
    total = await maildrop.total_size()
    yield Ok(f"{maildrop.count} {total}")  # RFC 1939 §5: exactly "+OK nn mm"


async def list_(session: Session, cmd: c.List) -> AsyncIterator[Response]:
    maildrop = session.require_maildrop()
    if cmd.number is not None:
        size = await maildrop.size(cmd.number)
        yield Ok(f"{cmd.number} {size}")
        return
    sizes = await maildrop.sizes()
    yield Ok(f"{len(sizes)} messages ({sum(size for _, size in sizes)} octets)")
    for number, size in sizes:
        yield ListLine(b"%d %d" % (number, size))
    yield End()


async def uidl(session: Session, cmd: c.Uidl) -> AsyncIterator[Response]:
    maildrop = session.require_maildrop()
    if cmd.number is not None:
        yield Ok(f"{cmd.number} {maildrop.uidl(cmd.number)}")
        return
    numbers = maildrop.numbers()
    yield Ok("Unique-id listing follows")
    for number in numbers:
        yield ListLine(f"{number} {maildrop.uidl(number)}".encode())
    yield End()


async def retr(session: Session, cmd: c.Retr) -> AsyncIterator[Response]:
    maildrop = session.require_maildrop()
    meta = await maildrop.meta(cmd.number)
    size = await maildrop.size(cmd.number)
    yield Ok(f"{size} octets")
    async for data in _encoded(maildrop, meta, MessageEncoder()):
        yield data
    maildrop.mark_retrieved(cmd.number)


async def top(session: Session, cmd: c.Top) -> AsyncIterator[Response]:
    """RFC 1939 §7: the header, the blank line, and the first ``lines`` body lines.
    TOP does not count as reading the message: it sets no \\Seen."""
    maildrop = session.require_maildrop()
    meta = await maildrop.meta(cmd.number)
    yield Ok("Top of message follows")
    async for data in _encoded(maildrop, meta, MessageEncoder(body_lines=cmd.lines)):
        yield data


async def _encoded(
    maildrop: Maildrop, meta: MessageMeta, encoder: MessageEncoder
) -> AsyncIterator[MessageData]:
    """The message, encoded chunk by chunk: never wholly in memory."""
    chunks = maildrop.read(meta)
    try:
        async for chunk in chunks:
            encoded = encoder.feed(chunk)
            if encoded:
                yield MessageData(encoded)
            if encoder.done:
                break
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    yield MessageData(encoder.finish())


async def dele(session: Session, cmd: c.Dele) -> AsyncIterator[Response]:
    session.require_maildrop().delete(cmd.number)
    yield Ok(f"Message {cmd.number} deleted")


async def noop(session: Session, cmd: c.Noop) -> AsyncIterator[Response]:
    yield Ok()


async def rset(session: Session, cmd: c.Rset) -> AsyncIterator[Response]:
    maildrop = session.require_maildrop()
    maildrop.reset()
    yield Ok(f"{maildrop.count} messages")
