"""Typed IMAP commands: what the grammar produces and the session consumes.

Every command carries its tag. Wire tokens stay ``bytes`` where their meaning depends on
session state: mailbox names (modified UTF-7 or UTF-8 depending on ENABLE), so the
session decodes them. Everything whose meaning is fixed is parsed to a Python value.

A syntax error is also a value, ``BadCommand``, which keeps the tag so that every BAD
reply is tagged (RFC 9051 §7.1.5).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from roost.imap.wire.search_keys import SearchKey
from roost.imap.wire.sequence import SequenceSet


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal too large to keep in memory: the receiver spooled it to a file.

    Small literals arrive as plain ``bytes``; only APPEND accepts a ``Literal``."""

    path: Path
    size: int
    binary: bool = False  # literal8 "~{n}" (RFC 3516)
    contains_nul: bool = False  # checked as it was spooled, for a literal that is not literal8


MessageData = bytes | Literal


@dataclass(frozen=True, slots=True)
class Command:
    tag: str


@dataclass(frozen=True, slots=True)
class BadCommand(Command):
    """Syntax error. ``tag`` is "*" where even the tag could not be read."""

    message: str
    name: str = ""  # the command name where it was recognised


# ---- any state ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capability(Command):
    pass


@dataclass(frozen=True, slots=True)
class Noop(Command):
    pass


@dataclass(frozen=True, slots=True)
class Logout(Command):
    pass


@dataclass(frozen=True, slots=True)
class Id(Command):
    """RFC 2971. ``params`` None for NIL."""

    params: tuple[tuple[str, str | None], ...] | None


# ---- not authenticated --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartTls(Command):
    pass


@dataclass(frozen=True, slots=True)
class Login(Command):
    username: bytes
    password: bytes


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    mechanism: str  # upper-cased
    initial_response: bytes | None  # decoded SASL-IR (RFC 4959); b"" for "="


# ---- authenticated ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enable(Command):
    capabilities: tuple[str, ...]  # upper-cased


