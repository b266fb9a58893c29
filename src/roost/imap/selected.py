"""One session's view of its selected mailbox: message sequence numbers and what it has
been told.

Sequence numbers belong to the session (ARCHITECTURE.md, decision 4). The view maps
MSN → UID from what this session has been told; other connections' changes reach it
only through ``apply``, which turns a store ``MailboxChanges`` into the untagged
responses this session may send now:

* New messages are appended (UIDs only grow) and announced with EXISTS (and RECENT).
* Flag changes are announced with an untagged FETCH, except those this session already
  reported itself (``note_reported``), so a STORE never answers twice.
* Expunges are announced only where RFC 9051 §7.5.1 allows: never during FETCH, STORE
  or SEARCH by sequence number. Until then they wait in ``pending_expunges`` and the
  message keeps its sequence number, so the client's numbering stays valid.
"""

from __future__ import annotations

import bisect
import functools
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from roost.imap.wire.responses import (
    Exists,
    Expunged,
    FetchResponse,
    FetchValue,
    FlagList,
    FlagsResponse,
    Parenthesized,
    Recent,
    Response,
    Vanished,
)
from roost.imap.wire.search_keys import SearchKey
from roost.imap.wire.sequence import STAR, SequenceSet
from roost.store.base import (
    SYSTEM_FLAGS,
    MailboxChanges,
    MailboxInfo,
    MailboxSnapshot,
    SortOrder,
)

RECENT = "\\Recent"


def flag_tuple(flags: Iterable[str], recent: bool = False) -> tuple[str, ...]:
    """Flags in a stable order for the wire: system flags first, then keywords."""
    system = sorted(f for f in flags if f in SYSTEM_FLAGS)
    keywords = sorted(f for f in flags if f not in SYSTEM_FLAGS)
    if recent:
        system.append(RECENT)
    return (*system, *keywords)


@functools.lru_cache(maxsize=4096)
def wire_flags(flags: frozenset[str], recent: bool) -> FlagList:
    """A mailbox has few distinct flag sets: build each wire form once (FETCH hot path)."""
    return FlagList(flag_tuple(flags, recent))


@dataclass(slots=True)
class UpdateContext:
    """A search kept up to date while the mailbox is selected (RFC 5267 §4;
    search_context.py): its tag, program, sort order (empty for SEARCH) and last
    result as UIDs in result order."""

    tag: str
    criteria: SearchKey
    order: tuple[SortOrder, ...]
    result: list[int]


