"""APPEND, with MULTIAPPEND (RFC 3502) and UIDPLUS's APPENDUID (RFC 4315 §3).

The store makes bare LF CRLF (RFC 9051 §6.3.12) unless the message came as literal8
(then it is kept byte-exact); big literals arrive already spooled to a file by the
receiver, so nothing here holds a large message in memory. A NUL byte is accepted only
in a literal8 (``~{n}``), and then stored as it came.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.imap.commands.flags import normalize_flags
from roost.imap.handler_types import Done, no
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import AppendUidCode, Response
from roost.store.base import CannotDoThat, MessageSource, NewMessage, NoSuchMailbox


def _contains_nul(data: c.MessageData) -> bool:
    """Whether a message holds a NUL byte; the receiver noted it for a spooled one."""
    return b"\x00" in data if isinstance(data, bytes) else data.contains_nul


def _source(data: c.MessageData) -> tuple[MessageSource, int]:
    if isinstance(data, bytes):
        return MessageSource(data=data), len(data)
    return MessageSource(path=data.path), data.size


async def append(session: Session, cmd: c.Append) -> AsyncIterator[Response | Done]:
    place = await session.locate(cmd.mailbox)
    place.require("i", "APPEND")
    account, name = place.account, place.name
    limit = session.context.limits.max_literal_size
    messages: list[NewMessage] = []
    for message in cmd.messages:
        source, size = _source(message.data)
        if size == 0:
            raise no("An empty message cannot be stored", "CANNOT")
        if size > limit:
            raise no(f"Message larger than {limit} bytes", "TOOBIG")
        # RFC 9051 §4.3: a literal is CHAR8, never NUL; only literal8 (~{n}, RFC 3516)
        # may carry one. Refuse rather than store something the client did not mean
        # to send, or change a byte of it.
        if not message.binary and _contains_nul(message.data):
            raise no("A NUL byte in a {n} literal: send the message as ~{n} (BINARY)", "CANNOT")
        flags = allowed_flags(normalize_flags(message.flags), place.rights)
        messages.append(NewMessage(source, flags, message.internaldate, binary=message.binary))
    try:
        # By name: the store looks the mailbox up in the same job as it stores.
        result = await account.append(name, messages)
    except NoSuchMailbox:
        # RFC 9051 §6.3.12: TRYCREATE tells the client that CREATE would help.
        raise no(f"Mailbox {name} does not exist", "TRYCREATE") from None
    except CannotDoThat:
        raise no(f"{name} cannot hold messages", "CANNOT") from None
    selected = session.selected
    if (
        selected is not None
        and selected.mailbox_id == result.mailbox.id
        and (session.selected_account() is account)
    ):
        session.mark_dirty()
    yield Done("APPEND completed", AppendUidCode(result.uidvalidity, tuple(result.uids)))


def allowed_flags(flags: frozenset[str], rights: str) -> frozenset[str]:
    """RFC 4314 §4: APPEND and COPY set only the flags the user may set — \\Seen with
    "s", \\Deleted with "t", the others with "w" — and silently drop the rest."""
    needs = {"\\Seen": "s", "\\Deleted": "t"}
    return frozenset(f for f in flags if needs.get(f, "w") in rights)