@dataclass(frozen=True, slots=True)
class QresyncParams:
    """``(QRESYNC (uidvalidity modseq [known-uids [(seq-set uid-set)]]))`` (RFC 7162
    §3.2.5): what a resyncing client already knows."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    known_sequence: SequenceSet | None = None  # seq-match-data: message numbers …
    known_sequence_uids: SequenceSet | None = None  # … and the UIDs they had


@dataclass(frozen=True, slots=True)
class Select(Command):
    mailbox: bytes
    readonly: bool  # EXAMINE
    condstore: bool = False  # (CONDSTORE) parameter, RFC 7162 §3.1.8
    qresync: QresyncParams | None = None


@dataclass(frozen=True, slots=True)
class Create(Command):
    mailbox: bytes
    special_use: tuple[str, ...] = ()  # CREATE ... (USE (\Sent)), RFC 6154 §3


@dataclass(frozen=True, slots=True)
class Delete(Command):
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class Rename(Command):
    old: bytes
    new: bytes


@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class Unsubscribe(Command):
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class List(Command):
    """LIST, with LIST-EXTENDED (RFC 5258) options and LIST-STATUS (RFC 5819).

    ``selection`` and ``return_options`` are upper-cased atoms, e.g. "SUBSCRIBED",
    "RECURSIVEMATCH", "SPECIAL-USE", "CHILDREN"; ``status_items`` is set for
    RETURN (STATUS (...))."""

    reference: bytes
    patterns: tuple[bytes, ...]
    selection: tuple[str, ...] = ()
    return_options: tuple[str, ...] = ()
    status_items: tuple[str, ...] = ()
    extended: bool = False  # any LIST-EXTENDED syntax was used
    metadata_entries: tuple[str, ...] = ()  # RETURN (METADATA (...)), RFC 9590


@dataclass(frozen=True, slots=True)
class Lsub(Command):
    reference: bytes
    pattern: bytes


@dataclass(frozen=True, slots=True)
class Namespace(Command):
    pass


@dataclass(frozen=True, slots=True)
class GetQuota(Command):
    root: str  # quota-root-name (RFC 9208 §4.1.1)


@dataclass(frozen=True, slots=True)
class GetQuotaRoot(Command):
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class SetQuota(Command):
    root: str
    limits: tuple[tuple[str, int], ...]  # (resource name upper-cased, limit)


@dataclass(frozen=True, slots=True)
class GetMetadata(Command):
    """GETMETADATA (RFC 5464 §4.2). ``mailbox`` is raw (b"" is the server); entries
    lower-cased; ``depth`` 0, 1 or None for "infinity" (§4.2.2)."""

    mailbox: bytes
    entries: tuple[str, ...]
    maxsize: int | None = None
    depth: int | None = 0


@dataclass(frozen=True, slots=True)
class SetMetadata(Command):
    """SETMETADATA (RFC 5464 §4.3): (entry, value) pairs, a None value removes it; a
    value too large to keep in memory arrives as a spooled ``Literal``."""

    mailbox: bytes
    values: tuple[tuple[str, bytes | Literal | None], ...]


@dataclass(frozen=True, slots=True)
class GetAcl(Command):
    """GETACL (RFC 4314 §3.3)."""

    mailbox: bytes


@dataclass(frozen=True, slots=True)
class SetAcl(Command):
    """SETACL (RFC 4314 §3.1): ``rights`` as sent, perhaps starting with "+" or "-"."""

    mailbox: bytes
    identifier: str
    rights: str


@dataclass(frozen=True, slots=True)
class DeleteAcl(Command):
    """DELETEACL (RFC 4314 §3.2)."""

    mailbox: bytes
    identifier: str


@dataclass(frozen=True, slots=True)
class ListRights(Command):
    """LISTRIGHTS (RFC 4314 §3.4)."""

    mailbox: bytes
    identifier: str


@dataclass(frozen=True, slots=True)
class MyRights(Command):
    """MYRIGHTS (RFC 4314 §3.5)."""

    mailbox: bytes


@dataclass(frozen=True, slots=True)
class Status(Command):
    mailbox: bytes
    items: tuple[str, ...]  # upper-cased: MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE ...


@dataclass(frozen=True, slots=True)
class CatText:
    """A ``TEXT literal`` part of CATENATE (RFC 4469 §5)."""

    data: MessageData


@dataclass(frozen=True, slots=True)
class CatUrl:
    """A ``URL astring`` part of CATENATE: the IMAP URL as sent, parsed by the handler
    (a bad URL is ``NO [BADURL]``, not a syntax error: RFC 4469 §3)."""

    url: bytes


@dataclass(frozen=True, slots=True)
class Catenate:
    """``CATENATE (cat-part *(SP cat-part))``: the message is these parts in order."""

    parts: tuple[CatText | CatUrl, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    flags: tuple[str, ...]
    internaldate: datetime | None
    data: MessageData | Catenate
    binary: bool = False  # sent as literal8


@dataclass(frozen=True, slots=True)
class Append(Command):
    mailbox: bytes
    messages: tuple[AppendMessage, ...]  # more than one: MULTIAPPEND (RFC 3502)


@dataclass(frozen=True, slots=True)
class Replace(Command):
    """REPLACE / UID REPLACE (RFC 8508): append ``message`` to ``mailbox`` and expunge
    the one message ``sequence`` names, at once."""

    sequence: SequenceSet  # one number or UID ("*" allowed: seq-number)
    mailbox: bytes
    message: AppendMessage
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Idle(Command):
    pass


@dataclass(frozen=True, slots=True)
class Unauthenticate(Command):
    """UNAUTHENTICATE (RFC 8437): back to the not-authenticated state."""


@dataclass(frozen=True, slots=True)
class Compress(Command):
    """COMPRESS mechanism (RFC 4978); only DEFLATE exists."""

    mechanism: str  # upper-cased


# ---- selected -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check(Command):
    pass


@dataclass(frozen=True, slots=True)
class Close(Command):
    pass


@dataclass(frozen=True, slots=True)
class Unselect(Command):
    pass


@dataclass(frozen=True, slots=True)
class Expunge(Command):
    uids: SequenceSet | None = None  # UID EXPUNGE (RFC 4315 §2.1)


class FetchItem(enum.Enum):
    """Simple FETCH attributes. Macros (ALL, FAST, FULL) are expanded by the grammar."""

    FLAGS = "FLAGS"
    UID = "UID"
    INTERNALDATE = "INTERNALDATE"
    RFC822_SIZE = "RFC822.SIZE"
    RFC822 = "RFC822"
    RFC822_HEADER = "RFC822.HEADER"
    RFC822_TEXT = "RFC822.TEXT"
    ENVELOPE = "ENVELOPE"
    BODYSTRUCTURE = "BODYSTRUCTURE"
    BODY = "BODY"  # BODYSTRUCTURE without extension data
    MODSEQ = "MODSEQ"  # RFC 7162
    EMAILID = "EMAILID"  # RFC 8474
    THREADID = "THREADID"
    SAVEDATE = "SAVEDATE"  # RFC 8514


@dataclass(frozen=True, slots=True)
class Section:
    """A body section: ``part`` () is the whole message; ``text`` one of None, "HEADER",
    "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()  # header names as written (compare case-insensitively)


