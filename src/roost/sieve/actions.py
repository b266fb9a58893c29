"""Actions a script asks for, and the result that collects them as the script runs.

Nothing is carried out while the script runs (Pigeonhole's sieve-result.c): each action is
checked against those already collected — a duplicate is folded, a conflict is an error —
and the host performs the final list only after the script ended without error.  A run
that fails yields a result with ``status == "error"`` and a lone implicit ``Keep``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal


class SieveRuntimeError(Exception):
    """A failure while running a script; the host keeps the mail in INBOX and logs why."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class Keep:
    flags: tuple[str, ...] = ()
    implicit: bool = False


@dataclass(frozen=True, slots=True)
class FileInto:
    mailbox: str
    flags: tuple[str, ...] = ()
    copy: bool = False
    create: bool = False


@dataclass(frozen=True, slots=True)
class Redirect:
    address: str
    copy: bool = False


@dataclass(frozen=True, slots=True)
class Reject:
    """``reject`` (an MDN-style refusal) or ``ereject`` (refused at the SMTP/LMTP level)."""

    reason: str
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Discard:
    pass


@dataclass(frozen=True, slots=True)
class Vacation:
    """A reply to send (RFC 5230 §5), already decided; the host sends it through the relay.

    The host builds the message: ``From: from_address``, ``To: recipient``, the subject,
    ``In-Reply-To``/``References`` as given, ``Auto-Submitted: auto-replied`` (RFC 3834),
    ``reason`` as a text/plain body (or as the MIME entity itself when ``mime``), sent
    with the null reverse-path ``MAIL FROM:<>`` (RFC 5230 §5.1).  After sending it records
    (``sender``, ``handle``) for ``period_seconds`` so ``vacation_responded`` says yes.
    """

    recipient: str
    sender: str
    from_address: str
    subject: str
    reason: str
    mime: bool
    handle: str
    period_seconds: int
    in_reply_to: str | None
    references: str | None


@dataclass(frozen=True, slots=True)
class TrackDuplicate:
    """RFC 7352: after a successful delivery, remember ``duplicate_id`` for ``seconds``."""

    duplicate_id: str
    seconds: int


Action = Keep | FileInto | Redirect | Reject | Discard | Vacation | TrackDuplicate


@dataclass(frozen=True, slots=True)
class AddHeader:
    name: str
    value: str
    last: bool = False


@dataclass(frozen=True, slots=True)
class DeleteHeader:
    """Delete the ``occurrence``-th (0-based, at that point of the edits) field ``name``."""

    name: str
    occurrence: int


HeaderEdit = AddHeader | DeleteHeader


@dataclass(slots=True)
class Result:
    status: Literal["ok", "error"] = "ok"
    actions: list[Action] = field(default_factory=list)
    header_edits: list[HeaderEdit] = field(default_factory=list)
    error: str | None = None
    implicit_keep: bool = True
    warnings: list[str] = field(default_factory=list)

    @property
    def kept(self) -> bool:
        return any(isinstance(action, Keep) for action in self.actions)


_DELIVERING = (Keep, FileInto, Redirect)


class ResultBuilder:
    """Collects actions, folding duplicates and refusing conflicts as each is added."""

    def __init__(self, max_actions: int, max_redirects: int) -> None:
        self.actions: list[Action] = []
        self.implicit_keep = True
        self.max_actions = max_actions
        self.max_redirects = max_redirects
        self.redirects = 0

    def add(self, action: Action, line: int) -> None:
        if isinstance(action, TrackDuplicate):
            if action not in self.actions:
                self.actions.append(action)
            return
        rejected = any(isinstance(other, Reject) for other in self.actions)
        if isinstance(action, Reject):
            # RFC 5429 §2.1/§2.2: reject conflicts with delivering actions and with vacation.
            for other in self.actions:
                if isinstance(other, Reject | Vacation | Keep | FileInto | Redirect):
                    raise SieveRuntimeError(
                        f"reject conflicts with an earlier {_name(other)}", line
                    )
        elif rejected and isinstance(action, (*_DELIVERING, Vacation)):
            raise SieveRuntimeError(f"{_name(action)} conflicts with an earlier reject", line)
        if isinstance(action, Vacation) and any(isinstance(a, Vacation) for a in self.actions):
            raise SieveRuntimeError("only one vacation action per message (RFC 5230 §4.7)", line)
        if isinstance(action, Keep | FileInto):
            mailbox = "INBOX" if isinstance(action, Keep) else action.mailbox
            for index, other in enumerate(self.actions):
                if isinstance(other, Keep | FileInto) and _same_mailbox(other, mailbox):
                    # Filed twice into one mailbox: one copy, with the flags of the later one.
                    self.actions[index] = _merge(other, action)
                    self._cancel_keep(action)
                    return
        if isinstance(action, Redirect):
            for index, other in enumerate(self.actions):
                if isinstance(other, Redirect) and other.address.lower() == action.address.lower():
                    if other.copy and not action.copy:
                        self.actions[index] = action
                    self._cancel_keep(action)
                    return
            self.redirects += 1
            if self.redirects > self.max_redirects:
                raise SieveRuntimeError(f"more than {self.max_redirects} redirects", line)
        if isinstance(action, Discard) and any(isinstance(a, Discard) for a in self.actions):
            self.implicit_keep = False
            return
        if len(self.actions) >= self.max_actions:
            raise SieveRuntimeError(f"more than {self.max_actions} actions", line)
        self.actions.append(action)
        self._cancel_keep(action)

    def _cancel_keep(self, action: Action) -> None:
        # RFC 5228 §2.10.2: fileinto, redirect, discard, reject and keep cancel implicit keep;
        # RFC 3894 §3: ":copy" does not.
        if isinstance(action, FileInto | Redirect) and action.copy:
            return
        if isinstance(action, Keep | FileInto | Redirect | Discard | Reject):
            self.implicit_keep = False


def _name(action: Action) -> str:
    return type(action).__name__.lower()


def _same_mailbox(action: Keep | FileInto, mailbox: str) -> bool:
    other = "INBOX" if isinstance(action, Keep) else action.mailbox
    if other.upper() == "INBOX" and mailbox.upper() == "INBOX":
        return True
    return other == mailbox


def _merge(earlier: Keep | FileInto, later: Keep | FileInto) -> Keep | FileInto:
    flags = later.flags or earlier.flags
    if isinstance(earlier, Keep):
        return replace(earlier, flags=flags)
    copy = earlier.copy and (isinstance(later, FileInto) and later.copy)
    create = earlier.create or (isinstance(later, FileInto) and later.create)
    return replace(earlier, flags=flags, copy=copy, create=create)
