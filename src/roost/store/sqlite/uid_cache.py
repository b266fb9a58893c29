"""Each mailbox's UIDs, kept in this process between SELECTs (used on the worker thread).

Reading 100,000 UIDs from SQLite costs tens of milliseconds, and most SELECTs find the
mailbox nearly as they left it. So the last UID list read is kept per mailbox together
with the mailbox state it was read at, and brought up to date from the database.

Invariants:

* The database is the truth: other worker processes change it behind this cache. A
  cached list is used only inside a read transaction, after checking it against the
  mailbox row read in that transaction; anything it cannot prove it knows is re-read.
* The UIDs of a mailbox change only by appends (UIDs at or above the old UIDNEXT) and
  expunges (logged in ``expunged`` with the modseq that removed them), and every such
  change raises HIGHESTMODSEQ (messages.py). So a list read at (UIDVALIDITY, UIDNEXT,
  HIGHESTMODSEQ) is brought to the current state by adding the UIDs at or above that
  UIDNEXT and removing those expunged after that HIGHESTMODSEQ. A changed UIDVALIDITY
  (a placeholder made real) means a different mailbox: read it all again.
* Callers get a copy; the cached array is never handed out.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from roost.store.sqlite.db import MailboxRow, MailDB

# Small mailboxes are cheap to read and not worth the memory; a few big ones per account.
CACHE_MIN_MESSAGES = 1000
CACHE_MAILBOXES = 4
# Beyond this many expunges at once, filter the whole list instead of deleting one by one.
_DELETE_ONE_BY_ONE = 64


@dataclass(slots=True)
class _Entry:
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    uids: array[int]


class UidCache:
    """The UID lists of this process's most recently selected big mailboxes."""

    def __init__(self) -> None:
        self._entries: OrderedDict[int, _Entry] = OrderedDict()

    def uids(self, db: MailDB, row: MailboxRow) -> array[int]:
        """The mailbox's UIDs, ascending, as a new array. Call inside the read (or
        write) transaction that read ``row``."""
        entry = self._entries.get(row.id)
        if (
            entry is not None
            and entry.uidvalidity == row.uidvalidity
            and entry.highestmodseq <= row.highestmodseq
            and entry.uidnext <= row.uidnext
        ):
            if entry.highestmodseq != row.highestmodseq or entry.uidnext != row.uidnext:
                _catch_up(db, row, entry)
            self._entries.move_to_end(row.id)
            return array("I", entry.uids)
        uids = _read_all(db, row.id)
        if len(uids) >= CACHE_MIN_MESSAGES:
            self._entries[row.id] = _Entry(
                row.uidvalidity, row.uidnext, row.highestmodseq, array("I", uids)
            )
            self._entries.move_to_end(row.id)
            while len(self._entries) > CACHE_MAILBOXES:
                self._entries.popitem(last=False)
        else:
            self._entries.pop(row.id, None)
        return uids

    def forget(self, mailbox_id: int) -> None:
        self._entries.pop(mailbox_id, None)


def _read_all(db: MailDB, mailbox_id: int) -> array[int]:
    rows = db.conn.execute(
        "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
    )
    return array("I", [uid for (uid,) in rows])


def _catch_up(db: MailDB, row: MailboxRow, entry: _Entry) -> None:
    """Apply the appends and expunges since ``entry`` was read (module docstring)."""
    uids = entry.uids
    gone = [
        uid
        for (uid,) in db.conn.execute(
            "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ?",
            (row.id, entry.highestmodseq),
        )
        if uid < entry.uidnext  # newer ones are not in the list (nor in the database)
    ]
    if len(gone) > _DELETE_ONE_BY_ONE:
        removed = set(gone)
        uids = array("I", [uid for uid in uids if uid not in removed])
    else:
        for uid in gone:
            i = bisect.bisect_left(uids, uid)
            if i < len(uids) and uids[i] == uid:
                del uids[i]
    if row.uidnext > entry.uidnext:
        uids.extend(
            uid
            for (uid,) in db.conn.execute(
                "SELECT uid FROM messages WHERE mailbox_id = ? AND uid >= ? ORDER BY uid",
                (row.id, entry.uidnext),
            )
        )
    entry.uids = uids
    entry.uidnext = row.uidnext
    entry.highestmodseq = row.highestmodseq
