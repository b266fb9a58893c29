"""GENURLAUTH, RESETKEY, URLFETCH (RFC 4467 §7, grammar in §9). The URLs are astrings
here; their own syntax is ``roost.urlauth.url``'s to judge."""

from __future__ import annotations

from roost.imap.wire.commands import GenUrlAuth, ResetKey, UrlFetch
from roost.imap.wire.tokenizer import ParseError, Tokenizer


def _text(tokens: Tokenizer) -> str:
    try:
        return tokens.read_astring().decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("URL is not UTF-8") from None


def parse_genurlauth(tokens: Tokenizer, tag: str) -> GenUrlAuth:
    items = []
    while True:
        tokens.sp()
        url = _text(tokens)
        tokens.sp()
        items.append((url, tokens.read_keyword()))
        if tokens.at_end():
            return GenUrlAuth(tag, tuple(items))


def parse_resetkey(tokens: Tokenizer, tag: str) -> ResetKey:
    if tokens.at_end():
        return ResetKey(tag, None)
    tokens.sp()
    mailbox = tokens.read_astring()
    mechanisms = []
    while not tokens.at_end():
        tokens.sp()
        mechanisms.append(tokens.read_keyword())
    return ResetKey(tag, mailbox, tuple(mechanisms))


def parse_urlfetch(tokens: Tokenizer, tag: str) -> UrlFetch:
    urls = []
    while True:
        tokens.sp()
        urls.append(_text(tokens))
        if tokens.at_end():
            return UrlFetch(tag, tuple(urls))
