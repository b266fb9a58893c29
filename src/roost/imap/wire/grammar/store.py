"""STORE and UID STORE (RFC 9051 §6.4.6), with UNCHANGEDSINCE (RFC 7162 §3.1.3)."""

from __future__ import annotations

from roost.imap.wire.commands import Store, StoreMode
from roost.imap.wire.tokenizer import MAX_NUMBER64, ParseError, Tokenizer


def parse_store(tokens: Tokenizer, tag: str, *, uid: bool = False) -> Store:
    """``STORE SP sequence-set [SP "(" store-modifier ")"] SP ["+" / "-"] "FLAGS"
    [".SILENT"] SP (flag-list / (flag *(SP flag)))``. ``\\*`` is not a flag here."""
    tokens.sp()
    sequence = tokens.read_sequence_set()
    tokens.sp()
    unchangedsince: int | None = None

    def read_modifier() -> None:
        nonlocal unchangedsince
        if tokens.read_keyword() != "UNCHANGEDSINCE" or unchangedsince is not None:
            raise ParseError("Unsupported STORE modifier")
        tokens.sp()
        unchangedsince = tokens.read_number(MAX_NUMBER64)  # mod-sequence-valzer: 0 is valid

    if tokens.peek() == 0x28:
        tokens.read_list(read_modifier, allow_empty=False)
        tokens.sp()
    mode = StoreMode.REPLACE
    if tokens.accept(b"+"):
        mode = StoreMode.ADD
    elif tokens.accept(b"-"):
        mode = StoreMode.REMOVE
    item = tokens.read_keyword()
    if item not in ("FLAGS", "FLAGS.SILENT"):
        raise ParseError("Expected FLAGS or FLAGS.SILENT")
    tokens.sp()
    if tokens.peek() == 0x28:
        flags = tokens.read_flag_list()
    else:
        flag_words = [tokens.read_flag()]
        while not tokens.at_end():
            tokens.sp()
            flag_words.append(tokens.read_flag())
        flags = tuple(flag_words)
    tokens.end()
    return Store(
        tag,
        sequence,
        mode,
        silent=item == "FLAGS.SILENT",
        flags=flags,
        uid=uid,
        unchangedsince=unchangedsince,
    )
