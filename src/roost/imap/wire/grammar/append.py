"""APPEND, with MULTIAPPEND (RFC 3502), literal8 messages (RFC 3516 §4.4) and
CATENATE (RFC 4469), whose parenthesised list carries literals of its own."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from roost.imap.wire.commands import (
    Append,
    AppendMessage,
    Catenate,
    CatText,
    CatUrl,
    Replace,
)
from roost.imap.wire.tokenizer import ParseError, Tokenizer

MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
# RFC 9051 §9 date-time: DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP
# zone DQUOTE, where date-day-fixed = (SP DIGIT) / 2DIGIT.
_DATE_TIME = re.compile(
    rb'"( [0-9]|[0-9]{2})-([A-Za-z]{3})-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)


def parse_append(tokens: Tokenizer, tag: str) -> Append:
    """``APPEND SP mailbox 1*(SP [flag-list SP] [date-time SP] append-data)``, where
    ``append-data = literal / literal8 / "CATENATE" SP "(" cat-part *(SP cat-part) ")"``
    (RFC 4469 §5).

    Otherwise the message must be a literal: RFC 9051 §6.3.12 defines no other form, and
    a quoted string could not carry a real message anyway."""
    tokens.sp()
    mailbox = tokens.read_astring()
    messages: list[AppendMessage] = []
    while not messages or not tokens.at_end():
        tokens.sp()
        messages.append(_read_message(tokens))
    return Append(tag, mailbox, tuple(messages))


def parse_replace(tokens: Tokenizer, tag: str, *, uid: bool = False) -> Replace:
    """``REPLACE SP seq-number SP mailbox SP append-message`` (RFC 8508 §6); the UID
    form names a UID."""
    tokens.sp()
    sequence = tokens.read_sequence_set()
    if sequence.is_saved or len(sequence.ranges) != 1 or len(set(sequence.ranges[0])) != 1:
        raise ParseError("REPLACE names exactly one message")
    tokens.sp()
    mailbox = tokens.read_astring()
    tokens.sp()
    message = _read_message(tokens)
    tokens.end()
    return Replace(tag, sequence, mailbox, message, uid=uid)


def _read_message(tokens: Tokenizer) -> AppendMessage:
    flags: tuple[str, ...] = ()
    if tokens.peek() == 0x28:
        flags = tokens.read_flag_list()
        tokens.sp()
    internaldate = None
    if tokens.peek() == 0x22:
        internaldate = parse_date_time(tokens.read_word(_DATE_TIME, "date-time or literal"))
        tokens.sp()
    if tokens.peek_bytes(9).upper() == b"CATENATE ":
        tokens.read_atom()
        tokens.sp()
        return AppendMessage(flags, internaldate, _read_catenate(tokens))
    if not tokens.at_literal():
        raise ParseError("APPEND message must be a literal")
    data, binary = tokens.read_literal()
    return AppendMessage(flags, internaldate, data, binary)


def _read_catenate(tokens: Tokenizer) -> Catenate:
    """``"(" cat-part *(SP cat-part) ")"``; ``cat-part = "TEXT" SP literal / "URL" SP
    astring`` (RFC 4469 §5). TEXT is a plain literal: literal8 is not in the grammar."""

    def read_part() -> CatText | CatUrl:
        kind = tokens.read_atom().upper()
        tokens.sp()
        if kind == b"URL":
            return CatUrl(tokens.read_astring())
        if kind != b"TEXT":
            raise ParseError("CATENATE part must be TEXT or URL")
        if tokens.peek() != 0x7B:  # "{": literal8 and strings are not a text-literal
            raise ParseError("CATENATE TEXT must be a literal")
        data, _ = tokens.read_literal()
        return CatText(data)

    return Catenate(tuple(tokens.read_list(read_part, allow_empty=False)))


def parse_date_time(text: bytes) -> datetime:
    """A quoted ``"dd-Mon-yyyy hh:mm:ss +zzzz"`` as an aware datetime."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise ParseError("Invalid date-time")
    day, month_name, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
    month = MONTHS.get(month_name.decode("ascii").upper())
    if month is None:
        raise ParseError("Invalid month in date-time")
    if int(zone_m) > 59:
        raise ParseError("Invalid zone in date-time")
    offset = timedelta(hours=int(zone_h), minutes=int(zone_m))
    try:
        zone = timezone(-offset if sign == b"-" else offset)
        return datetime(
            int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=zone
        )
    except ValueError:
        raise ParseError("Invalid date-time") from None
