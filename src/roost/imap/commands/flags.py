"""Flags as clients write them → flags as the store keeps them (RFC 9051 §2.3.2)."""

from __future__ import annotations

from collections.abc import Iterable

from roost.imap.handler_types import bad
from roost.store.base import SYSTEM_FLAGS

_CANONICAL = {flag.lower(): flag for flag in SYSTEM_FLAGS}
RECENT = "\\recent"


def normalize_flags(flags: Iterable[str]) -> frozenset[str]:
    """System flags in canonical case; keywords as written. \\Recent cannot be set by a
    client (RFC 3501 §2.3.2) and is dropped; other backslash flags are not ours."""
    result: set[str] = set()
    for flag in flags:
        if flag.startswith("\\"):
            lowered = flag.lower()
            if lowered == RECENT:
                continue
            canonical = _CANONICAL.get(lowered)
            if canonical is None:
                raise bad(f"Unknown system flag {flag}")
            result.add(canonical)
        else:
            result.add(flag)
    return frozenset(result)
