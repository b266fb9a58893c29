"""The values the store takes and returns: mailboxes, messages, flags and results.

Frozen dataclasses in mail terms (UIDs, flags, modseqs), never SQL rows or protocol
syntax. System flags are stored with their canonical spelling ("\\Seen"); keywords as
given.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DELETED = "\\Deleted"
DRAFT = "\\Draft"
SYSTEM_FLAGS: frozenset[str] = frozenset({SEEN, ANSWERED, FLAGGED, DELETED, DRAFT})

SPECIAL_USES: frozenset[str] = frozenset(
    {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}
)

# The folders every new account gets besides INBOX (CLIENTS.md), special use → name.
# A site may name them otherwise ("Sent Items"): ``[imap] special_use_names``, given to
# the store when it is opened.
DEFAULT_SPECIAL_FOLDERS: tuple[tuple[str, str], ...] = (
    ("\\Drafts", "Drafts"),
    ("\\Sent", "Sent"),
    ("\\Trash", "Trash"),
    ("\\Junk", "Junk"),
    ("\\Archive", "Archive"),
)


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
    deleted_size: int = 0  # octets flagged \Deleted: RFC 9208 DELETED-STORAGE


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """An account's limits (ARCHITECTURE.md decision 10); None is unlimited.
    ``storage`` in octets (the sum of RFC822.SIZE), ``messages`` a count."""

    storage: int | None = None
    messages: int | None = None


@dataclass(frozen=True, slots=True)
class QuotaOverride:
    """One account's own limits, kept in the users directory: None for a resource
    means the default applies, 0 means unlimited for this account."""

    storage: int | None = None
    messages: int | None = None

    def apply(self, default: QuotaLimits) -> QuotaLimits:
        """The effective limits over ``default``."""
        return QuotaLimits(
            default.storage if self.storage is None else self.storage or None,
            default.messages if self.messages is None else self.messages or None,
        )


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """What an account uses of its quota, counted exactly in the store's transactions,
    and its effective limits (None: unlimited)."""

    storage: int  # octets: the sum of the sizes of every message in every mailbox
    messages: int
    storage_limit: int | None
    message_limit: int | None

    def fits(self, size: int, count: int = 1) -> bool:
        """Whether ``count`` more messages of ``size`` octets in all stay within both
        limits (what an append of them will be checked against)."""
        storage_ok = self.storage_limit is None or self.storage + size <= self.storage_limit
        count_ok = self.message_limit is None or self.messages + count <= self.message_limit
        return storage_ok and count_ok


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """What a delivery needs to know of an account before the message comes (LMTP's
    RCPT), read in one go: whether it has room, and whether it filters its mail."""

    quota: QuotaUsage
    filtering: bool  # an active Sieve script


class MessageMeta(NamedTuple):
    """What FETCH needs of a message without reading its file.

    A NamedTuple, not a frozen dataclass: as immutable, and made five times faster
    (a frozen dataclass sets each field through object.__setattr__), which counted in
    a FETCH of 100,000. Change a field with ``meta._replace(...)``."""

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
    # Sent as binary (literal8, RFC 3516; BINARYMIME): stored byte-exact, bare LF kept
    # (store/line_endings.py); anything else has bare LF made CRLF on the way in.
    binary: bool = False


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


@dataclass(frozen=True, slots=True)
class SieveScript:
    """A user's Sieve script: its source as uploaded and its compiled form (JSON) with the
    compiler's format version, so a newer Roost compiles it again instead of misreading it."""

    name: str
    source: str
    compiled: str
    compiled_version: int
    active: bool
