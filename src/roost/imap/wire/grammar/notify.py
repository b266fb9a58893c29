"""NOTIFY (RFC 5465 §8 formal syntax).

``NOTIFY NONE`` / ``NOTIFY SET [STATUS] (filter events) ...``. Event names are checked
here only for syntax; which events the server supports is the session's business
(RFC 5465 §6: unsupported ones get NO [BADEVENT]).
"""

from __future__ import annotations

from roost.imap.wire.commands import FetchAttribute, Notify, NotifyGroup
from roost.imap.wire.grammar.fetch import read_attribute
from roost.imap.wire.tokenizer import ParseError, Tokenizer

_SELECTED = frozenset({"SELECTED", "SELECTED-DELAYED"})
_PLAIN = frozenset({"INBOXES", "PERSONAL", "SUBSCRIBED"})
_WITH_MAILBOXES = frozenset({"SUBTREE", "MAILBOXES"})


def parse_notify(tokens: Tokenizer, tag: str) -> Notify:
    tokens.sp()
    word = tokens.read_keyword()
    if word == "NONE":
        tokens.end()
        return Notify(tag, None)
    if word != "SET":
        raise ParseError("NOTIFY needs SET or NONE")
    tokens.sp()
    status = False
    if tokens.peek() != 0x28:
        if tokens.read_keyword() != "STATUS":
            raise ParseError("Expected STATUS or an event group")
        status = True
        tokens.sp()
    groups = [_group(tokens)]
    while not tokens.at_end():
        tokens.sp()
        groups.append(_group(tokens))
    return Notify(tag, tuple(groups), status)


def _group(tokens: Tokenizer) -> NotifyGroup:
    tokens.open_list()
    name = tokens.read_keyword()
    mailboxes: tuple[bytes, ...] = ()
    if name in _WITH_MAILBOXES:
        tokens.sp()
        if tokens.peek() == 0x28:
            mailboxes = tuple(tokens.read_list(tokens.read_astring, allow_empty=False))
        else:
            mailboxes = (tokens.read_astring(),)
    elif name not in _SELECTED | _PLAIN:
        raise ParseError(f"Unknown NOTIFY filter {name}")
    tokens.sp()
    events: list[str] = []
    attributes: tuple[FetchAttribute, ...] = ()
    if tokens.peek() == 0x28:

        def read_event() -> None:
            nonlocal attributes
            event = tokens.read_keyword()
            if event == "MESSAGENEW" and tokens.peek() == 0x20 and tokens.peek_bytes(2) == b" (":
                tokens.sp()
                attributes = tuple(tokens.read_list(lambda: read_attribute(tokens)))
            events.append(event)

        tokens.read_list(read_event, allow_empty=False)
    elif tokens.read_keyword() != "NONE":
        raise ParseError("Expected an event list or NONE")
    tokens.close_list()
    return NotifyGroup(name, tuple(events), mailboxes, attributes)
