"""COMPRESS=DEFLATE (RFC 4978): the handler only agrees; the connection compresses."""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.imap.session import Awaiting, Done, Response, Session, bad, no
from roost.imap.wire import commands as c


async def compress(session: Session, cmd: c.Compress) -> AsyncIterator[Response | Done]:
    if cmd.mechanism != "DEFLATE":
        raise bad(f"Unknown compression mechanism {cmd.mechanism}")
    if session.compressed:
        raise no("Compression is already active", "COMPRESSIONACTIVE")
    session.awaiting = Awaiting.COMPRESSION
    yield Done("DEFLATE active")
