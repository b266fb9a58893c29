"""The UID prefix (RFC 9051 §6.4.9): the same commands with UIDs instead of message
numbers, plus UID EXPUNGE (RFC 4315 §2.1, part of RFC 9051)."""

from __future__ import annotations

from collections.abc import Callable

from roost.imap.wire.commands import BadCommand, Command, Expunge
from roost.imap.wire.grammar.append import parse_replace
from roost.imap.wire.grammar.copy_move import parse_copy, parse_move
from roost.imap.wire.grammar.fetch import parse_fetch
from roost.imap.wire.grammar.search import parse_search, parse_sort, parse_thread
from roost.imap.wire.grammar.store import parse_store
from roost.imap.wire.tokenizer import ParseError, Tokenizer


def parse_uid_expunge(tokens: Tokenizer, tag: str) -> Expunge:
    tokens.sp()
    uids = tokens.read_sequence_set()
    tokens.end()
    return Expunge(tag, uids)


UID_COMMANDS: dict[str, Callable[[Tokenizer, str], Command]] = {
    "FETCH": lambda tokens, tag: parse_fetch(tokens, tag, uid=True),
    "STORE": lambda tokens, tag: parse_store(tokens, tag, uid=True),
    "COPY": lambda tokens, tag: parse_copy(tokens, tag, uid=True),
    "MOVE": lambda tokens, tag: parse_move(tokens, tag, uid=True),
    "SEARCH": lambda tokens, tag: parse_search(tokens, tag, uid=True),
    "SORT": lambda tokens, tag: parse_sort(tokens, tag, uid=True),
    "THREAD": lambda tokens, tag: parse_thread(tokens, tag, uid=True),
    "EXPUNGE": parse_uid_expunge,
    "REPLACE": lambda tokens, tag: parse_replace(tokens, tag, uid=True),
}


def parse_uid(tokens: Tokenizer, tag: str) -> Command:
    """``UID SP (copy / move / fetch / search / sort / thread / store / uid-expunge)``;
    a syntax error is named after the inner command (``name="FETCH"``), as for its
    plain form."""
    try:
        tokens.sp()
        name = tokens.read_keyword()
    except ParseError:
        return BadCommand(tag, "Missing command after UID", "UID")
    parser = UID_COMMANDS.get(name)
    if parser is None:
        return BadCommand(tag, "Unknown command")
    try:
        return parser(tokens, tag)
    except ParseError as error:
        return BadCommand(tag, error.message, name)
