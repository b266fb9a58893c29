"""Typed responses to bytes: the one place that writes IMAP response syntax.

Every choice of representation is made here and nowhere else (STYLE.md §5):

- Strings are an atom where the grammar allows one and the text is a safe atom, else a
  quoted string, else a literal ``{n}``. Quoted strings never hold CR, LF or NUL, and
  hold 8-bit (UTF-8) only when ``utf8`` is on (RFC 9051 §4.3, RFC 6855 §3).
- Mailbox names are modified UTF-7 unless ``utf8`` is on (UTF8=ACCEPT or IMAP4rev2),
  then UTF-8.
- Human-readable text never holds CR, LF or NUL, never starts with "[" unless it follows
  a response code (it would read as one), and is ASCII unless ``utf8`` is on.
- FETCH is the hot path (one response per message, 100,000 at a time): it dispatches on
  the exact type, appends to one list and joins once, so a body is copied only once.

Every result ends with CRLF; literal bodies are inline.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import assert_never

from roost.imap.wire import encoding as enc
from roost.imap.wire.encoding import CRLF, NIL, TEXT_FORBIDDEN
from roost.imap.wire.mutf7 import encode_mutf7
from roost.imap.wire.responses import (
    AclResponse,
    AppendUidCode,
    BadCharsetCode,
    CapabilityCode,
    CapabilityResponse,
    Code,
    ColumnKind,
    Continuation,
    CopyUidCode,
    Enabled,
    ESearchResponse,
    Exists,
    Expunged,
    FetchBatch,
    FetchResponse,
    FetchValue,
    FlagFetchBatch,
    FlagList,
    FlagsResponse,
    GenUrlAuthResponse,
    IdResponse,
    ListResponse,
    ListRightsResponse,
    MetadataResponse,
    MyRightsResponse,
    NamespaceResponse,
    NString,
    ObjectId,
    Parenthesized,
    PermanentFlagsCode,
    ProgressCode,
    QuotaResponse,
    QuotaRootResponse,
    RawValue,
    Recent,
    Response,
    ResponseCode,
    SearchResponse,
    SortResponse,
    Status,
    StatusResponse,
    Tagged,
    ThreadNode,
    ThreadResponse,
    Untagged,
    UrlFetchExtended,
    UrlFetchResponse,
    Vanished,
)
from roost.imap.wire.sequence import compress_uids

__all__ = ["serialize", "serialize_many"]

_MONTHS = tuple(b"JanFebMarAprMayJunJulAugSepOctNovDec"[i : i + 3] for i in range(0, 36, 3))
# RFC 3501 requires text after a status; used when a handler gave none.
_DEFAULT_TEXT = {
    Status.OK: "Completed",
    Status.NO: "Failed",
    Status.BAD: "Invalid",
    Status.PREAUTH: "Logged in",
    Status.BYE: "Logging out",
}
_STATUS_BYTES = {status: status.value.encode("ascii") for status in Status}


# ---- response codes -------------------------------------------------------------------


def _paired_uid_sets(source: Sequence[int], dest: Sequence[int]) -> tuple[str, str]:
    """COPYUID sets whose n-th UIDs correspond (RFC 4315 §3): a range is used only where
    both sides run consecutively at the same positions."""
    if len(source) != len(dest) or not source:
        raise ValueError("COPYUID needs equally many source and destination UIDs")
    source_parts: list[str] = []
    dest_parts: list[str] = []
    start = 0
    count = len(source)
    while start < count:
        end = start
        while (
            end + 1 < count
            and source[end + 1] == source[end] + 1
            and dest[end + 1] == dest[end] + 1
        ):
            end += 1
        if start == end:
            source_parts.append(str(source[start]))
            dest_parts.append(str(dest[start]))
        else:
            source_parts.append(f"{source[start]}:{source[end]}")
            dest_parts.append(f"{dest[start]}:{dest[end]}")
        start = end + 1
    return ",".join(source_parts), ",".join(dest_parts)


def _code(code: ResponseCode) -> bytes:
    match code:
        case Code(name=name, data=data):
            if data is not None:
                # resp-text-code data: TEXT-CHAR except "]".
                data = data.translate(TEXT_FORBIDDEN).replace("]", "").strip()
            if not data:
                return b"[" + enc.to_bytes(name) + b"]"
            return b"[" + enc.to_bytes(name) + b" " + data.encode("ascii", "replace") + b"]"
        case CapabilityCode(capabilities=capabilities):
            return b"[CAPABILITY " + enc.atoms(capabilities) + b"]"
        case PermanentFlagsCode(flags=flags):
            return b"[PERMANENTFLAGS (" + enc.atoms(flags) + b")]"
        case AppendUidCode(uidvalidity=uidvalidity, uids=uids):
            if not uids:
                raise ValueError("APPENDUID needs at least one UID")
            return b"[APPENDUID %d %s]" % (uidvalidity, compress_uids(list(uids)).encode())
        case CopyUidCode(uidvalidity=uidvalidity, source_uids=source, dest_uids=dest):
            source_set, dest_set = _paired_uid_sets(source, dest)
            return b"[COPYUID %d %s %s]" % (uidvalidity, source_set.encode(), dest_set.encode())
        case BadCharsetCode(charsets=charsets):
            if not charsets:
                return b"[BADCHARSET]"
            names = b" ".join(enc.astring_bytes(enc.to_bytes(c), False) for c in charsets)
            return b"[BADCHARSET (" + names + b")]"
        case ProgressCode(tag=tag, count=count, total=total):
            # RFC 9585 §3: progress-tag is quoted (or NIL), the numbers NIL when unknown.
            fields = (
                NIL if tag is None else enc.string_bytes(enc.to_bytes(tag), False),
                NIL if count is None else b"%d" % count,
                NIL if total is None else b"%d" % total,
            )
            return b"[INPROGRESS (" + b" ".join(fields) + b")]"
        case _:
            assert_never(code)


def _status_line(
    prefix: bytes, status: Status, text: str, code: ResponseCode | None, utf8: bool
) -> bytes:
    head = prefix + _STATUS_BYTES[status] + b" "
    default = _DEFAULT_TEXT[status]
    if code is None:
        return head + enc.text(text, utf8, after_code=False, default=default) + CRLF
    return head + _code(code) + b" " + enc.text(text, utf8, after_code=True, default=default) + CRLF


# ---- FETCH ----------------------------------------------------------------------------


def _date_time(value: datetime) -> bytes:
    """RFC 3501 ``date-time``, day space-padded (``date-day-fixed``); naive means UTC."""
    offset = value.utcoffset()
    seconds = 0 if offset is None else int(offset.total_seconds())
    sign = 43 if seconds >= 0 else 45  # "+" / "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return b'"%2d-%s-%04d %02d:%02d:%02d %c%02d%02d"' % (
        value.day,
        _MONTHS[value.month - 1],
        value.year,
        value.hour,
        value.minute,
        value.second,
        sign,
        hours,
        minutes,
    )


def _fetch_value_slow(value: FetchValue, utf8: bool) -> bytes:
    """Subclasses of the value types (bool, a datetime subclass, ...)."""
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, datetime):
        return _date_time(value)
    if isinstance(value, str):
        return enc.string(value, utf8)
    if isinstance(value, NString):
        if value.data is None:
            return NIL
        return (b"~{%d}\r\n" if value.binary else b"{%d}\r\n") % len(value.data) + value.data
    if isinstance(value, FlagList):
        return b"(" + enc.atoms(value.flags) + b")"
    if isinstance(value, RawValue):
        return value.data
    if isinstance(value, Parenthesized):
        return b"(%d)" % value.value
    if isinstance(value, ObjectId):
        return _object_id(value)
    if value is None:
        return NIL
    assert_never(value)


def _object_id(value: ObjectId) -> bytes:
    return NIL if value.value is None else b"(" + value.value.encode("ascii") + b")"


def _status_value(value: int | ObjectId) -> bytes:
    return _object_id(value) if isinstance(value, ObjectId) else b"%d" % value


def _fetch(response: FetchResponse, utf8: bool) -> bytes:
    parts: list[bytes] = []
    append = parts.append
    separator = (b"* %d UIDFETCH (" if response.uidfetch else b"* %d FETCH (") % response.seq
    for key, value in response.items:
        append(separator)
        separator = b" "
        append(key.encode("utf-8"))
        append(b" ")
        # Exact-type tests first: cheaper than isinstance() down the union.
        if type(value) is int:
            append(b"%d" % value)
        elif type(value) is NString:
            data = value.data
            if data is None:
                append(NIL)
            else:
                append((b"~{%d}\r\n" if value.binary else b"{%d}\r\n") % len(data))
                append(data)
        elif type(value) is FlagList:
            append(b"(" + " ".join(value.flags).encode("utf-8") + b")")
        elif type(value) is datetime:
            append(_date_time(value))
        elif type(value) is RawValue:
            append(value.data)
        elif type(value) is Parenthesized:
            append(b"(%d)" % value.value)
        else:
            append(_fetch_value_slow(value, utf8))
    if not parts:
        append(separator)
    append(b")\r\n")
    return b"".join(parts)


def _fetch_value(value: FetchValue, utf8: bool) -> bytes:
    """One value as ``_fetch`` writes it."""
    if type(value) is RawValue:
        return value.data
    if type(value) is FlagList:
        return b"(" + " ".join(value.flags).encode("utf-8") + b")"
    if type(value) is datetime:
        return _date_time(value)
    return _fetch_value_slow(value, utf8)


_COLUMN_FORMATS = {ColumnKind.NUMBER: b"%d", ColumnKind.RAW: b"%b", ColumnKind.VALUE: b"%b"}


def _fetch_batch(batch: FetchBatch, utf8: bool) -> bytes:
    """The lines ``_fetch`` would write for each message: one %-template of the items,
    applied to each message's values (a map in C, no Python code per message for
    number and raw columns; other values are written one by one first)."""
    if not batch.items or len(batch.items) != len(batch.columns):
        raise ValueError("FetchBatch needs one column per item")
    verb = b"UIDFETCH" if batch.uidfetch else b"FETCH"
    fields = b" ".join(
        name.encode("utf-8").replace(b"%", b"%%") + b" " + _COLUMN_FORMATS[column.kind]
        for name, column in zip(batch.items, batch.columns, strict=True)
    )
    line = b"* %d " + verb + b" (" + fields + b")\r\n"
    columns: list[Sequence[object]] = [batch.numbers]
    for column in batch.columns:
        if len(column.values) != len(batch.numbers):
            raise ValueError("FetchBatch columns differ in length")
        if column.kind is ColumnKind.VALUE:
            columns.append([_fetch_value(v, utf8) for v in column.values])  # type: ignore[arg-type]
        else:
            columns.append(column.values)
    return b"".join(map(line.__mod__, zip(*columns, strict=True)))


# Each item of a FlagFetchBatch: its format, and which value it shows.
_FLAG_BATCH_ITEMS = {
    "UID": (b"UID %d", "uid"),
    "FLAGS": (b"FLAGS %s", ""),
    "MODSEQ": (b"MODSEQ (%d)", "modseq"),
}


def _flag_batch(batch: FlagFetchBatch) -> bytes:
    """The lines ``_fetch`` would write for each message. The flag list is put into the
    line's %-template once per key; the batch's lines are then one format, the templates
    of its messages joined, applied once to all their numbers: no Python code runs per
    message."""
    formats = [_FLAG_BATCH_ITEMS[item] for item in batch.items]
    if not formats:
        raise ValueError("FETCH needs at least one item")
    verb = b"UIDFETCH" if batch.uidfetch else b"FETCH"
    line = b"* %d " + verb + b" (" + b" ".join(f for f, _ in formats) + b")\r\n"
    if b"%s" in line:
        before, after = line.split(b"%s", 1)
        templates = {
            key: before + _flag_list(flags).replace(b"%", b"%%") + after
            for key, flags in batch.flags.items()
        }
    else:
        templates = dict.fromkeys(batch.flags, line)
    if len(batch.keys) != len(batch.numbers):
        raise ValueError("FlagFetchBatch columns differ in length")
    columns: list[Sequence[int]] = [batch.numbers]
    for _, value in formats:
        if value == "uid":
            columns.append(batch.uids)
        elif value == "modseq":
            if batch.modseqs is None:
                raise ValueError("MODSEQ needs the modseqs")
            columns.append(batch.modseqs)
    # The values interleaved, column by column (a ValueError if a column's length differs).
    width = len(columns)
    values: list[int] = [0] * (len(batch.numbers) * width)
    for at, column in enumerate(columns):
        values[at::width] = column
    return b"".join(map(templates.__getitem__, batch.keys)) % tuple(values)


def _flag_list(flags: FlagList) -> bytes:
    """As ``_fetch`` writes it."""
    return b"(" + " ".join(flags.flags).encode("utf-8") + b")"


# ---- responses ------------------------------------------------------------------------


def _numbers(numbers: Iterable[int]) -> bytes:
    return " ".join(map(str, numbers)).encode("ascii")


def _namespace(spaces: tuple[tuple[str, str], ...] | None, utf8: bool) -> bytes:
    if not spaces:
        return NIL
    # RFC 2342: the prefix is a ``string`` (never an atom), encoded like a mailbox name.
    items = (
        b"("
        + enc.string_bytes(enc.to_bytes(p) if utf8 else encode_mutf7(p), utf8)
        + b" "
        + enc.quoted_char(d)
        + b")"
        for p, d in spaces
    )
    return b"(" + b"".join(items) + b")"


def _list(response: ListResponse, utf8: bool) -> bytes:
    line = b"".join(
        (
            b"* LSUB (" if response.lsub else b"* LIST (",
            enc.atoms(response.attributes),
            b") ",
            enc.quoted_char(response.delimiter),
            b" ",
            enc.mailbox(response.name, utf8),
        )
    )
    extended: list[bytes] = []
    if response.child_info and not response.lsub:
        # RFC 5258 §3.5: ("CHILDINFO" ("SUBSCRIBED")).
        infos = b" ".join(enc.string(i, utf8) for i in response.child_info)
        extended.append(b'"CHILDINFO" (' + infos + b")")
    if response.old_name is not None and not response.lsub:
        # RFC 5465 §5.4: ("OLDNAME" ("old name")).
        extended.append(b'"OLDNAME" (' + enc.mailbox(response.old_name, utf8) + b")")
    if extended:
        line += b" (" + b" ".join(extended) + b")"
    return line + CRLF


def _metadata(response: MetadataResponse, utf8: bool) -> bytes:
    """RFC 5464 §4.4.1. The mailbox is "" for the server (never an atom); entry names
    are ASCII astrings; a value is quoted when it can be, else a literal, and a
    literal8 when it holds a NUL (``value = nstring / literal8``, §5)."""
    mailbox = enc.mailbox(response.mailbox, utf8) if response.mailbox else b'""'
    parts: list[bytes] = []
    for entry, value in response.entries:
        parts.append(enc.astring_bytes(enc.to_bytes(entry), False))
        if value is None:
            parts.append(NIL)
        elif b"\x00" in value:
            parts.append(b"~{%d}\r\n" % len(value) + value)
        else:
            parts.append(enc.string_bytes(value, utf8))
    return b"* METADATA " + mailbox + b" (" + b" ".join(parts) + b")" + CRLF


def _id(params: tuple[tuple[str, str | None], ...] | None, utf8: bool) -> bytes:
    if not params:
        return b"* ID NIL\r\n"
    fields = b" ".join(
        enc.string(key, utf8) + b" " + (NIL if value is None else enc.string(value, utf8))
        for key, value in params
    )
    return b"* ID (" + fields + b")\r\n"


def _esearch(response: ESearchResponse, utf8: bool) -> bytes:
    parts = [b"* ESEARCH"]
    if response.tag is not None:
        correlator = b"(TAG " + enc.string(response.tag, False)
        if response.mailbox is not None:
            # RFC 7377 §2: ("TAG" tag "MAILBOX" mailbox "UIDVALIDITY" n)
            correlator += b" MAILBOX " + enc.mailbox(response.mailbox, utf8)
            correlator += b" UIDVALIDITY %d" % (response.uidvalidity or 0)
        parts.append(correlator + b")")
    if response.uid:
        parts.append(b"UID")
    for name, value in response.items:
        parts.append(enc.to_bytes(name) + b" " + enc.to_bytes(value))
    return b" ".join(parts) + CRLF


def _thread(threads: Sequence[ThreadNode]) -> bytes:
    """RFC 5256 §5 ``thread-list``s. A chain of single replies is written inline
    (``3 6``), branches as nested lists (``(4 23)(44 7 96)``). Iterative: a thread may
    be thousands of messages deep."""
    parts = [b"* THREAD"]
    if threads:
        parts.append(b" ")
    pending: list[ThreadNode | bytes] = []
    for root in reversed(threads):
        pending += (b")", root, b"(")
    while pending:
        item = pending.pop()
        if isinstance(item, bytes):
            parts.append(item)
            continue
        node: ThreadNode | None = item
        first = True
        while node is not None:
            if node.number is not None:
                parts.append(b"%d" % node.number if first else b" %d" % node.number)
                first = False
            if len(node.children) == 1:
                node = node.children[0]
                continue
            if node.children:
                if not first:
                    parts.append(b" ")
                for child in reversed(node.children):
                    pending += (b")", child, b"(")
            node = None
    parts.append(CRLF)
    return b"".join(parts)


def _urlfetch_value(value: bytes | UrlFetchExtended | None) -> bytes:
    """RFC 4467 nstring, or RFC 5524's parenthesized metadata and data (literal8 for
    BINARY data holding NUL, as Dovecot sends it)."""
    if value is None:
        return b"NIL"
    if isinstance(value, bytes):
        return b"{%d}\r\n" % len(value) + value
    items = []
    if value.structure is not None:
        items.append(b"BODYPARTSTRUCTURE " + value.structure)
    if value.kind is not None:
        marker = b"~" if value.kind == "BINARY" and b"\x00" in value.data else b""
        literal = marker + b"{%d}\r\n" % len(value.data) + value.data
        items.append(value.kind.encode("ascii") + b" " + literal)
    return b"(" + b" ".join(items) + b")"


def serialize(response: Response, *, utf8: bool = False) -> bytes:
    """The complete wire form of ``response``, CRLF included.

    ``utf8`` is on once the client enabled UTF8=ACCEPT or IMAP4rev2.
    """
    match response:
        case FetchResponse():
            return _fetch(response, utf8)
        # Every command ends with one: tried early, not after a row of other types.
        case Tagged(tag=tag, status=status, text=text, code=code):
            return _status_line(enc.to_bytes(tag) + b" ", status, text, code, utf8)
        case FlagFetchBatch():
            return _flag_batch(response)
        case FetchBatch():
            return _fetch_batch(response, utf8)
        case Exists(count=count):
            return b"* %d EXISTS\r\n" % count
        case Expunged(seq=seq):
            return b"* %d EXPUNGE\r\n" % seq
        case Recent(count=count):
            return b"* %d RECENT\r\n" % count
        case Untagged(status=status, text=text, code=code):
            return _status_line(b"* ", status, text, code, utf8)
        case Continuation(text=text, data=data):
            if data is not None:
                # RFC 9051 continue-req: "+" SP base64; an empty challenge is "+ ".
                return b"+ " + binascii.b2a_base64(data, newline=False) + CRLF
            if not text:
                return b"+ \r\n"
            return b"+ " + enc.text(text, utf8, after_code=False, default="Ready") + CRLF
        case Vanished(uids=uids, earlier=earlier):
            if not uids:
                raise ValueError("VANISHED needs at least one UID")
            uid_set = compress_uids(sorted(set(uids))).encode("ascii")
            return (b"* VANISHED (EARLIER) " if earlier else b"* VANISHED ") + uid_set + CRLF
        case FlagsResponse(flags=flags):
            return b"* FLAGS (" + enc.atoms(flags) + b")\r\n"
        case ListResponse():
            return _list(response, utf8)
        case StatusResponse(mailbox=mailbox, items=items):
            attributes = b" ".join(
                name.encode("ascii") + b" " + _status_value(value) for name, value in items
            )
            return b"".join((b"* STATUS ", enc.mailbox(mailbox, utf8), b" (", attributes, b")\r\n"))
        case SearchResponse(numbers=numbers, modseq=modseq):
            if not numbers:
                return b"* SEARCH\r\n"
            line = b"* SEARCH " + _numbers(numbers)
            if modseq is not None:
                # RFC 7162 §3.1.5: only when something matched.
                line += b" (MODSEQ %d)" % modseq
            return line + CRLF
        case SortResponse(numbers=numbers, modseq=modseq):
            line = b"* SORT " + _numbers(numbers) if numbers else b"* SORT"
            if numbers and modseq is not None:
                line += b" (MODSEQ %d)" % modseq  # RFC 7162 §3.1.5
            return line + CRLF
        case ThreadResponse(threads=threads):
            return _thread(threads)
        case ESearchResponse():
            return _esearch(response, utf8)
        case CapabilityResponse(capabilities=capabilities):
            return b"* CAPABILITY " + enc.atoms(capabilities) + CRLF
        case Enabled(capabilities=capabilities):
            if not capabilities:
                return b"* ENABLED\r\n"
            return b"* ENABLED " + enc.atoms(capabilities) + CRLF
        case IdResponse(params=params):
            return _id(params, utf8)
        case NamespaceResponse(personal=personal, other_users=other, shared=shared):
            spaces = (_namespace(n, utf8) for n in (personal, other, shared))
            return b"* NAMESPACE " + b" ".join(spaces) + CRLF
        case QuotaResponse(root=root, resources=resources):
            if not resources:  # RFC 9208 §9: quota-list has at least one resource
                raise ValueError("QUOTA needs at least one resource")
            listed = b" ".join(
                b"%s %d %d" % (r.name.encode("ascii"), r.usage, r.limit) for r in resources
            )
            return (
                b"* QUOTA "
                + enc.astring_bytes(enc.to_bytes(root), utf8)
                + b" ("
                + listed
                + b")\r\n"
            )
        case MetadataResponse():
            return _metadata(response, utf8)
        case AclResponse(mailbox=mailbox, entries=entries):
            # RFC 4314 §4: identifier and rights are astrings.
            line = b"* ACL " + enc.mailbox(mailbox, utf8)
            for identifier, rights in entries:
                line += b" " + enc.astring_bytes(enc.to_bytes(identifier), utf8)
                line += b" " + enc.astring_bytes(enc.to_bytes(rights), utf8)
            return line + CRLF
        case ListRightsResponse(
            mailbox=mailbox, identifier=identifier, required=required, optional=optional
        ):
            words = [enc.mailbox(mailbox, utf8), enc.astring_bytes(enc.to_bytes(identifier), utf8)]
            words += [enc.astring_bytes(enc.to_bytes(w), utf8) for w in (required, *optional)]
            return b"* LISTRIGHTS " + b" ".join(words) + CRLF
        case MyRightsResponse(mailbox=mailbox, rights=rights):
            return (
                b"* MYRIGHTS "
                + enc.mailbox(mailbox, utf8)
                + b" "
                + enc.astring_bytes(enc.to_bytes(rights), utf8)
                + CRLF
            )
        case QuotaRootResponse(mailbox=mailbox, roots=roots):
            line = b"* QUOTAROOT " + enc.mailbox(mailbox, utf8)
            for root in roots:
                line += b" " + enc.astring_bytes(enc.to_bytes(root), utf8)
            return line + CRLF
        case GenUrlAuthResponse(urls=urls):
            return (
                b"* GENURLAUTH "
                + b" ".join(enc.astring_bytes(enc.to_bytes(u), utf8) for u in urls)
                + CRLF
            )
        case UrlFetchResponse(items=items):
            pieces = [
                enc.astring_bytes(enc.to_bytes(url), utf8) + b" " + _urlfetch_value(value)
                for url, value in items
            ]
            return b"* URLFETCH " + b" ".join(pieces) + CRLF
        case _:
            assert_never(response)


def serialize_many(responses: Iterable[Response], *, utf8: bool = False) -> bytes:
    """Several responses as one write."""
    return b"".join(serialize(response, utf8=utf8) for response in responses)
