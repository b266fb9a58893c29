"""IMAP sequence sets (RFC 9051 §9 ``sequence-set``), for message numbers and UIDs alike.

A set is kept as written: ranges whose ends may be ``STAR`` ("*", the largest number in
use). Resolving against the mailbox happens in the session, which knows what "*" means.
``$`` (SEARCHRES, RFC 5182) is a distinct value, ``SequenceSet.saved()``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

STAR = 0  # "*" is never a valid number, so 0 stands for it inside a range


@dataclass(frozen=True, slots=True)
class SequenceSet:
    ranges: tuple[tuple[int, int], ...]  # each (low, high) as written; STAR for "*"
    is_saved: bool = False  # "$": the result saved by SEARCH RETURN (SAVE)

    @classmethod
    def saved(cls) -> SequenceSet:
        return cls((), True)

    @classmethod
    def of(cls, *numbers: int) -> SequenceSet:
        return cls(tuple((n, n) for n in numbers))

    def normalized(self, largest: int) -> list[tuple[int, int]]:
        """Ranges with "*" replaced by ``largest``, each ordered low..high, merged and
        sorted. ``largest`` 0 (empty mailbox) makes "*" match nothing above 0."""
        spans: list[tuple[int, int]] = []
        for a, b in self.ranges:
            lo = largest if a == STAR else a
            hi = largest if b == STAR else b
            if lo > hi:
                lo, hi = hi, lo
            if hi <= 0:
                continue
            spans.append((max(lo, 1), hi))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged

    def iter_numbers(self, largest: int, limit: int | None = None) -> Iterator[int]:
        """Every number in the set, ascending, without duplicates; capped at ``limit``
        (numbers above it are skipped, which is how UID ranges past UIDNEXT behave)."""
        for lo, hi in self.normalized(largest):
            if limit is not None:
                hi = min(hi, limit)
            yield from range(lo, hi + 1)

    def contains(self, number: int, largest: int) -> bool:
        return any(lo <= number <= hi for lo, hi in self.normalized(largest))

    def membership(self, largest: int) -> Callable[[int], bool]:
        """A fast ``n in set`` test for many numbers (bisection over merged ranges)."""
        spans = self.normalized(largest)
        starts = [lo for lo, _ in spans]

        def contains(number: int) -> bool:
            i = bisect.bisect_right(starts, number) - 1
            return i >= 0 and number <= spans[i][1]

        return contains

    def uses_star(self) -> bool:
        return any(STAR in r for r in self.ranges)

    def __str__(self) -> str:
        if self.is_saved:
            return "$"

        def one(n: int) -> str:
            return "*" if n == STAR else str(n)

        return ",".join(one(a) if a == b else f"{one(a)}:{one(b)}" for a, b in self.ranges)


def compress_uids(numbers: list[int]) -> str:
    """Ascending numbers as the shortest sequence-set text, e.g. ``1:3,7`` (for COPYUID)."""
    parts: list[str] = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        parts.append(str(numbers[i]) if i == j else f"{numbers[i]}:{numbers[j]}")
        i = j + 1
    return ",".join(parts)
