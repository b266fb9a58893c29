"""The command table: which handler runs a command, in which states, and what the
session may say around it.

``sync``: run a sync point before the tagged reply (every command in the selected
state except those that end the selection or answer nothing about it).
``expunge_allowed``: RFC 9051 §7.5.1 — no EXPUNGE while responding to FETCH, STORE or
SEARCH by sequence number, because the client's numbers must stay valid; their UID
forms may (the session allows it when the command has ``uid``).
"""

from __future__ import annotations

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
from roost.imap.handler_types import Done, State
from roost.imap.wire import commands as c
from roost.imap.wire.responses import Response

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
