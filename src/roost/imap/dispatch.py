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
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from roost.imap.commands import (
    acl,
    append,
    auth,
    copy_move,
    expunge,
    extensions,
    fetch,
    idle,
    mailboxes,
    metadata,
    multisearch,
    notify,
    quota,
    replace,
    search,
    status,
    store,
    urlauth,
)
from roost.imap.handler_types import Awaiting, CommandError, Done, State, store_error_response
from roost.imap.session import Session
from roost.imap.uidonly import requires_uid, uid_form
from roost.imap.wire import commands as c
from roost.imap.wire.responses import Code, Response, Status, Tagged, Untagged
from roost.observability import metrics
from roost.store.base import StoreError

log = logging.getLogger("roost.imap")

C = TypeVar("C", bound=c.Command)

# A handler for commands of type C: it yields responses and, last, perhaps a ``Done``.
Handler = Callable[[Session, C], AsyncIterator[Response | Done]]

ANY = frozenset(State) - {State.LOGOUT}
NOT_AUTH = frozenset({State.NOT_AUTHENTICATED})
AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
SELECTED = frozenset({State.SELECTED})


@dataclass(frozen=True, slots=True)
class CommandSpec(Generic[C]):
    """One row of the table; ``command`` and ``handler`` are checked to agree."""

    command: type[C]
    name: str
    handler: Handler[C]
    states: frozenset[State]
    sync: bool = True
    expunge_allowed: bool = True
    # "NAME completed": the completion unless the handler yields its own (one object,
    # not one per command).
    completed: Done = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "completed", Done(f"{self.name} completed"))

    def run(self, session: Session, command: c.Command) -> AsyncIterator[Response | Done]:
        assert isinstance(command, self.command)  # the table is keyed by command type
        return self.handler(session, command)


def _table(specs: Iterable[CommandSpec[Any]]) -> dict[type[c.Command], CommandSpec[Any]]:
    return {spec.command: spec for spec in specs}


