"""GETMETADATA, SETMETADATA (METADATA and METADATA-SERVER, RFC 5464) and the METADATA
return option of LIST (LIST-METADATA, RFC 9590).

What is stored: server entries (mailbox "") and mailbox entries, each "/private/..."
or "/shared/..." (§3.2). On the user's own mailboxes and the server both kinds belong
to the account. On a mailbox another account shares with the user (ACL), the user
sees and, with "r" and "w", reads and writes its "/shared" entries; "/private" ones
there would be per user and are not kept: setting one is NO [METADATA NOPRIVATE].
Any well-formed name may be set — the comments, "vendor/..." and the names of
the RFC's own examples ("/private/filters/values/..."), as Dovecot allows — except
"/private/specialuse" (RFC 6154 §4), which mirrors the mailbox's SPECIAL-USE attribute
and is read-only here: CREATE-SPECIAL-USE sets it.

Limits (ImapLimits): a value over ``max_metadata_size`` octets is refused with
``[METADATA MAXSIZE n]``, more than ``max_metadata_entries`` entries on one mailbox
(or on the server) with ``[METADATA TOOMANY]`` — all or nothing (§4.3).

Entries that do not exist: an entry asked for by name that has no value, and nothing
below it returned, is answered NIL, as Dovecot and Stalwart do (§4.2 allows
leaving it out; NIL tells the client the question was understood).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

from roost.imap.handler_types import Done, no
from roost.imap.session import Session
from roost.imap.shared import Place
from roost.imap.wire import commands as c
from roost.imap.wire.responses import Code, MetadataResponse, Response
from roost.store.base import Account, MailboxInfo

SPECIALUSE = "/private/specialuse"
NOPRIVATE = Code("METADATA", "NOPRIVATE")


async def getmetadata(session: Session, cmd: c.GetMetadata) -> AsyncIterator[Response | Done]:
    target = await _target(session, cmd.mailbox)
    name = target.name
    if target.place is not None:
        target.place.require("r", "GETMETADATA")  # RFC 5464 §3.3
    found = await _read(target, cmd.entries)
    entries: list[tuple[str, bytes | None]] = []
    longest = 0
    seen: set[str] = set()
    for asked in cmd.entries:
        below = sorted(e for e in found if _within(e, asked, cmd.depth) and e != asked)
        for entry in ([asked] if asked in found or not below else []) + below:
            if entry in seen:
                continue
            seen.add(entry)
            value = found.get(entry)
            if value is not None and cmd.maxsize is not None and len(value) > cmd.maxsize:
                longest = max(longest, len(value))  # §4.2.1: left out, size reported
                continue
            entries.append((entry, value))
    if entries:
        yield MetadataResponse(name, tuple(entries))
    if longest:
        yield Done("GETMETADATA completed", Code("METADATA", f"LONGENTRIES {longest}"))
    else:
        yield Done("GETMETADATA completed")


async def setmetadata(session: Session, cmd: c.SetMetadata) -> AsyncIterator[Response | Done]:
    limits = session.context.limits
    target = await _target(session, cmd.mailbox)
    account, info = target.account, target.info
    changes: dict[str, bytes | None] = {}
    for entry, value in cmd.values:
        if entry == SPECIALUSE and info is not None:
            raise no(f"{SPECIALUSE} follows the mailbox's special use; it cannot be set")
        if target.place is not None:
            if entry.startswith("/private/"):
                raise no("Private entries of a shared mailbox are not kept", NOPRIVATE)
            target.place.require("w", "SETMETADATA")  # RFC 5464 §3.3
        size = 0 if value is None else (value.size if isinstance(value, c.Literal) else len(value))
        if size > limits.max_metadata_size:
            code = Code("METADATA", f"MAXSIZE {limits.max_metadata_size}")
            raise no("Metadata value too large", code)
        if isinstance(value, c.Literal):  # only when the spool threshold is below the limit
            value = await asyncio.to_thread(value.path.read_bytes)
        changes[entry] = value  # a later value for an entry replaces an earlier one
    await account.set_metadata(
        None if info is None else info.id, changes, limits.max_metadata_entries
    )
    yield Done("SETMETADATA completed")


async def list_metadata(
    session: Session,
    name: str,
    info: MailboxInfo,
    entries: tuple[str, ...],
    place: Place | None = None,
) -> MetadataResponse:
    """RFC 9590 §3: after a mailbox's LIST response, the entries asked for (NIL where
    none), exactly as ``GETMETADATA mailbox (entries)`` would give them: of a mailbox
    shared with the user (``place``, which must hold "r"), its /shared entries."""
    account = session.require_account() if place is None else place.account
    found = await _read(_Target(name, info, account, place), entries)
    return MetadataResponse(name, tuple((entry, found.get(entry)) for entry in entries))


@dataclass(frozen=True, slots=True)
class _Target:
    """What a METADATA command is about: the server (``info`` None), a mailbox of the
    user's, or one shared with them (``place``) in its owner's ``account``."""

    name: str
    info: MailboxInfo | None
    account: Account
    place: Place | None


async def _target(session: Session, raw: bytes) -> _Target:
    """The server (mailbox "", §4.2) or a mailbox that exists (NO [NONEXISTENT]).
    In a shared mailbox only "/shared" entries exist for the user: its "/private"
    ones are the owner's, and the user's own are not kept (NOPRIVATE)."""
    if raw == b"":
        return _Target("", None, session.require_account(), None)
    name = session.mailbox_name(raw)
    place = await session.locate(raw)
    info = await place.account.get_mailbox(place.name)
    return _Target(name, info, place.account, place if place.owner is not None else None)


async def _read(target: _Target, names: Iterable[str]) -> Mapping[str, bytes]:
    """The stored entries named or below ``names``, with /private/specialuse added."""
    names = tuple(names)
    info = target.info
    if target.place is not None:
        names = tuple(n for n in names if n == "/shared" or n.startswith("/shared/"))
    found = await target.account.get_metadata(None if info is None else info.id, names)
    mirrored = any(n == SPECIALUSE or SPECIALUSE.startswith(n + "/") for n in names)
    mirrored = mirrored and target.place is None
    if mirrored and info is not None and info.special_use is not None:
        found[SPECIALUSE] = info.special_use.encode("ascii")
    return found


def _within(entry: str, asked: str, depth: int | None) -> bool:
    """``entry`` is ``asked`` or below it, at most ``depth`` levels (None: any)."""
    if entry == asked:
        return True
    if not entry.startswith(asked + "/"):
        return False
    return depth is None or entry[len(asked) + 1 :].count("/") < depth
