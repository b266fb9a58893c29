"""SEARCH, SORT and THREAD, with their UID forms (RFC 9051 §6.4.4, RFC 3501 §6.4.4,
RFC 5256), ESEARCH/ESORT return options (RFC 4731, RFC 5267), SEARCHRES ``$``
(RFC 5182), WITHIN (RFC 5032) and MODSEQ (RFC 7162 §3.1.5).

The search program is prefix notation (``OR a b``, ``NOT a``, ``(a b)``). It is read
with an explicit stack rather than recursion, so no input can exhaust Python's stack;
the resulting tree is flattened (see ``search_keys``) and its depth is then limited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from roost.imap.wire import search_keys as k
from roost.imap.wire.commands import (
    CancelUpdate,
    ESearch,
    Search,
    SearchSource,
    Sort,
    SortCriterion,
    SortKey,
    Thread,
)
from roost.imap.wire.tokenizer import MAX_NUMBER, MAX_NUMBER64, ParseError, Tokenizer

MAX_KEY_DEPTH = 64  # NOT / OR / list nesting, as sent and after flattening
# Search keys in one program. Beyond this the SQL built from it would pass SQLite's
# expression depth (1000) however it is nested, so it is refused with BAD first.
MAX_SEARCH_KEYS = 500
# RFC 4731, RFC 5182 (SAVE), RFC 5267 §4 (UPDATE, CONTEXT), RFC 9394 (PARTIAL).
RETURN_OPTIONS = frozenset({"MIN", "MAX", "COUNT", "ALL", "SAVE", "UPDATE", "CONTEXT", "PARTIAL"})
SORT_RETURN_OPTIONS = frozenset(
    {"MIN", "MAX", "COUNT", "ALL", "UPDATE", "CONTEXT", "PARTIAL"}
)  # RFC 5267 §3, §4
_PARTIAL_RANGE = re.compile(rb"-?[0-9]+:-?[0-9]+")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
# RFC 9051 §9: date = date-text / DQUOTE date-text DQUOTE; date-day = 1*2DIGIT.
_DATE = re.compile(rb'"?([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})"?')
_CHARSET = re.compile(rb'"[^"\\\r\n\x00]*"|[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
_FLAG_KEYS: dict[str, k.SearchKey] = {
    "ANSWERED": k.Flag(k.FlagName.ANSWERED),
    "DELETED": k.Flag(k.FlagName.DELETED),
    "DRAFT": k.Flag(k.FlagName.DRAFT),
    "FLAGGED": k.Flag(k.FlagName.FLAGGED),
    "SEEN": k.Flag(k.FlagName.SEEN),
    "UNANSWERED": k.Flag(k.FlagName.ANSWERED, present=False),
    "UNDELETED": k.Flag(k.FlagName.DELETED, present=False),
    "UNDRAFT": k.Flag(k.FlagName.DRAFT, present=False),
    "UNFLAGGED": k.Flag(k.FlagName.FLAGGED, present=False),
    "UNSEEN": k.Flag(k.FlagName.SEEN, present=False),
    "ALL": k.All(),
    # RFC 8514 §4.2: every mailbox here keeps save dates, so this matches everything.
    "SAVEDATESUPPORTED": k.All(),
    "RECENT": k.Recent(k.SessionFlag.RECENT),
    "NEW": k.Recent(k.SessionFlag.NEW),
    "OLD": k.Recent(k.SessionFlag.OLD),
}
_TEXT_KEYS = {field.value: field for field in k.TextField}
_DATE_KEYS = {
    "BEFORE": (k.DateField.INTERNAL, k.DateOp.BEFORE),
    "ON": (k.DateField.INTERNAL, k.DateOp.ON),
    "SINCE": (k.DateField.INTERNAL, k.DateOp.SINCE),
    "SENTBEFORE": (k.DateField.SENT, k.DateOp.BEFORE),
    "SENTON": (k.DateField.SENT, k.DateOp.ON),
    "SENTSINCE": (k.DateField.SENT, k.DateOp.SINCE),
    "SAVEDBEFORE": (k.DateField.SAVED, k.DateOp.BEFORE),
    "SAVEDON": (k.DateField.SAVED, k.DateOp.ON),
    "SAVEDSINCE": (k.DateField.SAVED, k.DateOp.SINCE),
}
_ENTRY_TYPES = frozenset({"PRIV", "SHARED", "ALL"})  # RFC 7162 entry-type-req
_SORT_KEYS = {key.value: key for key in SortKey}


def parse_search(tokens: Tokenizer, tag: str, *, uid: bool = False) -> Search:
    """``SEARCH [SP "RETURN" SP "(" [opt *(SP opt)] ")"] SP ["CHARSET" SP charset SP]
    search-key *(SP search-key)``."""
    tokens.sp()
    partial: list[tuple[int, int]] = []
    return_options = _read_return_options(tokens, RETURN_OPTIONS, partial)
    charset: str | None = None
    if tokens.peek_bytes(8).upper() == b"CHARSET ":
        tokens.read_keyword()
        tokens.sp()
        charset = _read_charset(tokens)
        tokens.sp()
    criteria = read_search_keys(tokens)
    return Search(
        tag,
        criteria,
        uid=uid,
        charset=charset,
        return_options=return_options,
        partial=partial[0] if partial else None,
    )


# RFC 7377 §2: RFC 5465's filters, and subtree-one; SAVE makes no sense across mailboxes.
_SOURCE_FILTERS = frozenset({"SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED"})
_SOURCE_FILTERS_NAMED = frozenset({"SUBTREE", "SUBTREE-ONE", "MAILBOXES"})
MULTISEARCH_RETURN_OPTIONS = frozenset({"MIN", "MAX", "COUNT", "ALL"})


def parse_esearch(tokens: Tokenizer, tag: str) -> ESearch:
    """``"ESEARCH" [SP esearch-source-opts] [SP search-return-opts] SP search-program``
    with ``esearch-source-opts = "IN" SP "(" source-mbox [SP "(" scope-options ")"]
    ")"`` (RFC 7377 §4). No scope option is defined, so any is a syntax error."""
    tokens.sp()
    sources: tuple[SearchSource, ...] = ()
    if tokens.peek_bytes(3).upper() == b"IN ":
        tokens.read_keyword()
        tokens.sp()
        tokens.expect(b"(", '"("')
        found = [_read_source(tokens)]
        while tokens.accept(b" "):
            if tokens.peek() == 0x28:
                raise ParseError("Unsupported ESEARCH scope options")
            found.append(_read_source(tokens))
        tokens.expect(b")", '")"')
        tokens.sp()
        sources = tuple(found)
    return_options = _read_return_options(tokens, MULTISEARCH_RETURN_OPTIONS)
    charset: str | None = None
    if tokens.peek_bytes(8).upper() == b"CHARSET ":
        tokens.read_keyword()
        tokens.sp()
        charset = _read_charset(tokens)
        tokens.sp()
    criteria = read_search_keys(tokens)
    return ESearch(tag, sources, criteria, charset, return_options)


def _read_source(tokens: Tokenizer) -> SearchSource:
    name = tokens.read_keyword()
    if name in _SOURCE_FILTERS:
        return SearchSource(name)
    if name not in _SOURCE_FILTERS_NAMED:
        raise ParseError(f"Unknown mailbox filter {name}")
    tokens.sp()
    if tokens.peek() == 0x28:
        names = tuple(tokens.read_list(tokens.read_astring, allow_empty=False))
    else:
        names = (tokens.read_astring(),)
    return SearchSource(name, names)


def parse_cancelupdate(tokens: Tokenizer, tag: str) -> CancelUpdate:
    """``"CANCELUPDATE" 1*(SP quoted)`` (RFC 5267 §5)."""
    tags: list[str] = []
    while not tokens.at_end():
        tokens.sp()
        if tokens.peek() != 0x22:
            raise ParseError("CANCELUPDATE takes quoted tags")
        tags.append(tokens.read_string().decode("ascii", "replace"))
    if not tags:
        raise ParseError("CANCELUPDATE needs a tag")
    return CancelUpdate(tag, tuple(tags))


def parse_sort(tokens: Tokenizer, tag: str, *, uid: bool = False) -> Sort:
    """``SORT [SP "RETURN" SP "(" ... ")"] SP "(" sort-criterion *(SP sort-criterion)
    ")" SP charset 1*(SP search-key)`` (RFC 5256 §5, RFC 5267 §3)."""
    tokens.sp()
    partial: list[tuple[int, int]] = []
    return_options = _read_return_options(tokens, SORT_RETURN_OPTIONS, partial)
    criteria = tuple(tokens.read_list(lambda: _read_sort_criterion(tokens), allow_empty=False))
    tokens.sp()
    charset = _read_charset(tokens)
    tokens.sp()
    keys = read_search_keys(tokens)
    return Sort(
        tag,
        criteria,
        charset,
        keys,
        uid=uid,
        return_options=return_options,
        partial=partial[0] if partial else None,
    )


def parse_thread(tokens: Tokenizer, tag: str, *, uid: bool = False) -> Thread:
    """``THREAD SP thread-alg SP charset 1*(SP search-key)`` (RFC 5256 §5)."""
    tokens.sp()
    algorithm = tokens.read_keyword()
    tokens.sp()
    charset = _read_charset(tokens)
    tokens.sp()
    return Thread(tag, algorithm, charset, read_search_keys(tokens), uid=uid)


def _read_return_options(
    tokens: Tokenizer, allowed: frozenset[str], partial: list[tuple[int, int]] | None = None
) -> tuple[str, ...] | None:
    """RFC 4466 ``search-return-opts``, then the space after them; None when absent.
    PARTIAL's range (RFC 9394 §3.1) is appended to ``partial``.

    An option this server does not know is a syntax error (RFC 4466 §2.6.1)."""
    if tokens.peek_bytes(7).upper() != b"RETURN ":
        return None
    tokens.read_keyword()
    tokens.sp()

    def read_option() -> str:
        option = tokens.read_keyword()
        if option not in allowed:
            raise ParseError(f"Unsupported RETURN option {option}")
        if option == "PARTIAL":
            if partial is None or partial:
                raise ParseError("PARTIAL is not allowed here")
            tokens.sp()
            partial.append(read_partial_range(tokens))
        return option

    options = tuple(dict.fromkeys(tokens.read_list(read_option)))
    tokens.sp()
    return options


def read_partial_range(tokens: Tokenizer) -> tuple[int, int]:
    """RFC 9394 §4 ``partial-range``: ``n:m`` (positions counted from the first) or
    ``-n:-m`` (from the last), nz-numbers; returned with the smaller magnitude first."""
    text = tokens.read_word(_PARTIAL_RANGE, "partial range")
    first, last = (int(n) for n in text.split(b":"))
    if (
        first == 0
        or last == 0
        or (first < 0) != (last < 0)
        or max(abs(first), abs(last)) > MAX_NUMBER
    ):
        raise ParseError("Invalid partial range")
    if abs(first) > abs(last):
        first, last = last, first
    return first, last


def _read_charset(tokens: Tokenizer) -> str:
    """``charset = atom / quoted``, upper-cased."""
    word = tokens.read_word(_CHARSET, "charset")
    return word.strip(b'"').decode("ascii", "replace").upper()


def _read_sort_criterion(tokens: Tokenizer) -> SortCriterion:
    word = tokens.read_keyword()
    reverse = word == "REVERSE"
    if reverse:
        tokens.sp()
        word = tokens.read_keyword()
    key = _SORT_KEYS.get(word)
    if key is None:
        raise ParseError(f"Unknown sort key {word}")
    return SortCriterion(key, reverse)


# ---- the search program ----------------------------------------------------------------


@dataclass(slots=True)
class _Frame:
    """A key waiting for its operands: NOT (1), OR (2), a list or the program (1+)."""

    kind: str  # "NOT", "OR", "LIST", "PROGRAM"
    keys: list[k.SearchKey] = field(default_factory=list)


def read_search_keys(tokens: Tokenizer) -> k.SearchKey:
    """``search-key *(SP search-key)`` up to the end of the command, as one key."""
    stack = [_Frame("PROGRAM")]
    count = 0
    while True:
        # Every pending NOT, OR and list counts against the nesting limit, as sent:
        # flattening would hide a 1,000-deep OR chain, and its cost (issue 13 item 7).
        if len(stack) > MAX_KEY_DEPTH:
            raise ParseError("Search program too deeply nested")
        if tokens.peek() == 0x28:
            tokens.open_list()  # counts against the nesting limit
            stack.append(_Frame("LIST"))
            continue
        first = tokens.peek()
        if first != -1 and first in b"0123456789*$":
            value: k.SearchKey = k.Messages(tokens.read_sequence_set())
        else:
            name = tokens.read_keyword()
            if name in ("NOT", "OR"):
                tokens.sp()
                stack.append(_Frame(name))
                continue
            value = _read_leaf(tokens, name)
        count += 1  # keys other than NOT and OR, which the depth limit bounds
        if count > MAX_SEARCH_KEYS:
            raise ParseError(f"Search program has more than {MAX_SEARCH_KEYS} keys")
        # Reduce: hand the finished key to the frames it completes.
        while True:
            frame = stack[-1]
            frame.keys.append(value)
            if frame.kind == "NOT":
                stack.pop()
                value = k.negate(value)
                continue
            if frame.kind == "OR":
                if len(frame.keys) == 1:
                    tokens.sp()
                    break
                stack.pop()
                value = k.any_of(frame.keys)
                continue
            if frame.kind == "LIST":
                if tokens.peek() == 0x29:
                    tokens.close_list()
                    stack.pop()
                    value = k.all_of(frame.keys)
                    continue
                tokens.sp()
                break
            # The program: keys up to the end of the line.
            if tokens.at_end():
                program = k.all_of(frame.keys)
                if k.depth(program) > MAX_KEY_DEPTH:
                    raise ParseError("Search program too deeply nested")
                return program
            tokens.sp()
            break


def _read_leaf(tokens: Tokenizer, name: str) -> k.SearchKey:
    flag = _FLAG_KEYS.get(name)
    if flag is not None:
        return flag
    text_field = _TEXT_KEYS.get(name)
    if text_field is not None:
        tokens.sp()
        return k.Text(text_field, _read_search_string(tokens))
    date_key = _DATE_KEYS.get(name)
    if date_key is not None:
        tokens.sp()
        return k.DateKey(date_key[0], date_key[1], _read_date(tokens))
    match name:
        case "KEYWORD" | "UNKEYWORD":
            tokens.sp()
            keyword = tokens.read_atom().decode("ascii")
            return k.Keyword(keyword, present=name == "KEYWORD")
        case "HEADER":
            tokens.sp()
            field_name = _read_search_string(tokens)
            tokens.sp()
            try:
                header = field_name.decode("ascii")
            except UnicodeDecodeError:
                raise ParseError("Invalid header field name") from None
            return k.Header(header, _read_search_string(tokens))
        case "LARGER" | "SMALLER":
            tokens.sp()
            return k.Size(name == "LARGER", tokens.read_number(MAX_NUMBER64))
        case "UID":
            tokens.sp()
            return k.Messages(tokens.read_sequence_set(), uid=True)
        case "OLDER" | "YOUNGER":
            tokens.sp()
            return k.Within(name == "OLDER", tokens.read_number(MAX_NUMBER, nonzero=True))
        case "MODSEQ":
            return _read_modseq(tokens)
        case "FILTER":
            # RFC 5466 §4: filter-name = 1*<any ATOM-CHAR except "/">.
            tokens.sp()
            filter_name = tokens.read_atom().decode("ascii")
            if "/" in filter_name:
                raise ParseError("A filter name cannot contain /")
            return k.Filter(filter_name)
    raise ParseError(f"Unknown search key {name}")


def _read_search_string(tokens: Tokenizer) -> bytes:
    """An astring of a search key. A literal's CHAR8 excludes NUL (RFC 9051 §9), and a
    NUL could never match decoded text anyway: it is a syntax error (issue 13 item 6)."""
    value = tokens.read_astring()
    if b"\x00" in value:
        raise ParseError("NUL is not allowed in a search string")
    return value


def _read_modseq(tokens: Tokenizer) -> k.ModSeq:
    """``"MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer``."""
    tokens.sp()
    entry_name: str | None = None
    entry_type: str | None = None
    if tokens.peek() in (0x22, 0x7B):  # a quoted or literal entry-name
        entry_name = tokens.read_string().decode("ascii", "replace")
        if not entry_name.lower().startswith("/flags/"):
            raise ParseError("Invalid MODSEQ entry name")
        tokens.sp()
        entry_type = tokens.read_keyword()
        if entry_type not in _ENTRY_TYPES:
            raise ParseError("Invalid MODSEQ entry type")
        tokens.sp()
    return k.ModSeq(tokens.read_number(MAX_NUMBER64), entry_name, entry_type)


def _read_date(tokens: Tokenizer) -> date:
    text = tokens.read_word(_DATE, "date")
    match = _DATE.fullmatch(text)
    if match is None or text.startswith(b'"') != text.endswith(b'"') or text == b'"':
        raise ParseError("Invalid date")
    day, month_name, year = match.groups()
    month = _MONTHS.get(month_name.decode("ascii").upper())
    if month is None:
        raise ParseError("Invalid month in date")
    try:
        return date(int(year), month, int(day))
    except ValueError:
        raise ParseError("Invalid date") from None
