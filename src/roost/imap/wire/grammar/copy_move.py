"""COPY and MOVE, with their UID forms (RFC 9051 §6.4.7, §6.4.8)."""

from __future__ import annotations

from roost.imap.wire.commands import Copy, Move
from roost.imap.wire.sequence import SequenceSet
from roost.imap.wire.tokenizer import Tokenizer


def _set_and_mailbox(tokens: Tokenizer) -> tuple[SequenceSet, bytes]:
    tokens.sp()
    sequence = tokens.read_sequence_set()
    tokens.sp()
    mailbox = tokens.read_astring()
    tokens.end()
    return sequence, mailbox


def parse_copy(tokens: Tokenizer, tag: str, *, uid: bool = False) -> Copy:
    sequence, mailbox = _set_and_mailbox(tokens)
    return Copy(tag, sequence, mailbox, uid=uid)


def parse_move(tokens: Tokenizer, tag: str, *, uid: bool = False) -> Move:
    sequence, mailbox = _set_and_mailbox(tokens)
    return Move(tag, sequence, mailbox, uid=uid)
