"""STORE and UID STORE: ±FLAGS[.SILENT] (RFC 9051 §6.4.6).

Without .SILENT every message named gets an untagged FETCH with its flags, changed or
not, as clients expect. Either way the view notes what this session already knows, so
the sync point does not report the same change again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from roost.imap.commands.flags import normalize_flags
from roost.imap.session import Done, Response, Session, bad, no
from roost.imap.wire import commands as c
from roost.imap.wire.responses import FetchResponse, FlagList, FlagsResponse
from roost.store.base import FlagOp

_OPS = {
    c.StoreMode.REPLACE: FlagOp.REPLACE,
    c.StoreMode.ADD: FlagOp.ADD,
    c.StoreMode.REMOVE: FlagOp.REMOVE,
}


async def store(session: Session, cmd: c.Store) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    account = session.require_account()
    if cmd.unchangedsince is not None:
        raise bad("UNCHANGEDSINCE needs CONDSTORE, which is not supported")
    if selected.readonly:
        raise no("Mailbox is read-only", "READ-ONLY")
    if not cmd.uid and not selected.msn_valid(cmd.sequence):
        raise bad("Message number out of range")
    flags = normalize_flags(cmd.flags)
    uids = selected.resolve(cmd.sequence, uid=cmd.uid)
    if not uids:
        yield Done("STORE completed")
        return
    result = await account.store_flags(selected.mailbox_id, uids, _OPS[cmd.mode], flags)
    session.mark_dirty()

    new_keywords = {f for f in flags if not f.startswith("\\")} - selected.keywords
    if new_keywords and cmd.mode is not c.StoreMode.REMOVE:
        selected.keywords |= new_keywords
        yield FlagsResponse(selected.all_flags())

    states = sorted(result.updated + result.unchanged, key=lambda s: s.uid)
    for state in states:
        selected.note_reported(state.uid, state.modseq)
        if cmd.silent:
            continue
        msn = selected.msn_of(state.uid)
        if msn is None:
            continue
        flag_list: FlagList = selected.flags_for_wire(state.uid, state.flags)
        items: tuple[tuple[str, FlagList | int], ...] = (
            (("UID", state.uid), ("FLAGS", flag_list)) if cmd.uid else (("FLAGS", flag_list),)
        )
        yield FetchResponse(msn, items)
    yield Done("STORE completed")
