"""FILTERS (RFC 5466): named searches kept as METADATA server entries.

``FILTER name`` in a search program stands for the program stored in the user's
``/private/filters/values/<name>`` entry, or, when there is none, in
``/shared/filters/values/<name>`` (§3.2: a private filter hides a shared one of the
same name). Entry names are case-insensitive (RFC 5464 §3.2), so filter names are too.

A command expands its program here before evaluating it, so every later step (the
store query, CONTEXT updates, UIDONLY checks) sees only ordinary keys. Invariants:

* A filter that does not exist is a tagged ``NO [NONEXISTENT]`` (RFC 5466 §3.1).
* A stored program that does not parse, or one that refers back to itself through
  other filters, is ``NO`` too: the client's command was well-formed, the data is not.
* The expanded program is held to the grammar's limits on nesting and key count, so
  filters cannot build a program the parser would have refused; after ENABLE UIDONLY
  a filter naming messages by number is BAD [UIDREQUIRED], as the command would be
  (RFC 9586 §3.1; dispatch checked only what the client sent).
"""

from __future__ import annotations

from roost.imap.handler_types import bad, no
from roost.imap.session import Session
from roost.imap.uidonly import requires_uid_keys
from roost.imap.wire import search_keys as k
from roost.imap.wire.grammar.search import MAX_KEY_DEPTH, MAX_SEARCH_KEYS, read_search_keys
from roost.imap.wire.tokenizer import ParseError, Tokenizer

PRIVATE = "/private/filters/values/"
SHARED = "/shared/filters/values/"


async def expand_filters(session: Session, key: k.SearchKey) -> k.SearchKey:
    """``key`` with every FILTER replaced by its stored program; itself if it has none."""
    if not any(isinstance(found, k.Filter) for found in k.walk(key)):
        return key
    expanded = await _expand(session, key, ())
    if k.depth(expanded) > MAX_KEY_DEPTH or len(k.walk(expanded)) > MAX_SEARCH_KEYS:
        raise no("The search program with its filters is too large", "LIMIT")
    if session.uidonly and requires_uid_keys(expanded):
        raise bad("A filter names messages by number: UIDONLY is enabled", "UIDREQUIRED")
    return expanded


async def _expand(session: Session, key: k.SearchKey, using: tuple[str, ...]) -> k.SearchKey:
    """Recursive over NOT/OR/AND, whose depth the grammar bounds (MAX_KEY_DEPTH), and
    over filters, which ``using`` bounds (no filter inside itself)."""
    match key:
        case k.Filter(name=name):
            folded = name.lower()
            if folded in using:
                raise no(f"Filter {name} refers to itself", "CANNOT")
            program = await _program(session, name)
            return await _expand(session, program, (*using, folded))
        case k.Not(key=inner):
            return k.negate(await _expand(session, inner, using))
        case k.Or(keys=keys):
            return k.any_of([await _expand(session, x, using) for x in keys])
        case k.And(keys=keys):
            return k.all_of([await _expand(session, x, using) for x in keys])
    return key


async def _program(session: Session, name: str) -> k.SearchKey:
    folded = name.lower()
    private, shared = PRIVATE + folded, SHARED + folded
    entries = await session.require_account().get_metadata(None, [private, shared])
    value = entries.get(private, entries.get(shared))
    if value is None:
        raise no(f"Filter {name} does not exist", "NONEXISTENT")
    try:
        return read_search_keys(Tokenizer([value.strip()]))
    except ParseError as error:
        raise no(f"Filter {name} is not a valid search program: {error}", "CANNOT") from None
