"""STATUS (RFC 9051 §6.3.11), and the STATUS items LIST-STATUS (RFC 5819) returns.

Items: RFC 9051's, RECENT (RFC 3501), SIZE (RFC 8438), DELETED-STORAGE (RFC 9208
§4.2.2), HIGHESTMODSEQ (RFC 7162), APPENDLIMIT (RFC 7889), MAILBOXID (RFC 8474). A
mailbox shared with the user needs "r" (RFC 4314 §4).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.imap.commands.quota import storage_units
from roost.imap.handler_types import Done, bad, no
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import ObjectId, Response, StatusResponse
from roost.store.base import MailboxInfo, MailboxStatus, NoSuchMailbox


def status_values(
    session: Session, items: tuple[str, ...], status: MailboxStatus, info: MailboxInfo
) -> tuple[tuple[str, int | ObjectId], ...]:
    values: dict[str, int | ObjectId] = {
        "MESSAGES": status.messages,
        "RECENT": status.recent,
        "UIDNEXT": status.uidnext,
        "UIDVALIDITY": status.uidvalidity,
        "UNSEEN": status.unseen,
        "DELETED": status.deleted,
        "SIZE": status.size,
        "DELETED-STORAGE": storage_units(status.deleted_size),  # RFC 9208 §4.2.2
        "HIGHESTMODSEQ": status.highestmodseq,
        "APPENDLIMIT": session.context.limits.max_literal_size,
        "MAILBOXID": ObjectId(info.object_id),  # RFC 8474 §4.2
    }
    result: list[tuple[str, int | ObjectId]] = []
    for item in items:
        if item not in values:
            raise bad(f"STATUS item {item} is not supported")
        result.append((item, values[item]))
    return tuple(result)


async def status(session: Session, cmd: c.Status) -> AsyncIterator[Response | Done]:
    if "HIGHESTMODSEQ" in cmd.items:
        session.enable_condstore()  # RFC 7162 §3.1: a CONDSTORE-enabling command
    name = session.mailbox_name(cmd.mailbox)
    place = await session.locate(cmd.mailbox)
    place.require("r", "STATUS")  # RFC 4314 §4
    account = place.account
    info = await account.get_mailbox(place.name)
    if info.noselect:
        raise no(f"{name} holds no messages", "NONEXISTENT")
    try:
        current = await account.status(info.id)
    except NoSuchMailbox:
        raise no("No such mailbox", "NONEXISTENT") from None
    yield StatusResponse(name, status_values(session, cmd.items, current, info))
    yield Done("STATUS completed")
