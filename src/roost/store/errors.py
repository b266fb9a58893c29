"""The errors the store raises on purpose; the protocols map each to a response code."""

from __future__ import annotations


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


class StoreBusy(StoreError):
    """Another process held the account's write lock past the busy timeout (it may be
    stopped, or stuck): nothing was changed; the client may try again."""


class TooManyMetadataEntries(StoreError):
    """SETMETADATA would leave a mailbox (or the server) with more entries than allowed
    (RFC 5464 §4.3, [METADATA TOOMANY]): nothing was changed."""


class NoSuchScript(StoreError):
    """No Sieve script of that name in the account (RFC 5804 ``NO (NONEXISTENT)``)."""


class ScriptExists(StoreError):
    """RENAMESCRIPT onto a name already taken (RFC 5804 ``NO (ALREADYEXISTS)``)."""


class ScriptActive(StoreError):
    """DELETESCRIPT of the active script (RFC 5804 §2.10: ``NO (ACTIVE)``)."""
