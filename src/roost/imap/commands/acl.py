"""SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS (RFC 4314) on one's own mailboxes.

Not advertised: ACL is whole only with shared folders (another user seeing a granted
mailbox under "Other Users/", every command checking the rights of RFC 4314 §4, events
reaching both users' sessions), which are not there yet. What works: an owner keeps
the ACL of each of their mailboxes — the grants are stored with the mailbox, kept by
RENAME and removed with it — and reads it back.

Rights: the owner has every right, always (RFC 4314 §2: an implementation may give
the owner rights that cannot be taken away), and cannot be given an entry. Others hold
what was granted, each right on its own (LISTRIGHTS: nothing required, each letter
optional). The RFC 2086 rights are accepted on input: "c" as "k" and "d" as "xte"
(RFC 4314 §2.1.1); answers use the RFC 4314 letters only. Identifiers are account
names (any case); "anyone" and negative ("-name") entries are refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.auth.authenticator import find_account
from roost.imap.handler_types import Done, bad, no
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import (
    AclResponse,
    ListRightsResponse,
    MyRightsResponse,
    Response,
)
from roost.store.base import MailboxInfo

ALL_RIGHTS = "lrswipkxtea"  # RFC 4314 §2.1, in the RFC's order
_LEGACY = {"c": "k", "d": "xte"}  # RFC 2086 rights (RFC 4314 §2.1.1)


async def getacl(session: Session, cmd: c.GetAcl) -> AsyncIterator[Response | Done]:
    info = await _own_mailbox(session, cmd.mailbox)
    granted = await session.require_account().get_acl(info.id)
    entries = ((session.require_account().name, ALL_RIGHTS), *sorted(granted.items()))
    yield AclResponse(info.name, tuple(entries))
    yield Done("GETACL completed")


async def setacl(session: Session, cmd: c.SetAcl) -> AsyncIterator[Response | Done]:
    info = await _own_mailbox(session, cmd.mailbox)
    identifier = await _grantee(session, cmd.identifier)
    mode, letters = cmd.rights[:1], cmd.rights
    if mode in ("+", "-"):
        letters = letters[1:]
    wanted = set(_expand(letters))
    account = session.require_account()
    current = set((await account.get_acl(info.id)).get(identifier, ""))
    if mode == "+":
        wanted |= current
    elif mode == "-":
        wanted = current - wanted
    await account.set_acl(info.id, identifier, _ordered(wanted) or None)
    yield Done("SETACL completed")


async def deleteacl(session: Session, cmd: c.DeleteAcl) -> AsyncIterator[Response | Done]:
    info = await _own_mailbox(session, cmd.mailbox)
    identifier = await _grantee(session, cmd.identifier)
    await session.require_account().set_acl(info.id, identifier, None)
    yield Done("DELETEACL completed")


async def listrights(session: Session, cmd: c.ListRights) -> AsyncIterator[Response | Done]:
    info = await _own_mailbox(session, cmd.mailbox)
    if _is_owner(session, cmd.identifier):
        yield ListRightsResponse(info.name, cmd.identifier, ALL_RIGHTS, ())
    else:
        identifier = await _grantee(session, cmd.identifier)
        yield ListRightsResponse(info.name, identifier, "", tuple(ALL_RIGHTS))
    yield Done("LISTRIGHTS completed")


async def myrights(session: Session, cmd: c.MyRights) -> AsyncIterator[Response | Done]:
    info = await _own_mailbox(session, cmd.mailbox)
    yield MyRightsResponse(info.name, ALL_RIGHTS)
    yield Done("MYRIGHTS completed")


async def _own_mailbox(session: Session, raw: bytes) -> MailboxInfo:
    """A mailbox of the signed-in account (NO [NONEXISTENT] otherwise)."""
    return await session.require_account().get_mailbox(session.mailbox_name(raw))


def _is_owner(session: Session, identifier: str) -> bool:
    return identifier.casefold() == session.require_account().name.casefold()


async def _grantee(session: Session, identifier: str) -> str:
    """The account an entry is for, as the directory spells it."""
    if _is_owner(session, identifier):
        raise no("The owner always has every right", "CANNOT")
    if identifier.startswith("-") or identifier.casefold() == "anyone":
        raise no("Only entries for other accounts are kept", "CANNOT")
    found = await find_account(session.context.store, identifier)
    if found is None:
        raise no(f"No account {identifier}", "NONEXISTENT")
    return found


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
