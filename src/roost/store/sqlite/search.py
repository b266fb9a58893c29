"""SEARCH, SORT and THREAD queries of one account (run on its worker thread).

A ``SearchQuery`` becomes one SQL statement over ``messages``: flags, dates, sizes,
UIDs and modseqs are columns; text is looked up in the FTS5 trigram index
(``message_text``), which finds any substring of three or more characters,
case-insensitively, without reading a message file. Shorter needles cannot use
trigrams: they scan the decoded text columns of the candidate messages instead.

Invariants:

* Every condition is 0 or 1, never NULL, so NOT means "does not match" even for a
  message without an analysis.
* Where every result must match an indexed text term (alone, or in the top-level
  AND), the statement starts from the index's hits and looks each one up in
  ``messages_by_blob``: a rare word costs milliseconds in any mailbox size. Elsewhere
  an index lookup is an uncorrelated ``m.blob_id IN (...)`` subquery, run once; the
  text terms of one AND or OR share one MATCH.
* Text columns sort with ``upper()``, which folds ASCII only: exactly the
  i;ascii-casemap collation that RFC 5256 §2.1 requires.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from roost.mime.casemap import casemap
from roost.store.query import (
    Criterion,
    MatchAll,
    MatchAllOf,
    MatchAnyOf,
    MatchArrivalDay,
    MatchArrivedBy,
    MatchFlag,
    MatchHeader,
    MatchLarger,
    MatchModSeq,
    MatchNot,
    MatchSavedDay,
    MatchSentDay,
    MatchSmaller,
    MatchText,
    MatchUids,
    SearchQuery,
    SearchResult,
    TextField,
    ThreadFields,
)
from roost.store.sql_terms import (
    ARRIVAL_DAY,
    COMPARE,
    EPOCH_ORDINAL,
    FLAG_BITS,
    MESSAGE_SORTS,
    ORDER,
)
from roost.store.sqlite.analyses import indexed_read

if TYPE_CHECKING:
    from roost.store.sqlite.db import Database

MAX_BETWEEN_RANGES = 16  # more UID ranges than this go through one JSON list
_COLUMNS: dict[TextField, tuple[str, ...]] = {
    TextField.HEADER: ("header",),
    TextField.BODY: ("body",),
    TextField.TEXT: ("header", "body"),
    TextField.SUBJECT: ("subject",),
    TextField.FROM: ("addr_from",),
    TextField.TO: ("addr_to",),
    TextField.CC: ("addr_cc",),
    TextField.BCC: ("addr_bcc",),
}
# CROSS JOIN fixes the join order (SQLite never reorders it): the index first.
_HITS = (
    "(SELECT x.blob_id AS blob_id FROM message_text CROSS JOIN analyses x"
    " ON x.id = message_text.rowid WHERE message_text MATCH ?) hits"
)
_INDEXED = (
    "m.blob_id IN (SELECT x.blob_id FROM message_text CROSS JOIN analyses x"
    " ON x.id = message_text.rowid WHERE message_text MATCH ?)"
)
_INDEXED_HEADER = (
    "m.blob_id IN (SELECT x.blob_id FROM message_text CROSS JOIN analyses x"
    " ON x.id = message_text.rowid WHERE message_text MATCH ?"
    " AND roost_header_contains(message_text.header, ?, ?))"
)


def search(db: Database, mailbox_id: int, query: SearchQuery) -> SearchResult:
    order = [ORDER[o.field] + (" DESC" if o.reverse else "") for o in query.order]
    sorts_on_analysis = any(o.field not in MESSAGE_SORTS for o in query.order)
    sql, params = _select(mailbox_id, query, "m.uid, m.modseq", order, sorts_on_analysis)
    with indexed_read(db):
        db.mailbox(mailbox_id)
        rows = db.conn.execute(sql, params).fetchall()
    if not rows:
        return SearchResult([], 0)
    return SearchResult([uid for uid, _ in rows], max(modseq for _, modseq in rows))


def thread_fields(db: Database, mailbox_id: int, query: SearchQuery) -> list[ThreadFields]:
    columns = (
        "m.uid, coalesce(a.sent_date, m.internaldate), coalesce(t.subject, ''),"
        " coalesce(a.message_id, ''), coalesce(a.in_reply_to, ''), coalesce(a.refs, '')"
    )
    sql, params = _select(mailbox_id, query, columns, [], True, text=True)
    with indexed_read(db):
        db.mailbox(mailbox_id)
        rows = db.conn.execute(sql, params).fetchall()
    stamp = datetime.fromtimestamp
    return [
        ThreadFields(uid, stamp(sent, UTC), subject, message_id, in_reply_to, tuple(refs.split()))
        for uid, sent, subject, message_id, in_reply_to, refs in rows
    ]


def _select(
    mailbox_id: int,
    query: SearchQuery,
    columns: str,
    order: list[str],
    analysis: bool,
    *,
    text: bool = False,
) -> tuple[str, list[object]]:
    """The statement: ``columns`` (and ``order``) may read ``a`` where ``analysis``,
    ``t`` where ``text``."""
    compiler = _Compiler(mailbox_id)
    driver, rest = _index_driver(query.criterion)
    condition = compiler.compile(rest)
    text = text or compiler.needs_text
    params: list[object] = []
    source = "messages m"
    if driver is not None:
        # The index finds the few candidates; each is one lookup in messages_by_blob.
        source = f"{_HITS} CROSS JOIN messages m ON m.blob_id = hits.blob_id"
        params.append(driver)
    if analysis or text or compiler.needs_analysis:
        source += " LEFT JOIN analyses a ON a.blob_id = m.blob_id"
    if text:
        source += " LEFT JOIN message_text t ON t.rowid = a.id"
    where = "m.mailbox_id = ?"
    params.append(mailbox_id)
    if query.max_uid is not None:
        where += " AND m.uid <= ?"
        params.append(query.max_uid)
    if condition != "1":
        where += f" AND {condition}"
        params += compiler.params
    sql = f"SELECT {columns} FROM {source} WHERE {where} ORDER BY {', '.join([*order, 'm.uid'])}"
    return sql, params


def _index_driver(criterion: Criterion) -> tuple[str | None, Criterion]:
    """The MATCH expression every result must satisfy, if there is one, and what is
    left to check: an indexed text term, an OR of only such terms (Thunderbird's quick
    filter), or any of those in the top-level AND."""
    term = _match_expression(criterion)
    if term is not None:
        return term, MatchAll()
    if isinstance(criterion, MatchAllOf):
        terms = [(c, _match_expression(c)) for c in criterion.criteria]
        matched = [t for _, t in terms if t is not None]
        if matched:
            rest = tuple(c for c, t in terms if t is None)
            return " AND ".join(matched), MatchAllOf(rest)
    return None, criterion


def _match_expression(criterion: Criterion) -> str | None:
    """An FTS5 expression exactly equivalent to ``criterion``, where there is one."""
    if isinstance(criterion, MatchText) and _indexable(criterion):
        return _match_term(criterion)
    if isinstance(criterion, MatchAnyOf) and criterion.criteria:
        terms = [_match_expression(c) for c in criterion.criteria]
        if all(t is not None for t in terms):
            return "(" + " OR ".join(t for t in terms if t is not None) + ")"
    return None


class _Compiler:
    """A criterion tree to one SQL condition over ``m`` (messages), ``a`` (analyses)
    and ``t`` (message_text), with its parameters in order."""

    def __init__(self, mailbox_id: int) -> None:
        self.mailbox_id = mailbox_id
        self.params: list[object] = []
        self.needs_analysis = False  # the condition reads a's columns
        self.needs_text = False  # … or t's

    def compile(self, criterion: Criterion) -> str:
        match criterion:
            case MatchAll():
                return "1"
            case MatchUids(ranges=ranges):
                return self._uids(ranges)
            case MatchFlag(flag=flag):
                return self._flag(flag)
            case MatchArrivalDay(comparison=comparison, day=day):
                self.params.append(day.toordinal() - EPOCH_ORDINAL)
                return f"{ARRIVAL_DAY} {COMPARE[comparison]} ?"
            case MatchSentDay(comparison=comparison, day=day):
                self.params.append(day.toordinal() - EPOCH_ORDINAL)
                self.needs_analysis = True
                return f"coalesce(a.sent_day, {ARRIVAL_DAY}) {COMPARE[comparison]} ?"
            case MatchSavedDay(comparison=comparison, day=day):
                self.params.append(day.toordinal() - EPOCH_ORDINAL)
                return f"(coalesce(m.savedate, m.internaldate) / 86400) {COMPARE[comparison]} ?"
            case MatchArrivedBy(instant=instant):
                self.params.append(int(instant.timestamp()))
                return "m.internaldate <= ?"
            case MatchLarger(size=size):
                self.params.append(size)
                return "m.size > ?"
            case MatchSmaller(size=size):
                self.params.append(size)
                return "m.size < ?"
            case MatchModSeq(modseq=modseq):
                self.params.append(modseq)
                return "m.modseq >= ?"
            case MatchText():
                return self._text(criterion)
            case MatchHeader(name=name, text=text):
                return self._header(name, text)
            case MatchNot(criterion=inner):
                return f"NOT ({self.compile(inner)})"
            case MatchAllOf(criteria=criteria):
                return self._combine(criteria, " AND ", "1")
            case MatchAnyOf(criteria=criteria):
                return self._combine(criteria, " OR ", "0")
        raise TypeError(f"not a search criterion: {criterion!r}")

    def _combine(self, criteria: tuple[Criterion, ...], joiner: str, empty: str) -> str:
        # The indexed text terms of one AND / OR become one MATCH expression.
        indexed = [c for c in criteria if isinstance(c, MatchText) and _indexable(c)]
        parts: list[str] = []
        rest = list(criteria)
        if len(indexed) > 1:
            self.params.append(joiner.join(_match_term(c) for c in indexed))
            parts.append(_INDEXED)
            rest = [c for c in criteria if not any(c is i for i in indexed)]
        parts += [self.compile(c) for c in rest]
        if not parts:
            return empty
        return "(" + joiner.join(parts) + ")"

    def _uids(self, ranges: tuple[tuple[int, int], ...]) -> str:
        if not ranges:
            return "0"
        if len(ranges) <= MAX_BETWEEN_RANGES:
            for low, high in ranges:
                self.params += (low, high)
            return "(" + " OR ".join(["m.uid BETWEEN ? AND ?"] * len(ranges)) + ")"
        # Each range is an index range scan, run once: no per-UID expansion.
        self.params += (json.dumps(ranges), self.mailbox_id)
        return (
            "m.uid IN (SELECT x.uid FROM json_each(?) r JOIN messages x"
            " ON x.mailbox_id = ? AND x.uid BETWEEN json_extract(r.value, '$[0]')"
            " AND json_extract(r.value, '$[1]'))"
        )

    def _flag(self, flag: str) -> str:
        if flag.startswith("\\"):
            bit = FLAG_BITS.get(flag.lower())
            if bit is None:  # \Recent and unknown system flags are never stored
                return "0"
            return f"(m.flags & {bit} != 0)"
        self.params.append(f" {flag.lower()} ")
        return "(instr(' ' || lower(m.keywords) || ' ', ?) > 0)"

    def _text(self, criterion: MatchText) -> str:
        if not criterion.text:
            return "1"  # the empty string is in every text
        # RFC 5255 I18NLEVEL=1: the text is kept mapped by i;unicode-casemap, and so
        # is the needle; with trigrams, the phrase is then a substring match.
        if _indexable(criterion):
            self.params.append(_match_term(criterion))
            return _INDEXED
        needle = casemap(criterion.text)
        columns = _COLUMNS[criterion.field]
        # Too short for trigrams: scan the candidates' decoded text.
        self.needs_text = True
        tests = [self._contains(f"t.{column}", needle) for column in columns]
        return "coalesce(" + " OR ".join(tests) + ", 0)"

    def _contains(self, column: str, needle: str) -> str:
        self.params.append(needle)
        return f"instr({column}, ?) > 0"

    def _header(self, name: str, text: str) -> str:
        """RFC 9051 §6.4.4 HEADER: the field's value contains ``text``; the index narrows
        the candidates when the field name or the text is long enough."""
        name, text = casemap(name), casemap(text)
        name_term = f"{name}:"
        terms = [f"header : {_phrase(term)}" for term in (name_term, text) if len(term) >= 3]
        if terms:
            self.params += (" AND ".join(terms), name, text)
            return _INDEXED_HEADER
        self.needs_text = True
        self.params += (name, text)
        return "coalesce(roost_header_contains(t.header, ?, ?), 0)"


def _indexable(criterion: Criterion) -> bool:
    return isinstance(criterion, MatchText) and len(casemap(criterion.text)) >= 3


def _match_term(criterion: MatchText) -> str:
    """The FTS5 term: the needle casemapped as the indexed text is (RFC 5255)."""
    columns = _COLUMNS[criterion.field]
    target = columns[0] if len(columns) == 1 else "{" + " ".join(columns) + "}"
    return f"{target} : {_phrase(casemap(criterion.text))}"


def _phrase(text: str) -> str:
    """An FTS5 string: with trigrams, a phrase is a substring match."""
    return '"' + text.replace('"', '""') + '"'


# ---- SQL functions ----------------------------------------------------------------------


def register_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("roost_header_contains", 3, _header_contains, deterministic=True)


def _header_contains(header_text: str | None, mapped_name: str, mapped_needle: str) -> int:
    """Whether a ``Name: value`` line of ``header_text`` (kept casemapped) has that
    name and a value containing the needle (both casemapped)."""
    if header_text is None:
        return 0
    for line in header_text.split("\n"):
        name, colon, value = line.partition(":")
        if colon and name.strip() == mapped_name and mapped_needle in value:
            return 1
    return 0
