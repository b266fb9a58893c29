"""COMPRESS=DEFLATE (RFC 4978): the handler only agrees; the connection compresses."""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.imap.handler_types import Awaiting, Done, bad, no
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import Response


async def compress(session: Session, cmd: c.Compress) -> AsyncIterator[Response | Done]:
    if cmd.mechanism != "DEFLATE":
        raise bad(f"Unknown compression mechanism {cmd.mechanism}")
    if session.compressed:
        raise no("Compression is already active", "COMPRESSIONACTIVE")
    session.awaiting = Awaiting.COMPRESSION
    yield Done("DEFLATE active")
