"""Typed SEARCH keys (RFC 9051 §6.4.4, RFC 3501 §6.4.4) as the grammar produces them.

A search program is one ``SearchKey``; the keys of a program or of a parenthesised list
are an ``And``. Strings stay ``bytes``: their charset (the command's CHARSET, or UTF-8)
is the session's to decode. The tree is kept shallow by construction: nested ``And`` and
``Or`` are flattened and ``NOT NOT`` cancels, so the long ``OR OR OR …`` chains clients
build stay one level deep.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from roost.imap.wire.sequence import SequenceSet


class FlagName(enum.Enum):
    """The system flags that have their own search keys."""

    ANSWERED = "\\Answered"
    DELETED = "\\Deleted"
    DRAFT = "\\Draft"
    FLAGGED = "\\Flagged"
    SEEN = "\\Seen"


@dataclass(frozen=True, slots=True)
class All:
    pass


@dataclass(frozen=True, slots=True)
class Flag:
    """ANSWERED, SEEN … (``present``) and UNANSWERED, UNSEEN … (not ``present``)."""

    flag: FlagName
    present: bool = True


@dataclass(frozen=True, slots=True)
class Keyword:
    """KEYWORD / UNKEYWORD ``flag-keyword`` (compared case-insensitively)."""

    keyword: str
    present: bool = True


class SessionFlag(enum.Enum):
    """Keys about \\Recent, which belongs to the session (RFC 3501 §6.4.4)."""

    RECENT = "RECENT"
    NEW = "NEW"  # RECENT UNSEEN
    OLD = "OLD"  # NOT RECENT


@dataclass(frozen=True, slots=True)
class Recent:
    which: SessionFlag


class DateField(enum.Enum):
    INTERNAL = "INTERNAL"  # BEFORE, ON, SINCE
    SENT = "SENT"  # SENTBEFORE, SENTON, SENTSINCE: the Date header
    SAVED = "SAVED"  # SAVEDBEFORE, SAVEDON, SAVEDSINCE (RFC 8514 §4.2)


class DateOp(enum.Enum):
    BEFORE = "BEFORE"
    ON = "ON"
    SINCE = "SINCE"


@dataclass(frozen=True, slots=True)
class DateKey:
    """A date comparison that disregards time and timezone."""

    field: DateField
    op: DateOp
    day: date


@dataclass(frozen=True, slots=True)
class Within:
    """OLDER / YOUNGER ``seconds`` (RFC 5032): INTERNALDATE against now."""

    older: bool
    seconds: int


@dataclass(frozen=True, slots=True)
class Size:
    """LARGER n (``larger``) or SMALLER n, on RFC822.SIZE."""

    larger: bool
    size: int


class TextField(enum.Enum):
    BCC = "BCC"
    BODY = "BODY"
    CC = "CC"
    FROM = "FROM"
    SUBJECT = "SUBJECT"
    TEXT = "TEXT"
    TO = "TO"


@dataclass(frozen=True, slots=True)
class Text:
    """A substring, matched case-insensitively in decoded text."""

    field: TextField
    value: bytes


@dataclass(frozen=True, slots=True)
class Header:
    """HEADER name value: ``value`` in the named field; b"" means the field exists."""

    name: str
    value: bytes


@dataclass(frozen=True, slots=True)
class Messages:
    """A sequence set: message numbers, or with ``uid`` the UID key (``$`` included)."""

    sequence: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class ModSeq:
    """MODSEQ [entry-name entry-type] n (RFC 7162 §3.1.5): modseq at least ``modseq``.

    Roost keeps one modseq per message, so the entry is accepted and not used."""

    modseq: int
    entry_name: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class Filter:
    """FILTER name (RFC 5466 §3.1): a search program stored as METADATA, expanded by
    the session (imap/filters.py) before the program is evaluated."""

    name: str


@dataclass(frozen=True, slots=True)
class Not:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class Or:
    keys: tuple[SearchKey, ...]  # two or more


@dataclass(frozen=True, slots=True)
class And:
    keys: tuple[SearchKey, ...]  # two or more


SearchKey = (
    All
    | Flag
    | Keyword
    | Recent
    | DateKey
    | Within
    | Size
    | Text
    | Header
    | Messages
    | ModSeq
    | Filter
    | Not
    | Or
    | And
)


def all_of(keys: list[SearchKey]) -> SearchKey:
    """``keys`` combined with AND, flattened; one key is itself."""
    flat: list[SearchKey] = []
    for key in keys:
        flat.extend(key.keys if isinstance(key, And) else (key,))
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def any_of(keys: list[SearchKey]) -> SearchKey:
    flat: list[SearchKey] = []
    for key in keys:
        flat.extend(key.keys if isinstance(key, Or) else (key,))
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def negate(key: SearchKey) -> SearchKey:
    return key.key if isinstance(key, Not) else Not(key)


def walk(key: SearchKey) -> list[SearchKey]:
    """Every key of the tree, ``key`` first (iterative: no recursion limit)."""
    found: list[SearchKey] = []
    pending = [key]
    while pending:
        current = pending.pop()
        found.append(current)
        if isinstance(current, Not):
            pending.append(current.key)
        elif isinstance(current, Or | And):
            pending.extend(reversed(current.keys))
    return found


def depth(key: SearchKey) -> int:
    """Nesting depth of NOT, OR and lists (a single key is 1)."""
    best = 0
    pending = [(key, 1)]
    while pending:
        current, level = pending.pop()
        best = max(best, level)
        if isinstance(current, Not):
            pending.append((current.key, level + 1))
        elif isinstance(current, Or | And):
            pending.extend((k, level + 1) for k in current.keys)
    return best
