"""Mailbox commands: SELECT/EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
LIST, LSUB, NAMESPACE, STATUS (RFC 9051 §6.3).

Mailbox names stay raw bytes (astring): whether they are modified UTF-7 or UTF-8, and
that INBOX is case-insensitive, is decided by the session.
"""

from __future__ import annotations

from roost.imap.wire.commands import (
    Create,
    Delete,
    List,
    Lsub,
    Namespace,
    Rename,
    Select,
    Status,
    Subscribe,
    Unsubscribe,
)
from roost.imap.wire.tokenizer import Atom, ParseError, Tokenizer

STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "RECENT",  # RFC 3501 only; IMAP4rev1 clients still ask
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",  # RFC 9051
        "SIZE",  # RFC 8438
        "HIGHESTMODSEQ",  # RFC 7162 §3.1.6
        "APPENDLIMIT",  # RFC 7889
        "MAILBOXID",  # RFC 8474
    }
)
LIST_SELECTION = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})


def _mailbox_only(tokens: Tokenizer) -> bytes:
    tokens.sp()
    mailbox = tokens.read_astring()
    tokens.end()
    return mailbox


def parse_select(tokens: Tokenizer, tag: str) -> Select:
    return _select(tokens, tag, readonly=False)


def parse_examine(tokens: Tokenizer, tag: str) -> Select:
    return _select(tokens, tag, readonly=True)


def _select(tokens: Tokenizer, tag: str, *, readonly: bool) -> Select:
    """``SELECT SP mailbox [SP "(" select-param *(SP select-param) ")"]`` (RFC 4466
    §2.2). Parameters are read generically, then only CONDSTORE (RFC 7162 §3.1.8) is
    accepted: an unknown parameter must be rejected, not ignored."""
    tokens.sp()
    mailbox = tokens.read_astring()
    condstore = False
    if not tokens.at_end():
        tokens.sp()
        for param in tokens.read_list(tokens.read_value, allow_empty=False):
            if not (isinstance(param, Atom) and param.value.upper() == b"CONDSTORE"):
                raise ParseError("Unsupported SELECT parameter")
            condstore = True
    tokens.end()
    return Select(tag, mailbox, readonly=readonly, condstore=condstore)


def parse_create(tokens: Tokenizer, tag: str) -> Create:
    """``CREATE SP mailbox [SP "(" "USE" SP "(" [use-attr *(SP use-attr)] ")" ")"]``
    (RFC 4466 create-params, RFC 6154 §6 USE)."""
    tokens.sp()
    mailbox = tokens.read_astring()
    special_use: list[str] = []

    def read_param() -> None:
        if tokens.read_keyword() != "USE":
            raise ParseError("Unsupported CREATE parameter")
        tokens.sp()
        special_use.extend(tokens.read_list(read_use_attr))

    def read_use_attr() -> str:
        if tokens.peek() != 0x5C:  # "\"
            raise ParseError("Expected special-use attribute")
        return tokens.read_flag()

    if not tokens.at_end():
        tokens.sp()
        tokens.read_list(read_param, allow_empty=False)
    tokens.end()
    return Create(tag, mailbox, tuple(special_use))


def parse_delete(tokens: Tokenizer, tag: str) -> Delete:
    return Delete(tag, _mailbox_only(tokens))


def parse_subscribe(tokens: Tokenizer, tag: str) -> Subscribe:
    return Subscribe(tag, _mailbox_only(tokens))


def parse_unsubscribe(tokens: Tokenizer, tag: str) -> Unsubscribe:
    return Unsubscribe(tag, _mailbox_only(tokens))


def parse_rename(tokens: Tokenizer, tag: str) -> Rename:
    tokens.sp()
    old = tokens.read_astring()
    tokens.sp()
    new = tokens.read_astring()
    tokens.end()
    return Rename(tag, old, new)


def parse_namespace(tokens: Tokenizer, tag: str) -> Namespace:
    tokens.end()
    return Namespace(tag)


def parse_list(tokens: Tokenizer, tag: str) -> List:
    """``LIST [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]``
    (RFC 9051 §9, from RFC 5258 §6; SPECIAL-USE from RFC 6154; STATUS from RFC 5819).
    Any of the three extended parts, even an empty ``()``, makes it LIST-EXTENDED."""
    extended = False
    selection: list[str] = []
    tokens.sp()
    if tokens.peek() == 0x28:
        extended = True
        selection = tokens.read_list(tokens.read_keyword)
        if not LIST_SELECTION.issuperset(selection):
            raise ParseError("Unknown LIST selection option")
        # RFC 5258 §3.1: RECURSIVEMATCH alone (or with REMOTE only) is a BAD.
        if "RECURSIVEMATCH" in selection and not {"SUBSCRIBED", "SPECIAL-USE"} & set(selection):
            raise ParseError("RECURSIVEMATCH needs another selection option")
        tokens.sp()
    reference = tokens.read_astring()
    tokens.sp()
    if tokens.peek() == 0x28:
        extended = True
        patterns = tokens.read_list(tokens.read_list_mailbox, allow_empty=False)
    else:
        patterns = [tokens.read_list_mailbox()]
    return_options: list[str] = []
    status_items: tuple[str, ...] = ()
    if not tokens.at_end():
        tokens.sp()
        if tokens.read_keyword() != "RETURN":
            raise ParseError("Expected RETURN")
        tokens.sp()
        extended = True

        def read_return_option() -> str:
            nonlocal status_items
            option = tokens.read_keyword()
            if option not in LIST_RETURN:
                raise ParseError("Unknown LIST return option")
            if option == "STATUS":
                tokens.sp()
                status_items = read_status_items(tokens)
            return option

        return_options = tokens.read_list(read_return_option)
    tokens.end()
    return List(
        tag,
        reference,
        tuple(patterns),
        selection=tuple(selection),
        return_options=tuple(return_options),
        status_items=status_items,
        extended=extended,
    )


def parse_lsub(tokens: Tokenizer, tag: str) -> Lsub:
    tokens.sp()
    reference = tokens.read_astring()
    tokens.sp()
    pattern = tokens.read_list_mailbox()
    tokens.end()
    return Lsub(tag, reference, pattern)


def parse_status(tokens: Tokenizer, tag: str) -> Status:
    tokens.sp()
    mailbox = tokens.read_astring()
    tokens.sp()
    items = read_status_items(tokens)
    tokens.end()
    return Status(tag, mailbox, items)


def read_status_items(tokens: Tokenizer) -> tuple[str, ...]:
    """``"(" status-att *(SP status-att) ")"``, upper-cased; unknown items are BAD."""
    items = tokens.read_list(tokens.read_keyword, allow_empty=False)
    if not STATUS_ITEMS.issuperset(items):
        raise ParseError("Unknown STATUS item")
    return tuple(items)
