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
* Quota usage (the sum of message sizes and their count over every mailbox of the
  account, its one quota root) changes in the same transaction as the messages. An
  operation that raises usage past a limit (APPEND, COPY) raises QuotaExceeded with
  nothing changed; the check is inside the write, so concurrent writers cannot both
  pass it. MOVE, EXPUNGE and DELETE are never refused for quota.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from roost.store.credentials import CredentialStore
from roost.store.events import ChangeListener
from roost.store.query import SearchQuery, SearchResult, ThreadFields
from roost.store.values import (
    AppendResult,
    CopyResult,
    DeliveryState,
    FlagOp,
    FlagRows,
    MailboxChanges,
    MailboxInfo,
    MailboxSnapshot,
    MailboxStatus,
    MessageMeta,
    NewMessage,
    QuotaOverride,
    QuotaUsage,
    SieveScript,
    StoreFlagsResult,
)


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
    async def snapshot(
        self, mailbox_id: int, *, claim_recent: bool = False, peek_recent: bool = False
    ) -> MailboxSnapshot:
        """The mailbox now; with ``claim_recent``, also claim \\Recent as ``claim_recent``
        does, at the same instant (``recent_floor``): SELECT needs no second call. With
        ``peek_recent`` instead, ``recent_floor`` is what the next claim would get, left
        unclaimed (an IMAP4rev1 EXAMINE must not take \\Recent away, RFC 3501 §6.3.2)."""
        ...

    async def recent_floor(self, mailbox_id: int) -> int:
        """The lowest UID the next ``claim_recent`` would get, without claiming."""
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

    async def previews(
        self, mailbox_id: int, uids: Sequence[int], *, compute: bool = True
    ) -> dict[int, str | None]:
        """RFC 8970 PREVIEW text of those of ``uids`` that exist: at most 256 characters
        of plain text, "" where the message has none. A message stored before previews
        were kept has None unless ``compute``, which makes (and keeps) it from the
        message (FETCH PREVIEW (LAZY) asks without, §3.1)."""
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

    async def replace(
        self, mailbox_id: int, uid: int, target: int | str, message: NewMessage
    ) -> AppendResult:
        """REPLACE (RFC 8508): append ``message`` to ``target`` (by id or name, as
        ``append``) and expunge ``uid`` from ``mailbox_id`` (whatever its flags), in one
        transaction. The quota check counts the space the old message frees.
        CannotDoThat where ``uid`` is gone; NoSuchMailbox, QuotaExceeded as ``append``,
        with nothing changed."""
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

    # metadata (RFC 5464): mailbox_id None is the server; names are lower case
    async def get_metadata(self, mailbox_id: int | None, names: Sequence[str]) -> dict[str, bytes]:
        """Every entry named in ``names`` or below one ("/a" covers "/a/b"), with its
        value. NoSuchMailbox where the mailbox is gone."""
        ...

    async def set_metadata(
        self, mailbox_id: int | None, changes: Mapping[str, bytes | None], max_entries: int
    ) -> None:
        """Set (bytes) or remove (None) entries, all or none; TooManyMetadataEntries if
        the mailbox (or server) would then hold more than ``max_entries``. A mailbox's
        entries are removed with it (and when DELETE leaves a \\Noselect placeholder)."""
        ...

    # access control lists (RFC 4314): what the owner granted others on a mailbox
    async def get_acl(self, mailbox_id: int) -> dict[str, str]:
        """Identifier → rights of every entry on the mailbox (the owner's own rights
        are implicit and not among them). NoSuchMailbox where it is gone."""
        ...

    async def acl_entries_for(self, identifiers: Sequence[str]) -> dict[str, dict[str, str]]:
        """Mailbox name → {identifier: rights} of the entries for any of
        ``identifiers`` (as stored: an account's name, "anyone", or either with a
        leading "-" for negative rights), for every selectable mailbox with one."""
        ...

    async def set_acl(self, mailbox_id: int, identifier: str, rights: str | None) -> None:
        """Set an entry's rights (a string of right letters; "" or None removes it).
        The identifier is kept as given (RFC 4314 §2: "anyone", "-name" included).
        Entries go with their mailbox (DELETE, including one that leaves a \\Noselect
        placeholder); RENAME keeps them."""
        ...

    # quota (RFC 9208; ARCHITECTURE.md decision 10)
    async def quota(self) -> QuotaUsage:
        """Usage now and the effective limits (the account's own, else the default),
        as GETQUOTA reports them."""
        ...

    async def delivery_state(self) -> DeliveryState:
        """Room and whether an active Sieve script filters the account's mail, in one
        round trip: what LMTP asks at each RCPT. The account's own limits may be as
        last read (when it was opened, or within the store's refresh time)."""
        ...

    async def recalculate_quota(self) -> tuple[QuotaUsage, QuotaUsage]:
        """Rebuild usage from the messages; (before, after). Nothing depends on it."""
        ...

    # Sieve scripts (RFC 5228, managed over RFC 5804). Names are compared exactly; at
    # most one script is active. Scripts count against no mail quota.
    async def list_scripts(self) -> list[SieveScript]: ...
    async def get_script(self, name: str) -> SieveScript:
        """NoSuchScript where absent."""
        ...

    async def active_script(self) -> SieveScript | None: ...
    async def put_script(self, name: str, source: str, compiled: str, version: int) -> None:
        """Create or replace ``name`` (keeping whether it is active), in one transaction."""
        ...

    async def update_compiled(self, name: str, source: str, compiled: str, version: int) -> None:
        """Replace the compiled form of ``name`` if its source is still ``source`` (it was
        recompiled after a format change); a script gone or changed meanwhile is left alone."""
        ...

    async def delete_script(self, name: str) -> None:
        """NoSuchScript where absent; ScriptActive for the active one (RFC 5804 §2.10)."""
        ...

    async def rename_script(self, old: str, new: str) -> None:
        """NoSuchScript, ScriptExists; an active script stays active (RFC 5804 §2.11.1)."""
        ...

    async def set_active_script(self, name: str | None) -> None:
        """Make ``name`` the only active script; None: none active. NoSuchScript."""
        ...

    # Sieve tracking: vacation responses (RFC 5230 §4.1) and duplicate ids (RFC 7352),
    # each a (kind, key) remembered until an expiry time (epoch seconds).
    async def sieve_tracked(self, kind: str, key: str, now: float) -> bool:
        """Whether (kind, key) was remembered and has not expired at ``now``."""
        ...

    async def sieve_track(self, kind: str, key: str, expires: float, now: float) -> None:
        """Remember (kind, key) until ``expires``; forgets entries expired at ``now``."""
        ...


