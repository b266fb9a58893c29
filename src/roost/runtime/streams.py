"""Helpers for asyncio streams shared by every protocol's connection glue."""

from __future__ import annotations

import asyncio


def drop_buffered_input(reader: asyncio.StreamReader) -> int:
    """Forget what the StreamReader has buffered but not handed out; return how much.

    Before a TLS handshake (STARTTLS, STLS) nothing the client sent in plaintext may be
    acted on (RFC 9051 §6.2.1, RFC 2595 §4): the protocol's own receiver is cleared by
    the caller, and this clears the stream's buffer below it, for which asyncio has no
    public API.
    """
    pending = getattr(reader, "_buffer", None)
    if not isinstance(pending, bytearray):
        return 0
    dropped = len(pending)
    pending.clear()
    return dropped
