"""IDLE (RFC 2177): the continuation is sent here; the waiting is the connection's."""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.imap.handler_types import Awaiting, Done
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import Continuation, Response


async def idle(session: Session, cmd: c.Idle) -> AsyncIterator[Response | Done]:
    session.awaiting = Awaiting.IDLE_DONE
    yield Continuation("idling")
    yield Done("IDLE terminated")
