"""Commands with no arguments, and the connection-level ones: LOGIN, AUTHENTICATE,
ENABLE, ID (RFC 9051 §6.1, §6.2, §6.3.1; RFC 2971)."""

from __future__ import annotations

import binascii

from roost.imap.wire.commands import (
    Authenticate,
    Capability,
    Check,
    Close,
    Compress,
    Enable,
    Expunge,
    Id,
    Idle,
    Login,
    Logout,
    Noop,
    StartTls,
    Unauthenticate,
    Unselect,
)
from roost.imap.wire.tokenizer import ParseError, Tokenizer

MAX_ID_PAIRS = 30  # RFC 2971 §3.3: no more than 30 field-value pairs


def parse_capability(tokens: Tokenizer, tag: str) -> Capability:
    tokens.end()
    return Capability(tag)


def parse_noop(tokens: Tokenizer, tag: str) -> Noop:
    tokens.end()
    return Noop(tag)


def parse_logout(tokens: Tokenizer, tag: str) -> Logout:
    tokens.end()
    return Logout(tag)


def parse_starttls(tokens: Tokenizer, tag: str) -> StartTls:
    tokens.end()
    return StartTls(tag)


def parse_idle(tokens: Tokenizer, tag: str) -> Idle:
    tokens.end()
    return Idle(tag)


def parse_check(tokens: Tokenizer, tag: str) -> Check:
    tokens.end()
    return Check(tag)


def parse_close(tokens: Tokenizer, tag: str) -> Close:
    tokens.end()
    return Close(tag)


def parse_unselect(tokens: Tokenizer, tag: str) -> Unselect:
    tokens.end()
    return Unselect(tag)


def parse_expunge(tokens: Tokenizer, tag: str) -> Expunge:
    tokens.end()
    return Expunge(tag)


def parse_login(tokens: Tokenizer, tag: str) -> Login:
    tokens.sp()
    username = tokens.read_astring()
    tokens.sp()
    password = tokens.read_astring()
    tokens.end()
    return Login(tag, username, password)


def parse_authenticate(tokens: Tokenizer, tag: str) -> Authenticate:
    """``AUTHENTICATE SP auth-type [SP initial-resp]``; ``initial-resp = base64 / "="``
    (RFC 4959 §3: "=" is an empty initial response, distinct from none)."""
    tokens.sp()
    mechanism = tokens.read_keyword()
    initial: bytes | None = None
    if not tokens.at_end():
        tokens.sp()
        encoded = tokens.read_atom()
        initial = b"" if encoded == b"=" else decode_base64(encoded)
    tokens.end()
    return Authenticate(tag, mechanism, initial)


def decode_base64(encoded: bytes) -> bytes:
    """Strict RFC 4648 base64, as RFC 9051 §9 ``base64`` requires (padding included)."""
    try:
        return binascii.a2b_base64(encoded, strict_mode=True)
    except binascii.Error:
        raise ParseError("Invalid base64") from None


def parse_unauthenticate(tokens: Tokenizer, tag: str) -> Unauthenticate:
    tokens.end()
    return Unauthenticate(tag)


def parse_compress(tokens: Tokenizer, tag: str) -> Compress:
    """``COMPRESS SP algorithm`` (RFC 4978 §4)."""
    tokens.sp()
    mechanism = tokens.read_keyword()
    tokens.end()
    return Compress(tag, mechanism)


def parse_enable(tokens: Tokenizer, tag: str) -> Enable:
    """``ENABLE 1*(SP capability)`` (RFC 5161 §4)."""
    capabilities: list[str] = []
    while not tokens.at_end() or not capabilities:
        tokens.sp()
        capabilities.append(tokens.read_keyword())
    return Enable(tag, tuple(capabilities))


def parse_id(tokens: Tokenizer, tag: str) -> Id:
    """``ID SP ("(" [string SP nstring *(SP string SP nstring)] ")" / NIL)``
    (RFC 2971 §4). Values are decoded leniently: ID is informational only."""
    tokens.sp()
    if tokens.peek() != 0x28:
        tokens.read_nil()
        tokens.end()
        return Id(tag, None)

    def read_pair() -> tuple[str, str | None]:
        field = tokens.read_string().decode("utf-8", "replace")
        tokens.sp()
        value = tokens.read_nstring()
        return field, None if value is None else value.decode("utf-8", "replace")

    params = tokens.read_list(read_pair)
    if len(params) > MAX_ID_PAIRS:
        raise ParseError("Too many ID parameters")
    tokens.end()
    return Id(tag, tuple(params))
