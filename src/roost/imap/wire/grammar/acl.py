"""SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS (RFC 4314 §3, grammar in §4).

``identifier = astring``, ``mod-rights = astring`` (rights with an optional leading
"+" or "-"); both are kept as text, their meaning is the handler's.
"""

from __future__ import annotations

from roost.imap.wire.commands import DeleteAcl, GetAcl, ListRights, MyRights, SetAcl
from roost.imap.wire.tokenizer import Tokenizer


def _text(tokens: Tokenizer) -> str:
    return tokens.read_astring().decode("utf-8", "replace")


def parse_setacl(tokens: Tokenizer, tag: str) -> SetAcl:
    tokens.sp()
    mailbox = tokens.read_astring()
    tokens.sp()
    identifier = _text(tokens)
    tokens.sp()
    rights = _text(tokens)
    tokens.end()
    return SetAcl(tag, mailbox, identifier, rights)


def parse_deleteacl(tokens: Tokenizer, tag: str) -> DeleteAcl:
    tokens.sp()
    mailbox = tokens.read_astring()
    tokens.sp()
    identifier = _text(tokens)
    tokens.end()
    return DeleteAcl(tag, mailbox, identifier)


def parse_getacl(tokens: Tokenizer, tag: str) -> GetAcl:
    tokens.sp()
    mailbox = tokens.read_astring()
    tokens.end()
    return GetAcl(tag, mailbox)


def parse_listrights(tokens: Tokenizer, tag: str) -> ListRights:
    tokens.sp()
    mailbox = tokens.read_astring()
    tokens.sp()
    identifier = _text(tokens)
    tokens.end()
    return ListRights(tag, mailbox, identifier)


def parse_myrights(tokens: Tokenizer, tag: str) -> MyRights:
    tokens.sp()
    mailbox = tokens.read_astring()
    tokens.end()
    return MyRights(tag, mailbox)
