"""EXPUNGE, UID EXPUNGE (RFC 4315 §2.1), CLOSE, UNSELECT (RFC 3691), CHECK.

EXPUNGE responses come from the sync point that follows every command, so an
expunge made here and one made by another connection are announced the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from roost.imap.handler_types import Done, State, no
from roost.imap.progress import heartbeat
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import Response


async def expunge(session: Session, cmd: c.Expunge) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    account = session.selected_account()
    if "e" not in session.mailbox_rights:
        raise no("EXPUNGE needs the right 'e' (RFC 4314)", "NOPERM")
    if selected.readonly:
        raise no("Mailbox is read-only", "READ-ONLY")
    uids = None if cmd.uids is None else selected.resolve(cmd.uids, uid=True)
    if uids == []:
        yield Done("EXPUNGE completed")
        return
    task = asyncio.ensure_future(account.expunge(selected.mailbox_id, uids))
    async for progress in heartbeat(task, cmd.tag, session.context.limits.progress_interval):
        yield progress  # RFC 9585
    task.result()
    session.mark_dirty()
    yield Done("EXPUNGE completed")


async def close(session: Session, cmd: c.Close) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    account = session.selected_account()
    # RFC 9051 §6.4.1: expunge silently, and never in a read-only mailbox.
    if not selected.readonly and "e" in session.mailbox_rights:  # RFC 4314 §4
        await account.expunge(selected.mailbox_id)
    session.selected = None
    session.state = State.AUTHENTICATED
    session.leave_shared()
    yield Done("CLOSE completed")


async def unselect(session: Session, cmd: c.Unselect) -> AsyncIterator[Response | Done]:
    session.require_selected()
    session.selected = None
    session.state = State.AUTHENTICATED
    session.leave_shared()
    yield Done("UNSELECT completed")


async def check(session: Session, cmd: c.Check) -> AsyncIterator[Response | Done]:
    # Every change is durable before its OK, so there is nothing left to flush.
    session.require_selected()
    yield Done("CHECK completed")
