"""The Store interface: what the protocols may ask of storage, and nothing more.

The store speaks mail — accounts, mailboxes, UIDs, flags, modseqs — never SQL rows and
never protocol syntax. Every backend (the embedded SQLite one now, PostgreSQL later)
implements these Protocols and passes the one contract suite in tests/store_contract/.

Invariants every backend keeps:

* Mailbox names are full UTF-8 names with "/" as the hierarchy separator. "INBOX" is
  stored and returned in exactly that spelling; callers normalise any-case "inbox" to it.
* UIDs within a mailbox only grow; UIDVALIDITY never changes for a mailbox's lifetime
  (RENAME keeps it). A mailbox deleted and created again gets a new UIDVALIDITY.
* MODSEQs come from one counter per account, so they grow across every mailbox of the
  account; every flag change, append and expunge takes a new one (RFC 7162 §3).
* Every expunge is logged with its modseq, so ``changes_since`` can report it.
* A method that changes data returns only after the change is durable (message file
  fsynced and renamed, then the transaction committed), and publishes a change event
  after commit.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

from roost.store.credentials import CredentialStore

# System flags are stored with their canonical spelling ("\\Seen"); keywords as given.
SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DELETED = "\\Deleted"
DRAFT = "\\Draft"
SYSTEM_FLAGS: frozenset[str] = frozenset({SEEN, ANSWERED, FLAGGED, DELETED, DRAFT})

SPECIAL_USES: frozenset[str] = frozenset(
    {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}
)


class StoreError(Exception):
    """Base of every error the store raises on purpose; the protocol maps them to codes."""


class NoSuchAccount(StoreError):
    pass


class AccountExists(StoreError):
    pass


class NoSuchMailbox(StoreError):
    pass


class MailboxExists(StoreError):
    pass


class MailboxHasChildren(StoreError):
    """Raised where an operation is refused because the mailbox has inferiors."""


class CannotDoThat(StoreError):
    """The request is well formed but impossible (e.g. deleting INBOX)."""


class QuotaExceeded(StoreError):
    pass


class MessageGone(StoreError):
    """The message was expunged (its file removed) after its metadata was read."""


class StorageFull(StoreError):
    """The disk is full: nothing was changed."""


class FlagOp(enum.Enum):
    REPLACE = "replace"
    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None = None
    # A \Noselect placeholder: it exists only because it has inferiors (RFC 3501 §6.3.4).
    noselect: bool = False

    @property
    def object_id(self) -> str:
        """RFC 8474 MAILBOXID: kept by RENAME (id and UIDVALIDITY are), never reused
        (ids are never reused, and a re-created mailbox gets a new UIDVALIDITY)."""
        return f"F{self.uidvalidity:08x}{self.id:x}"


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    messages: int
    recent: int
    uidnext: int
    uidvalidity: int
    unseen: int
    deleted: int
    size: int
    highestmodseq: int


@dataclass(frozen=True, slots=True)
class MessageMeta:
    """What FETCH needs of a message without reading its file."""

    uid: int
    flags: frozenset[str]
    modseq: int
    internaldate: datetime  # timezone-aware
    size: int  # RFC822.SIZE: bytes exactly as stored
    header_size: int  # bytes of the header block, including the blank separator line
    blob_id: str
    # The MIME model computed at delivery (roost.mime.model.MessageModel.to_blob()); None
    # only for messages stored before the model existed (then FETCH parses on demand).
    model: bytes | None = None
    savedate: datetime | None = None  # stored in this mailbox at (RFC 8514); None: unknown
    thread_id: int | None = None  # same for a message and its replies (RFC 8474 THREADID)
    # The stored bytes, when fetch_meta was asked for them and the message is small: one
    # round trip to the store then serves a FETCH of bodies (mbsync, offline sync).
    content: bytes | None = None

    @property
    def thread_object_id(self) -> str | None:
        """RFC 8474 THREADID, or None where the thread is not known."""
        return None if self.thread_id is None else f"T{self.thread_id:x}"

    @property
    def email_id(self) -> str:
        """RFC 8474 EMAILID: from the content, so COPY and MOVE keep it (as Cyrus does);
        messages with identical bytes share it, which §5.1 allows."""
        return "M" + self.blob_id[:24]


@dataclass(frozen=True, slots=True)
class FlagState:
    uid: int
    flags: frozenset[str]
    modseq: int


@dataclass(frozen=True, slots=True)
class MailboxSnapshot:
    """A mailbox as SELECT sees it, all read at one instant. No flags: a mailbox of
    100,000 messages is selected without reading them (``fetch_flags`` does)."""

    info: MailboxInfo
    uids: Sequence[int]  # every UID, ascending; the caller's own copy
    keywords: frozenset[str]  # every keyword defined in the mailbox
    first_unseen: int | None  # the lowest UID without \Seen (RFC 3501 [UNSEEN])
    # With claim_recent: UIDs at or above this are \Recent for the caller (claimed).
    recent_floor: int | None = None


@dataclass(frozen=True, slots=True)
class FlagRows:
    """UID, flags and modseq of many messages, for FETCH of only those (a whole-mailbox
    sync, 100,000 at a time), as parallel columns. A mailbox has few distinct flag sets,
    so each message names its set by a key, and a caller maps each key once, not each
    message."""

    uids: Sequence[int]  # ascending
    keys: Sequence[Hashable]  # each message's flags key
    modseqs: Sequence[int] | None  # each message's modseq; None when not asked for
    flags: Mapping[Hashable, frozenset[str]]  # the flags of every key in ``keys``

    @property
    def rows(self) -> list[tuple[int, Hashable, int]]:
        """(uid, flags key, modseq) of each message."""
        if self.modseqs is None:
            raise ValueError("read without modseqs")
        return list(zip(self.uids, self.keys, self.modseqs, strict=True))

    def states(self) -> list[tuple[int, frozenset[str], int]]:
        """(uid, flags, modseq) of each message."""
        flags = self.flags
        return [(uid, flags[key], modseq) for uid, key, modseq in self.rows]


@dataclass(frozen=True, slots=True)
class MailboxChanges:
    """What changed in a mailbox after a modseq: the answer to every sync point."""

    highestmodseq: int
    uidnext: int
    changed: list[FlagState]  # new messages and flag changes, ascending UID
    expunged: list[int]  # ascending UID
    keywords: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class MessageSource:
    """The bytes of a message to store: either in memory or in a spooled file."""

    data: bytes | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.path is None):
            raise ValueError("MessageSource needs exactly one of data or path")


@dataclass(frozen=True, slots=True)
class NewMessage:
    source: MessageSource
    flags: frozenset[str] = frozenset()
    internaldate: datetime | None = None  # None: now


@dataclass(frozen=True, slots=True)
class AppendResult:
    uidvalidity: int
    uids: list[int]
    mailbox: MailboxInfo


@dataclass(frozen=True, slots=True)
class CopyResult:
    """Source and destination UIDs, in matching order (for COPYUID, RFC 4315 §3)."""

    uidvalidity: int  # the destination's
    source_uids: list[int]
    dest_uids: list[int]


@dataclass(frozen=True, slots=True)
class StoreFlagsResult:
    updated: list[FlagState]  # messages whose flags changed, with their new modseq
    unchanged: list[FlagState]  # messages that existed and did not change
    failed_unchangedsince: list[int] = field(default_factory=list)  # RFC 7162 MODIFIED
    # For each updated message, its modseq just before this change: a session whose view
    # is older knows it missed someone else's change and must be told the whole state.
    previous_modseq: dict[int, int] = field(default_factory=dict)


# ---- search ------------------------------------------------------------------------
# A query in store terms: what to match and how to order it. The protocol turns its
# search keys into these (message numbers into UIDs, \Recent into UID sets); the store
# answers from columns and its text index, never by reading message files.


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
    subject: str  # decoded Subject
    message_id: str  # "<...>" or ""
    in_reply_to: str
    references: tuple[str, ...]


# ---- change events -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MailboxChanged:
    """Messages in a mailbox changed; ask ``changes_since`` what exactly."""

    mailbox_id: int
    modseq: int


@dataclass(frozen=True, slots=True)
class MailboxListChanged:
    """A mailbox was created, deleted, renamed, or a subscription changed."""


ChangeEvent = MailboxChanged | MailboxListChanged


class ChangeListener(Protocol):
    """One session's subscription to an account's change events."""

    async def wait(self) -> list[ChangeEvent]:
        """Return pending events, waiting for the first one (wrap in asyncio.timeout)."""
        ...

    def pending(self) -> list[ChangeEvent]:
        """Return and clear pending events without waiting."""
        ...

    def close(self) -> None: ...


# ---- the interfaces ----------------------------------------------------------------


class Account(Protocol):
    """One account's mail. Obtained from Store.open_account; release with close()."""

    name: str

    async def close(self) -> None: ...

    def listen(self) -> ChangeListener: ...

    # mailboxes
    async def list_mailboxes(self) -> list[MailboxInfo]: ...
    async def get_mailbox(self, name: str) -> MailboxInfo:
        """Raise NoSuchMailbox where absent."""
        ...

    async def create_mailbox(self, name: str, special_use: str | None = None) -> MailboxInfo:
        """Create ``name`` and any missing parents (RFC 3501 §6.3.3). MailboxExists if
        present (a \\Noselect placeholder of that name becomes a real mailbox instead)."""
        ...

    async def delete_mailbox(self, name: str) -> None:
        """Delete a mailbox. With inferiors, it becomes a \\Noselect placeholder and its
        messages are removed (RFC 3501 §6.3.4). CannotDoThat for INBOX."""
        ...

    async def rename_mailbox(self, old: str, new: str) -> None:
        """Rename with all inferiors, keeping UIDVALIDITY. Renaming INBOX moves its
        messages into a new mailbox and leaves INBOX empty (RFC 9051 §6.3.6)."""
        ...

    async def list_subscriptions(self) -> list[str]: ...
    async def set_subscribed(self, name: str, subscribed: bool) -> None: ...

    async def status(self, mailbox_id: int) -> MailboxStatus: ...

    # messages
    async def snapshot(self, mailbox_id: int, *, claim_recent: bool = False) -> MailboxSnapshot:
        """The mailbox now; with ``claim_recent``, also claim \\Recent as ``claim_recent``
        does, at the same instant (``recent_floor``): SELECT needs no second call."""
        ...

    async def claim_recent(self, mailbox_id: int) -> int:
        """Claim \\Recent for the caller: return the lowest UID that is recent for it and
        move the mailbox's recent floor to UIDNEXT, so no other session gets them."""
        ...

    async def append(self, mailbox: int | str, messages: Sequence[NewMessage]) -> AppendResult:
        """Store all of ``messages`` or none of them (MULTIAPPEND, RFC 3502) in the
        mailbox with that id, or that name. By name, it is looked up in the same step:
        NoSuchMailbox where absent, CannotDoThat for a \\Noselect placeholder."""
        ...

    async def fetch_meta(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        *,
        with_model: bool = True,
        with_content: bool = False,
    ) -> list[MessageMeta]:
        """Metadata for those of ``uids`` that exist, ascending UID; ``model`` stays None
        unless ``with_model`` (it is the largest part, and FLAGS-only FETCH needs none).
        ``with_content`` fills ``content`` for small messages (a backend may leave any of
        them None: callers then read with ``read_range``)."""
        ...

    async def fetch_flags(
        self, mailbox_id: int, uids: Sequence[int], *, with_modseq: bool = True
    ) -> FlagRows:
        """UID, flags and modseq of those of ``uids`` that exist, ascending UID: what
        ``fetch_meta`` gives of them, for a fraction of its cost. Without
        ``with_modseq``, ``modseqs`` is None (a FETCH of only UID and FLAGS)."""
        ...

    def read_message(self, meta: MessageMeta) -> AsyncIterator[bytes]:
        """The stored bytes of a message, in chunks."""
        ...

    async def read_range(self, meta: MessageMeta, start: int, length: int) -> bytes:
        """``length`` bytes of the stored message from offset ``start`` (fewer at the end)."""
        ...

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: frozenset[str],
        unchangedsince: int | None = None,
    ) -> StoreFlagsResult: ...

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        """Remove messages flagged \\Deleted (only among ``uids`` if given); return their
        UIDs, ascending."""
        ...

    async def copy(self, source_id: int, uids: Sequence[int], dest_id: int) -> CopyResult: ...
    async def move(self, source_id: int, uids: Sequence[int], dest_id: int) -> CopyResult:
        """Copy then expunge from the source, in one transaction (RFC 6851)."""
        ...

    async def changes_since(self, mailbox_id: int, modseq: int) -> MailboxChanges: ...

    # search
    async def search(self, mailbox_id: int, query: SearchQuery) -> SearchResult:
        """The messages matching ``query.criterion``, in its order."""
        ...

    async def thread_fields(self, mailbox_id: int, query: SearchQuery) -> list[ThreadFields]:
        """Threading fields of the messages matching ``query.criterion``, ascending UID."""
        ...


class Store(CredentialStore, Protocol):
    """The whole store: accounts and their credentials (sign-in records, SCRAM keys,
    two-factor, app passwords: ``credentials.CredentialStore``)."""

    async def close(self) -> None: ...

    async def create_account(self, name: str, password_hash: str) -> None:
        """Create an account with INBOX, Drafts, Sent, Trash, Junk and Archive, each with
        its special-use attribute and subscribed. AccountExists if present."""
        ...

    async def delete_account(self, name: str) -> None: ...
    async def list_accounts(self) -> list[str]: ...
    async def get_password_hash(self, name: str) -> str | None:
        """None where the account does not exist."""
        ...

    async def set_password_hash(self, name: str, password_hash: str) -> None: ...

    async def open_account(self, name: str) -> Account:
        """NoSuchAccount where absent. Each call returns a handle; close it when done."""
        ...
