"""COPY, MOVE (RFC 6851) and their UID forms, with COPYUID (RFC 4315 §3).

Messages named but already expunged are skipped and the command still succeeds:
RFC 9051 allows it for UID commands, and a NO would make mbsync and offlineimap retry
forever (CLIENTS.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from roost.imap.commands.append import allowed_flags
from roost.imap.handler_types import Done, bad, no
from roost.imap.progress import heartbeat
from roost.imap.session import Session
from roost.imap.shared import Place
from roost.imap.wire import commands as c
from roost.imap.wire.responses import CopyUidCode, Response, Status, Untagged
from roost.store.base import (
    DELETED,
    CopyResult,
    FlagOp,
    MailboxInfo,
    MessageSource,
    NewMessage,
    NoSuchMailbox,
)


async def _destination(session: Session, raw: bytes) -> tuple[Place, MailboxInfo]:
    place = await session.locate(raw)
    place.require("i", "COPY or MOVE into a mailbox")
    try:
        info = await place.account.get_mailbox(place.name)
    except NoSuchMailbox:
        raise no(f"Mailbox {place.name} does not exist", "TRYCREATE") from None
    if info.noselect:
        raise no(f"{place.name} cannot hold messages", "CANNOT")
    return place, info


async def _transfer(
    session: Session, uids: list[int], place: Place, destination: MailboxInfo, *, move: bool
) -> CopyResult:
    """COPY or MOVE within one account by the store; between the user's and an
    owner's (shared folders) by reading each message and appending it, with its
    flags and internal date, byte-exact; a MOVE then expunges the originals."""
    source = session.selected_account()
    selected = session.require_selected()
    if place.account is source:
        if move:
            return await source.move(selected.mailbox_id, uids, destination.id)
        return await source.copy(selected.mailbox_id, uids, destination.id)
    metas = await source.fetch_meta(selected.mailbox_id, uids, with_model=False)
    messages = []
    for meta in metas:
        data = b"".join([chunk async for chunk in source.read_message(meta)])
        flags = allowed_flags(meta.flags, place.rights)
        messages.append(NewMessage(MessageSource(data=data), flags, meta.internaldate, True))
    if not messages:
        return CopyResult(destination.uidvalidity, [], [])
    result = await place.account.append(destination.id, messages)
    moved = [meta.uid for meta in metas]
    if move:
        await source.store_flags(selected.mailbox_id, moved, FlagOp.ADD, frozenset({DELETED}))
        await source.expunge(selected.mailbox_id, moved)
    return CopyResult(result.uidvalidity, moved, result.uids)


def _copyuid(result: CopyResult) -> CopyUidCode | None:
    if not result.source_uids:
        return None
    return CopyUidCode(result.uidvalidity, tuple(result.source_uids), tuple(result.dest_uids))


async def copy(session: Session, cmd: c.Copy) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    if not cmd.uid and not selected.msn_valid(cmd.sequence):
        raise bad("Message number out of range")
    place, destination = await _destination(session, cmd.mailbox)
    uids = selected.resolve(cmd.sequence, uid=cmd.uid)
    if not uids:
        yield Done("COPY completed, nothing to copy")
        return
    task = asyncio.ensure_future(_transfer(session, uids, place, destination, move=False))
    async for progress in heartbeat(task, cmd.tag, session.context.limits.progress_interval):
        yield progress  # RFC 9585
    result = task.result()
    if destination.id == selected.mailbox_id and place.account is session.selected_account():
        session.mark_dirty()
    yield Done("COPY completed", _copyuid(result))


async def move(session: Session, cmd: c.Move) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    if not {"t", "e"} <= set(session.mailbox_rights):
        raise no("MOVE out of this mailbox needs the rights 't' and 'e' (RFC 4314)", "NOPERM")
    if selected.readonly:
        raise no("Mailbox is read-only", "READ-ONLY")
    if not cmd.uid and not selected.msn_valid(cmd.sequence):
        raise bad("Message number out of range")
    # RFC 6851 does not forbid a MOVE into the selected mailbox itself (clients use it
    # to re-file): the messages get new UIDs and the old ones are expunged, as Dovecot does.
    place, destination = await _destination(session, cmd.mailbox)
    uids = selected.resolve(cmd.sequence, uid=cmd.uid)
    if not uids:
        yield Done("MOVE completed, nothing to move")
        return
    task = asyncio.ensure_future(_transfer(session, uids, place, destination, move=True))
    async for progress in heartbeat(task, cmd.tag, session.context.limits.progress_interval):
        yield progress  # RFC 9585
    result = task.result()
    session.mark_dirty()
    code = _copyuid(result)
    if code is not None:
        # RFC 6851 §4.3: COPYUID comes untagged, before the EXPUNGE responses.
        yield Untagged(Status.OK, "Moved", code)
    yield Done("MOVE completed")