# Built without a type context, so that mypy checks each row's handler against its
# command type (inside ``_table(...)`` it would infer ``CommandSpec[Any]`` and not).
_SPECS = (
    CommandSpec(c.Capability, "CAPABILITY", auth.capability, ANY),
    CommandSpec(c.Noop, "NOOP", auth.noop, ANY),
    CommandSpec(c.Logout, "LOGOUT", auth.logout, ANY, sync=False),
    CommandSpec(c.Id, "ID", auth.id_, ANY),
    CommandSpec(c.StartTls, "STARTTLS", auth.starttls, NOT_AUTH),
    CommandSpec(c.Login, "LOGIN", auth.login, NOT_AUTH),
    CommandSpec(c.Authenticate, "AUTHENTICATE", auth.authenticate, NOT_AUTH),
    CommandSpec(c.Enable, "ENABLE", auth.enable, AUTH),
    CommandSpec(c.Select, "SELECT", mailboxes.select, AUTH, sync=False),
    CommandSpec(c.Create, "CREATE", mailboxes.create, AUTH),
    CommandSpec(c.Delete, "DELETE", mailboxes.delete, AUTH),
    CommandSpec(c.Rename, "RENAME", mailboxes.rename, AUTH),
    CommandSpec(c.Subscribe, "SUBSCRIBE", mailboxes.subscribe, AUTH),
    CommandSpec(c.Unsubscribe, "UNSUBSCRIBE", mailboxes.unsubscribe, AUTH),
    CommandSpec(c.List, "LIST", mailboxes.list_, AUTH),
    CommandSpec(c.Lsub, "LSUB", mailboxes.lsub, AUTH),
    CommandSpec(c.Namespace, "NAMESPACE", mailboxes.namespace, AUTH),
    CommandSpec(c.Status, "STATUS", status.status, AUTH),
    CommandSpec(c.GetQuota, "GETQUOTA", quota.getquota, AUTH),
    CommandSpec(c.GetQuotaRoot, "GETQUOTAROOT", quota.getquotaroot, AUTH),
    CommandSpec(c.SetQuota, "SETQUOTA", quota.setquota, AUTH),
    CommandSpec(c.GetMetadata, "GETMETADATA", metadata.getmetadata, AUTH),
    CommandSpec(c.SetMetadata, "SETMETADATA", metadata.setmetadata, AUTH),
    CommandSpec(c.GetAcl, "GETACL", acl.getacl, AUTH),
    CommandSpec(c.SetAcl, "SETACL", acl.setacl, AUTH),
    CommandSpec(c.DeleteAcl, "DELETEACL", acl.deleteacl, AUTH),
    CommandSpec(c.ListRights, "LISTRIGHTS", acl.listrights, AUTH),
    CommandSpec(c.MyRights, "MYRIGHTS", acl.myrights, AUTH),
    CommandSpec(c.Append, "APPEND", append.append, AUTH),
    CommandSpec(c.Idle, "IDLE", idle.idle, AUTH),
    CommandSpec(c.Compress, "COMPRESS", extensions.compress, AUTH, sync=False),
    CommandSpec(c.Notify, "NOTIFY", notify.notify, AUTH),
    CommandSpec(c.Unauthenticate, "UNAUTHENTICATE", auth.unauthenticate, AUTH, sync=False),
    CommandSpec(c.GenUrlAuth, "GENURLAUTH", urlauth.genurlauth, AUTH),
    CommandSpec(c.ResetKey, "RESETKEY", urlauth.resetkey, AUTH),
    CommandSpec(c.UrlFetch, "URLFETCH", urlauth.urlfetch, AUTH),
    CommandSpec(c.Check, "CHECK", expunge.check, SELECTED),
    CommandSpec(c.Close, "CLOSE", expunge.close, SELECTED, sync=False),
    CommandSpec(c.Unselect, "UNSELECT", expunge.unselect, SELECTED, sync=False),
    CommandSpec(c.Expunge, "EXPUNGE", expunge.expunge, SELECTED),
    CommandSpec(c.Fetch, "FETCH", fetch.fetch, SELECTED, expunge_allowed=False),
    CommandSpec(c.Store, "STORE", store.store, SELECTED, expunge_allowed=False),
    CommandSpec(c.Copy, "COPY", copy_move.copy, SELECTED),
    CommandSpec(c.Move, "MOVE", copy_move.move, SELECTED),
    CommandSpec(c.Replace, "REPLACE", replace.replace, SELECTED),
    CommandSpec(c.Search, "SEARCH", search.search, SELECTED, expunge_allowed=False),
    CommandSpec(c.ESearch, "ESEARCH", multisearch.esearch, AUTH, expunge_allowed=False),
    CommandSpec(c.CancelUpdate, "CANCELUPDATE", search.cancelupdate, SELECTED),
    CommandSpec(c.Sort, "SORT", search.sort, SELECTED, expunge_allowed=False),
    CommandSpec(c.Thread, "THREAD", search.thread, SELECTED, expunge_allowed=False),
)
DISPATCH = _table(_SPECS)


def spec_for(
    command: c.Command, table: dict[type[c.Command], CommandSpec[Any]]
) -> CommandSpec[Any] | None:
    return table.get(type(command))


def _count(name: str, done: Done, started: float) -> None:
    """The command's metrics: its result class and how long it took.

    The labelled children are looked up once per name and result: ``labels()`` takes a
    lock and builds its key on every call, which was ~8 % of a pipelined FETCH's CPU."""
    if done.code is not None and getattr(done.code, "name", "") == "SERVERBUG":
        result = "error"
    else:
        result = _RESULT_CLASS[done.status]
    key = (name, result)
    children = _CHILDREN.get(key)
    if children is None:
        children = _CHILDREN[key] = (
            metrics.COMMANDS.labels("imap", name, result),
            metrics.COMMAND_SECONDS.labels("imap", name),
        )
    counter, timer = children
    counter.inc()
    timer.observe(time.perf_counter() - started)


# The labelled metric children (counter, timer) by (command, result); see ``_count``.
_CHILDREN: dict[tuple[str, str], tuple[Any, Any]] = {}


_RESULT_CLASS = {Status.OK: "ok", Status.NO: "no", Status.BAD: "bad"}
metrics.declare("imap", sorted({spec.name for spec in DISPATCH.values()}))


