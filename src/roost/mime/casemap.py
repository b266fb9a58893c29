"""The i;unicode-casemap comparator (RFC 5051), which I18NLEVEL=1 (RFC 5255 §4)
makes the one SEARCH and SORT use.

RFC 5051 §2: map each character to its simple titlecase (UnicodeData.txt field 14,
one character to one), then decompose to NFKD; two strings are equal when the results
are, and order is that of their UTF-8 octets. So "Ä", "ä" and "a" + U+0308 are equal,
so are U+216B (roman numeral twelve) and "xii", fullwidth and plain letters, final and
other Greek sigma; "ä" and "a" are not.

The text kept for SEARCH and the SORT keys are stored mapped (sqlite/analyses.py), and
every needle is mapped the same way, so a substring of the mapped text is a match.
"""

from __future__ import annotations

import functools
import sys
import unicodedata

__all__ = ["casemap"]


@functools.cache
def _titlecase_table() -> dict[int, int]:
    """Every character whose simple titlecase mapping is another single character.
    ``str.title`` gives the full mapping; where that is one character it is the
    simple one, and where it is longer (ß → Ss) the simple mapping is none."""
    table: dict[int, int] = {}
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if not char.isalpha() and unicodedata.category(char) not in ("Lt", "Nl", "So"):
            continue
        title = char.title()
        if len(title) == 1 and title != char:
            table[code] = ord(title)
    return table


def casemap(text: str) -> str:
    """``text`` as i;unicode-casemap compares it."""
    if text.isascii():
        return text.upper()  # for ASCII, simple titlecase is upper case; NFKD is a no-op
    return unicodedata.normalize("NFKD", text.translate(_titlecase_table()))
