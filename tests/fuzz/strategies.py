"""Hypothesis strategies for IMAP client input, built from the command grammar.

Most of what they draw is valid or nearly valid (RFC 9051 §9), because a parser is
only exercised past its first check by input that passes it; the rest is damage
applied on top (``mutated``) and plain random bytes. Everything is ``bytes`` on the
wire: a literal is drawn together with its data, so a drawn command line may span
several lines.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from hypothesis import strategies as st

# ---- lexical pieces -------------------------------------------------------------------

_ATOM_ALPHABET = bytes(b for b in range(0x21, 0x7F) if b not in b'(){%*"\\]')
_TAG_ALPHABET = bytes(b for b in _ATOM_ALPHABET if b != ord("+"))


def _word(alphabet: bytes, min_size: int = 1, max_size: int = 10) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(alphabet), min_size=min_size, max_size=max_size).map(bytes)


def join(*parts: bytes) -> bytes:
    """Join the non-empty parts with single spaces."""
    return b" ".join(p for p in parts if p)


ODD_BYTES = st.sampled_from(
    [b"\x00", b"\r", b"\n", b"\r\n", b"\x7f", b"\xff", b"\xc3\xa9", b"&", b"&-", b"&AOk-", b"%"]
)

_odd_tags = st.sampled_from([b"*", b"+", b"a+b", b"\xff", b"{1}", b"(", b")", b'"t"', b"]", b""])
tags = st.integers(0, 19).flatmap(
    lambda n: (
        _word(b"Aa01.", max_size=5)
        if n < 14
        else _word(_TAG_ALPHABET, max_size=8)
        if n < 18
        else _odd_tags
    )
)
atoms = _word(_ATOM_ALPHABET)
numbers = st.one_of(
    st.integers(1, 12),
    st.integers(1, 12),
    st.integers(1, 12),
    st.integers(0, 100),
    st.sampled_from([4294967295, 4294967296, 9223372036854775807, 10**30]),
).map(lambda n: str(n).encode())
_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=12)
raw_strings = st.one_of(
    _text.map(lambda t: t.encode()),
    _text.map(lambda t: t.encode()),
    st.binary(max_size=16),
    st.lists(st.one_of(atoms, ODD_BYTES), max_size=4).map(b"".join),
)


def quote(data: bytes) -> bytes:
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


@st.composite
def literals(draw: st.DrawFn, data: st.SearchStrategy[bytes] = raw_strings) -> bytes:
    """``{n}``, ``{n+}`` or ``~{n}`` and its data; sometimes with the wrong count."""
    value = draw(data)
    size = len(value)
    if draw(st.integers(0, 9)) == 0:
        size = max(0, size + draw(st.integers(-3, 3)))
    prefix = draw(st.sampled_from([b"", b"", b"", b"~"]))
    plus = draw(st.sampled_from([b"", b"+"]))
    return prefix + b"{%d%s}\r\n" % (size, plus) + value


quoted = st.one_of(
    raw_strings.map(quote),
    raw_strings.map(quote),
    raw_strings.map(quote),
    raw_strings.map(lambda data: b'"' + data),  # unterminated
)
strings = st.one_of(quoted, literals())
astrings = st.one_of(atoms, strings)
nstrings = st.one_of(st.just(b"NIL"), strings)

MAILBOX_NAMES = [
    b"INBOX",
    b"inbox",
    b"Trash",
    b"Sent",
    b"Archive",
    b"a/b",
    b"a/b/c",
    b"new",
    b"..",
    b"../bob/INBOX",
    b"~bob",
    b"#users/bob",
    b"/bob",
    b"bob/",
    b"a//b",
    b"%2e%2e",
    b"&AC4ALg-",  # ".." in modified UTF-7
    b"&AC8-bob",  # "/bob"
    b"&-",
    b"&Jjo-",
    b"&",
    b"\xc3\xa9t\xc3\xa9",
    b"INBOX/child",
    b"Drafts",
]
mailboxes = st.one_of(
    st.sampled_from(MAILBOX_NAMES),
    st.sampled_from(MAILBOX_NAMES).map(quote),
    astrings,
)
list_patterns = st.one_of(
    st.sampled_from([b"*", b"%", b'""', b"INBOX", b"*/%", b"%/%", b"~bob/*", b"../*"]),
    mailboxes,
)

values = st.recursive(
    st.one_of(atoms, strings, st.just(b"NIL"), numbers),
    lambda children: st.lists(children, max_size=4).map(lambda xs: b"(" + b" ".join(xs) + b")"),
    max_leaves=10,
)


def deep_list(depth: int) -> bytes:
    return b"(" * depth + b"x" + b")" * depth


nested = st.integers(1, 40).map(deep_list)


def parenthesised(items: st.SearchStrategy[bytes], min_size: int = 0) -> st.SearchStrategy[bytes]:
    return st.lists(items, min_size=min_size, max_size=5).map(
        lambda xs: b"(" + b" ".join(xs) + b")"
    )


# ---- grammar-level pieces -------------------------------------------------------------

_seq_number = st.one_of(numbers, st.just(b"*"))
_seq_range = st.one_of(_seq_number, st.tuples(_seq_number, _seq_number).map(b":".join))
sequence_sets = st.one_of(
    st.lists(_seq_range, min_size=1, max_size=4).map(b",".join),
    st.sampled_from([b"1", b"1:*", b"*", b"$", b"1,2,3", b"2:1", b"0", b"1:", b",", b"1,,2"]),
)

system_flags = st.sampled_from(
    [b"\\Seen", b"\\Deleted", b"\\Flagged", b"\\Answered", b"\\Draft", b"\\Recent", b"\\*"]
)
flags = st.one_of(system_flags, atoms, atoms.map(lambda a: b"\\" + a), st.just(b"$Forwarded"))
flag_lists = parenthesised(flags)

_SECTION_TEXTS = [b"", b"HEADER", b"TEXT", b"MIME", b"HEADER.FIELDS", b"HEADER.FIELDS.NOT"]


@st.composite
def sections(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.sampled_from([b"1", b"2", b"0", b"01", b"3"]), max_size=3))
    text = draw(st.sampled_from(_SECTION_TEXTS))
    spec = b".".join([*parts, text] if text else parts)
    if text.startswith(b"HEADER.FIELDS"):
        names = st.sampled_from([b"From", b"Subject", b"to", b'"X-Odd"', b"{4}\r\nDate", b":"])
        spec += b" " + draw(parenthesised(names, min_size=draw(st.integers(0, 1))))
    return b"[" + spec + b"]"


@st.composite
def partials(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return b""
    return b"<" + draw(numbers) + b"." + draw(numbers) + b">"


@st.composite
def fetch_attributes(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(
            st.sampled_from(
                [
                    b"FLAGS",
                    b"UID",
                    b"INTERNALDATE",
                    b"RFC822.SIZE",
                    b"RFC822",
                    b"RFC822.HEADER",
                    b"RFC822.TEXT",
                    b"ENVELOPE",
                    b"BODY",
                    b"BODYSTRUCTURE",
                    b"MODSEQ",
                    b"EMAILID",
                    b"ALL",
                    b"FAST",
                    b"FULL",
                    b"flags",
                    b"NOPE",
                ]
            )
        )
    if kind == 1:
        name = draw(st.sampled_from([b"BODY", b"BODY.PEEK", b"body.peek"]))
        return name + draw(sections()) + draw(partials())
    if kind == 2:
        name = draw(st.sampled_from([b"BINARY", b"BINARY.PEEK", b"BINARY.SIZE"]))
        part = draw(st.sampled_from([b"", b"1", b"1.2", b"0"]))
        return name + b"[" + part + b"]" + draw(partials())
    return draw(atoms)


fetch_items = st.one_of(fetch_attributes(), parenthesised(fetch_attributes(), min_size=1))

_MONTHS = [b"Jan", b"feb", b"MAR", b"Dec", b"Foo"]


@st.composite
def date_times(draw: st.DrawFn) -> bytes:
    day = draw(st.sampled_from([b" 1", b"01", b"31", b"30", b"00", b"1"]))
    month = draw(st.sampled_from(_MONTHS))
    year = draw(st.sampled_from([b"2026", b"1970", b"0000", b"9999"]))
    time = draw(st.sampled_from([b"10:00:00", b"23:59:60", b"24:00:00", b"1:2:3"]))
    zone = draw(st.sampled_from([b"+0000", b"-0130", b"+9999", b"+2400", b"0000"]))
    return b'"' + day + b"-" + month + b"-" + year + b" " + time + b" " + zone + b'"'


MESSAGES = [
    b"Subject: hi\r\n\r\nbody\r\n",
    b"From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\n\r\n",
    b"no header at all",
    b"\r\n",
    b"",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b--\r\n",
]
message_literals = literals(st.one_of(st.sampled_from(MESSAGES), st.binary(max_size=64)))


# CATENATE URL parts (RFC 4469, RFC 5092): good, relative, foreign, URLAUTH and broken.
CATENATE_URLS = [
    b"/INBOX/;UID=1",
    b"/INBOX;UIDVALIDITY=1/;UID=1/;SECTION=HEADER",
    b"/INBOX/;UID=1/;SECTION=1.MIME/;PARTIAL=0.10",
    b"/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20(Subject)",
    b";UID=1/;SECTION=TEXT",
    b";PARTIAL=3",
    b"imap://alice@roost/INBOX/;UID=2",
    b"imap://bob@roost/INBOX/;UID=1",
    b"/INBOX/;UID=1;URLAUTH=anonymous",
    b"/INBOX/;UID=99/;SECTION=9.9",
    b"/%FF/;UID=1",
    b"/INBOX/;UID=",
]


@st.composite
def catenations(draw: st.DrawFn) -> bytes:
    """``CATENATE (cat-part *(SP cat-part))``: TEXT literals and URL astrings."""
    url = st.sampled_from(CATENATE_URLS).map(quote)
    part = st.one_of(
        st.tuples(st.just(b"TEXT"), literals(st.sampled_from(MESSAGES))),
        st.tuples(st.just(b"URL"), st.one_of(url, literals(st.sampled_from(CATENATE_URLS)))),
    ).map(lambda pair: join(*pair))
    return join(b"CATENATE", draw(parenthesised(part, min_size=1)))


@st.composite
def append_messages(draw: st.DrawFn) -> bytes:
    return join(
        draw(st.one_of(st.just(b""), flag_lists)),
        draw(st.one_of(st.just(b""), date_times())),
        draw(st.one_of(message_literals, catenations())),
    )


# ---- commands -------------------------------------------------------------------------


def _command(name: bytes, *args: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    spellings = st.sampled_from([name, name.lower(), name.capitalize()])
    return st.tuples(spellings, *args).map(lambda parts: join(*parts))


def _optional(strategy: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.just(b""), strategy)


_status_items = parenthesised(
    st.sampled_from(
        b"MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT HIGHESTMODSEQ APPENDLIMIT"
        b" MAILBOXID BOGUS".split()
    )
)
_list_selection = parenthesised(
    st.sampled_from([b"SUBSCRIBED", b"REMOTE", b"RECURSIVEMATCH", b"SPECIAL-USE", b"X"])
)
_list_return = st.one_of(
    parenthesised(st.sampled_from([b"SUBSCRIBED", b"CHILDREN", b"SPECIAL-USE"])),
    _status_items.map(lambda items: b"(STATUS " + items + b")"),
).map(lambda r: b"RETURN " + r)
_base64 = st.sampled_from(
    [b"AGFsaWNlAHB3", b"=", b"*", b"!!!", b"AGFsaWNl", b"YWxpY2U=", b"Zm9v====", b"AA=="]
)
_mechanisms = st.sampled_from([b"PLAIN", b"LOGIN", b"plain", b"CRAM-MD5", b"XOAUTH2", b"X"])
_store_items = st.sampled_from(
    [b"FLAGS", b"+FLAGS", b"-FLAGS", b"FLAGS.SILENT", b"+FLAGS.SILENT", b"-flags", b"LABELS"]
)
_search_dates = st.sampled_from(
    [b"1-Jan-2026", b"22-Nov-2026", b'"01-Feb-1999"', b"31-Feb-2026", b"x"]
)
_search_leaves = st.one_of(
    st.sampled_from(
        b"ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED UNDRAFT"
        b" UNFLAGGED UNSEEN $".split()
    ),
    st.tuples(st.sampled_from(b"BCC BODY CC FROM SUBJECT TEXT TO".split()), astrings).map(
        lambda kv: join(*kv)
    ),
    st.tuples(
        st.sampled_from(b"BEFORE ON SINCE SENTBEFORE SENTON SENTSINCE".split()), _search_dates
    ).map(lambda kv: join(*kv)),
    st.tuples(st.sampled_from(b"LARGER SMALLER OLDER YOUNGER MODSEQ".split()), numbers).map(
        lambda kv: join(*kv)
    ),
    st.tuples(st.sampled_from([b"KEYWORD", b"UNKEYWORD"]), flags).map(lambda kv: join(*kv)),
    st.tuples(st.just(b"HEADER"), astrings, astrings).map(lambda kv: join(*kv)),
    st.tuples(st.sampled_from([b"UID", b""]), sequence_sets).map(lambda kv: join(*kv)),
)
search_keys = st.recursive(
    _search_leaves,
    lambda keys: st.one_of(
        keys.map(lambda k: b"NOT " + k),
        st.tuples(keys, keys).map(lambda ks: b"OR " + ks[0] + b" " + ks[1]),
        st.lists(keys, min_size=1, max_size=3).map(lambda ks: b"(" + b" ".join(ks) + b")"),
    ),
    max_leaves=6,
)
_search_program = st.tuples(
    _optional(
        parenthesised(st.sampled_from([b"MIN", b"MAX", b"ALL", b"COUNT", b"SAVE", b"X"])).map(
            lambda r: b"RETURN " + r
        )
    ),
    _optional(st.sampled_from([b"CHARSET UTF-8", b"CHARSET US-ASCII", b"CHARSET KOI8-R"])),
    st.lists(search_keys, min_size=1, max_size=3).map(lambda xs: join(*xs)),
).map(lambda parts: join(*parts))
_sort_criteria = parenthesised(
    st.sampled_from(
        [
            b"ARRIVAL",
            b"CC",
            b"DATE",
            b"FROM",
            b"SIZE",
            b"SUBJECT",
            b"TO",
            b"REVERSE",
            b"DISPLAYFROM",
        ]
    ),
    min_size=1,
)
_notify_events = parenthesised(
    st.sampled_from(
        [
            *(b"MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange".split()),
            *(b"MessageNew (UID FLAGS)", b"AnnotationChange", b"NONE"),
        ]
    )
)
_notify = st.one_of(
    st.just(b"NONE"),
    st.tuples(
        st.sampled_from([b"SET", b"SET STATUS"]),
        st.lists(
            st.tuples(
                st.sampled_from(
                    [
                        *(b"SELECTED SELECTED-DELAYED INBOXES PERSONAL SUBSCRIBED".split()),
                        *(b"SUBTREE INBOX", b"MAILBOXES (INBOX Trash)", b"MAILBOXES ()"),
                    ]
                ),
                _notify_events,
            ).map(lambda kv: b"(" + join(*kv) + b")"),
            min_size=1,
            max_size=3,
        ).map(lambda xs: join(*xs)),
    ).map(lambda kv: join(*kv)),
)

_uid_inner = st.one_of(
    _command(b"FETCH", sequence_sets, fetch_items),
    _command(b"STORE", sequence_sets, _store_items, st.one_of(flag_lists, flags)),
    _command(b"COPY", sequence_sets, mailboxes),
    _command(b"MOVE", sequence_sets, mailboxes),
    _command(b"EXPUNGE", sequence_sets),
    _command(b"SEARCH", _search_program),
    _command(b"SORT", _sort_criteria, st.just(b"UTF-8"), search_keys),
    _command(b"THREAD", st.sampled_from([b"REFERENCES", b"ORDEREDSUBJECT", b"X"]), atoms),
)

command_bodies = st.one_of(
    _command(b"CAPABILITY"),
    _command(b"NOOP"),
    _command(b"LOGOUT"),
    _command(b"ID", st.one_of(st.just(b"NIL"), parenthesised(st.one_of(strings, nstrings)))),
    _command(b"STARTTLS"),
    _command(b"LOGIN", astrings, astrings),
    _command(b"AUTHENTICATE", _mechanisms, _optional(_base64)),
    _command(b"ENABLE", st.sampled_from([b"UTF8=ACCEPT", b"CONDSTORE", b"QRESYNC", b"X"])),
    _command(b"SELECT", mailboxes, _optional(values)),
    _command(b"EXAMINE", mailboxes, _optional(values)),
    _command(b"CREATE", mailboxes, _optional(st.just(b"(USE (\\Archive))"))),
    _command(b"DELETE", mailboxes),
    _command(b"RENAME", mailboxes, mailboxes),
    _command(b"SUBSCRIBE", mailboxes),
    _command(b"UNSUBSCRIBE", mailboxes),
    _command(
        b"LIST", _optional(_list_selection), mailboxes, list_patterns, _optional(_list_return)
    ),
    _command(b"LSUB", mailboxes, list_patterns),
    _command(b"NAMESPACE"),
    _command(b"STATUS", mailboxes, _status_items),
    _command(
        b"APPEND",
        mailboxes,
        st.lists(append_messages(), min_size=1, max_size=3).map(lambda xs: join(*xs)),
    ),
    _command(b"IDLE"),
    _command(b"CHECK"),
    _command(b"CLOSE"),
    _command(b"UNSELECT"),
    _command(b"EXPUNGE"),
    _command(b"FETCH", sequence_sets, fetch_items, _optional(values)),
    _command(
        b"STORE", sequence_sets, _optional(values), _store_items, st.one_of(flag_lists, flags)
    ),
    _command(b"COPY", sequence_sets, mailboxes),
    _command(b"MOVE", sequence_sets, mailboxes),
    _command(b"SEARCH", _search_program),
    _command(
        b"SORT", _optional(st.just(b"RETURN (ALL)")), _sort_criteria, st.just(b"UTF-8"), search_keys
    ),
    _command(
        b"THREAD",
        st.sampled_from([b"REFERENCES", b"ORDEREDSUBJECT"]),
        st.just(b"UTF-8"),
        search_keys,
    ),
    _command(b"NOTIFY", _notify),
    _command(b"UNAUTHENTICATE"),
    _command(b"COMPRESS", st.sampled_from([b"DEFLATE", b"deflate", b"GZIP"])),
    _command(b"UID", _uid_inner),
    st.tuples(atoms, st.lists(st.one_of(atoms, values, nested), max_size=3)).map(
        lambda parts: join(parts[0], *parts[1])
    ),
)

# What follows IDLE or AUTHENTICATE: DONE, a SASL answer, or something else.
_follow_ups = st.sampled_from(
    [b"DONE\r\n", b"done\r\n", b"*\r\n", b"AGFsaWNlAHB3\r\n", b"=\r\n", b"!!\r\n", b""]
)
_line_ends = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"])


@st.composite
def command_lines(draw: st.DrawFn) -> bytes:
    body = draw(command_bodies)
    line = draw(tags) + b" " + body + draw(_line_ends)
    if body[:4].upper() in (b"IDLE", b"AUTH") or draw(st.integers(0, 19)) == 0:
        line += draw(_follow_ups)
    return line


programs = st.lists(command_lines(), min_size=1, max_size=6).map(b"".join)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes] = programs) -> bytes:
    """``base`` with a few bytes replaced, inserted or deleted."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        kind = draw(st.integers(0, 2))
        patch = draw(st.one_of(ODD_BYTES, st.binary(min_size=1, max_size=3), nested))
        if kind == 0:
            data[position:position] = patch
        elif kind == 1:
            data[position : position + len(patch)] = patch
        else:
            del data[position : position + draw(st.integers(1, 8))]
    return bytes(data)


random_lines = st.lists(
    st.one_of(st.binary(max_size=40), st.binary(max_size=40).map(lambda b: b + b"\r\n")),
    min_size=1,
    max_size=6,
).map(b"".join)

client_input = st.one_of(programs, programs, mutated(), random_lines, st.binary(max_size=200))


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut into chunks at random places: sometimes one byte at a time."""
    if not data:
        return [data]
    if draw(st.integers(0, 9)) == 0:
        return [data[i : i + 1] for i in range(len(data))]
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=8)))
    return cut(data, cuts)


def cut(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    bounds = [0, *(c for c in cuts if 0 < c < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]
