"""FETCH and UID FETCH (RFC 9051 §6.4.5), with BINARY (RFC 3516) and the CONDSTORE /
QRESYNC modifiers (RFC 7162 §3.1.4, §3.2.6)."""

from __future__ import annotations

import re

from roost.imap.wire.commands import (
    BinarySize,
    BodySection,
    Fetch,
    FetchAttribute,
    FetchItem,
    Preview,
    Section,
)
from roost.imap.wire.grammar.search import read_partial_range
from roost.imap.wire.sequence import SequenceSet
from roost.imap.wire.tokenizer import MAX_NUMBER, MAX_NUMBER64, ParseError, Tokenizer, parse_number

SIMPLE_ITEMS = {item.value: item for item in FetchItem}
_FAST = (FetchItem.FLAGS, FetchItem.INTERNALDATE, FetchItem.RFC822_SIZE)
MACROS: dict[str, tuple[FetchAttribute, ...]] = {
    "FAST": _FAST,
    "ALL": (*_FAST, FetchItem.ENVELOPE),
    "FULL": (*_FAST, FetchItem.ENVELOPE, FetchItem.BODY),
}
SECTION_TEXTS = frozenset({"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"})
_NAME = re.compile(rb"[A-Za-z0-9.]+")  # attribute names and section-spec words
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 §3.6.8 ftext


# What follows the sequence set, parsed: attributes, CHANGEDSINCE, VANISHED, PARTIAL.
_Tail = tuple[tuple[FetchAttribute, ...], int | None, bool, tuple[int, int] | None]
# Tails already parsed, by their bytes, UID-ness and nesting limit: mbsync sends
# thousands of "UID FETCH n (BODY.PEEK[])", whose tails are all the same. Bounded;
# emptied when full. Only tails that parsed are kept: errors are raised afresh.
_TAILS: dict[tuple[bytes, bool, int], _Tail] = {}
_TAILS_MAX = 256


# "tag UID FETCH n " (mbsync's shape), as the tokenizer reads it: a tag of astring-chars
# but "+", the names in any case, one number without a leading zero (RFC 9051 §9).
_ONE_UID_FETCH = re.compile(
    rb'([^\x00-\x20\x7f-\xff(){%*"\\+]+) [Uu][Ii][Dd] [Ff][Ee][Tt][Cc][Hh] ([1-9][0-9]{0,9}) '
)


def parse_one_uid_fetch(line: bytes, max_depth: int) -> Fetch | None:
    """``tag UID FETCH n`` and a tail parsed before, straight from the line: what
    ``parse_command`` makes of it through the tokenizer, or None to let it (mbsync
    sends one such command per message, and walking the tokenizer through each was a
    fifth of the server's work in its sync)."""
    match = _ONE_UID_FETCH.match(line)
    if match is None:
        return None
    tail = _TAILS.get((line[match.end() :], True, max_depth))
    number = int(match.group(2))
    if tail is None or number > MAX_NUMBER:
        return None  # the tokenizer parses the tail (and keeps it) or reports the error
    attributes, changedsince, vanished, partial = tail
    return Fetch(
        match.group(1).decode("ascii"),
        SequenceSet(((number, number),)),
        attributes,
        uid=True,
        changedsince=changedsince,
        vanished=vanished,
        partial=partial,
    )


def parse_fetch(tokens: Tokenizer, tag: str, *, uid: bool = False) -> Fetch:
    """``FETCH SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    "(" fetch-att *(SP fetch-att) ")") [SP "(" fetch-modifier *(SP fetch-modifier) ")"]``.
    Macros are valid only on their own, never inside the list."""
    tokens.sp()
    sequence = tokens.read_sequence_set()
    tokens.sp()
    rest = tokens.rest()
    key = (b"" if rest is None else rest, uid, tokens.max_depth)
    tail = None if rest is None else _TAILS.get(key)
    if tail is None:
        tail = _parse_tail(tokens, uid)
        if rest is not None:
            if len(_TAILS) >= _TAILS_MAX:
                _TAILS.clear()
            _TAILS[key] = tail
    else:
        tokens.skip_rest()
    attributes, changedsince, vanished, partial = tail
    return Fetch(
        tag,
        sequence,
        attributes,
        uid=uid,
        changedsince=changedsince,
        vanished=vanished,
        partial=partial,
    )


