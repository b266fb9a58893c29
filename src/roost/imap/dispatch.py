"""The command runner and its table: which handler runs a command, in which states,
and what the session may say around it.

``run_command(session, command)`` yields the responses for one command, ending with
its tagged completion; ``continue_sasl`` runs the rest of an AUTHENTICATE. They are
the one choke point for errors (STYLE.md §6): a handler raises ``CommandError`` for a
client mistake (NO/BAD with a code), store errors map to codes, and anything else
becomes ``NO [SERVERBUG]`` with the traceback logged. Before every tagged completion
in the selected state the runner has the session run a sync point.

The session imports no handler: this module is the only one that knows them all.

``sync``: run a sync point before the tagged reply (every command in the selected
state except those that end the selection or answer nothing about it).
``expunge_allowed``: RFC 9051 §7.5.1 — no EXPUNGE while responding to FETCH, STORE or
SEARCH by sequence number, because the client's numbers must stay valid; their UID
forms may (the session allows it when the command has ``uid``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from roost.imap.commands import (
    append,
    auth,
    copy_move,
    expunge,
    extensions,
    fetch,
    idle,
    mailboxes,
    notify,
    search,
    store,
)
from roost.imap.handler_types import Awaiting, CommandError, Done, State, store_error_response
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import Code, Response, Status, Tagged, Untagged
from roost.store.base import StoreError

log = logging.getLogger("roost.imap")

Handler = Callable[[Any, Any], AsyncIterator[Response | Done]]

ANY = frozenset(State) - {State.LOGOUT}
NOT_AUTH = frozenset({State.NOT_AUTHENTICATED})
AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
SELECTED = frozenset({State.SELECTED})


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    handler: Handler
    states: frozenset[State]
    sync: bool = True
    expunge_allowed: bool = True


def _spec(name: str, handler: Handler, states: frozenset[State], **kw: bool) -> CommandSpec:
    return CommandSpec(name, handler, states, **kw)


DISPATCH: dict[type[c.Command], CommandSpec] = {
    c.Capability: _spec("CAPABILITY", auth.capability, ANY),
    c.Noop: _spec("NOOP", auth.noop, ANY),
    c.Logout: _spec("LOGOUT", auth.logout, ANY, sync=False),
    c.Id: _spec("ID", auth.id_, ANY),
    c.StartTls: _spec("STARTTLS", auth.starttls, NOT_AUTH),
    c.Login: _spec("LOGIN", auth.login, NOT_AUTH),
    c.Authenticate: _spec("AUTHENTICATE", auth.authenticate, NOT_AUTH),
    c.Enable: _spec("ENABLE", auth.enable, AUTH),
    c.Select: _spec("SELECT", mailboxes.select, AUTH, sync=False),
    c.Create: _spec("CREATE", mailboxes.create, AUTH),
    c.Delete: _spec("DELETE", mailboxes.delete, AUTH),
    c.Rename: _spec("RENAME", mailboxes.rename, AUTH),
    c.Subscribe: _spec("SUBSCRIBE", mailboxes.subscribe, AUTH),
    c.Unsubscribe: _spec("UNSUBSCRIBE", mailboxes.unsubscribe, AUTH),
    c.List: _spec("LIST", mailboxes.list_, AUTH),
    c.Lsub: _spec("LSUB", mailboxes.lsub, AUTH),
    c.Namespace: _spec("NAMESPACE", mailboxes.namespace, AUTH),
    c.Status: _spec("STATUS", mailboxes.status, AUTH),
    c.Append: _spec("APPEND", append.append, AUTH),
    c.Idle: _spec("IDLE", idle.idle, AUTH),
    c.Compress: _spec("COMPRESS", extensions.compress, AUTH, sync=False),
    c.Notify: _spec("NOTIFY", notify.notify, AUTH),
    c.Unauthenticate: _spec("UNAUTHENTICATE", auth.unauthenticate, AUTH, sync=False),
    c.Check: _spec("CHECK", expunge.check, SELECTED),
    c.Close: _spec("CLOSE", expunge.close, SELECTED, sync=False),
    c.Unselect: _spec("UNSELECT", expunge.unselect, SELECTED, sync=False),
    c.Expunge: _spec("EXPUNGE", expunge.expunge, SELECTED),
    c.Fetch: _spec("FETCH", fetch.fetch, SELECTED, expunge_allowed=False),
    c.Store: _spec("STORE", store.store, SELECTED, expunge_allowed=False),
    c.Copy: _spec("COPY", copy_move.copy, SELECTED),
    c.Move: _spec("MOVE", copy_move.move, SELECTED),
    c.Search: _spec("SEARCH", search.search, SELECTED, expunge_allowed=False),
    c.Sort: _spec("SORT", search.sort, SELECTED, expunge_allowed=False),
    c.Thread: _spec("THREAD", search.thread, SELECTED, expunge_allowed=False),
}


def spec_for(command: c.Command, table: dict[type[c.Command], CommandSpec]) -> CommandSpec | None:
    return table.get(type(command))


async def run_command(session: Session, command: c.Command) -> AsyncIterator[Response]:
    """The responses for one command, its tagged completion last (unless it goes on)."""
    if isinstance(command, c.BadCommand):
        log.info("bad command ip=%s tag=%s: %s", session.remote_ip, command.tag, command.message)
        yield Tagged(command.tag, Status.BAD, command.message)
        return
    spec = spec_for(command, DISPATCH)
    if spec is None:
        yield Tagged(command.tag, Status.BAD, "Command not supported")
        return
    if session.state not in spec.states:
        yield Tagged(command.tag, Status.BAD, wrong_state_text(session.state, spec))
        return

    done = Done(f"{spec.name} completed")
    try:
        async for response in spec.handler(session, command):
            if isinstance(response, Done):
                done = response
            else:
                yield response
    except Exception as error:
        done = _failed(session, error, spec.name)

    if session.awaiting is not Awaiting.NOTHING and done.status is Status.OK:
        # The command goes on (IDLE, AUTHENTICATE, STARTTLS): its completion comes later.
        session.pending_tag = command.tag
        if session.awaiting in (Awaiting.TLS_HANDSHAKE, Awaiting.COMPRESSION):
            # The reply goes out in the old layer; the new one starts after it.
            yield Tagged(command.tag, done.status, done.text, done.code)
        return
    session.awaiting = Awaiting.NOTHING
    if session.state is State.SELECTED and spec.sync:
        uid = bool(getattr(command, "uid", False))
        async for response in session.sync(expunge_allowed=spec.expunge_allowed or uid):
            yield response
    if session.state is State.LOGOUT and done.status is Status.OK:
        yield Untagged(Status.BYE, "Roost logging out")
    yield Tagged(command.tag, done.status, done.text, done.code)


async def continue_sasl(session: Session, line: bytes) -> AsyncIterator[Response]:
    """One client line of an AUTHENTICATE exchange (``Awaiting.SASL_RESPONSE``)."""
    async for response in _continued(session, auth.sasl_step(session, line)):
        yield response


async def _continued(
    session: Session, steps: AsyncIterator[Response | Done]
) -> AsyncIterator[Response]:
    """Run the rest of a multi-step command through the same error handling."""
    tag = session.pending_tag
    done: Done | None = None
    try:
        async for response in steps:
            if isinstance(response, Done):
                done = response
            else:
                yield response
    except Exception as error:
        done = _failed(session, error, "continuation")
    if done is not None:
        session.awaiting = Awaiting.NOTHING
        yield Tagged(tag, done.status, done.text, done.code)


def _failed(session: Session, error: Exception, during: str) -> Done:
    """The one choke point (STYLE.md §6): a client's mistake is its NO or BAD, a
    store refusal its RFC 5530 code, anything else NO [SERVERBUG] and a traceback."""
    if isinstance(error, CommandError):
        return Done(error.text, error.code, error.status)
    if isinstance(error, StoreError):
        log.info("store refused ip=%s: %s %s", session.remote_ip, type(error).__name__, error)
        mapped = store_error_response(error)
        return Done(mapped.text, mapped.code, mapped.status)
    log.error("internal error ip=%s during %s", session.remote_ip, during, exc_info=error)
    return Done("Internal server error, logged", Code("SERVERBUG"), Status.NO)


def wrong_state_text(state: State, spec: CommandSpec) -> str:
    if state is State.NOT_AUTHENTICATED:
        return f"{spec.name} needs you to sign in first"
    if State.NOT_AUTHENTICATED in spec.states:
        return f"{spec.name}: already signed in"
    if state is State.AUTHENTICATED:
        return f"{spec.name}: no mailbox selected"
    return f"{spec.name} is not allowed now"
