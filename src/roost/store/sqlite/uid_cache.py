"""Each big mailbox's UIDs, kept between SELECTs (used on the worker thread).

Reading 100,000 UIDs from the messages table costs tens of milliseconds, and most
SELECTs find the mailbox nearly as it was. So a UID list is kept with the mailbox state
it was read at, in this process's memory and in the ``uid_lists`` table (for the other
worker processes and the next start), and brought up to date from the database.

Invariants:

* The database is the truth: other worker processes change it behind this cache. A kept
  list is used only inside a read transaction, after checking it against the mailbox
  row read in that transaction; anything it cannot prove it knows is read again.
* The UIDs of a mailbox change only by appends (UIDs at or above the old UIDNEXT) and
  expunges (logged in ``expunged`` with the modseq that removed them, and never pruned
  while the mailbox lives), and every such change raises HIGHESTMODSEQ (messages.py).
  So a list read at (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) is brought to the current
  state by adding the UIDs at or above that UIDNEXT and removing those expunged after
  that HIGHESTMODSEQ. Another UIDVALIDITY (a placeholder made real) is another mailbox.
* A stored list is rewritten only after a SELECT found it missing or far behind, in a
  transaction of its own after the SELECT's; never replaced by an older one.
* Callers get a copy; a kept array is never handed out.
"""

from __future__ import annotations

import bisect
import logging
import sqlite3
import sys
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from roost.store.sqlite.db import Database, MailboxRow

log = logging.getLogger(__name__)

# Small mailboxes are cheap to read and not worth keeping; a few big ones per account.
CACHE_MIN_MESSAGES = 1000
CACHE_MAILBOXES = 4
# A stored list this many changes behind is rewritten (catching up costs a query each).
STORE_AFTER_CHANGES = 1000
# Beyond this many expunges at once, filter the whole list instead of deleting one by one.
_DELETE_ONE_BY_ONE = 64


@dataclass(slots=True)
class _Entry:
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    uids: array[int]
    unsaved: int  # changes applied since the stored list (or all, when none is stored)


class UidCache:
    """The UID lists of this process's most recently selected big mailboxes."""

    def __init__(self) -> None:
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._to_store: set[int] = set()

    def uids(self, db: Database, row: MailboxRow) -> array[int]:
        """The mailbox's UIDs, ascending, as a new array. Call inside the read (or
        write) transaction that read ``row``; then ``store_pending`` after it."""
        entry = self._entries.get(row.id)
        if entry is None or not _usable(entry, row):
            entry = _load(db, row)
        if entry is None:
            uids = _read_all(db, row.id)
            if len(uids) < CACHE_MIN_MESSAGES:
                self._entries.pop(row.id, None)
                return uids
            entry = _Entry(row.uidvalidity, row.uidnext, row.highestmodseq, uids, len(uids))
        elif entry.highestmodseq != row.highestmodseq or entry.uidnext != row.uidnext:
            _catch_up(db, row, entry)
        self._entries[row.id] = entry
        self._entries.move_to_end(row.id)
        while len(self._entries) > CACHE_MAILBOXES:
            self._entries.popitem(last=False)
        if entry.unsaved >= STORE_AFTER_CHANGES:
            self._to_store.add(row.id)
        return array("I", entry.uids)

    def store_pending(self, db: Database) -> None:
        """Write the lists ``uids`` found missing or far behind in ``uid_lists``, outside
        any transaction. Never waits for another process's write lock, and never fails:
        a list not stored only costs the next cold SELECT its time."""
        pending = [self._entries[i] for i in self._to_store if i in self._entries]
        ids = [i for i in self._to_store if i in self._entries]
        self._to_store.clear()
        if not pending:
            return
        db.conn.execute("PRAGMA busy_timeout = 0")
        try:
            # Unsynced: a cache; a power cut that loses it costs a cold SELECT its time.
            with db.write(sync=False, wait=False):
                db.conn.executemany(
                    "INSERT INTO uid_lists (mailbox_id, uidvalidity, uidnext, highestmodseq,"
                    " uids) SELECT ?, ?, ?, ?, ? WHERE EXISTS"
                    " (SELECT 1 FROM mailboxes WHERE id = ?1 AND uidvalidity = ?2)"
                    " ON CONFLICT (mailbox_id) DO UPDATE SET uidvalidity = excluded.uidvalidity,"
                    " uidnext = excluded.uidnext, highestmodseq = excluded.highestmodseq,"
                    " uids = excluded.uids WHERE excluded.uidvalidity != uid_lists.uidvalidity"
                    " OR excluded.highestmodseq > uid_lists.highestmodseq",
                    [
                        (i, e.uidvalidity, e.uidnext, e.highestmodseq, _to_blob(e.uids))
                        for i, e in zip(ids, pending, strict=True)
                    ],
                )
        except BlockingIOError:
            return  # another process is writing: another SELECT will
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                log.warning("could not store UID lists", exc_info=True)
            return  # busy: another SELECT will
        except (sqlite3.Error, OSError):
            log.warning("could not store UID lists", exc_info=True)
            return
        finally:
            db.conn.execute(f"PRAGMA busy_timeout = {int(db.busy_timeout * 1000)}")
        for entry in pending:
            entry.unsaved = 0


def _usable(entry: _Entry, row: MailboxRow) -> bool:
    return (
        entry.uidvalidity == row.uidvalidity
        and entry.highestmodseq <= row.highestmodseq
        and entry.uidnext <= row.uidnext
    )


def _load(db: Database, row: MailboxRow) -> _Entry | None:
    """The stored list, caught up to ``row``; None if there is none that can be."""
    stored = db.conn.execute(
        "SELECT uidvalidity, uidnext, highestmodseq, uids FROM uid_lists WHERE mailbox_id = ?",
        (row.id,),
    ).fetchone()
    if stored is None:
        return None
    uidvalidity, uidnext, highestmodseq, blob = stored
    entry = _Entry(uidvalidity, uidnext, highestmodseq, _from_blob(blob), 0)
    if not _usable(entry, row):
        return None
    return entry


def _read_all(db: Database, mailbox_id: int) -> array[int]:
    rows = db.conn.execute(
        "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
    )
    return array("I", [uid for (uid,) in rows])


def _catch_up(db: Database, row: MailboxRow, entry: _Entry) -> None:
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
    added = 0
    if row.uidnext > entry.uidnext:
        before = len(uids)
        uids.extend(
            uid
            for (uid,) in db.conn.execute(
                "SELECT uid FROM messages WHERE mailbox_id = ? AND uid >= ? ORDER BY uid",
                (row.id, entry.uidnext),
            )
        )
        added = len(uids) - before
    entry.uids = uids
    entry.uidnext = row.uidnext
    entry.highestmodseq = row.highestmodseq
    entry.unsaved += len(gone) + added


# Stored as 32-bit little-endian integers, whatever the machine.
def _to_blob(uids: array[int]) -> bytes:
    if sys.byteorder == "little":
        return uids.tobytes()
    swapped = array("I", uids)
    swapped.byteswap()
    return swapped.tobytes()


def _from_blob(blob: bytes) -> array[int]:
    uids = array("I")
    uids.frombytes(blob)
    if sys.byteorder != "little":
        uids.byteswap()
    return uids


assert array("I").itemsize == 4, "UID lists are stored as 32-bit integers"