@dataclass(frozen=True, slots=True)
class BodySection:
    """BODY[...], BODY.PEEK[...], BINARY[...], BINARY.PEEK[...] with optional <o.n>."""

    section: Section
    peek: bool = False
    partial: tuple[int, int] | None = None  # (origin, count)
    binary: bool = False


@dataclass(frozen=True, slots=True)
class BinarySize:
    """BINARY.SIZE[part] (RFC 3516 §4.2)."""

    part: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Preview:
    """PREVIEW [(LAZY)] (RFC 8970 §3.1): with ``lazy``, NIL where making it is costly."""

    lazy: bool = False


FetchAttribute = FetchItem | BodySection | BinarySize | Preview


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """One ``(filter events)`` group of NOTIFY SET (RFC 5465 §6).

    ``filter``: "SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED",
    "SUBTREE" or "MAILBOXES" (the last two with ``mailboxes``). ``events`` upper-cased,
    empty for NONE; ``fetch_attributes`` what MessageNew should send for the selected
    mailbox."""

    filter: str
    events: tuple[str, ...]
    mailboxes: tuple[bytes, ...] = ()
    fetch_attributes: tuple[FetchAttribute, ...] = ()


@dataclass(frozen=True, slots=True)
class Notify(Command):
    """NOTIFY NONE (``groups`` None) or NOTIFY SET [STATUS] groups (RFC 5465)."""

    groups: tuple[NotifyGroup, ...] | None
    status: bool = False


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    sequence: SequenceSet
    attributes: tuple[FetchAttribute, ...]
    uid: bool = False
    changedsince: int | None = None  # RFC 7162 §3.1.4
    vanished: bool = False  # RFC 7162 §3.2.6
    partial: tuple[int, int] | None = None  # (PARTIAL n:m) modifier, RFC 9394 §3.2


class StoreMode(enum.Enum):
    REPLACE = ""
    ADD = "+"
    REMOVE = "-"


@dataclass(frozen=True, slots=True)
class Store(Command):
    sequence: SequenceSet
    mode: StoreMode
    silent: bool
    flags: tuple[str, ...]  # as written; system flags keep their backslash
    uid: bool = False
    unchangedsince: int | None = None  # RFC 7162 §3.1.3


@dataclass(frozen=True, slots=True)
class Copy(Command):
    sequence: SequenceSet
    mailbox: bytes
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Move(Command):
    sequence: SequenceSet
    mailbox: bytes
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Search(Command):
    """SEARCH / UID SEARCH (RFC 9051 §6.4.4) with ESEARCH return options (RFC 4731).

    ``return_options`` is None without RETURN (answer ``* SEARCH``); with RETURN it
    holds the upper-cased options, ``()`` meaning ALL (RFC 4731 §3.1)."""

    criteria: SearchKey
    uid: bool = False
    charset: str | None = None
    return_options: tuple[str, ...] | None = None
    partial: tuple[int, int] | None = None  # RETURN (PARTIAL n:m) (RFC 9394)


@dataclass(frozen=True, slots=True)
class CancelUpdate(Command):
    """CANCELUPDATE "tag" ... (RFC 5267 §4.3.1): stop the updates of those searches."""

    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SearchSource:
    """One ``filter-mailboxes`` of ESEARCH IN (RFC 7377 §2, RFC 5465 §6): ``filter``
    upper-cased ("SELECTED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE",
    "SUBTREE-ONE", "MAILBOXES"; the last three with ``mailboxes``)."""

    filter: str
    mailboxes: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class ESearch(Command):
    """ESEARCH [IN (sources)] [RETURN (...)] program (MULTISEARCH, RFC 7377):
    search several mailboxes at once; no ``sources`` means the selected one."""

    sources: tuple[SearchSource, ...]
    criteria: SearchKey
    charset: str | None = None
    return_options: tuple[str, ...] | None = None


