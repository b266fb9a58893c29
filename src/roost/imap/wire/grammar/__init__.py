"""The IMAP command grammar: one parser per command family, one table of names.

``parse_command`` never raises on bad input: every syntax error (a ``ParseError`` from
the tokenizer or a family parser) becomes a ``BadCommand`` that keeps the tag, or "*"
when even the tag is unreadable (RFC 9051 §7.1.5). Command names and keywords are
case-insensitive (RFC 9051 §9, ABNF strings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from roost.imap.wire.commands import BadCommand, Command
from roost.imap.wire.grammar import (
    acl,
    append,
    copy_move,
    fetch,
    mailboxes,
    metadata,
    notify,
    quota,
    search,
    simple,
    store,
    uid,
    urlauth,
)
from roost.imap.wire.tokenizer import LiteralValue, ParseError, Tokenizer

__all__ = ["parse_command"]

Parser = Callable[[Tokenizer, str], Command]

COMMANDS: dict[str, Parser] = {
    "CAPABILITY": simple.parse_capability,
    "NOOP": simple.parse_noop,
    "LOGOUT": simple.parse_logout,
    "ID": simple.parse_id,
    "STARTTLS": simple.parse_starttls,
    "LOGIN": simple.parse_login,
    "AUTHENTICATE": simple.parse_authenticate,
    "ENABLE": simple.parse_enable,
    "IDLE": simple.parse_idle,
    "COMPRESS": simple.parse_compress,
    "UNAUTHENTICATE": simple.parse_unauthenticate,
    "NOTIFY": notify.parse_notify,
    "CHECK": simple.parse_check,
    "CLOSE": simple.parse_close,
    "UNSELECT": simple.parse_unselect,
    "EXPUNGE": simple.parse_expunge,
    "SELECT": mailboxes.parse_select,
    "EXAMINE": mailboxes.parse_examine,
    "CREATE": mailboxes.parse_create,
    "DELETE": mailboxes.parse_delete,
    "RENAME": mailboxes.parse_rename,
    "SUBSCRIBE": mailboxes.parse_subscribe,
    "UNSUBSCRIBE": mailboxes.parse_unsubscribe,
    "LIST": mailboxes.parse_list,
    "LSUB": mailboxes.parse_lsub,
    "NAMESPACE": mailboxes.parse_namespace,
    "STATUS": mailboxes.parse_status,
    "GETQUOTA": quota.parse_getquota,
    "GETQUOTAROOT": quota.parse_getquotaroot,
    "SETQUOTA": quota.parse_setquota,
    "GETMETADATA": metadata.parse_getmetadata,
    "SETMETADATA": metadata.parse_setmetadata,
    "GETACL": acl.parse_getacl,
    "SETACL": acl.parse_setacl,
    "DELETEACL": acl.parse_deleteacl,
    "LISTRIGHTS": acl.parse_listrights,
    "MYRIGHTS": acl.parse_myrights,
    "APPEND": append.parse_append,
    "REPLACE": append.parse_replace,
    "FETCH": fetch.parse_fetch,
    "STORE": store.parse_store,
    "COPY": copy_move.parse_copy,
    "MOVE": copy_move.parse_move,
    "SEARCH": search.parse_search,
    "ESEARCH": search.parse_esearch,
    "CANCELUPDATE": search.parse_cancelupdate,
    "SORT": search.parse_sort,
    "THREAD": search.parse_thread,
    "GENURLAUTH": urlauth.parse_genurlauth,
    "RESETKEY": urlauth.parse_resetkey,
    "URLFETCH": urlauth.parse_urlfetch,
}


def parse_command(
    pieces: Sequence[bytes],
    literals: Sequence[LiteralValue] = (),
    *,
    max_nesting_depth: int = 32,
) -> Command:
    """Parse one complete command: text ``pieces`` around its ``literals`` (see the
    tokenizer's docstring). A single-line command is ``parse_command([line])``."""
    if not literals and (quick := fetch.parse_one_uid_fetch(pieces[0], max_nesting_depth)):
        return quick
    tokens = Tokenizer(pieces, literals, max_depth=max_nesting_depth)
    try:
        tag = tokens.read_tag()
    except ParseError:
        return BadCommand("*", "Invalid tag")
    if tokens.peek() not in (0x20, -1):  # "a+b": answering "a" would be wrong
        return BadCommand("*", "Invalid tag")
    try:
        tokens.sp()
        name = tokens.read_keyword()
    except ParseError:
        return BadCommand(tag, "Missing command")
    if name == "UID":
        return uid.parse_uid(tokens, tag)
    parser = COMMANDS.get(name)
    if parser is None:
        return BadCommand(tag, "Unknown command")
    try:
        return parser(tokens, tag)
    except ParseError as error:
        return BadCommand(tag, error.message, name)
