"""RFC 5230 vacation: decide whether to reply, and with what.

The decision is the interpreter's (the rules are part of the RFC), the sending is the host's:
a ``Vacation`` action comes back only when every rule allows a reply — not to the null
sender or mailing-list robots (§4.6), not to lists, bulk or automatic mail (§5), not to the
user's own addresses, only when one of the user's addresses is a visible recipient (§4.5),
and once per sender and handle within the period (§4.1, RFC 6131 ``:seconds``).
"""

from __future__ import annotations

import hashlib

from roost.sieve.actions import SieveRuntimeError, Vacation
from roost.sieve.addresses import address_part
from roost.sieve.compiled import Node
from roost.sieve.state import Frame, State

_ROBOT_LOCALPARTS = ("mailer-daemon", "listserv", "majordomo", "postmaster")
_LIST_FIELDS = (
    "list-id",
    "list-help",
    "list-subscribe",
    "list-unsubscribe",
    "list-post",
    "list-owner",
    "list-archive",
)
_RECIPIENT_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")


def _normal(address: str) -> str:
    """An address for comparison: lower case, without a ``+detail`` (RFC 5233)."""
    address = address.strip().strip("<>").lower()
    user = address_part(address, "user") or ""
    domain = address_part(address, "domain") or ""
    return f"{user}@{domain}" if domain else user


def _is_robot(sender: str) -> bool:
    local = (address_part(sender.lower(), "localpart") or "").strip()
    return (
        local in _ROBOT_LOCALPARTS
        or local.startswith("owner-")
        or local.endswith("-request")
        or local.endswith("-owner")
    )


def _automatic(state: State) -> bool:
    """Whether the message is list, bulk or automatic mail (RFC 5230 §5, RFC 3834 §2)."""
    for value in state.raw_headers("auto-submitted"):
        if value.partition(";")[0].strip().lower() != "no":
            return True
    for value in state.raw_headers("precedence"):
        if value.strip().lower() in ("bulk", "list", "junk"):
            return True
    return any(state.raw_headers(name) for name in _LIST_FIELDS)


def decide(state: State, node: Node, frame: Frame) -> Vacation | None:
    """The reply this ``vacation`` command sends, or None when a rule forbids one."""
    tags = node.tags
    sender = state.envelope.mail_from
    if not sender or _is_robot(sender) or _automatic(state):
        return None
    extra = tags.get("addresses")
    own = {_normal(address) for address in state.host.own_addresses()}
    own.add(_normal(state.envelope.rcpt_to))
    if isinstance(extra, tuple):
        own.update(_normal(address) for address in state.expand_all(extra, frame))
    if _normal(sender) in own:
        return None
    recipients = {
        _normal(address)
        for name in _RECIPIENT_FIELDS
        for value in state.headers(name)
        for address in state.addresses(value)
    }
    if not recipients & own:
        return None
    reason = state.expand(str(node.args[0]), frame)
    subject_tag = tags.get("subject")
    from_tag = tags.get("from")
    subject = (
        state.expand(subject_tag, frame)
        if isinstance(subject_tag, str)
        else "Auto: " + (state.headers("subject") or [""])[0]
    )
    from_address = (
        state.expand(from_tag, frame) if isinstance(from_tag, str) else state.envelope.rcpt_to
    )
    mime = bool(tags.get("mime"))
    handle_tag = tags.get("handle")
    if isinstance(handle_tag, str):
        handle = state.expand(handle_tag, frame)
    else:
        # RFC 5230 §4.2: without :handle, replies differing in their text are different.
        parts = f"{reason}\0{subject_tag or ''}\0{from_tag or ''}\0{mime}"
        handle = hashlib.sha256(parts.encode()).hexdigest()[:32]
    period = _period(state, node)
    if state.host.vacation_responded(sender, handle):
        return None
    message_ids = state.raw_headers("message-id")
    message_id = message_ids[0] if message_ids else None
    old_references = state.raw_headers("references")
    references = old_references[0] if old_references else None
    if message_id:
        references = f"{references} {message_id}" if references else message_id
    return Vacation(
        recipient=sender,
        sender=sender,
        from_address=from_address,
        subject=subject,
        reason=reason,
        mime=mime,
        handle=handle,
        period_seconds=period,
        in_reply_to=message_id,
        references=references,
    )


def _period(state: State, node: Node) -> int:
    limits = state.limits
    days = node.tags.get("days")
    seconds = node.tags.get("seconds")
    if isinstance(days, int):
        period = days * 86400
    elif isinstance(seconds, int):
        period = seconds
    else:
        period = limits.default_vacation_seconds
    if period < 0:
        raise SieveRuntimeError("negative vacation period", node.line)
    # RFC 5230 §4.1 and RFC 6131 §2: the site bounds the period.
    return min(max(period, limits.min_vacation_seconds), limits.max_vacation_seconds)