class SortKey(enum.Enum):
    """RFC 5256 §3 sort keys, with DISPLAYFROM/DISPLAYTO of RFC 5957."""

    ARRIVAL = "ARRIVAL"
    CC = "CC"
    DATE = "DATE"
    FROM = "FROM"
    SIZE = "SIZE"
    SUBJECT = "SUBJECT"
    TO = "TO"
    DISPLAYFROM = "DISPLAYFROM"
    DISPLAYTO = "DISPLAYTO"


@dataclass(frozen=True, slots=True)
class SortCriterion:
    key: SortKey
    reverse: bool = False


@dataclass(frozen=True, slots=True)
class Sort(Command):
    """SORT / UID SORT (RFC 5256 §3), with ESORT return options (RFC 5267 §3)."""

    sort_criteria: tuple[SortCriterion, ...]
    charset: str
    criteria: SearchKey
    uid: bool = False
    return_options: tuple[str, ...] | None = None
    partial: tuple[int, int] | None = None  # RETURN (PARTIAL n:m) (RFC 9394)


@dataclass(frozen=True, slots=True)
class Thread(Command):
    """THREAD / UID THREAD (RFC 5256 §3); ``algorithm`` upper-cased."""

    algorithm: str
    charset: str
    criteria: SearchKey
    uid: bool = False


# Names the dispatch table uses for each command type; "UID FETCH" etc. are the same type
# with uid=True.
@dataclass(frozen=True, slots=True)
class GenUrlAuth(Command):
    """RFC 4467 §7.1: pairs of (url-rump, mechanism)."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ResetKey(Command):
    """RFC 4467 §7.2: every key when ``mailbox`` is None."""

    mailbox: bytes | None
    mechanisms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UrlFetch(Command):
    """RFC 4467 §7.3; each URL with its RFC 5524 parameters (upper-cased: BODY, BINARY,
    BODYPARTSTRUCTURE), or None for the simple form."""

    urls: tuple[tuple[str, tuple[str, ...] | None], ...]


COMMAND_NAMES: dict[type[Command], str] = {
    Capability: "CAPABILITY",
    Noop: "NOOP",
    Logout: "LOGOUT",
    Id: "ID",
    StartTls: "STARTTLS",
    Login: "LOGIN",
    Authenticate: "AUTHENTICATE",
    Enable: "ENABLE",
    Select: "SELECT",
    Create: "CREATE",
    Delete: "DELETE",
    Rename: "RENAME",
    Subscribe: "SUBSCRIBE",
    Unsubscribe: "UNSUBSCRIBE",
    List: "LIST",
    Lsub: "LSUB",
    Namespace: "NAMESPACE",
    GetQuota: "GETQUOTA",
    GetQuotaRoot: "GETQUOTAROOT",
    SetQuota: "SETQUOTA",
    GetMetadata: "GETMETADATA",
    SetMetadata: "SETMETADATA",
    GetAcl: "GETACL",
    SetAcl: "SETACL",
    DeleteAcl: "DELETEACL",
    ListRights: "LISTRIGHTS",
    MyRights: "MYRIGHTS",
    Status: "STATUS",
    Append: "APPEND",
    Replace: "REPLACE",
    Idle: "IDLE",
    Compress: "COMPRESS",
    Unauthenticate: "UNAUTHENTICATE",
    Notify: "NOTIFY",
    Check: "CHECK",
    Close: "CLOSE",
    Unselect: "UNSELECT",
    Expunge: "EXPUNGE",
    Fetch: "FETCH",
    Store: "STORE",
    Copy: "COPY",
    Move: "MOVE",
    Search: "SEARCH",
    ESearch: "ESEARCH",
    CancelUpdate: "CANCELUPDATE",
    Sort: "SORT",
    Thread: "THREAD",
    GenUrlAuth: "GENURLAUTH",
    ResetKey: "RESETKEY",
    UrlFetch: "URLFETCH",
}