async def run_command(session: Session, command: c.Command) -> AsyncIterator[Response]:
    """The responses for one command, its tagged completion last (unless it goes on)."""
    started = time.perf_counter()
    if isinstance(command, c.BadCommand):
        log.info("bad command ip=%s tag=%s: %s", session.remote_ip, command.tag, command.message)
        metrics.COMMANDS.labels("imap", "other", "bad").inc()
        yield Tagged(command.tag, Status.BAD, command.message)
        return
    spec = DISPATCH.get(type(command))  # spec_for, inlined
    if spec is None:
        metrics.COMMANDS.labels("imap", "other", "bad").inc()
        yield Tagged(command.tag, Status.BAD, "Command not supported")
        return
    if session.state not in spec.states:
        metrics.COMMANDS.labels("imap", spec.name, "bad").inc()
        yield Tagged(command.tag, Status.BAD, wrong_state_text(session.state, spec))
        return

    if session.uidonly and requires_uid(command):
        # RFC 9586 §3.1: no message numbers once UIDONLY is enabled.
        metrics.COMMANDS.labels("imap", spec.name, "bad").inc()
        text = f"{spec.name} needs UIDs: UIDONLY is enabled"
        yield Tagged(command.tag, Status.BAD, text, Code("UIDREQUIRED"))
        return

    done = spec.completed
    try:
        if session.mailbox_account is not None:  # a shared mailbox (RFC 4314): its rights
            await session.refresh_rights()  # at each command; no coroutine otherwise
        async for response in spec.run(session, command):
            if isinstance(response, Done):
                done = response
            else:
                yield uid_form(response) if session.uidonly else response
    except Exception as error:
        done = _failed(session, error, spec.name)

    if session.awaiting is not Awaiting.NOTHING and done.status is Status.OK:
        # The command goes on (IDLE, AUTHENTICATE, STARTTLS): its completion comes later.
        session.pending_tag = command.tag
        _count(spec.name, done, started)
        if session.awaiting in (Awaiting.TLS_HANDSHAKE, Awaiting.COMPRESSION):
            # The reply goes out in the old layer; the new one starts after it.
            yield Tagged(command.tag, done.status, done.text, done.code)
        return
    session.awaiting = Awaiting.NOTHING
    if session.state is State.SELECTED and spec.sync:
        allowed = spec.expunge_allowed or bool(getattr(command, "uid", False))
        if session.sync_due(expunge_allowed=allowed):
            async for response in session.sync(expunge_allowed=allowed):
                yield response
    if session.state is State.LOGOUT and done.status is Status.OK:
        yield Untagged(Status.BYE, "Roost logging out")
    _count(spec.name, done, started)
    code = done.code
    if session.announce_highestmodseq:
        session.announce_highestmodseq = False
        if session.selected is not None and done.status is Status.OK:
            # RFC 7162 §3.1: CONDSTORE enabled implicitly by this command (FETCH MODSEQ,
            # SEARCH MODSEQ, STORE UNCHANGEDSINCE…) reports the selected HIGHESTMODSEQ.
            highest = Code("HIGHESTMODSEQ", str(session.selected.known_modseq))
            if code is None:
                code = highest
            else:
                yield Untagged(Status.OK, "Highest", highest)
    yield Tagged(command.tag, done.status, done.text, code)


async def prefetch_fetches(session: Session, commands: list[c.Fetch]) -> None:
    """Read ahead for a run of pipelined FETCHes (``fetch.prefetch``). A store failure
    here is not the client's business: each FETCH then reads for itself and reports."""
    try:
        await fetch.prefetch(session, commands)
    except StoreError as error:
        log.info("read-ahead failed ip=%s: %s", session.remote_ip, error)


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


def wrong_state_text(state: State, spec: CommandSpec[Any]) -> str:
    if state is State.NOT_AUTHENTICATED:
        return f"{spec.name} needs you to sign in first"
    if State.NOT_AUTHENTICATED in spec.states:
        return f"{spec.name}: already signed in"
    if state is State.AUTHENTICATED:
        return f"{spec.name}: no mailbox selected"
    return f"{spec.name} is not allowed now"
