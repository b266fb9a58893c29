"""The asyncio glue of one ManageSieve connection: bytes in, replies out, STARTTLS,
time-outs. Everything else is the receiver's (wire.py) and the session's.

A refused literal (too large) is answered at once, before any of it is read; beyond the
receiver's ``skip_limit`` the connection closes after the answer, so a client cannot make
the server read 100 MB it will never keep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from roost.managesieve.context import ManageSieveContext
from roost.managesieve.session import Reply, Session
from roost.managesieve.wire import (
    BadCommand,
    Command,
    LiteralRefused,
    NeedData,
    Receiver,
    response,
)
from roost.runtime.streams import drop_buffered_input

log = logging.getLogger("roost.managesieve")

READ_SIZE = 64 * 1024


async def serve_managesieve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: ManageSieveContext,
    *,
    tls_active: bool = False,
    remote_ip: str,
) -> None:
    session = Session(context, tls_active=tls_active, remote_ip=remote_ip)
    limits = context.limits
    receiver = Receiver(
        max_script_literal=limits.max_script_size, skip_limit=max(limits.max_script_size, 1 << 20)
    )
    try:
        writer.write(session.greeting())
        await writer.drain()
        while True:
            event = receiver.next_event()
            match event:
                case NeedData():
                    try:
                        data = await asyncio.wait_for(reader.read(READ_SIZE), limits.timeout)
                    except TimeoutError:
                        writer.write(response("BYE", None, "Idle too long"))
                        await writer.drain()
                        return
                    if not data:
                        return
                    receiver.feed(data)
                    continue
                case BadCommand(reason=reason):
                    reply = session.bad(reason)
                case LiteralRefused(command=command, size=size, close=close):
                    log.info("managesieve literal refused ip=%s size=%d", remote_ip, size)
                    code = "QUOTA/MAXSIZE" if command in ("PUTSCRIPT", "CHECKSCRIPT") else None
                    data = response("NO", code, f"Literal of {size} octets is too large")
                    if close:
                        data += response("BYE", None, "Closing: literal too large")
                    reply = Reply(data, close=close)
                case Command():
                    reply = await session.handle(event)
            writer.write(reply.data)
            await writer.drain()
            if reply.close:
                return
            if reply.start_tls:
                assert context.tls_context is not None
                drop_buffered_input(reader)  # RFC 3207-style: nothing pipelined survives
                receiver = Receiver(
                    max_script_literal=limits.max_script_size,
                    skip_limit=max(limits.max_script_size, 1 << 20),
                )
                await writer.start_tls(context.tls_context)
                writer.write(session.tls_started())
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, OSError) as error:
        log.debug("managesieve connection ended ip=%s: %s", remote_ip, error)
    finally:
        await session.close()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
