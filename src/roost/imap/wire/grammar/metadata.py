"""GETMETADATA and SETMETADATA (RFC 5464 §4.2, §4.3; grammar in §5), and the entry
names LIST-METADATA (RFC 9590) asks for.

Entry names are checked here, so a malformed one is a tagged BAD: slash-separated,
under "/private" or "/shared", no empty component, no "*" or "%", printable ASCII
(RFC 5464 §3.2). They are case-insensitive and returned lower-cased.
"""

from __future__ import annotations

import re

from roost.imap.wire.commands import GetMetadata, Literal, SetMetadata
from roost.imap.wire.tokenizer import MAX_NUMBER, ParseError, Tokenizer

_ENTRY = re.compile(r"/(private|shared)(/[\x21-\x7e]+)*")


def read_entry(tokens: Tokenizer, *, allow_root: bool = True) -> str:
    """One entry name; ``allow_root``: the bare "/private" or "/shared" (a subtree to
    read, never a value to set)."""
    raw = tokens.read_astring()
    name = raw.decode("ascii", "replace").lower()
    parts = name.split("/")
    if (
        _ENTRY.fullmatch(name) is None
        or "*" in name
        or "%" in name
        or any(not part for part in parts[1:])
        or (not allow_root and len(parts) < 3)
    ):
        raise ParseError("Invalid metadata entry name")
    return name


def read_entries(tokens: Tokenizer) -> tuple[str, ...]:
    """``entries = entry / "(" entry *(SP entry) ")"``."""
    if tokens.peek() == 0x28:
        return tuple(tokens.read_list(lambda: read_entry(tokens), allow_empty=False))
    return (read_entry(tokens),)


def parse_getmetadata(tokens: Tokenizer, tag: str) -> GetMetadata:
    """``GETMETADATA [SP "(" option *(SP option) ")"] SP mailbox SP entries`` with the
    options ``MAXSIZE number`` and ``DEPTH ("0" / "1" / "infinity")`` (§4.2.1, §4.2.2).
    The RFC's own examples put the options after the mailbox (errata); both orders are
    read, as Dovecot and Cyrus do: a list whose first item is a word is options."""
    tokens.sp()
    maxsize: int | None = None
    depth: int | None = 0

    def read_options() -> None:
        def read_option() -> None:
            nonlocal maxsize, depth
            option = tokens.read_keyword()
            tokens.sp()
            if option == "MAXSIZE":
                maxsize = tokens.read_number(MAX_NUMBER)
            elif option == "DEPTH":
                word = tokens.read_atom().lower()
                if word not in (b"0", b"1", b"infinity"):
                    raise ParseError("DEPTH is 0, 1 or infinity")
                depth = None if word == b"infinity" else int(word)
            else:
                raise ParseError("Unknown GETMETADATA option")

        tokens.read_list(read_option, allow_empty=False)
        tokens.sp()

    if tokens.peek() == 0x28:
        read_options()
    mailbox = tokens.read_astring()
    tokens.sp()
    ahead = tokens.peek_bytes(2)
    if ahead[:1] == b"(" and ahead[1:].isalpha():  # "(MAXSIZE ..." after the mailbox
        read_options()
    entries = read_entries(tokens)
    tokens.end()
    return GetMetadata(tag, mailbox, entries, maxsize, depth)


def parse_setmetadata(tokens: Tokenizer, tag: str) -> SetMetadata:
    """``SETMETADATA SP mailbox SP "(" entry SP value *(SP entry SP value) ")"`` where
    ``value = nstring / literal8`` (§5)."""
    tokens.sp()
    mailbox = tokens.read_astring()
    tokens.sp()

    def read_pair() -> tuple[str, bytes | Literal | None]:
        entry = read_entry(tokens, allow_root=False)
        tokens.sp()
        value: bytes | Literal | None
        if tokens.at_literal():
            value, _ = tokens.read_literal()
        else:
            value = tokens.read_nstring()
        return entry, value

    values = tokens.read_list(read_pair, allow_empty=False)
    tokens.end()
    return SetMetadata(tag, mailbox, tuple(values))
