"""COPY, MOVE (RFC 6851) and their UID forms, with COPYUID (RFC 4315 §3).

Messages named but already expunged are skipped and the command still succeeds:
RFC 9051 allows it for UID commands, and a NO would make mbsync and offlineimap retry
forever (CLIENTS.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from roost.imap.handler_types import Done, bad, no
from roost.imap.progress import heartbeat
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import CopyUidCode, Response, Status, Untagged
from roost.store.base import CopyResult, MailboxInfo, NoSuchMailbox


async def _destination(session: Session, raw: bytes) -> MailboxInfo:
    name = session.mailbox_name(raw)
    try:
        info = await session.require_account().get_mailbox(name)
    except NoSuchMailbox:
        raise no(f"Mailbox {name} does not exist", "TRYCREATE") from None
    if info.noselect:
        raise no(f"{name} cannot hold messages", "CANNOT")
    return info


def _copyuid(result: CopyResult) -> CopyUidCode | None:
    if not result.source_uids:
        return None
    return CopyUidCode(result.uidvalidity, tuple(result.source_uids), tuple(result.dest_uids))


async def copy(session: Session, cmd: c.Copy) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    account = session.require_account()
    if not cmd.uid and not selected.msn_valid(cmd.sequence):
        raise bad("Message number out of range")
    destination = await _destination(session, cmd.mailbox)
    uids = selected.resolve(cmd.sequence, uid=cmd.uid)
    if not uids:
        yield Done("COPY completed, nothing to copy")
        return
    task = asyncio.ensure_future(account.copy(selected.mailbox_id, uids, destination.id))
    async for progress in heartbeat(task, cmd.tag, session.context.limits.progress_interval):
        yield progress  # RFC 9585
    result = task.result()
    if destination.id == selected.mailbox_id:
        session.mark_dirty()
    yield Done("COPY completed", _copyuid(result))


async def move(session: Session, cmd: c.Move) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    account = session.require_account()
    if selected.readonly:
        raise no("Mailbox is read-only", "READ-ONLY")
    if not cmd.uid and not selected.msn_valid(cmd.sequence):
        raise bad("Message number out of range")
    # RFC 6851 does not forbid a MOVE into the selected mailbox itself (clients use it
    # to re-file): the messages get new UIDs and the old ones are expunged, as Dovecot does.
    destination = await _destination(session, cmd.mailbox)
    uids = selected.resolve(cmd.sequence, uid=cmd.uid)
    if not uids:
        yield Done("MOVE completed, nothing to move")
        return
    task = asyncio.ensure_future(account.move(selected.mailbox_id, uids, destination.id))
    async for progress in heartbeat(task, cmd.tag, session.context.limits.progress_interval):
        yield progress  # RFC 9585
    result = task.result()
    session.mark_dirty()
    code = _copyuid(result)
    if code is not None:
        # RFC 6851 §4.3: COPYUID comes untagged, before the EXPUNGE responses.
        yield Untagged(Status.OK, "Moved", code)
    yield Done("MOVE completed")
