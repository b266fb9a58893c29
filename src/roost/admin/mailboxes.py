"""``roost mailbox`` and ``roost index rebuild``: one user's mailboxes, through the Store.

Each operation is a request — a JSON object, ``{"op": "mailbox", "action": "create",
"user": "alice", "name": "Work"}`` — performed by ``perform`` on a store: the running
server's (sent through its control socket, runtime/control.py, so its sessions are
told by the ordinary change events) or, when no server runs, the CLI's own. Results
are JSON values too, so both ways print the same.

Expunge removes the messages that match every criterion given (at least one: an
expunge of a whole mailbox by a slip of the keyboard is not offered); the messages
are flagged \\Deleted and expunged in one store call each, like an IMAP client would,
so sessions that have the mailbox selected see ordinary EXPUNGE responses.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict
from typing import Any, Protocol, runtime_checkable

from roost.store.base import Account, Store, StoreError
from roost.store.query import (
    Criterion,
    DateComparison,
    MatchAllOf,
    MatchArrivalDay,
    MatchFlag,
    MatchLarger,
    SearchQuery,
)
from roost.store.values import FlagOp

ACTIONS = ("list", "status", "create", "delete", "rename", "expunge", "rebuild-index")


class RequestError(Exception):
    """A request the operator must correct; the text says how."""


@runtime_checkable
class Reindexable(Protocol):
    """An account whose backend keeps a search index and analyses it can rebuild."""

    async def rebuild_index(self) -> int: ...


async def _canonical(store: Store, user: str) -> str:
    accounts = await store.list_accounts()
    if user in accounts:
        return user
    for account in accounts:
        if account.casefold() == user.casefold():
            return account
    raise RequestError(f"no account {user!r}")


async def perform(store: Store, request: dict[str, Any]) -> Any:
    """Carry out one mailbox request; RequestError or StoreError on failure."""
    action = request.get("action")
    if action not in ACTIONS:
        raise RequestError(f"unknown mailbox action {action!r}")
    user = await _canonical(store, str(request.get("user", "")))
    account = await store.open_account(user)
    try:
        return await _run(account, str(action), request)
    finally:
        await account.close()


def _text(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise RequestError(f"missing {key}")
    return value


async def _run(account: Account, action: str, request: dict[str, Any]) -> Any:
    match action:
        case "list":
            return [
                {"name": box.name, "special_use": box.special_use, "noselect": box.noselect}
                for box in sorted(await account.list_mailboxes(), key=lambda box: box.name)
            ]
        case "status":
            names = request.get("names") or [
                box.name for box in await account.list_mailboxes() if not box.noselect
            ]
            result = []
            for name in sorted(names):
                box = await account.get_mailbox(name)
                result.append({"name": box.name, **asdict(await account.status(box.id))})
            return result
        case "create":
            box = await account.create_mailbox(_text(request, "name"))
            return {"name": box.name, "uidvalidity": box.uidvalidity}
        case "delete":
            await account.delete_mailbox(_text(request, "name"))
            return {"deleted": request["name"]}
        case "rename":
            await account.rename_mailbox(_text(request, "name"), _text(request, "new_name"))
            return {"renamed": request["name"], "to": request["new_name"]}
        case "expunge":
            return await _expunge(account, request)
        case _:  # rebuild-index
            if not isinstance(account, Reindexable):
                raise RequestError("this store backend has no index to rebuild")
            return {"reindexed": await account.rebuild_index()}


def criterion_of(request: dict[str, Any]) -> Criterion:
    """The search criterion of an expunge request: every given condition must hold."""
    criteria: list[Criterion] = []
    before = request.get("before")
    if before:
        try:
            day = datetime.date.fromisoformat(str(before))
        except ValueError:
            raise RequestError(f"--before wants a date as YYYY-MM-DD, not {before!r}") from None
        criteria.append(MatchArrivalDay(DateComparison.BEFORE, day))
    if request.get("seen"):
        criteria.append(MatchFlag("\\Seen"))
    if request.get("deleted"):
        criteria.append(MatchFlag("\\Deleted"))
    larger = request.get("larger")
    if larger is not None:
        criteria.append(MatchLarger(int(larger)))
    if not criteria:
        raise RequestError("say which messages: --before DATE, --seen, --deleted or --larger N")
    return criteria[0] if len(criteria) == 1 else MatchAllOf(tuple(criteria))


async def _expunge(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    criterion = criterion_of(request)
    box = await account.get_mailbox(_text(request, "name"))
    if box.noselect:
        raise RequestError(f"{box.name} holds no messages")
    uids = (await account.search(box.id, SearchQuery(criterion))).uids
    if uids:
        await account.store_flags(box.id, uids, FlagOp.ADD, frozenset({"\\Deleted"}))
        uids = await account.expunge(box.id, uids)
    return {"mailbox": box.name, "expunged": len(uids)}


__all__ = ["ACTIONS", "Reindexable", "RequestError", "StoreError", "criterion_of", "perform"]
