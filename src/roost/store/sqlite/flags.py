"""How flags are stored: system flags as a bit set, keywords as sorted, spaced text.

Invariants:

* Flags compare case-insensitively (RFC 9051 §2.3.2). System flags are kept in their
  canonical spelling (``\\SEEN`` is stored as ``\\Seen``). A keyword keeps the first
  spelling used in its mailbox (the ``keywords`` table), so within one mailbox equal
  keywords are equal strings and the stored text compares exactly.
* ``\\Recent`` is never stored, and neither is any other backslash flag that is not a
  system flag (RFC 9051 §2.3.2: servers must not invent flag-extensions).
* The same (bits, keywords) pair always decodes to the same frozenset object while it
  is cached, which keeps FETCH and SELECT of many messages cheap.
"""

from __future__ import annotations

from collections.abc import Iterable

from roost.store.errors import CannotDoThat
from roost.store.values import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

SEEN_BIT = 1
ANSWERED_BIT = 2
FLAGGED_BIT = 4
DELETED_BIT = 8
DRAFT_BIT = 16
_BIT_OF = {
    SEEN: SEEN_BIT,
    ANSWERED: ANSWERED_BIT,
    FLAGGED: FLAGGED_BIT,
    DELETED: DELETED_BIT,
    DRAFT: DRAFT_BIT,
}
_BIT_OF_FOLDED = {flag.lower(): bit for flag, bit in _BIT_OF.items()}
_FLAGS_OF_BITS = [tuple(flag for flag, bit in _BIT_OF.items() if bits & bit) for bits in range(32)]
_CACHE_LIMIT = 4096


class Keywords:
    """One mailbox's keyword spellings, loaded in a transaction; ``added`` are new."""

    def __init__(self, existing: Iterable[str]) -> None:
        self._by_fold = {name.lower(): name for name in existing}
        self.added: list[str] = []

    def spell(self, keyword: str, *, define: bool) -> str:
        """The mailbox's spelling of ``keyword``; with ``define``, adopt a new one."""
        folded = keyword.lower()
        known = self._by_fold.get(folded)
        if known is not None:
            return known
        if define:
            self._by_fold[folded] = keyword
            self.added.append(keyword)
        return keyword

    def all(self) -> frozenset[str]:
        return frozenset(self._by_fold.values())


def encode(flags: Iterable[str], keywords: Keywords, *, define: bool) -> tuple[int, set[str]]:
    """Split ``flags`` into system-flag bits and keywords in the mailbox's spelling."""
    bits = 0
    names: set[str] = set()
    for flag in flags:
        if flag.startswith("\\"):
            bits |= _BIT_OF_FOLDED.get(flag.lower(), 0)
        elif not flag or any(c.isspace() for c in flag):
            raise CannotDoThat(f"invalid keyword {flag!r}")
        else:
            names.add(keywords.spell(flag, define=define))
    return bits, names


def keyword_text(names: Iterable[str]) -> str:
    return " ".join(sorted(names))


class FlagCodec:
    """Turns stored (bits, keywords) into frozensets, reusing equal ones."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, str], frozenset[str]] = {}

    def decode(self, bits: int, keywords: str) -> frozenset[str]:
        key = (bits, keywords)
        flags = self._cache.get(key)
        if flags is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            system = _FLAGS_OF_BITS[bits & 31]
            flags = frozenset((*system, *keywords.split())) if keywords else frozenset(system)
            self._cache[key] = flags
        return flags
