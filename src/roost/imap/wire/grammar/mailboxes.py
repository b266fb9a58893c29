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
    QresyncParams,
    Rename,
    Select,
    Status,
    Subscribe,
    Unsubscribe,
)
from roost.imap.wire.grammar.metadata import read_entry
from roost.imap.wire.sequence import SequenceSet
from roost.imap.wire.tokenizer import (
    MAX_NUMBER,
    MAX_NUMBER64,
    Atom,
    ParseError,
    Tokenizer,
    Value,
    parse_number,
)

STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "RECENT",  # RFC 3501 only; IMAP4rev1 clients still ask
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",  # RFC 9051
        "SIZE",  # RFC 8438
        "DELETED-STORAGE",  # RFC 9208 §4.2.2
        "HIGHESTMODSEQ",  # RFC 7162 §3.1.6
        "APPENDLIMIT",  # RFC 7889
        "MAILBOXID",  # RFC 8474
    }
)
LIST_SELECTION = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_RETURN = frozenset(
    {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS", "METADATA", "MYRIGHTS"}  # RFC 8440
)


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
    §2.2). Parameters are read generically, then CONDSTORE (RFC 7162 §3.1.8) and
    QRESYNC (RFC 7162 §3.2.5) are interpreted: an unknown parameter must be rejected,
    not ignored."""
    tokens.sp()
    mailbox = tokens.read_astring()
    condstore = False
    qresync: QresyncParams | None = None
    if not tokens.at_end():
        tokens.sp()
        params = tokens.read_list(tokens.read_value, allow_empty=False)
        index = 0
        while index < len(params):
            param = params[index]
            name = param.value.upper() if isinstance(param, Atom) else b""
            if name == b"CONDSTORE":
                condstore = True
            elif name == b"QRESYNC" and index + 1 < len(params) and qresync is None:
                index += 1
                qresync = _qresync(params[index])
            else:
                raise ParseError("Unsupported SELECT parameter")
            index += 1
    tokens.end()
    return Select(tag, mailbox, readonly=readonly, condstore=condstore, qresync=qresync)


def _qresync(value: Value) -> QresyncParams:
    """``"(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"``."""
    if not isinstance(value, tuple) or not 2 <= len(value) <= 4:
        raise ParseError("Invalid QRESYNC parameter")
    uidvalidity = _number(value[0], MAX_NUMBER, nonzero=True)
    modseq = _number(value[1], MAX_NUMBER64, nonzero=False)
    rest = list(value[2:])
    known_uids = None
    if rest and isinstance(rest[0], Atom):
        known_uids = _sequence(rest.pop(0))
    known_sequence = known_sequence_uids = None
    if rest:
        match = rest.pop(0)
        if rest or not isinstance(match, tuple) or len(match) != 2:
            raise ParseError("Invalid QRESYNC sequence match data")
        known_sequence, known_sequence_uids = _sequence(match[0]), _sequence(match[1])
    return QresyncParams(uidvalidity, modseq, known_uids, known_sequence, known_sequence_uids)


def _number(value: Value, limit: int, *, nonzero: bool) -> int:
    if not isinstance(value, Atom) or not value.value.isdigit():
        raise ParseError("Number expected")
    number = parse_number(value.value, limit)
    if nonzero and number == 0:
        raise ParseError("Number must not be zero")
    return number


def _sequence(value: Value) -> SequenceSet:
    if not isinstance(value, Atom):
        raise ParseError("Sequence set expected")
    tokens = Tokenizer([value.value])
    sequence = tokens.read_sequence_set()
    tokens.end()
    if sequence.is_saved or sequence.uses_star():
        raise ParseError("Invalid sequence set in QRESYNC")
    return sequence


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
    metadata_entries: tuple[str, ...] = ()
    if not tokens.at_end():
        tokens.sp()
        if tokens.read_keyword() != "RETURN":
            raise ParseError("Expected RETURN")
        tokens.sp()
        extended = True

        def read_return_option() -> str:
            nonlocal status_items, metadata_entries
            option = tokens.read_keyword()
            if option not in LIST_RETURN:
                raise ParseError("Unknown LIST return option")
            if option == "STATUS":
                tokens.sp()
                status_items = read_status_items(tokens)
            elif option == "METADATA":  # RFC 9590 §3: METADATA (entry ...)
                tokens.sp()
                metadata_entries = tuple(
                    tokens.read_list(lambda: read_entry(tokens), allow_empty=False)
                )
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
        metadata_entries=metadata_entries,
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
