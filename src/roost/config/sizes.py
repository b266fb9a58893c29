"""Sizes written for people: ``2G``, ``500M``, ``64K`` or a plain number of octets.

Units are binary (K = 1024 octets, as RFC 9208 counts STORAGE in units of 1024),
case-insensitive, with an optional ``B`` or ``iB`` after the letter.
"""

from __future__ import annotations

import re

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def parse_size(value: int | str) -> int:
    """Octets; ValueError (with the reason) for anything else or a negative number."""
    if isinstance(value, bool):
        raise ValueError("must be a size such as 2G, 500M or a number of octets")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    match = _SIZE.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a size such as 2G, 500M or a number of octets")
    number, unit = match.groups()
    return int(number) * _UNITS[unit.upper()]


def format_size(octets: int) -> str:
    """The largest unit that shows ``octets`` exactly (``2G``, ``1536K``, ``1000``)."""
    for unit in ("T", "G", "M", "K"):
        if octets and octets % _UNITS[unit] == 0:
            return f"{octets // _UNITS[unit]}{unit}"
    return str(octets)
