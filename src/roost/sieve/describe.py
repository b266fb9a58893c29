"""Actions in words, for people debugging their rules (``roost sieve test``)."""

from __future__ import annotations

from roost.sieve.actions import (
    Action,
    AddHeader,
    DeleteHeader,
    Discard,
    FileInto,
    Keep,
    Redirect,
    Reject,
    Result,
    TrackDuplicate,
    Vacation,
)


def _flags(flags: tuple[str, ...]) -> str:
    return f" with flags {' '.join(flags)}" if flags else ""


def describe_action(action: Action) -> str:
    match action:
        case Keep(flags=flags, implicit=implicit):
            return ("keep (implicit) in INBOX" if implicit else "keep in INBOX") + _flags(flags)
        case FileInto(mailbox=mailbox, flags=flags, copy=copy, create=create):
            extras = (" (copy)" if copy else "") + (" (create if missing)" if create else "")
            return f"file into {mailbox!r}{extras}{_flags(flags)}"
        case Redirect(address=address, copy=copy):
            return f"redirect to <{address}>" + (" (copy)" if copy else "")
        case Reject(reason=reason, extended=extended):
            kind = "ereject" if extended else "reject"
            return f"{kind}: {reason.strip()!r}"
        case Discard():
            return "discard"
        case Vacation():
            days = action.period_seconds / 86400
            return (
                f"send vacation reply to <{action.recipient}> from {action.from_address!r}, "
                f"subject {action.subject!r} (not again for {days:g} days)"
            )
        case TrackDuplicate(duplicate_id=identifier, seconds=seconds):
            return f"remember duplicate id {identifier[:12]}… for {seconds} s"
    raise AssertionError(action)


def describe(result: Result) -> str:
    """One line per action, then the header edits, warnings and any error."""
    lines: list[str] = []
    if result.status == "error":
        lines.append(f"error: {result.error} (mail kept in INBOX)")
    for action in result.actions:
        lines.append(describe_action(action))
    for edit in result.header_edits:
        if isinstance(edit, AddHeader):
            where = "at the end" if edit.last else "at the top"
            lines.append(f"add header {edit.name}: {edit.value} {where}")
        elif isinstance(edit, DeleteHeader):
            lines.append(f"delete header {edit.name} (occurrence {edit.occurrence + 1})")
    for warning in result.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)
