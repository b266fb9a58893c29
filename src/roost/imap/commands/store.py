"""STORE and UID STORE: ±FLAGS[.SILENT] (RFC 9051 §6.4.6).

Without .SILENT every message named gets an untagged FETCH with its flags, changed or
not, as clients expect. Either way the view notes what this session already knows, so
the sync point does not report the same change again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from roost.imap.commands.flags import normalize_flags
from roost.imap.handler_types import Done, bad, no
from roost.imap.progress import heartbeat
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.responses import (
    Code,
    FetchResponse,
    FetchValue,
    FlagsResponse,
    Parenthesized,
    Response,
)
from roost.imap.wire.sequence import compress_uids
from roost.store.base import FlagOp

_OPS = {
    c.StoreMode.REPLACE: FlagOp.REPLACE,
    c.StoreMode.ADD: FlagOp.ADD,
    c.StoreMode.REMOVE: FlagOp.REMOVE,
}


async def store(session: Session, cmd: c.Store) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    account = session.selected_account()
    if cmd.unchangedsince is not None:
        session.enable_condstore()  # RFC 7162 §3.1: a CONDSTORE-enabling command
    flags = normalize_flags(cmd.flags)
    _check_rights(session.mailbox_rights, flags)  # a sharer's missing right comes first
    if selected.readonly:
        raise no("Mailbox is read-only", "READ-ONLY")
    if not cmd.uid and not selected.msn_valid(cmd.sequence):
        raise bad("Message number out of range")
    uids = selected.resolve(cmd.sequence, uid=cmd.uid)
    if not uids:
        yield Done("STORE completed")
        return
    task = asyncio.ensure_future(
        account.store_flags(selected.mailbox_id, uids, _OPS[cmd.mode], flags, cmd.unchangedsince)
    )
    async for progress in heartbeat(task, cmd.tag, session.context.limits.progress_interval):
        yield progress  # RFC 9585
    result = task.result()
    session.mark_dirty()

    new_keywords = {f for f in flags if not f.startswith("\\")} - selected.keywords
    if new_keywords and cmd.mode is not c.StoreMode.REMOVE:
        selected.keywords |= new_keywords
        yield FlagsResponse(selected.all_flags())

    updated = {state.uid for state in result.updated}
    known = selected.known_modseq
    states = sorted(result.updated + result.unchanged, key=lambda s: s.uid)
    for state in states:
        # The sync point must not repeat this state, unless the client cannot know it:
        # with .SILENT it only knows its own change, so if someone else changed the
        # message first (a modseq beyond the view's), the whole state must still go out.
        before = result.previous_modseq.get(state.uid, state.modseq)
        if not cmd.silent or before <= known:
            selected.note_reported(state.uid, state.modseq)
        msn = selected.msn_of(state.uid)
        # RFC 7162 §3.1.3: a CONDSTORE client hears each new MODSEQ even with .SILENT.
        silent_modseq = cmd.silent and session.condstore and state.uid in updated
        if msn is None or (cmd.silent and not silent_modseq):
            continue
        items: list[tuple[str, FetchValue]] = []
        if cmd.uid:
            items.append(("UID", state.uid))
        if not cmd.silent:
            items.append(("FLAGS", selected.flags_for_wire(state.uid, state.flags)))
        if session.condstore:
            items.append(("MODSEQ", Parenthesized(state.modseq)))
        yield FetchResponse(msn, tuple(items))

    if result.failed_unchangedsince:
        # RFC 7162 §3.1.3: MODIFIED names what was not stored, as UIDs for UID STORE.
        failed = sorted(result.failed_unchangedsince)
        numbers = failed if cmd.uid else sorted(filter(None, map(selected.msn_of, failed)))
        yield Done("Some messages changed meanwhile", Code("MODIFIED", compress_uids(numbers)))
        return
    yield Done("STORE completed")


def _check_rights(rights: str, flags: frozenset[str]) -> None:
    """RFC 4314 §4: \\Seen needs "s", \\Deleted "t", any other flag "w" (a REPLACE with
    no flags touches them all, so it needs all three)."""
    needed = {"s", "t", "w"} if not flags else set()
    for flag in flags:
        needed.add({"\\Seen": "s", "\\Deleted": "t"}.get(flag, "w"))
    missing = "".join(sorted(needed - set(rights)))
    if missing:
        raise no(f"STORE of these flags needs the right {missing!r} (RFC 4314)", "NOPERM")
