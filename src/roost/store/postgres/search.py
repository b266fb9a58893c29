"""SEARCH, SORT and THREAD of one account on PostgreSQL.

A ``SearchQuery`` becomes one statement over ``messages`` (``m``) joined to its
``analyses`` row (``a``): flags, dates, sizes, UIDs and modseqs are columns; text is a
``LIKE`` on the casemapped decoded text (schema.py), which the trigram GIN indexes
answer for needles of three or more characters — no scan of bodies in a mailbox of
100,000 messages. Shorter needles are the same ``LIKE``, which then reads the texts of
the candidate messages: still correct, as the SQLite backend's fallback.

Invariants (as sqlite/search.py):

* Every condition is true or false, never NULL (``coalesce``), so NOT means "does not
  match" even for a message without an analysis.
* Substrings compare in i;unicode-casemap form (RFC 5255 I18NLEVEL=1): the texts are
  kept mapped (mime/casemap.py) and the needle is mapped alike.
* Sort keys are kept mapped the same way and compare by their octets (``COLLATE "C"``),
  the comparator's order, as the SQLite backend's BINARY collation.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import asyncpg

from roost.mime.casemap import casemap
from roost.store.postgres.mailboxes import mailbox
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

_COLUMNS: dict[TextField, tuple[str, ...]] = {
    TextField.HEADER: ("x.t_header",),
    TextField.BODY: ("x.t_body",),
    TextField.TEXT: ("x.t_header", "x.t_body"),
    TextField.SUBJECT: ("x.t_subject",),
    TextField.FROM: ("x.t_from",),
    TextField.TO: ("x.t_to",),
    TextField.CC: ("x.t_cc",),
    TextField.BCC: ("x.t_bcc",),
}
# Text is matched in an uncorrelated subquery over the account's analyses: the trigram
# GIN indexes find the few hits once, and each message is a hash probe (no NULLs: NOT
# of it is exactly "does not match").
_TEXT_MATCH = "m.blob_id IN (SELECT x.blob_id FROM analyses x WHERE x.account_id = $2 AND ({}))"
_JOIN = "LEFT JOIN analyses a ON a.account_id = m.account_id AND a.blob_id = m.blob_id"


async def search(
    conn: asyncpg.Connection, account_id: int, mailbox_id: int, query: SearchQuery
) -> SearchResult:
    await mailbox(conn, account_id, mailbox_id)
    order = [ORDER[o.field] + (" DESC" if o.reverse else "") for o in query.order]
    analysis = any(o.field not in MESSAGE_SORTS for o in query.order)
    sql, params = _select(account_id, mailbox_id, query, "m.uid, m.modseq", order, analysis)
    rows = await conn.fetch(sql, *params)
    if not rows:
        return SearchResult([], 0)
    return SearchResult([row[0] for row in rows], max(row[1] for row in rows))


async def thread_fields(
    conn: asyncpg.Connection, account_id: int, mailbox_id: int, query: SearchQuery
) -> list[ThreadFields]:
    await mailbox(conn, account_id, mailbox_id)
    columns = (
        "m.uid, coalesce(a.sent_date, m.internaldate), coalesce(a.subject, ''),"
        " coalesce(a.message_id, ''), coalesce(a.in_reply_to, ''), coalesce(a.refs, '')"
    )
    sql, params = _select(account_id, mailbox_id, query, columns, [], True)
    rows = await conn.fetch(sql, *params)
    stamp = datetime.fromtimestamp
    return [
        ThreadFields(uid, stamp(sent, UTC), subject, message_id, in_reply_to, tuple(refs.split()))
        for uid, sent, subject, message_id, in_reply_to, refs in rows
    ]


def _select(
    account_id: int,
    mailbox_id: int,
    query: SearchQuery,
    columns: str,
    order: list[str],
    analysis: bool,
) -> tuple[str, list[object]]:
    """The statement; ``columns`` and ``order`` may read ``a`` where ``analysis``."""
    compiler = _Compiler()
    compiler.params += (mailbox_id, account_id)
    where = "m.mailbox_id = $1 AND m.account_id = $2"
    if query.max_uid is not None:
        where += f" AND m.uid <= {compiler.param(query.max_uid)}"
    condition = compiler.compile(query.criterion)
    if condition != "true":
        where += f" AND {condition}"
    join = _JOIN if analysis or compiler.needs_analysis else ""
    sql = (
        f"SELECT {columns} FROM messages m {join} WHERE {where}"
        f" ORDER BY {', '.join([*order, 'm.uid'])}"
    )
    return sql, compiler.params


class _Compiler:
    """A criterion tree to one boolean SQL expression, with its parameters in order."""

    def __init__(self) -> None:
        self.params: list[object] = []  # $1 the mailbox, $2 the account
        self.needs_analysis = False  # the condition reads a's columns

    def param(self, value: object) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def compile(self, criterion: Criterion) -> str:
        match criterion:
            case MatchAll():
                return "true"
            case MatchUids(ranges=ranges):
                return self._uids(ranges)
            case MatchFlag(flag=flag):
                return self._flag(flag)
            case MatchArrivalDay(comparison=comparison, day=day):
                value = self.param(day.toordinal() - EPOCH_ORDINAL)
                return f"{ARRIVAL_DAY} {COMPARE[comparison]} {value}"
            case MatchSentDay(comparison=comparison, day=day):
                value = self.param(day.toordinal() - EPOCH_ORDINAL)
                self.needs_analysis = True
                return f"coalesce(a.sent_day, {ARRIVAL_DAY}) {COMPARE[comparison]} {value}"
            case MatchSavedDay(comparison=comparison, day=day):
                value = self.param(day.toordinal() - EPOCH_ORDINAL)
                return (
                    f"(coalesce(m.savedate, m.internaldate) / 86400) {COMPARE[comparison]} {value}"
                )
            case MatchArrivedBy(instant=instant):
                return f"m.internaldate <= {self.param(int(instant.timestamp()))}"
            case MatchLarger(size=size):
                return f"m.size > {self.param(size)}"
            case MatchSmaller(size=size):
                return f"m.size < {self.param(size)}"
            case MatchModSeq(modseq=modseq):
                return f"m.modseq >= {self.param(modseq)}"
            case MatchText(field=field, text=text):
                return self._text(field, text)
            case MatchHeader(name=name, text=text):
                return self._header(name, text)
            case MatchNot(criterion=inner):
                return f"NOT ({self.compile(inner)})"
            case MatchAllOf(criteria=criteria):
                parts = [self.compile(c) for c in criteria]
                return "(" + " AND ".join(parts) + ")" if parts else "true"
            case MatchAnyOf(criteria=criteria):
                parts = [self.compile(c) for c in criteria]
                return "(" + " OR ".join(parts) + ")" if parts else "false"
        raise TypeError(f"not a search criterion: {criterion!r}")

    def _uids(self, ranges: tuple[tuple[int, int], ...]) -> str:
        if not ranges:
            return "false"
        if len(ranges) <= 16:
            tests = [f"m.uid BETWEEN {self.param(lo)} AND {self.param(hi)}" for lo, hi in ranges]
            return "(" + " OR ".join(tests) + ")"
        lows = self.param([lo for lo, _ in ranges])
        highs = self.param([hi for _, hi in ranges])
        return (
            f"EXISTS (SELECT 1 FROM unnest({lows}::bigint[], {highs}::bigint[]) AS r(lo, hi)"
            " WHERE m.uid BETWEEN r.lo AND r.hi)"
        )

    def _flag(self, flag: str) -> str:
        if flag.startswith("\\"):
            bit = FLAG_BITS.get(flag.lower())
            if bit is None:  # \Recent and unknown system flags are never stored
                return "false"
            return f"(m.flags & {bit} != 0)"
        needle = self.param(f" {flag.lower()} ")
        return f"(strpos(' ' || lower(m.keywords) || ' ', {needle}) > 0)"

    def _text(self, field: TextField, text: str) -> str:
        if not text:
            return "true"  # the empty string is in every text
        pattern = self.param("%" + _like_escape(casemap(text)) + "%")
        tests = [f"{column} LIKE {pattern}" for column in _COLUMNS[field]]
        return _TEXT_MATCH.format(" OR ".join(tests))

    def _header(self, name: str, text: str) -> str:
        """RFC 9051 §6.4.4 HEADER: a ``Name: value`` line of the decoded header with that
        name and a value containing ``text``; LIKE terms let the index narrow it first."""
        folded_name, folded_text = casemap(name), casemap(text)
        tests = [f"x.t_header LIKE {self.param('%' + _like_escape(folded_name + ':') + '%')}"]
        if folded_text:
            tests.append(f"x.t_header LIKE {self.param('%' + _like_escape(folded_text) + '%')}")
        line = (
            "(^|\n)[ \t]*"
            + _regex_escape(folded_name)
            + "[ \t]*:[^\n]*"
            + _regex_escape(folded_text)
        )
        tests.append(f"x.t_header ~ {self.param(line)}")
        return _TEXT_MATCH.format(" AND ".join(tests))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _regex_escape(text: str) -> str:
    """Literal in a PostgreSQL ARE: every character that is not alphanumeric behind a
    backslash (a backslash before one of those is the character itself)."""
    return re.sub(r"([^\w])", r"\\\1", text)
