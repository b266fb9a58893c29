"""GETQUOTA, GETQUOTAROOT, SETQUOTA (RFC 9208 §4.1, grammar in §9)."""

from __future__ import annotations

from roost.imap.wire.commands import GetQuota, GetQuotaRoot, SetQuota
from roost.imap.wire.tokenizer import MAX_NUMBER64, Tokenizer


def _root_name(tokens: Tokenizer) -> str:
    """``quota-root-name = astring``; the empty string is a valid root."""
    return tokens.read_astring().decode("utf-8", "replace")


def parse_getquota(tokens: Tokenizer, tag: str) -> GetQuota:
    tokens.sp()
    root = _root_name(tokens)
    tokens.end()
    return GetQuota(tag, root)


def parse_getquotaroot(tokens: Tokenizer, tag: str) -> GetQuotaRoot:
    tokens.sp()
    mailbox = tokens.read_astring()
    tokens.end()
    return GetQuotaRoot(tag, mailbox)


def parse_setquota(tokens: Tokenizer, tag: str) -> SetQuota:
    """``SETQUOTA root (resource-name SP resource-limit ...)``; the list may be empty
    (it removes every limit of the root)."""
    tokens.sp()
    root = _root_name(tokens)
    tokens.sp()

    def read_resource() -> tuple[str, int]:
        name = tokens.read_keyword()
        tokens.sp()
        return name, tokens.read_number(MAX_NUMBER64)

    limits = tokens.read_list(read_resource)
    tokens.end()
    return SetQuota(tag, root, tuple(limits))
