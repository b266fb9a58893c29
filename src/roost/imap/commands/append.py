"""APPEND, with MULTIAPPEND (RFC 3502), CATENATE (RFC 4469, built in catenate.py) and
UIDPLUS's APPENDUID (RFC 4315 §3).

The store makes bare LF CRLF (RFC 9051 §6.3.12) unless the message came as literal8
(then it is kept byte-exact); big literals arrive already spooled to a file by the
receiver, so nothing here holds a large message in memory. A NUL byte is accepted only
in a literal8 (``~{n}``), and then stored as it came.

MULTIAPPEND is all or nothing (RFC 3502 §6.3.11): every message, catenated ones included,
is checked and built before the store appends them in one transaction.

Into another user's mailbox (shared folders) APPEND needs the "i" right, and sets only
the flags the rights allow (RFC 4314 §4).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.imap.commands.catenate import SpoolFiles, build, contains_nul, spool_files
from roost.imap.commands.flags import normalize_flags
from roost.imap.handler_types import Done, no
from roost.imap.session import Session
from roost.imap.shared import Place
from roost.imap.wire import commands as c
from roost.imap.wire.responses import AppendUidCode, Response
from roost.store.base import (
    AppendResult,
    CannotDoThat,
    MessageSource,
    NewMessage,
    NoSuchMailbox,
)


async def message_source(
    session: Session, message: c.AppendMessage, spools: SpoolFiles
) -> tuple[MessageSource, int]:
    data = message.data
    if isinstance(data, c.Catenate):
        return await build(session, data, spools)
    # RFC 9051 §4.3: a literal is CHAR8, never NUL; only literal8 (~{n}, RFC 3516)
    # may carry one. Refuse rather than store something the client did not mean
    # to send, or change a byte of it.
    if not message.binary and contains_nul(data):
        raise no("A NUL byte in a {n} literal: send the message as ~{n} (BINARY)", "CANNOT")
    if isinstance(data, bytes):
        return MessageSource(data=data), len(data)
    return MessageSource(path=data.path), data.size


async def append(session: Session, cmd: c.Append) -> AsyncIterator[Response | Done]:
    place = await session.locate(cmd.mailbox)
    place.require("i", "APPEND")
    with spool_files(session) as spools:
        result = await _append(session, cmd, place, spools)
    selected = session.selected
    if (
        selected is not None
        and selected.mailbox_id == result.mailbox.id
        and session.selected_account() is place.account
    ):
        session.mark_dirty()
    yield Done("APPEND completed", AppendUidCode(result.uidvalidity, tuple(result.uids)))


async def _append(
    session: Session, cmd: c.Append, place: Place, spools: SpoolFiles
) -> AppendResult:
    account, name = place.account, place.name
    limit = session.context.limits.max_literal_size
    messages: list[NewMessage] = []
    for message in cmd.messages:
        source, size = await message_source(session, message, spools)
        if size == 0:
            raise no("An empty message cannot be stored", "CANNOT")
        if size > limit:
            raise no(f"Message larger than {limit} bytes", "TOOBIG")
        flags = allowed_flags(normalize_flags(message.flags), place.rights)
        messages.append(NewMessage(source, flags, message.internaldate, binary=message.binary))
    try:
        # By name: the store looks the mailbox up in the same job as it stores.
        return await account.append(name, messages)
    except NoSuchMailbox:
        # RFC 9051 §6.3.12: TRYCREATE tells the client that CREATE would help.
        raise no(f"Mailbox {name} does not exist", "TRYCREATE") from None
    except CannotDoThat:
        raise no(f"{name} cannot hold messages", "CANNOT") from None


def allowed_flags(flags: frozenset[str], rights: str) -> frozenset[str]:
    """RFC 4314 §4: APPEND and COPY set only the flags the user may set — \\Seen with
    "s", \\Deleted with "t", the others with "w" — and silently drop the rest."""
    needs = {"\\Seen": "s", "\\Deleted": "t"}
    return frozenset(f for f in flags if needs.get(f, "w") in rights)
