"""FETCH and UID FETCH (RFC 9051 §6.4.5).

Messages are read from the store in batches (``fetch_batch_size`` per round trip) and
each response is yielded as soon as it is built, so a FETCH of 100,000 messages never
holds more than one batch of metadata and one message body in memory.

Supported now: FLAGS, UID, INTERNALDATE, RFC822.SIZE, RFC822, RFC822.HEADER,
RFC822.TEXT and BODY[]/BODY.PEEK[] with HEADER, HEADER.FIELDS (.NOT), TEXT and
partial ranges. ENVELOPE, BODYSTRUCTURE, MIME part sections and BINARY come with the
message model; until then they are answered BAD rather than approximated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from roost.imap.selected import SelectedMailbox
from roost.imap.session import Done, Response, Session, bad
from roost.imap.wire import commands as c
from roost.imap.wire.responses import (
    Code,
    FetchResponse,
    FetchValue,
    NString,
    Parenthesized,
    Vanished,
)
from roost.imap.wire.sequence import SequenceSet
from roost.mime.headers import select_fields
from roost.store.base import SEEN, Account, FlagOp, FlagState, MessageMeta

_NOT_YET = {
    c.FetchItem.ENVELOPE,
    c.FetchItem.BODYSTRUCTURE,
    c.FetchItem.BODY,
    c.FetchItem.EMAILID,
    c.FetchItem.THREADID,
    c.FetchItem.SAVEDATE,
}
_CONTENT_ITEMS = {c.FetchItem.RFC822, c.FetchItem.RFC822_HEADER, c.FetchItem.RFC822_TEXT}
# RFC 9051 §6.4.5: fetching these (not their .PEEK forms) sets \Seen.
_SETS_SEEN_ITEMS = {c.FetchItem.RFC822, c.FetchItem.RFC822_TEXT}


def _check_supported(attributes: Sequence[c.FetchAttribute]) -> None:
    for attribute in attributes:
        if isinstance(attribute, c.FetchItem) and attribute in _NOT_YET:
            raise bad(f"FETCH {attribute.value} is not supported yet")
        if isinstance(attribute, c.BinarySize) or (
            isinstance(attribute, c.BodySection) and attribute.binary
        ):
            raise bad("FETCH BINARY is not supported yet")
        if isinstance(attribute, c.BodySection) and (
            attribute.section.part or attribute.section.text == "MIME"
        ):
            raise bad("FETCH of MIME part sections is not supported yet")


def section_label(attribute: c.BodySection) -> str:
    section = attribute.section
    text = section.text or ""
    if section.fields:
        text = f"{text} ({' '.join(section.fields)})"
    spec = ".".join(str(p) for p in section.part)
    if spec and text:
        spec += "."
    label = f"BODY[{spec}{text}]"
    if attribute.partial is not None:
        label += f"<{attribute.partial[0]}>"
    return label


class _MessageReader:
    """Reads the parts of one message a FETCH needs, each at most once."""

    def __init__(self, account: Account, meta: MessageMeta) -> None:
        self.account = account
        self.meta = meta
        self._header: bytes | None = None

    async def header(self) -> bytes:
        if self._header is None:
            self._header = await self.account.read_range(self.meta, 0, self.meta.header_size)
        return self._header

    async def text(self, partial: tuple[int, int] | None = None) -> bytes:
        start, length = self.meta.header_size, self.meta.size - self.meta.header_size
        if partial is not None:
            if partial[0] >= length:
                return b""
            start += partial[0]
            length = min(partial[1], length - partial[0])
        return await self.account.read_range(self.meta, start, length)

    async def whole(self, partial: tuple[int, int] | None = None) -> bytes:
        if partial is None:
            return await self.account.read_range(self.meta, 0, self.meta.size)
        if partial[0] >= self.meta.size:
            return b""
        return await self.account.read_range(self.meta, partial[0], partial[1])

    async def section(self, attribute: c.BodySection) -> bytes:
        section, partial = attribute.section, attribute.partial
        match section.text:
            case None:
                return await self.whole(partial)
            case "TEXT":
                return await self.text(partial)
            case "HEADER":
                data = await self.header()
            case "HEADER.FIELDS" | "HEADER.FIELDS.NOT":
                data = select_fields(
                    await self.header(),
                    section.fields,
                    exclude=section.text == "HEADER.FIELDS.NOT",
                )
            case _:
                raise bad(f"Unknown section {section.text}")
        if partial is not None:
            data = data[partial[0] : partial[0] + partial[1]]
        return data


async def _content_value(reader: _MessageReader, attribute: c.FetchAttribute) -> FetchValue:
    if isinstance(attribute, c.BodySection):
        return NString(await reader.section(attribute))
    if attribute is c.FetchItem.RFC822:
        return NString(await reader.whole())
    if attribute is c.FetchItem.RFC822_HEADER:
        return NString(await reader.header())
    return NString(await reader.text())


def _label(attribute: c.FetchAttribute) -> str:
    if isinstance(attribute, c.BodySection):
        return section_label(attribute)
    assert isinstance(attribute, c.FetchItem)
    return attribute.value


def _simple_value(
    selected: SelectedMailbox,
    meta: MessageMeta,
    flags: frozenset[str],
    modseq: int,
    item: c.FetchItem,
) -> FetchValue:
    match item:
        case c.FetchItem.UID:
            return meta.uid
        case c.FetchItem.FLAGS:
            return selected.flags_for_wire(meta.uid, flags)
        case c.FetchItem.MODSEQ:
            return Parenthesized(modseq)
        case c.FetchItem.INTERNALDATE:
            return meta.internaldate
        case c.FetchItem.RFC822_SIZE:
            return meta.size
    raise bad(f"FETCH {item.value} is not supported")


async def fetch(session: Session, cmd: c.Fetch) -> AsyncIterator[Response | Done]:
    selected = session.require_selected()
    account = session.require_account()
    if cmd.vanished and not session.qresync:
        raise bad("VANISHED needs QRESYNC to be enabled")  # RFC 7162 §3.2.6
    if not cmd.uid and not cmd.sequence.uses_star() and not selected.msn_valid(cmd.sequence):
        raise bad("Message number out of range")
    _check_supported(cmd.attributes)

    attributes = list(dict.fromkeys(cmd.attributes))
    if cmd.uid and c.FetchItem.UID not in attributes:
        # RFC 9051 §6.4.9: UID FETCH always returns UID.
        attributes.insert(0, c.FetchItem.UID)
    if cmd.changedsince is not None and c.FetchItem.MODSEQ not in attributes:
        attributes.append(c.FetchItem.MODSEQ)  # RFC 7162 §3.1.4.1
    if c.FetchItem.MODSEQ in attributes:
        session.enable_condstore()  # RFC 7162 §3.1: a CONDSTORE-enabling command
    labels = [_label(a) for a in attributes]
    content = [isinstance(a, c.BodySection) or a in _CONTENT_ITEMS for a in attributes]
    sets_seen = not selected.readonly and any(
        (isinstance(a, c.BodySection) and not a.peek) or a in _SETS_SEEN_ITEMS for a in attributes
    )
    has_flags = c.FetchItem.FLAGS in attributes

    uids = selected.resolve(cmd.sequence, uid=cmd.uid)
    if cmd.vanished and cmd.changedsince is not None:
        vanished = await _vanished_since(session, cmd.sequence, cmd.changedsince)
        if vanished:
            yield Vanished(tuple(vanished), earlier=True)
    batch_size = session.context.limits.fetch_batch_size
    missing = 0
    for start in range(0, len(uids), batch_size):
        batch = uids[start : start + batch_size]
        metas = await account.fetch_meta(selected.mailbox_id, batch)
        missing += len(batch) - len(metas)
        if cmd.changedsince is not None:
            metas = [m for m in metas if m.modseq > cmd.changedsince]
        now_seen: dict[int, FlagState] = {}
        if sets_seen:
            unseen = [m.uid for m in metas if SEEN not in m.flags]
            if unseen:
                result = await account.store_flags(
                    selected.mailbox_id, unseen, FlagOp.ADD, frozenset({SEEN})
                )
                for state in result.updated:
                    now_seen[state.uid] = state
                    selected.note_reported(state.uid, state.modseq)
                session.mark_dirty()
        for meta in metas:
            msn = selected.msn_of(meta.uid)
            if msn is None:
                continue
            seen_state = now_seen.get(meta.uid)
            flags = meta.flags if seen_state is None else seen_state.flags
            modseq = meta.modseq if seen_state is None else seen_state.modseq
            reader = _MessageReader(account, meta)
            items: list[tuple[str, FetchValue]] = []
            for attribute, label, is_content in zip(attributes, labels, content, strict=True):
                if is_content:
                    items.append((label, await _content_value(reader, attribute)))
                else:
                    assert isinstance(attribute, c.FetchItem)
                    value = _simple_value(selected, meta, flags, modseq, attribute)
                    items.append((label, value))
            if seen_state is not None and not has_flags:
                # RFC 9051 §6.4.5: a \Seen set as a side effect is reported with FLAGS.
                items.append(("FLAGS", selected.flags_for_wire(meta.uid, flags)))
                if session.condstore and c.FetchItem.MODSEQ not in attributes:
                    items.append(("MODSEQ", Parenthesized(modseq)))
            yield FetchResponse(msn, tuple(items))
    if missing and not cmd.uid:
        yield Done("FETCH completed; some messages were already expunged", Code("EXPUNGEISSUED"))
    else:
        yield Done("FETCH completed")


async def _vanished_since(session: Session, uids: SequenceSet, modseq: int) -> list[int]:
    """UIDs in ``uids`` expunged after ``modseq`` (RFC 7162 §3.2.6)."""
    selected = session.require_selected()
    changes = await session.require_account().changes_since(selected.mailbox_id, modseq)
    largest = max(selected.uidnext - 1, selected.uids[-1] if selected.uids else 1)
    wanted = uids.membership(largest)
    return [uid for uid in changes.expunged if wanted(uid)]
