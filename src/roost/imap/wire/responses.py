"""Typed IMAP responses. They become bytes only in ``serializer.py``.

Handlers never build protocol text: they return these values, and the serializer decides
quoting, literals, NIL, and mailbox-name encoding (modified UTF-7 or UTF-8).
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


class Status(enum.Enum):
    OK = "OK"
    NO = "NO"
    BAD = "BAD"
    PREAUTH = "PREAUTH"
    BYE = "BYE"


# ---- response codes (RFC 9051 §7.1, RFC 5530, RFC 4315) --------------------------------


@dataclass(frozen=True, slots=True)
class Code:
    """A response code without data, or with plain atom/number data, e.g.
    ``Code("TRYCREATE")``, ``Code("UIDNEXT", "42")``, ``Code("APPENDLIMIT", "1000")``."""

    name: str
    data: str | None = None


@dataclass(frozen=True, slots=True)
class CapabilityCode:
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PermanentFlagsCode:
    flags: tuple[str, ...]  # may include "\\*"


@dataclass(frozen=True, slots=True)
class AppendUidCode:
    uidvalidity: int
    uids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CopyUidCode:
    uidvalidity: int
    source_uids: tuple[int, ...]
    dest_uids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class BadCharsetCode:
    charsets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProgressCode:
    """``[INPROGRESS ("tag" count total)]`` (RFC 9585 §3); None is NIL."""

    tag: str | None
    count: int | None
    total: int | None


ResponseCode = (
    Code
    | CapabilityCode
    | PermanentFlagsCode
    | AppendUidCode
    | CopyUidCode
    | BadCharsetCode
    | ProgressCode
)


# ---- responses ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tagged:
    tag: str
    status: Status  # OK, NO or BAD
    text: str
    code: ResponseCode | None = None


@dataclass(frozen=True, slots=True)
class Untagged:
    """``* OK/NO/BAD/BYE/PREAUTH [code] text``."""

    status: Status
    text: str
    code: ResponseCode | None = None


@dataclass(frozen=True, slots=True)
class Continuation:
    """``+ text`` or, for SASL, ``+ base64``. ``data`` is sent base64-encoded."""

    text: str = ""
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class CapabilityResponse:
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Enabled:
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IdResponse:
    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class NamespaceResponse:
    """Each namespace is (prefix, delimiter); None for NIL."""

    personal: tuple[tuple[str, str], ...] | None
    other_users: tuple[tuple[str, str], ...] | None
    shared: tuple[tuple[str, str], ...] | None


@dataclass(frozen=True, slots=True)
class QuotaResource:
    """One resource of a QUOTA response (RFC 9208 §5.1): ``name`` (STORAGE in units
    of 1024 octets, MESSAGE a count), its usage and its limit."""

    name: str
    usage: int
    limit: int


@dataclass(frozen=True, slots=True)
class QuotaResponse:
    """``* QUOTA root (resource usage limit ...)`` (RFC 9208 §5.1): at least one."""

    root: str
    resources: tuple[QuotaResource, ...]


@dataclass(frozen=True, slots=True)
class QuotaRootResponse:
    """``* QUOTAROOT mailbox root ...`` (RFC 9208 §5.2): the roots of a mailbox."""

    mailbox: str
    roots: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MetadataResponse:
    """``* METADATA mailbox (entry value ...)`` (RFC 5464 §4.4.1); ``mailbox`` "" is
    the server; a None value is NIL (an entry asked for that has none)."""

    mailbox: str
    entries: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class AclResponse:
    """``* ACL mailbox identifier rights ...`` (RFC 4314 §3.6)."""

    mailbox: str
    entries: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ListRightsResponse:
    """``* LISTRIGHTS mailbox identifier required optional ...`` (RFC 4314 §3.7)."""

    mailbox: str
    identifier: str
    required: str
    optional: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MyRightsResponse:
    """``* MYRIGHTS mailbox rights`` (RFC 4314 §3.8)."""

    mailbox: str
    rights: str


@dataclass(frozen=True, slots=True)
class Exists:
    count: int


@dataclass(frozen=True, slots=True)
class Recent:
    count: int


@dataclass(frozen=True, slots=True)
class Expunged:
    """``* n EXPUNGE``."""

    seq: int


@dataclass(frozen=True, slots=True)
class Vanished:
    """``* VANISHED [(EARLIER)] uid-set`` (RFC 7162 §3.2.10)."""

    uids: tuple[int, ...]
    earlier: bool = False


@dataclass(frozen=True, slots=True)
class FlagsResponse:
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListResponse:
    """``* LIST (attrs) "/" name [extended items]``, or LSUB with ``lsub``.

    ``child_info`` carries ("SUBSCRIBED",) for CHILDINFO (RFC 5258 §3.5)."""

    attributes: tuple[str, ...]
    delimiter: str | None
    name: str
    child_info: tuple[str, ...] = ()
    lsub: bool = False
    old_name: str | None = None  # RFC 5465 §5.4 OLDNAME, for a rename seen by NOTIFY


@dataclass(frozen=True, slots=True)
class ObjectId:
    """An RFC 8474 object id, sent as ``(id)``; NIL when ``value`` is None. Ids are
    1-255 of ALPHA / DIGIT / "_" / "-", so they need no quoting."""

    value: str | None


@dataclass(frozen=True, slots=True)
class StatusResponse:
    mailbox: str
    items: tuple[tuple[str, int | ObjectId], ...]


@dataclass(frozen=True, slots=True)
class SearchResponse:
    numbers: tuple[int, ...]
    modseq: int | None = None


@dataclass(frozen=True, slots=True)
class SortResponse:
    """``* SORT n ...`` (RFC 5256 §4), in sort order; MODSEQ as for SEARCH."""

    numbers: tuple[int, ...]
    modseq: int | None = None


@dataclass(frozen=True, slots=True)
class ThreadNode:
    """A message in a thread (``number``), or a placeholder for one that is not in the
    result (``None``, RFC 5256 "dummy"), with its replies in order."""

    number: int | None
    children: tuple[ThreadNode, ...] = ()


@dataclass(frozen=True, slots=True)
class ThreadResponse:
    """``* THREAD (2)(3 6 (4 23)(44 7 96))`` (RFC 5256 §4)."""

    threads: tuple[ThreadNode, ...]


@dataclass(frozen=True, slots=True)
class ESearchResponse:
    """``* ESEARCH (TAG "t") [UID] items`` (RFC 4731)."""

    tag: str | None
    uid: bool
    items: tuple[tuple[str, str], ...]  # ("MIN", "3"), ("ALL", "1:5,9")
    # MULTISEARCH (RFC 7377 §2): which mailbox the result is of.
    mailbox: str | None = None
    uidvalidity: int | None = None


# ---- FETCH values -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NString:
    """A string that is sent as a literal (or NIL when ``data`` is None), e.g. BODY[]."""

    data: bytes | None
    binary: bool = False  # literal8 "~{n}" (RFC 3516)


@dataclass(frozen=True, slots=True)
class FlagList:
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RawValue:
    """Already-serialized data for one FETCH item (e.g. ENVELOPE computed at delivery)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Parenthesized:
    """``(value)``, e.g. MODSEQ (12345)."""

    value: int


