"""The analyses of the last few messages stored, by content, shared by every account.

A message delivered to ten recipients of this server is stored by ten account threads
at once (LMTP delivers recipients concurrently), and each analysed the same bytes:
ten MIME parses of one message, serialised on the GIL. Analysis depends only on the
bytes and the store's MIME limits, and a message's blob name is the SHA-256 of its
bytes, so the first thread analyses and the others take its result.

Invariants:

* A key is a blob name (content hash); one cache belongs to one store, whose MIME
  limits are fixed, so equal keys mean equal analyses.
* At most one thread analyses a given key at a time; the others wait for it rather
  than repeat the work. A failed analysis is not kept (``compute`` logs and returns
  the empty row itself, which is kept like any other: it is what the bytes give).
* Only ``size`` entries are kept, least recently used first out: this spares repeat
  work within a burst, it is not an index.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from roost.store.sqlite.analyses import AnalysisRow

DEFAULT_SIZE = 32


class AnalysisCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._rows: OrderedDict[str, AnalysisRow] = OrderedDict()
        self._pending: dict[str, threading.Event] = {}

    def get(self, key: str, compute: Callable[[], AnalysisRow]) -> AnalysisRow:
        """The analysis of the content named ``key``: kept, being made by another
        thread (waited for), or made now by ``compute``."""
        while True:
            with self._lock:
                row = self._rows.get(key)
                if row is not None:
                    self._rows.move_to_end(key)
                    return row
                pending = self._pending.get(key)
                if pending is None:
                    self._pending[key] = threading.Event()
                    break
            pending.wait()  # then look again: kept, or its maker failed (try ourselves)
        row = None
        try:
            row = compute()
            return row
        finally:
            with self._lock:
                if row is not None:
                    self._rows[key] = row
                    while len(self._rows) > self._size:
                        self._rows.popitem(last=False)
                self._pending.pop(key).set()
