"""The POP3 command runner and its table: which handler runs a command, in which states.

``handle_line(session, line)`` yields the responses to one client line. It is the one
choke point for errors (STYLE.md §6): a handler raises ``CommandError`` for a client's
mistake, ``MessageUnavailable`` for a message number that cannot be used, store errors
become ``-ERR [SYS/TEMP]``, anything else ``-ERR [SYS/TEMP]`` with the traceback
logged. Every ``-ERR`` is logged. A failure after a multi-line response has begun
cannot be reported in the protocol, so it closes the connection (deleting nothing).

Invalid input — unknown commands, bad syntax, commands in the wrong state, lines over
the limit, failed sign-ins — counts towards ``max_bad_commands`` in a row; reaching it
ends the connection.

The session imports no handler: this module is the only one that knows them all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from roost.observability import metrics
from roost.pop3 import commands as h
from roost.pop3.handler_types import CommandError, State
from roost.pop3.maildrop import MessageUnavailable
from roost.pop3.session import Session
from roost.pop3.wire import commands as c
from roost.pop3.wire.responses import SYS_TEMP, Challenge, Err, Response
from roost.store.base import StorageFull, StoreError

log = logging.getLogger("roost.pop3")

C = TypeVar("C", bound=c.Command)

# A handler for commands of type C.
Handler = Callable[[Session, C], AsyncIterator[Response]]


@dataclass(frozen=True, slots=True)
class CommandSpec(Generic[C]):
    """One row of the table; ``command`` and ``handler`` are checked to agree."""

    command: type[C]
    name: str
    handler: Handler[C]
    states: frozenset[State]

    def run(self, session: Session, command: c.Command) -> AsyncIterator[Response]:
        assert isinstance(command, self.command)  # the table is keyed by command type
        return self.handler(session, command)


def _table(specs: Iterable[CommandSpec[Any]]) -> dict[type[c.Command], CommandSpec[Any]]:
    return {spec.command: spec for spec in specs}


_AUTHORIZATION = frozenset({State.AUTHORIZATION})
_TRANSACTION = frozenset({State.TRANSACTION})
_BOTH = _AUTHORIZATION | _TRANSACTION

# Built without a type context, so that mypy checks each row's handler against its
# command type (inside ``_table(...)`` it would infer ``CommandSpec[Any]`` and not).
_SPECS = (
    CommandSpec(c.Capa, "CAPA", h.capa, _BOTH),
    CommandSpec(c.Quit, "QUIT", h.quit_, _BOTH),
    CommandSpec(c.Stls, "STLS", h.stls, _AUTHORIZATION),
    CommandSpec(c.User, "USER", h.user, _AUTHORIZATION),
    CommandSpec(c.Pass, "PASS", h.pass_, _AUTHORIZATION),
    CommandSpec(c.Auth, "AUTH", h.auth, _AUTHORIZATION),
    CommandSpec(c.Stat, "STAT", h.stat, _TRANSACTION),
    CommandSpec(c.List, "LIST", h.list_, _TRANSACTION),
    CommandSpec(c.Retr, "RETR", h.retr, _TRANSACTION),
    CommandSpec(c.Dele, "DELE", h.dele, _TRANSACTION),
    CommandSpec(c.Noop, "NOOP", h.noop, _TRANSACTION),
    CommandSpec(c.Rset, "RSET", h.rset, _TRANSACTION),
    CommandSpec(c.Top, "TOP", h.top, _TRANSACTION),
    CommandSpec(c.Uidl, "UIDL", h.uidl, _TRANSACTION),
)
DISPATCH = _table(_SPECS)
_KNOWN = frozenset({spec.name for spec in DISPATCH.values()} | {"AUTH"})
metrics.declare("pop3", sorted(_KNOWN))


async def handle_line(session: Session, line: bytes) -> AsyncGenerator[Response, None]:
    """The responses to one client line: a command, or the answer to a SASL challenge."""
    if session.sasl is not None:
        responses = _run(session, "AUTH", h.sasl_step(session, line))
    else:
        command = c.parse_command(line)
        if isinstance(command, c.BadCommand):
            name = command.keyword or _keyword_for_log(line)
            responses = _run(session, name, _fail(CommandError(command.message, invalid=True)))
        else:
            spec = DISPATCH[type(command)]
            if session.state not in spec.states:
                error = CommandError(_wrong_state(spec.name, session.state), invalid=True)
                responses = _run(session, spec.name, _fail(error))
            else:
                responses = _run(session, spec.name, spec.run(session, command))
    async for response in responses:
        yield response


def line_too_long(session: Session, length: int) -> Err:
    """A line over ``max_line_length`` was dropped: refuse it and go on."""
    name = "AUTH" if session.sasl is not None else "-"
    session.sasl = None  # an over-long SASL answer ends the exchange (RFC 5034 §4)
    limit = session.context.limits.max_line_length
    error = CommandError(f"Line too long ({length} octets; the limit is {limit})", invalid=True)
    return _error_response(session, name, error)


async def _run(
    session: Session, name: str, steps: AsyncIterator[Response]
) -> AsyncIterator[Response]:
    began = time.perf_counter()
    result = "ok"
    try:
        async for response in _answer(session, name, steps):
            if isinstance(response, Err):
                result = "error" if response.code == SYS_TEMP else "no"
            yield response
    finally:
        label = metrics.command_label(name, _KNOWN)
        metrics.COMMANDS.labels("pop3", label, result).inc()
        metrics.COMMAND_SECONDS.labels("pop3", label).observe(time.perf_counter() - began)


async def _answer(
    session: Session, name: str, steps: AsyncIterator[Response]
) -> AsyncIterator[Response]:
    started = False
    last: Response | None = None
    try:
        async for response in steps:
            started = True
            last = response
            yield response
    except (CommandError, MessageUnavailable, StoreError) as error:
        if started:
            log.warning("pop3 %s failed midway ip=%s: %r", name, session.remote_ip, error)
            _broken(session)
            return
        if isinstance(error, StoreError):
            log.warning("store error ip=%s command=%s: %r", session.remote_ip, name, error)
            text = "Server storage is full" if isinstance(error, StorageFull) else ""
            error = CommandError(text or "Temporary server error; try again later", SYS_TEMP)
        elif isinstance(error, MessageUnavailable):
            error = CommandError(str(error))
        yield _error_response(session, name, error)
        return
    except Exception:
        log.exception("internal error ip=%s command=%s", session.remote_ip, name)
        if started:
            _broken(session)
            return
        yield _error_response(
            session, name, CommandError("Internal server error, logged", SYS_TEMP)
        )
        return
    if not isinstance(last, Challenge):  # a challenge is no success yet
        session.invalid_in_a_row = 0


def _error_response(session: Session, name: str, error: CommandError) -> Err:
    log.info(
        "pop3 error ip=%s user=%s command=%s: %s",
        session.remote_ip,
        session.account_name or "-",
        name,
        error.text,
    )
    text = error.text
    if error.invalid:
        session.invalid_in_a_row += 1
        if session.invalid_in_a_row >= session.context.limits.max_bad_commands:
            log.info("too many invalid commands ip=%s; closing", session.remote_ip)
            session.finished = True
            text += "; too many invalid commands, closing the connection"
    return Err(text, error.code)


def _broken(session: Session) -> None:
    """A failure in the middle of a multi-line response cannot be told to the client,
    so the connection ends (and, without QUIT, deletes nothing)."""
    log.info("closing the connection ip=%s: a response broke off", session.remote_ip)
    session.finished = True


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
