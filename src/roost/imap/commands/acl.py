"""SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS (RFC 4314 §3), and the shared
mailboxes LIST shows under "Other Users" (imap/shared.py).

Rights: the owner has every right, always (RFC 4314 §2: an implementation may give
the owner rights that cannot be taken away), and cannot be given an entry. Others hold
what was granted, each right on its own (LISTRIGHTS: nothing required, each letter
optional). Reading or changing a mailbox's ACL needs "a" (§4). The RFC 2086 rights are
accepted on input: "c" as "k" and "d" as "xte" (§2.1.1); answers use the RFC 4314
letters only. Identifiers are account names (any case, kept as the directory spells
them), "anyone" (every signed-in user, §2) and either with a leading "-": negative
rights, taken away from what the positive entries give (imap/shared.py). An "anyone"
entry shows the mailbox to every user under "Other Users" (when it holds "l").
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.auth.authenticator import find_account
from roost.imap.handler_types import Done, bad, no
from roost.imap.session import Session
from roost.imap.shared import ALL_RIGHTS, ANYONE, Place, owner_account, rights_in, shared_name
from roost.imap.wire import commands as c
from roost.imap.wire.responses import (
    AclResponse,
    ListRightsResponse,
    MyRightsResponse,
    Response,
)
from roost.store.base import Account, MailboxInfo

_LEGACY = {"c": "k", "d": "xte"}  # RFC 2086 rights (RFC 4314 §2.1.1)


async def getacl(session: Session, cmd: c.GetAcl) -> AsyncIterator[Response | Done]:
    place, info = await _mailbox(session, cmd.mailbox, "a")
    granted = await place.account.get_acl(info.id)
    entries = ((place.account.name, ALL_RIGHTS), *sorted(granted.items()))
    yield AclResponse(session.mailbox_name(cmd.mailbox), tuple(entries))
    yield Done("GETACL completed")


async def setacl(session: Session, cmd: c.SetAcl) -> AsyncIterator[Response | Done]:
    place, info = await _mailbox(session, cmd.mailbox, "a")
    identifier = await _grantee(session, place, cmd.identifier)
    mode, letters = cmd.rights[:1], cmd.rights
    if mode in ("+", "-"):
        letters = letters[1:]
    wanted = set(_expand(letters))
    account = place.account
    current = set((await account.get_acl(info.id)).get(identifier, ""))
    if mode == "+":
        wanted |= current
    elif mode == "-":
        wanted = current - wanted
    rights = _ordered(wanted)
    if rights and not identifier.startswith("-"):
        # The grantee's sessions (every user's, for "anyone") look at this owner's
        # mailboxes from now on; negative rights give nothing to look at.
        await session.context.store.add_sharer(account.name, identifier)
    await account.set_acl(info.id, identifier, rights or None)
    yield Done("SETACL completed")


async def deleteacl(session: Session, cmd: c.DeleteAcl) -> AsyncIterator[Response | Done]:
    place, info = await _mailbox(session, cmd.mailbox, "a")
    identifier = await _grantee(session, place, cmd.identifier)
    await place.account.set_acl(info.id, identifier, None)
    yield Done("DELETEACL completed")


async def listrights(session: Session, cmd: c.ListRights) -> AsyncIterator[Response | Done]:
    place, _ = await _mailbox(session, cmd.mailbox, "a")
    name = session.mailbox_name(cmd.mailbox)
    if _is_owner(place, cmd.identifier):
        yield ListRightsResponse(name, place.account.name, ALL_RIGHTS, ())
    else:  # anyone, another account or a negative entry: each right on its own
        identifier = await _grantee(session, place, cmd.identifier)
        yield ListRightsResponse(name, identifier, "", tuple(ALL_RIGHTS))
    yield Done("LISTRIGHTS completed")


async def myrights(session: Session, cmd: c.MyRights) -> AsyncIterator[Response | Done]:
    place, _ = await _mailbox(session, cmd.mailbox, "")
    yield MyRightsResponse(session.mailbox_name(cmd.mailbox), place.rights)
    yield Done("MYRIGHTS completed")


async def shared_mailboxes(session: Session) -> list[tuple[str, str]]:
    """(name under "Other Users", rights) of every mailbox other accounts let this
    user see ("l", RFC 4314 §4 LIST), ordered by owner then name."""
    account = session.require_account()
    found: list[tuple[str, str]] = []
    for owner in await sharing_accounts(session):
        for name, rights in (await rights_in(owner, account.name)).items():
            if "l" in rights:
                found.append((shared_name(owner.name, name), rights))
    return found


async def sharing_accounts(session: Session) -> list[Account]:
    """The other accounts that granted this user, or anyone, something (by name)."""
    account = session.require_account()
    store = session.context.store
    names = {*await store.sharers_of(account.name), *await store.sharers_of(ANYONE)}
    found: list[Account] = []
    for owner_name in sorted(names):
        if owner_name.casefold() == account.name.casefold():
            continue
        owner = await owner_account(session.other_accounts, store.open_account, owner_name)
        if owner is not None:
            found.append(owner)
    return found


async def _mailbox(session: Session, raw: bytes, rights: str) -> tuple[Place, MailboxInfo]:
    """The mailbox named, wherever it lives, if the user holds ``rights`` on it."""
    place = await session.locate(raw)
    place.require(rights, "This")
    return place, await place.account.get_mailbox(place.name)


def _is_owner(place: Place, identifier: str) -> bool:
    return identifier.casefold() == place.account.name.casefold()


async def _grantee(session: Session, place: Place, identifier: str) -> str:
    """The identifier an entry is kept under: "anyone", or an account as the directory
    spells it; with its leading "-" for negative rights (RFC 4314 §2)."""
    sign, name = ("-", identifier[1:]) if identifier.startswith("-") else ("", identifier)
    if _is_owner(place, name):
        raise no("The owner always has every right", "CANNOT")
    if name.casefold() == ANYONE:
        return sign + ANYONE
    found = await find_account(session.context.store, name) if name else None
    if found is None:
        raise no(f"No account {name}", "NONEXISTENT")
    return sign + found


def _expand(letters: str) -> str:
    """Rights letters, RFC 2086's expanded; BAD for a letter RFC 4314 does not know."""
    out = []
    for letter in letters:
        if letter in _LEGACY:
            out.append(_LEGACY[letter])
        elif letter in ALL_RIGHTS:
            out.append(letter)
        else:
            raise bad(f"Unknown right {letter!r} (RFC 4314 §2.1)")
    return "".join(out)


def _ordered(rights: set[str]) -> str:
    return "".join(r for r in ALL_RIGHTS if r in rights)