class SelectedMailbox:
    def __init__(
        self,
        snapshot: MailboxSnapshot,
        *,
        readonly: bool,
        recent_floor: int | None,
    ) -> None:
        self.info: MailboxInfo = snapshot.info
        self.readonly = readonly
        # RFC 7162: once CONDSTORE is on, flag updates carry MODSEQ; with QRESYNC,
        # expunges are announced as VANISHED (§3.2.10). The session keeps these current.
        self.condstore = False
        self.qresync = False
        self.rev2 = False  # IMAP4rev2: never \Recent nor RECENT (RFC 9051 Appendix E)
        self.uidonly = False  # RFC 9586 §3.2: expunges as VANISHED, as with QRESYNC
        uids = snapshot.uids  # the snapshot's own copy: take it over when it is an array
        self.uids = uids if isinstance(uids, array) and uids.typecode == "I" else array("I", uids)
        self.known_modseq = snapshot.info.highestmodseq
        self.uidnext = snapshot.info.uidnext
        self.keywords: set[str] = set(snapshot.keywords)
        self.pending_expunges: set[int] = set()
        # SEARCHRES (RFC 5182): the UIDs saved by SEARCH RETURN (SAVE), named by "$".
        self.saved_uids: list[int] = []
        # CONTEXT=SEARCH/SORT (RFC 5267 §4): searches kept up to date while selected.
        self.search_contexts: list[UpdateContext] = []
        # (uid, modseq) pairs this session already reported itself (STORE, or .SILENT).
        self._reported: set[tuple[int, int]] = set()
        self._new_uids: list[int] = []
        # RFC 3501 §2.3.2: \Recent belongs to exactly one session. EXAMINE claims none.
        self.recent: set[int] = set()
        if recent_floor is not None:
            start = bisect.bisect_left(self.uids, recent_floor)
            self.recent.update(self.uids[start:])

    # ---- lookups ----------------------------------------------------------------------

    @property
    def exists(self) -> int:
        return len(self.uids)

    @property
    def mailbox_id(self) -> int:
        return self.info.id

    def msn_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def resolve(self, sequence: SequenceSet, *, uid: bool) -> list[int]:
        """UIDs (ascending) that ``sequence`` names; missing numbers are skipped.

        With ``uid``, "*" is the largest UID in use, and a range such as ``5:*`` always
        includes it even when 5 is larger (RFC 9051 §6.4.9)."""
        if sequence.is_saved:  # "$": whatever of the saved result is still here
            return [u for u in self.saved_uids if self.msn_of(u) is not None]
        if not self.uids:
            return []
        if uid and len(sequence.ranges) == 1:
            low, high = sequence.ranges[0]
            if low == high != STAR:  # one UID (mbsync fetches each message so)
                return [low] if self.msn_of(low) is not None else []
        if uid:
            largest = self.uids[-1]
            result: list[int] = []
            for lo, hi in sequence.normalized(largest):
                start = bisect.bisect_left(self.uids, lo)
                end = bisect.bisect_right(self.uids, hi)
                result.extend(self.uids[start:end])
            return result
        count = len(self.uids)
        return [self.uids[n - 1] for n in sequence.iter_numbers(count, limit=count)]

    def msn_valid(self, sequence: SequenceSet) -> bool:
        """RFC 9051 §6.4: a message number beyond EXISTS is a client error (BAD)."""
        count = len(self.uids)
        for lo, hi in sequence.ranges:
            for n in (lo, hi):
                if n != 0 and n > count:
                    return False
        return True

    def is_recent(self, uid: int) -> bool:
        return uid in self.recent

    def flags_for_wire(self, uid: int, flags: frozenset[str]) -> FlagList:
        return wire_flags(flags, uid in self.recent)

    def all_flags(self) -> tuple[str, ...]:
        return flag_tuple(SYSTEM_FLAGS | self.keywords)

    # ---- updates ----------------------------------------------------------------------

    def note_reported(self, uid: int, modseq: int) -> None:
        """This session already told the client about this flag state (or was asked not
        to, with .SILENT); ``apply`` will not repeat it."""
        self._reported.add((uid, modseq))

    def apply(
        self,
        changes: MailboxChanges,
        *,
        expunge_allowed: bool,
        include_uid: bool = True,
    ) -> tuple[list[Response], list[int]]:
        """Bring the view up to ``changes``: return what the client must now hear, except
        EXISTS/RECENT, and the new UIDs (the session claims \\Recent, then announces)."""
        return list(self._apply(changes, expunge_allowed, include_uid)), self._new_uids

    def _apply(
        self, changes: MailboxChanges, expunge_allowed: bool, include_uid: bool
    ) -> Iterator[Response]:
        self._new_uids = []
        self.pending_expunges.update(
            uid for uid in changes.expunged if self.msn_of(uid) is not None
        )
        if expunge_allowed:
            yield from self.flush_expunges()

        new_keywords = changes.keywords - self.keywords
        if new_keywords:
            self.keywords |= new_keywords
            yield FlagsResponse(self.all_flags())

        last_known = self.uids[-1] if self.uids else 0
        new_uids = self._new_uids
        for state in changes.changed:
            if state.uid > last_known:
                new_uids.append(state.uid)
                continue
            if state.uid in self.pending_expunges or (state.uid, state.modseq) in self._reported:
                continue
            msn = self.msn_of(state.uid)
            if msn is None:
                continue
            items: list[tuple[str, FetchValue]] = []
            if include_uid:
                items.append(("UID", state.uid))
            items.append(("FLAGS", self.flags_for_wire(state.uid, state.flags)))
            if self.condstore:
                items.append(("MODSEQ", Parenthesized(state.modseq)))
            yield FetchResponse(msn, tuple(items))
        self._reported.clear()

        self.uids.extend(new_uids)
        self.known_modseq = max(self.known_modseq, changes.highestmodseq)
        self.uidnext = max(self.uidnext, changes.uidnext)

    def add_recent(self, floor: int, new_uids: Iterable[int]) -> int:
        """Mark as recent the ``new_uids`` at or above the claimed ``floor``."""
        before = len(self.recent)
        self.recent.update(uid for uid in new_uids if uid >= floor)
        return len(self.recent) - before

    def announce_new(self) -> list[Response]:
        if self.rev2:  # RFC 9051 has no RECENT response
            return [Exists(len(self.uids))]
        return [Exists(len(self.uids)), Recent(len(self.recent))]

    def flush_expunges(self) -> Iterator[Expunged | Vanished]:
        """Announce pending expunges, each number valid after the previous one (or, with
        QRESYNC, all their UIDs in one VANISHED)."""
        if not self.pending_expunges:
            return
        gone = self.pending_expunges
        self.pending_expunges = set()
        if self.qresync or self.uidonly:
            yield Vanished(tuple(sorted(gone)))
            self.uids = array("I", (u for u in self.uids if u not in gone))
            self.recent -= gone
            return
        # Ascending, each number counted after the previous removals (RFC 3501 §7.4.1
        # example: "* 3 EXPUNGE" twice removes the third and then the (old) fourth).
        removed = 0
        for i, uid in enumerate(self.uids):
            if uid in gone:
                yield Expunged(i + 1 - removed)
                removed += 1
        self.uids = array("I", (u for u in self.uids if u not in gone))
        self.recent -= gone