FetchValue = int | datetime | NString | FlagList | RawValue | Parenthesized | ObjectId | str | None


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """``* seq FETCH (key value ...)``. Keys are wire labels, e.g. "UID", "FLAGS",
    "BODY[HEADER.FIELDS (SUBJECT)]", "BODY[]<0>"; ``str`` values are sent quoted."""

    seq: int
    items: tuple[tuple[str, FetchValue], ...]
    uidfetch: bool = False  # ``* uid UIDFETCH (...)``: ``seq`` is a UID (RFC 9586 §3.3)


@dataclass(frozen=True, slots=True)
class FlagFetchBatch:
    """Many ``* msn FETCH`` responses that hold only UID, FLAGS and MODSEQ: a client's
    whole-mailbox flag sync, up to 100,000 of them, written in one loop. The bytes are
    exactly those of one FetchResponse per message with the same items.

    Shaped so that the store's columns pass through untouched: each message names its
    flags by a key, and the few distinct keys map to their flag lists."""

    items: tuple[str, ...]  # which of "UID", "FLAGS", "MODSEQ", in the order sent
    numbers: Sequence[int]  # the message numbers; the columns below are parallel
    uids: Sequence[int]
    keys: Sequence[Hashable]  # each message's flags key
    modseqs: Sequence[int] | None  # None when MODSEQ is not among ``items``
    flags: Mapping[Hashable, FlagList]  # the flag list of every key in ``keys``
    uidfetch: bool = False  # UIDFETCH responses, ``numbers`` being UIDs (RFC 9586 §3.3)


class ColumnKind(enum.Enum):
    """How the serializer writes the values of a ``FetchColumn``."""

    NUMBER = "number"  # ints, written as numbers (UID, RFC822.SIZE)
    RAW = "raw"  # bytes already in wire form (what a RawValue holds: ENVELOPE, ...)
    VALUE = "value"  # any FetchValue, written as in a FetchResponse


@dataclass(frozen=True, slots=True)
class FetchColumn:
    """One item's values in a ``FetchBatch``, message by message."""

    kind: ColumnKind
    values: Sequence[int] | Sequence[bytes] | Sequence[FetchValue]


@dataclass(frozen=True, slots=True)
class FetchBatch:
    """Many ``* msn FETCH`` responses with the same items, as columns: a FETCH of
    ENVELOPE and BODYSTRUCTURE for a whole mailbox is 100,000 of them, written by one
    %-format per message instead of a FetchResponse each. The bytes are exactly those
    of one FetchResponse per message with the same items."""

    items: tuple[str, ...]  # wire labels, in the order sent
    numbers: Sequence[int]  # the message numbers; each column is parallel to them
    columns: tuple[FetchColumn, ...]  # one per item
    uidfetch: bool = False  # UIDFETCH responses, ``numbers`` being UIDs (RFC 9586 §3.3)


@dataclass(frozen=True, slots=True)
class GenUrlAuthResponse:
    """RFC 4467 §8: ``* GENURLAUTH`` and each full URL."""

    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UrlFetchExtended:
    """RFC 5524 §3.2: ``(BODYPARTSTRUCTURE (...) BINARY ~{n}...)`` for one URL."""

    structure: bytes | None  # already in IMAP form, parenthesized
    kind: str | None  # "BODY" or "BINARY"; None: structure only
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class UrlFetchResponse:
    """RFC 4467 §8: ``* URLFETCH`` and each URL with its data (None: NIL)."""

    items: tuple[tuple[str, bytes | UrlFetchExtended | None], ...]


Response = (
    Tagged
    | Untagged
    | Continuation
    | CapabilityResponse
    | Enabled
    | IdResponse
    | NamespaceResponse
    | QuotaResponse
    | QuotaRootResponse
    | MetadataResponse
    | AclResponse
    | ListRightsResponse
    | MyRightsResponse
    | Exists
    | Recent
    | Expunged
    | Vanished
    | FlagsResponse
    | ListResponse
    | StatusResponse
    | SearchResponse
    | SortResponse
    | ThreadResponse
    | ESearchResponse
    | FetchResponse
    | FlagFetchBatch
    | FetchBatch
    | GenUrlAuthResponse
    | UrlFetchResponse
)
