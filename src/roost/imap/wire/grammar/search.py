"""SEARCH and UID SEARCH: the search-key grammar is a later issue.

Until then both forms answer a tagged BAD, so a client falls back or reports it."""

from __future__ import annotations

from roost.imap.wire.commands import BadCommand, Command
from roost.imap.wire.tokenizer import Tokenizer


def parse_search(tokens: Tokenizer, tag: str, *, uid: bool = False) -> Command:
    del tokens, uid  # the arguments are not read yet
    return BadCommand(tag, "SEARCH is not supported yet", name="SEARCH")
