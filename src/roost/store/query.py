"""A search query in store terms: what to match and how to order it.

The protocol turns its search keys into these (message numbers into UIDs, \\Recent into
UID sets); the store answers from columns and its text index, never by reading message
files.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime


class TextField(enum.Enum):
    """Decoded text a substring is looked for in (case-insensitively)."""

    HEADER = "header"  # every header field, encoded words decoded
    BODY = "body"  # the decoded text of the text parts
    TEXT = "text"  # header or body
    SUBJECT = "subject"
    FROM = "from"  # the decoded address lists
    TO = "to"
    CC = "cc"
    BCC = "bcc"


class DateComparison(enum.Enum):
    BEFORE = "before"
    ON = "on"
    SINCE = "since"  # on or after


@dataclass(frozen=True, slots=True)
class MatchAll:
    pass


@dataclass(frozen=True, slots=True)
class MatchUids:
    """UIDs in any of the inclusive ``ranges``."""

    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class MatchFlag:
    """Messages that have ``flag`` (a system flag, or a keyword in any case)."""

    flag: str


@dataclass(frozen=True, slots=True)
class MatchArrivalDay:
    """INTERNALDATE's calendar day, in its own timezone, compared with ``day``."""

    comparison: DateComparison
    day: date


@dataclass(frozen=True, slots=True)
class MatchSentDay:
    """The Date header's calendar day, in its own timezone, compared with ``day``;
    INTERNALDATE's where the header is missing or unreadable (as RFC 5256 §2.2 does)."""

    comparison: DateComparison
    day: date


@dataclass(frozen=True, slots=True)
class MatchSavedDay:
    """The UTC day the message was stored in its mailbox (RFC 8514), compared with
    ``day``; INTERNALDATE's for messages stored before save dates were kept."""

    comparison: DateComparison
    day: date


@dataclass(frozen=True, slots=True)
class MatchArrivedBy:
    """INTERNALDATE at or before ``instant`` (aware)."""

    instant: datetime


@dataclass(frozen=True, slots=True)
class MatchLarger:
    size: int  # size strictly greater


@dataclass(frozen=True, slots=True)
class MatchSmaller:
    size: int  # size strictly less


@dataclass(frozen=True, slots=True)
class MatchText:
    field: TextField
    text: str


@dataclass(frozen=True, slots=True)
class MatchHeader:
    """A header field named ``name`` (any case) whose decoded value contains ``text``;
    with ``text`` "", any such field."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class MatchModSeq:
    modseq: int  # modseq at least this


@dataclass(frozen=True, slots=True)
class MatchNot:
    criterion: Criterion


@dataclass(frozen=True, slots=True)
class MatchAllOf:
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True, slots=True)
class MatchAnyOf:
    criteria: tuple[Criterion, ...]


Criterion = (
    MatchAll
    | MatchUids
    | MatchFlag
    | MatchArrivalDay
    | MatchSavedDay
    | MatchSentDay
    | MatchArrivedBy
    | MatchLarger
    | MatchSmaller
    | MatchText
    | MatchHeader
    | MatchModSeq
    | MatchNot
    | MatchAllOf
    | MatchAnyOf
)


class SortField(enum.Enum):
    """Sort keys (RFC 5256 §3, RFC 5957). Text keys compare ASCII case-insensitively;
    DATE is the sent date, or INTERNALDATE where there is none."""

    ARRIVAL = "arrival"
    DATE = "date"
    SIZE = "size"
    SUBJECT = "subject"  # the base subject
    FROM = "from"  # the first address's mailbox part
    TO = "to"
    CC = "cc"
    DISPLAY_FROM = "display_from"  # the first address's display name, else its address
    DISPLAY_TO = "display_to"


@dataclass(frozen=True, slots=True)
class SortOrder:
    field: SortField
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What to find, and in which order (ascending UID after ``order``); ``max_uid``
    leaves out messages the caller does not know of yet."""

    criterion: Criterion
    order: tuple[SortOrder, ...] = ()
    max_uid: int | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    uids: list[int]  # ascending, or in the query's order
    highest_modseq: int  # of the messages found; 0 when none


@dataclass(frozen=True, slots=True)
class ThreadFields:
    """What threading needs of one message (RFC 5256 §2.2, §3)."""

    uid: int
    sent: datetime  # the Date header, or INTERNALDATE where there is none
    # decoded Subject in i;unicode-casemap form (mime/casemap.py): ORDEREDSUBJECT
    # compares base subjects so (RFC 5255 I18NLEVEL=1)
    subject: str
    message_id: str  # "<...>" or ""
    in_reply_to: str
    references: tuple[str, ...]
