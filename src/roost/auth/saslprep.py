"""SASLprep (RFC 4013): the stringprep profile SCRAM applies to passwords (RFC 5802 §2.2).

Built on the standard library's ``stringprep`` tables (RFC 3454), so no dependency:

1. Map: non-ASCII spaces (C.1.2) to SPACE; "commonly mapped to nothing" (B.1) removed.
2. Normalise: Unicode NFKC.
3. Prohibit: the characters of C.1.2, C.2.1, C.2.2, C.3 to C.9, and, for stored
   strings, unassigned code points (A.1).
4. Bidi (RFC 3454 §6): a string with any RandALCat character has no LCat character and
   begins and ends with a RandALCat character.

A string that breaks a rule raises ``ValueError``; callers treat that as "this password
has no SCRAM form" (when setting it) or as a failed sign-in (never the case here: the
server only prepares passwords when storing SCRAM keys; the client prepares its own).
"""

from __future__ import annotations

import stringprep
import unicodedata
from collections.abc import Callable

_PROHIBITED: tuple[Callable[[str], bool], ...] = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


def saslprep(text: str, *, allow_unassigned: bool = False) -> str:
    """``text`` prepared by RFC 4013; ValueError when it holds a prohibited character.
    ``allow_unassigned`` is for queries (RFC 3454 §7); stored strings leave it False."""
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    if not prepared:
        return prepared
    for ch in prepared:
        if any(in_table(ch) for in_table in _PROHIBITED):
            raise ValueError(f"prohibited character U+{ord(ch):04X}")
        if not allow_unassigned and stringprep.in_table_a1(ch):
            raise ValueError(f"unassigned code point U+{ord(ch):04X}")
    right_to_left = [stringprep.in_table_d1(ch) for ch in prepared]
    if any(right_to_left):
        if any(stringprep.in_table_d2(ch) for ch in prepared):
            raise ValueError("mixed right-to-left and left-to-right text")
        if not (right_to_left[0] and right_to_left[-1]):
            raise ValueError("right-to-left text must begin and end right-to-left")
    return prepared
