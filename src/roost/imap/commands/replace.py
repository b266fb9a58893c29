"""REPLACE and UID REPLACE (RFC 8508): a message edited in place, such as a draft
saved again, without a window where both or neither copy exists.

The store appends and expunges in one transaction (``Account.replace``). As RFC 8508
§3.3 orders the responses: ``* OK [APPENDUID ...]`` first, then the expunge of the
old message (EXPUNGE or VANISHED, from the sync point), then the tagged OK.

In shared folders (ACL, RFC 4314) REPLACE needs what its two halves need: "t" and "e"
on the selected mailbox, "i" on the target, and sets only the flags the target's rights
allow (RFC 8508 §3.4 defers to APPEND and EXPUNGE). Both must be in one account, since
the store does it in one transaction there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.imap.commands.append import allowed_flags, message_source
from roost.imap.commands.catenate import spool_files
from roost.imap.commands.flags import normalize_flags
from roost.imap.handler_types import Done, bad, no
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import AppendUidCode, Response, Status, Untagged
from roost.store.base import CannotDoThat, NewMessage, NoSuchMailbox


async def replace(session: Session, cmd: c.Replace) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    account = session.selected_account()
    if not {"t", "e"} <= set(session.mailbox_rights):
        raise no("REPLACE in this mailbox needs the rights 't' and 'e' (RFC 4314)", "NOPERM")
    if selected.readonly:
        raise no("Mailbox is read-only", "READ-ONLY")  # the old message is expunged
    if not cmd.uid and not cmd.sequence.uses_star() and not selected.msn_valid(cmd.sequence):
        raise bad("Message number out of range")  # RFC 8508 §3.2
    uids = selected.resolve(cmd.sequence, uid=cmd.uid)
    if not uids:
        raise no("No such message", "NONEXISTENT" if cmd.uid else None)
    place = await session.locate(cmd.mailbox)
    place.require("i", "REPLACE into a mailbox")
    if place.account is not account:
        raise no("REPLACE between your own and another user's mailboxes", "CANNOT")
    name = place.name
    limit = session.context.limits.max_literal_size
    with spool_files(session) as spools:
        # The message as APPEND takes it: a literal, or CATENATE parts (RFC 8508 §3).
        source, size = await message_source(session, cmd.message, spools)
        if size == 0:
            raise no("An empty message cannot be stored", "CANNOT")
        if size > limit:
            raise no(f"Message larger than {limit} bytes", "TOOBIG")
        flags = allowed_flags(normalize_flags(cmd.message.flags), place.rights)
        message = NewMessage(source, flags, cmd.message.internaldate, binary=cmd.message.binary)
        target: int | str = name
        if name == selected.info.name:
            target = selected.mailbox_id
        try:
            result = await account.replace(selected.mailbox_id, uids[0], target, message)
        except NoSuchMailbox:
            raise no(f"Mailbox {name} does not exist", "TRYCREATE") from None
        except CannotDoThat as error:
            raise no(str(error) or f"{name} cannot hold messages", "CANNOT") from None
    session.mark_dirty()
    code = AppendUidCode(result.uidvalidity, tuple(result.uids))
    yield Untagged(Status.OK, "Replacement message stored", code)
    yield Done("REPLACE completed")
