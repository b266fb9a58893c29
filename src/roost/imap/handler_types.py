"""What the IMAP session, the command runner and the handlers share, and nothing else.

The session's states and what it awaits, the outcomes a handler can give (``Done``
for its tagged completion, ``CommandError`` — via ``no``/``bad`` — for a client's
mistake) and the mapping of store errors to RFC 5530 codes. It imports no handler and
no session, so every one of them can import it without an import cycle.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from roost.imap.wire.responses import Code, ResponseCode, Status
from roost.store.base import (
    AccountExists,
    CannotDoThat,
    MailboxExists,
    MailboxHasChildren,
    NoSuchMailbox,
    QuotaExceeded,
    StorageFull,
    StoreBusy,
    StoreError,
    TooManyMetadataEntries,
)


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class Awaiting(enum.Enum):
    """What the connection must do after the current command's responses."""

    NOTHING = enum.auto()
    SASL_RESPONSE = enum.auto()  # read one raw line, pass it to continue_sasl
    IDLE_DONE = enum.auto()  # idle until DONE; call idle_updates on change events
    TLS_HANDSHAKE = enum.auto()  # start TLS, drop buffered input, then tls_started()
    COMPRESSION = enum.auto()  # deflate both directions from the next byte (RFC 4978)


class CommandError(Exception):
    """A client's mistake: becomes a tagged NO or BAD with an optional code."""

    def __init__(self, status: Status, text: str, code: ResponseCode | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code


def no(text: str, code: str | ResponseCode | None = None) -> CommandError:
    return CommandError(Status.NO, text, Code(code) if isinstance(code, str) else code)


def bad(text: str, code: str | ResponseCode | None = None) -> CommandError:
    return CommandError(Status.BAD, text, Code(code) if isinstance(code, str) else code)


@dataclass(frozen=True, slots=True)
class Done:
    """Yielded last by a handler to set its tagged completion (default: OK)."""

    text: str
    code: ResponseCode | None = None
    status: Status = Status.OK


def store_error_response(error: StoreError) -> CommandError:
    """Map the store's errors to RFC 5530 response codes."""
    match error:
        case NoSuchMailbox():
            return no("No such mailbox", "NONEXISTENT")
        case MailboxExists():
            return no("Mailbox already exists", "ALREADYEXISTS")
        case MailboxHasChildren():
            return no("Mailbox has inferior names", "HASCHILDREN")
        case CannotDoThat():
            return no(str(error) or "Not possible", "CANNOT")
        case QuotaExceeded():
            return no("Quota exceeded", "OVERQUOTA")
        case StorageFull():
            return no("Server storage is full; nothing was changed", "LIMIT")
        case StoreBusy():
            return no("The mailbox is busy; nothing was changed, try again", "UNAVAILABLE")
        case TooManyMetadataEntries():
            return no("Too many metadata entries", Code("METADATA", "TOOMANY"))  # RFC 5464 §4.3
        case AccountExists():
            return no("Account exists", "ALREADYEXISTS")
        case _:
            return no(str(error) or "Store error", "SERVERBUG")
