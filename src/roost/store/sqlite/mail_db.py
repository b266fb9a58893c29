"""An account's database as the mail operations use it (on its worker thread).

``db.Database`` is the low level; this adds what sits above it and needs it: SQLite
functions for search, the per-process UID cache, and collecting blobs no message refers
to, which forgets their analyses in the same transaction (see db.py for the blob
lifetime rules this keeps).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable

from roost.mime.parse import DEFAULT_LIMITS as DEFAULT_MIME_LIMITS
from roost.mime.parse import MimeLimits
from roost.store.blobs import BlobStore
from roost.store.sqlite import analyses, search
from roost.store.sqlite.analysis_cache import AnalysisCache
from roost.store.sqlite.db import Database
from roost.store.sqlite.schema import DEFAULT_BUSY_TIMEOUT
from roost.store.sqlite.uid_cache import UidCache

log = logging.getLogger(__name__)

TMP_MAX_AGE = 3600.0  # seconds; younger temporary files may be writes in progress


class MailDB(Database):
    """The database every mail operation (messages.py, mailboxes.py, search) is given."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        blobs: BlobStore,
        writers: int | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        mime_limits: MimeLimits = DEFAULT_MIME_LIMITS,
    ) -> None:
        super().__init__(conn, blobs, writers, busy_timeout, mime_limits)
        self.uid_cache = UidCache()
        # The store's, shared with its other accounts (set by whoever opens this);
        # None: every message is analysed here.
        self.analysis_cache: AnalysisCache | None = None
        search.register_functions(conn)

    def release_blobs(self, blob_ids: Iterable[str]) -> None:
        """Unlink those of ``blob_ids`` no message refers to. Never raises: a blob left
        behind is collected by the next sweep."""
        candidates = sorted(set(blob_ids))
        if not candidates:
            return
        try:
            # Unsynced: the commits that dropped the last references were synced; if a
            # power cut undoes this one, the sweep forgets the analyses again.
            with self.write(sync=False):
                unreferenced = self._unreferenced(candidates)
                analyses.forget(self, unreferenced[: analyses.FORGET_BATCH])
                for blob_id in unreferenced:
                    if not self._forget_small(blob_id):
                        self.blobs.delete(blob_id)
        except Exception:
            log.warning("could not release blobs; the next sweep will", exc_info=True)

    def sweep_orphans(self) -> int:
        """Remove blobs no message refers to (and their analyses) and stale temporary
        files; return the number of blobs removed."""
        self.blobs.sweep_tmp(TMP_MAX_AGE)
        with self.write():
            analyses.forget_orphans(self)
            self.conn.execute(
                "DELETE FROM blob_data WHERE NOT EXISTS"
                " (SELECT 1 FROM messages m WHERE m.blob_id = blob_data.blob_id)"
            )
        present = set(self.blobs.blob_ids())
        if not present:
            return 0
        referenced = {
            blob_id for (blob_id,) in self.conn.execute("SELECT DISTINCT blob_id FROM messages")
        }
        orphans = sorted(present - referenced)
        if not orphans:
            return 0
        with self.write():  # under the write lock: see the module docstring
            unreferenced = self._unreferenced(orphans)
            for blob_id in unreferenced:
                self.blobs.delete(blob_id)
        return len(unreferenced)

    def _forget_small(self, blob_id: str) -> bool:
        """Remove a blob kept in the database; False if it is not one (a file)."""
        return self.conn.execute("DELETE FROM blob_data WHERE blob_id = ?", (blob_id,)).rowcount > 0

    def _unreferenced(self, blob_ids: list[str]) -> list[str]:
        return [
            blob_id
            for (blob_id,) in self.conn.execute(
                "SELECT value FROM json_each(?) WHERE NOT EXISTS"
                " (SELECT 1 FROM messages WHERE blob_id = value)",
                (json.dumps(blob_ids),),
            )
        ]
