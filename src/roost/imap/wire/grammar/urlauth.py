"""GENURLAUTH, RESETKEY, URLFETCH (RFC 4467 §7, grammar in §9; RFC 5524 §5 for the
extended URLFETCH). The URLs are astrings
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


_FETCH_PARAMS = ("BODY", "BINARY", "BODYPARTSTRUCTURE")


def parse_urlfetch(tokens: Tokenizer, tag: str) -> UrlFetch:
    """``URLFETCH 1*(SP (url-full / "(" url-full *(SP param) ")"))`` (RFC 5524 §5)."""
    urls: list[tuple[str, tuple[str, ...] | None]] = []
    while True:
        tokens.sp()
        if tokens.accept(b"("):
            url = _text(tokens)
            params = []
            while not tokens.accept(b")"):
                tokens.sp()
                param = tokens.read_keyword()
                if param not in _FETCH_PARAMS:
                    raise ParseError(f"Unknown URLFETCH parameter {param}")
                params.append(param)
            if "BODY" in params and "BINARY" in params:
                raise ParseError("BODY and BINARY cannot both be asked for")
            urls.append((url, tuple(params)))
        else:
            urls.append((_text(tokens), None))
        if tokens.at_end():
            return UrlFetch(tag, tuple(urls))
