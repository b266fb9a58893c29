"""The private delivery socket (``data_dir/run/lmtp``, mode 0600): how ``roost deliver``
hands a message to a running server, so that the server stores it and every session
idling on the mailbox — on any worker — is told at once (a process that wrote to the
store itself could not tell them: change events travel only inside the server).

Not LMTP: ``roost deliver -d alice -m Folder`` names an account and a folder, which an
RCPT address cannot carry faithfully. One request per connection::

    client: DELIVER {"account": ..., "folder": ..., "sender": ..., "recipient": ...,
                     "size": N}\\r\\n  then exactly N octets (trace fields included)
    server: {"outcome": "ok" | "temporary" | ..., "text": ...}\\r\\n

Only the account that owns the data directory can connect (mode 0600 in a 0700
directory), and it could write the store directly anyway, so nothing is authenticated.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from roost.delivery import DeliveryStatus, MessageSpool, Outcome, SpoolFull, deliver, resolve
from roost.lmtp.context import LmtpContext

log = logging.getLogger("roost.lmtp")

REQUEST_TIMEOUT = 60.0  # seconds for the request line and for each read of the message
MAX_REQUEST_LINE = 64 * 1024
READ_SIZE = 256 * 1024


def encode_request(
    account: str, folder: str | None, sender: str, recipient: str, size: int
) -> bytes:
    request = {
        "account": account,
        "folder": folder,
        "sender": sender,
        "recipient": recipient,
        "size": size,
    }
    return b"DELIVER " + json.dumps(request).encode() + b"\r\n"


def decode_status(line: bytes) -> DeliveryStatus:
    data = json.loads(line)
    return DeliveryStatus(Outcome(data["outcome"]), str(data["text"]), data.get("folder"))


def _encode_status(status: DeliveryStatus) -> bytes:
    data = {"outcome": status.outcome.value, "text": status.text, "folder": status.folder}
    return json.dumps(data).encode() + b"\r\n"


def _parse_request(line: bytes) -> dict[str, Any] | None:
    if not line.startswith(b"DELIVER "):
        return None
    try:
        request = json.loads(line[8:])
    except ValueError:
        return None
    if not (
        isinstance(request, dict)
        and isinstance(request.get("account"), str)
        and isinstance(request.get("folder"), str | None)
        and isinstance(request.get("sender"), str)
        and isinstance(request.get("recipient"), str)
        and isinstance(request.get("size"), int)
        and request["size"] > 0
    ):
        return None
    return request


async def serve_local_delivery(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: LmtpContext
) -> None:
    """Serve one ``roost deliver`` request."""
    line = await asyncio.wait_for(reader.readuntil(b"\r\n"), REQUEST_TIMEOUT)
    request = _parse_request(line[:MAX_REQUEST_LINE])
    if request is None:
        status = DeliveryStatus(Outcome.PERMANENT, "Bad request")
    elif request["size"] > context.lmtp.max_message_size:
        status = DeliveryStatus(Outcome.PERMANENT, "Message too big")
    else:
        status = await _receive_and_deliver(reader, context, request)
    writer.write(_encode_status(status))
    await writer.drain()


async def _receive_and_deliver(
    reader: asyncio.StreamReader, context: LmtpContext, request: dict[str, Any]
) -> DeliveryStatus:
    spool = MessageSpool(context.spool_dir, context.lmtp.spool_threshold, normalize=False)
    try:
        remaining = request["size"]
        while remaining:
            data = await asyncio.wait_for(reader.read(min(remaining, READ_SIZE)), REQUEST_TIMEOUT)
            if not data:
                return DeliveryStatus(Outcome.TEMPORARY, "Message cut short")
            spool.write(data)
            remaining -= len(data)
        try:
            source = spool.finish()
        except SpoolFull as error:
            log.error("cannot spool a message for roost deliver: %s", error)
            return DeliveryStatus(Outcome.TEMPORARY, "Disk full, try again later")
        try:
            target = await resolve(context.store, context.delivery, request["account"])
        except Exception:
            log.exception("cannot look up %s for roost deliver", request["account"])
            return DeliveryStatus(Outcome.TEMPORARY, "Cannot look up the user")
        if target is None:
            return DeliveryStatus(Outcome.NO_SUCH_USER, "No such user")
        folder = request["folder"]
        if folder is None and context.delivery.detail_folders:
            folder = target.detail
        return await deliver(
            context.store,
            target.account,
            source,
            spool.size,
            folder=folder,
            sender=request["sender"],
            recipient=request["recipient"],
            sieve=context.sieve,
        )
    finally:
        spool.discard()
