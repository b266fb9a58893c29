"""``analyze``: everything the store keeps about a message besides its bytes, computed
once at delivery (ARCHITECTURE.md, decision 1): the MIME model for FETCH and the decoded
text and keys for SEARCH, SORT and THREAD.

- Addresses (From, To, Cc, Bcc) are parsed as for ENVELOPE (RFC 5322 §3.4) and given as
  text ``Name <mailbox@host>``, names decoded (RFC 2047), one per line; a group gives
  its display name on a line of its own (``undisclosed-recipients``), so SEARCH TO
  finds it, and keeps its members.
- SORT keys (RFC 5256 §3, RFC 5957): the base subject (RFC 5256 §2.1); the addr-mailbox
  of the first address as ENVELOPE lists it, lower-cased — for a group, that is the
  group's name (ENVELOPE's ``(NIL NIL "name" NIL)``); for DISPLAYFROM/DISPLAYTO the
  decoded display name of that first address (a group's: its name), or its address
  when it has none. No such field, or an empty one: the empty string, which sorts
  first. Dovecot 2.3 sorts groups the same way.
- ``sent_date`` is the Date field (RFC 5322 §3.3), None when absent or unparsable; a date
  without a zone is taken as UTC.
- Message-ID, In-Reply-To and References keep the ``<...>`` identifiers only (RFC 5256
  §5 REFERENCES uses them).

What it keeps is bounded by roost.mime.limits, not by the message: header fields are
cut when read (parse.py), ENVELOPE strings when rendered, the texts for SEARCH by their
caps, and a message file is read through its mapping, never copied whole.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from roost.mime.analysis import Analysis
from roost.mime.decode import decode_words, to_text
from roost.mime.envelope import Address, collect
from roost.mime.limits import MAX_SORT_SUBJECT, MessageBytes
from roost.mime.model import MessageModel
from roost.mime.parse import DEFAULT_LIMITS, Field, MimeLimits, parse_message
from roost.mime.preview import preview_text
from roost.mime.subject import base_subject
from roost.mime.text import body_text, header_text

__all__ = ["analyze"]

_MESSAGE_ID = re.compile(rb"<[^<>\s]*>")


def _last(fields: list[Field], name: bytes) -> bytes | None:
    value = None
    for item in fields:
        if item.name.lower() == name:
            value = item.value
    return value


def _is_group(address: Address) -> bool:
    """A group start marker: only ``mailbox``, the group's display name."""
    return address.domain is None and address.mailbox is not None


def _address_text(address: Address) -> str:
    if _is_group(address):
        return decode_words(address.mailbox or b"")
    mailbox = to_text(address.mailbox or b"", None)
    domain = to_text(address.domain or b"", None)
    spec = f"{mailbox}@{domain}" if domain else mailbox
    if address.name:
        return f"{decode_words(address.name)} <{spec}>"
    return spec


def _addresses_text(addresses: list[Address]) -> str:
    return "\n".join(_address_text(a) for a in addresses if a.mailbox is not None)


def _sort_mailbox(addresses: list[Address]) -> str:
    """RFC 5256 §3: the addr-mailbox of the first address (a group's name)."""
    if not addresses or addresses[0].mailbox is None:
        return ""
    return to_text(addresses[0].mailbox, None).lower()


def _display(addresses: list[Address]) -> str:
    """RFC 5957 §2: the display name of the first address, else its address."""
    if not addresses or addresses[0].mailbox is None:
        return ""
    first = addresses[0]
    if _is_group(first):
        return " ".join(decode_words(first.mailbox or b"").split())
    if first.name:
        name = " ".join(decode_words(first.name).split())
        if name:
            return name
    mailbox = to_text(first.mailbox or b"", None)
    domain = to_text(first.domain or b"", None)
    return f"{mailbox}@{domain}" if domain else mailbox


def _date(value: bytes | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _ids(value: bytes | None) -> list[str]:
    if value is None:
        return []
    return [m.decode("latin-1") for m in _MESSAGE_ID.findall(value)]


def analyze(data: MessageBytes | memoryview, limits: MimeLimits = DEFAULT_LIMITS) -> Analysis:
    """Parses the message once; never fails on malformed input. ``data`` may be a
    read-only ``mmap`` of the message file, which is read where needed, not copied."""
    message = bytes(data) if isinstance(data, memoryview) else data
    root = parse_message(message, limits)
    fields = root.fields
    # Address fields parsed once, for ENVELOPE and here: every occurrence, in order.
    parsed = collect(fields)
    model = MessageModel(MessageModel._pack(message, root, parsed))
    subject_raw = _last(fields, b"subject")
    subject = " ".join(decode_words(subject_raw).split()) if subject_raw is not None else ""
    from_ = parsed.from_ or []
    to = parsed.to or []
    cc = parsed.cc or []
    bcc = parsed.bcc or []
    message_ids = _ids(_last(fields, b"message-id"))
    in_reply_to = _ids(_last(fields, b"in-reply-to"))
    return Analysis(
        model=model.to_blob(),
        header_text=header_text(fields),
        body_text=body_text(message, root),
        subject=subject,
        from_addresses=_addresses_text(from_),
        to_addresses=_addresses_text(to),
        cc_addresses=_addresses_text(cc),
        bcc_addresses=_addresses_text(bcc),
        sent_date=_date(_last(fields, b"date")),
        message_id=message_ids[0] if message_ids else "",
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=tuple(_ids(_last(fields, b"references"))),
        sort_subject=base_subject(subject[:MAX_SORT_SUBJECT]),
        sort_from=_sort_mailbox(from_),
        sort_to=_sort_mailbox(to),
        sort_cc=_sort_mailbox(cc),
        display_from=_display(from_),
        display_to=_display(to),
        preview=preview_text(message, root),
    )