class Store(CredentialStore, Protocol):
    """The whole store: accounts and their credentials (sign-in records, SCRAM keys,
    two-factor, app passwords: ``credentials.CredentialStore``)."""

    async def close(self) -> None: ...

    async def create_account(self, name: str, password_hash: str) -> None:
        """Create an account with INBOX and the special folders — by default Drafts,
        Sent, Trash, Junk and Archive (``values.DEFAULT_SPECIAL_FOLDERS``), or the names
        the backend was opened with (``[imap] special_use_names``) — each with its
        special-use attribute and subscribed. AccountExists if present."""
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

    async def quota_override(self, name: str) -> QuotaOverride:
        """The account's own quota limits; NoSuchAccount where absent."""
        ...

    async def set_quota_override(self, name: str, override: QuotaOverride) -> None:
        """Set the account's own limits (None: the default; 0: unlimited)."""
        ...

    async def add_alias(self, name: str, address: str) -> None:
        """Let the account send as ``address`` (submission); an address belongs to
        one account: CannotDoThat if any has it. NoSuchAccount where absent."""
        ...

    async def delete_alias(self, name: str, address: str) -> bool:
        """False when the account had no such alias."""
        ...

    async def list_aliases(self, name: str) -> list[str]:
        """The account's aliases as added, sorted."""
        ...

    async def claim_submission(self, name: str, when: float, window: float, limit: int) -> bool:
        """Count one message sent at ``when`` (epoch seconds) unless ``limit`` were
        counted in the ``window`` seconds before; atomic across every process using
        the store. ``limit`` 0: always counted."""
        ...

    async def release_submission(self, name: str, when: float) -> None:
        """Uncount the message counted at ``when`` (it was not sent after all)."""
        ...

    async def urlauth_key(self, name: str, mailbox: str, *, create: bool) -> bytes | None:
        """The secret that signs the account's URLAUTH URLs of ``mailbox`` (RFC 4467
        §7); made when absent and ``create``, else None. NoSuchAccount when creating
        for an absent account."""
        ...

    async def reset_urlauth_keys(self, name: str, mailbox: str | None) -> None:
        """Forget the secret of ``mailbox`` (None: of every mailbox): RESETKEY."""
        ...

    # shared folders (ACL, RFC 4314)
    async def add_sharer(self, owner: str, grantee: str) -> None:
        """Remember that ``owner`` granted ``grantee`` rights on some mailbox (kept
        until the grantee's account is deleted; a hint, the ACLs are the truth)."""
        ...

    async def sharers_of(self, grantee: str) -> list[str]:
        """The accounts that granted ``grantee`` something (``add_sharer``), by name."""
        ...