def _parse_tail(tokens: Tokenizer, uid: bool) -> _Tail:
    """The attributes and modifiers, to the end of the command."""
    if tokens.peek() == 0x28:
        attributes = tuple(tokens.read_list(lambda: read_attribute(tokens), allow_empty=False))
    else:
        name = _read_name(tokens)
        attributes = MACROS.get(name) or (read_attribute(tokens, name),)
    changedsince: int | None = None
    vanished = False
    partial: tuple[int, int] | None = None

    def read_modifier() -> None:
        nonlocal changedsince, vanished, partial
        modifier = tokens.read_keyword()
        if modifier == "CHANGEDSINCE" and changedsince is None:
            tokens.sp()
            # RFC 7162 says mod-sequence-value (>= 1); 0 ("everything") is harmless.
            changedsince = tokens.read_number(MAX_NUMBER64)
        elif modifier == "VANISHED" and not vanished:
            vanished = True
        elif modifier == "PARTIAL" and partial is None:
            tokens.sp()
            partial = read_partial_range(tokens)  # RFC 9394 §3.2
        else:
            raise ParseError("Unsupported FETCH modifier")

    if not tokens.at_end():
        tokens.sp()
        tokens.read_list(read_modifier, allow_empty=False)
    tokens.end()
    # RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
    if vanished and (not uid or changedsince is None):
        raise ParseError("VANISHED needs UID FETCH and CHANGEDSINCE")
    return attributes, changedsince, vanished, partial


def _read_name(tokens: Tokenizer) -> str:
    return tokens.read_word(_NAME, "FETCH attribute").decode("ascii").upper()


def read_attribute(tokens: Tokenizer, name: str | None = None) -> FetchAttribute:
    if name is None:
        name = _read_name(tokens)
    if name in ("BODY", "BODY.PEEK") and tokens.peek() == 0x5B:  # "["
        section = read_section(tokens)
        partial = tokens.read_partial() if tokens.peek() == 0x3C else None
        return BodySection(section, peek=name == "BODY.PEEK", partial=partial)
    if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        # RFC 3516 §4.2: section-binary = "[" [section-part] "]"
        tokens.expect(b"[", '"["')
        part: tuple[int, ...] = ()
        if not tokens.accept(b"]"):
            part = tuple(_part_number(n) for n in tokens.read_word(_NAME, "part").split(b"."))
            tokens.expect(b"]", '"]"')
        if name == "BINARY.SIZE":
            return BinarySize(part)
        partial = tokens.read_partial() if tokens.peek() == 0x3C else None
        return BodySection(Section(part), peek=name == "BINARY.PEEK", partial=partial, binary=True)
    if name == "PREVIEW":
        return _read_preview(tokens)
    item = SIMPLE_ITEMS.get(name)
    if item is None:
        raise ParseError("Unknown FETCH attribute")
    return item


def _read_preview(tokens: Tokenizer) -> Preview:
    """RFC 8970 §6: ``"PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"]``,
    ``preview-mod = "LAZY"``. A list after PREVIEW that does not start with LAZY is
    left alone: it is the FETCH modifiers of ``FETCH 1 PREVIEW (CHANGEDSINCE 5)``."""
    if tokens.peek_bytes(6).upper() != b" (LAZY":
        return Preview()
    tokens.sp()

    def read_modifier() -> None:
        if tokens.read_keyword() != "LAZY":
            raise ParseError("Unknown PREVIEW modifier")

    tokens.read_list(read_modifier, allow_empty=False)
    return Preview(lazy=True)


def read_section(tokens: Tokenizer) -> Section:
    """``"[" [section-msgtext / section-part ["." section-text]] "]"`` (RFC 9051 §9).

    MIME exists only for a part (``1.MIME``): a message's own header is HEADER."""
    tokens.expect(b"[", '"["')
    if tokens.accept(b"]"):
        return Section()
    words = tokens.read_word(_NAME, "section").upper().split(b".")
    count = 0
    while count < len(words) and words[count][:1].isdigit():
        count += 1
    part = tuple(_part_number(word) for word in words[:count])
    text: str | None = None
    if count < len(words):
        text = b".".join(words[count:]).decode("ascii")
        if text not in SECTION_TEXTS or (text == "MIME" and not part):
            raise ParseError("Invalid section")
    fields: tuple[str, ...] = ()
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        tokens.sp()
        fields = tuple(tokens.read_list(lambda: _read_header_name(tokens), allow_empty=False))
    tokens.expect(b"]", '"]"')
    return Section(part, text, fields)


def _part_number(digits: bytes) -> int:
    """``nz-number``: no zero, no leading zero (RFC 9051 §9)."""
    if not digits.isdigit() or digits.startswith(b"0"):
        raise ParseError("Invalid part number")
    return parse_number(digits, MAX_NUMBER)


def _read_header_name(tokens: Tokenizer) -> str:
    name = tokens.read_astring()
    if _FIELD_NAME.fullmatch(name) is None:
        raise ParseError("Invalid header field name")
    return name.decode("ascii")
