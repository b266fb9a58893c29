"""The serializer: exact bytes for every response and response code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from roost.imap.wire.responses import (
    AclResponse,
    AppendUidCode,
    BadCharsetCode,
    CapabilityCode,
    CapabilityResponse,
    Code,
    Continuation,
    CopyUidCode,
    Enabled,
    ESearchResponse,
    Exists,
    Expunged,
    FetchResponse,
    FetchValue,
    FlagFetchBatch,
    FlagList,
    FlagsResponse,
    IdResponse,
    ListResponse,
    ListRightsResponse,
    MetadataResponse,
    MyRightsResponse,
    NamespaceResponse,
    NString,
    Parenthesized,
    PermanentFlagsCode,
    RawValue,
    Recent,
    Response,
    ResponseCode,
    SearchResponse,
    Status,
    StatusResponse,
    Tagged,
    Untagged,
    Vanished,
)
from roost.imap.wire.serializer import serialize, serialize_many

PDT = timezone(timedelta(hours=-7))

# ---- status responses and codes -------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "wire"),
    [
        (Tagged("A1", Status.OK, "LOGIN completed"), b"A1 OK LOGIN completed\r\n"),
        (Tagged("a.2", Status.NO, "No such mailbox"), b"a.2 NO No such mailbox\r\n"),
        (Tagged("A3", Status.BAD, "Unknown command"), b"A3 BAD Unknown command\r\n"),
        (Untagged(Status.OK, "Roost ready"), b"* OK Roost ready\r\n"),
        (Untagged(Status.BYE, "Logging out"), b"* BYE Logging out\r\n"),
        (Untagged(Status.PREAUTH, "Welcome"), b"* PREAUTH Welcome\r\n"),
        (
            Untagged(Status.BYE, "Shutting down", Code("UNAVAILABLE")),
            b"* BYE [UNAVAILABLE] Shutting down\r\n",
        ),
        (
            Tagged("A4", Status.OK, "SELECT completed", Code("READ-WRITE")),
            b"A4 OK [READ-WRITE] SELECT completed\r\n",
        ),
        (
            Untagged(Status.OK, "Predicted next UID", Code("UIDNEXT", "4392")),
            b"* OK [UIDNEXT 4392] Predicted next UID\r\n",
        ),
    ],
)
def test_status_responses(response: Response, wire: bytes) -> None:
    assert serialize(response) == wire


@pytest.mark.parametrize(
    ("code", "wire"),
    [
        (Code("TRYCREATE"), b"[TRYCREATE]"),
        (Code("APPENDLIMIT", "1000"), b"[APPENDLIMIT 1000]"),
        (Code("ALERT", "bad]\r\nx"), b"[ALERT bad  x]"),  # data never ends the code early
        (Code("ALERT", ""), b"[ALERT]"),
        (
            CapabilityCode(("IMAP4rev1", "IMAP4rev2", "AUTH=PLAIN")),
            b"[CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN]",
        ),
        (
            PermanentFlagsCode(("\\Answered", "\\Seen", "$Junk", "\\*")),
            b"[PERMANENTFLAGS (\\Answered \\Seen $Junk \\*)]",
        ),
        (PermanentFlagsCode(()), b"[PERMANENTFLAGS ()]"),
        (AppendUidCode(38505, (3955,)), b"[APPENDUID 38505 3955]"),
        (AppendUidCode(38505, (1, 2, 3, 7)), b"[APPENDUID 38505 1:3,7]"),
        (
            CopyUidCode(38505, (304, 319, 320), (3956, 3957, 3958)),
            # RFC 4315's example, written so that each range pairs with a range.
            b"[COPYUID 38505 304,319:320 3956,3957:3958]",
        ),
        (CopyUidCode(9, (1, 2, 3, 4), (11, 12, 13, 14)), b"[COPYUID 9 1:4 11:14]"),
        # Ranges only where both sides run together, so the n-th UIDs still pair up.
        (CopyUidCode(9, (1, 2, 3), (10, 11, 20)), b"[COPYUID 9 1:2,3 10:11,20]"),
        (CopyUidCode(9, (1, 5, 6), (10, 11, 12)), b"[COPYUID 9 1,5:6 10,11:12]"),
        (CopyUidCode(9, (3, 2, 1), (10, 11, 12)), b"[COPYUID 9 3,2,1 10,11,12]"),
        (BadCharsetCode(("UTF-8", "US-ASCII")), b"[BADCHARSET (UTF-8 US-ASCII)]"),
        (BadCharsetCode(("X Y",)), b'[BADCHARSET ("X Y")]'),
        (BadCharsetCode(()), b"[BADCHARSET]"),
    ],
)
def test_codes(code: ResponseCode, wire: bytes) -> None:
    assert serialize(Tagged("A1", Status.NO, "text", code)) == b"A1 NO " + wire + b" text\r\n"


@pytest.mark.parametrize(
    "code",
    [AppendUidCode(1, ()), CopyUidCode(1, (), ()), CopyUidCode(1, (1, 2), (3,))],
)
def test_codes_without_uids_are_programming_errors(code: ResponseCode) -> None:
    with pytest.raises(ValueError):
        serialize(Tagged("A1", Status.OK, "done", code))


@pytest.mark.parametrize(
    ("text", "code", "wire"),
    [
        ("line\r\nA2 OK injected", None, b"A1 OK line  A2 OK injected\r\n"),
        ("nul\x00here", None, b"A1 OK nul here\r\n"),
        # Without a code, a leading "[" would read as one.
        ("[ALERT] not a code", None, b"A1 OK ALERT] not a code\r\n"),
        (
            "[x] is fine after a code",
            Code("READ-ONLY"),
            b"A1 OK [READ-ONLY] [x] is fine after a code\r\n",
        ),
        # RFC 3501 requires text; a handler that gave none gets a default.
        ("", None, b"A1 OK Completed\r\n"),
        ("", Code("READ-ONLY"), b"A1 OK [READ-ONLY] Completed\r\n"),
        ("[", None, b"A1 OK Completed\r\n"),
        ("Grüße", None, b"A1 OK Gr??e\r\n"),
    ],
)
def test_text_is_sanitized(text: str, code: ResponseCode | None, wire: bytes) -> None:
    assert serialize(Tagged("A1", Status.OK, text, code)) == wire


def test_text_is_utf8_only_when_enabled() -> None:
    response = Untagged(Status.NO, "Grüße")
    assert serialize(response) == b"* NO Gr??e\r\n"
    assert serialize(response, utf8=True) == "* NO Grüße\r\n".encode()


@pytest.mark.parametrize(
    ("response", "wire"),
    [
        (Continuation("Ready for literal"), b"+ Ready for literal\r\n"),
        (Continuation(), b"+ \r\n"),
        (Continuation(data=b""), b"+ \r\n"),
        (Continuation(data=b"\x00user\x00pass"), b"+ AHVzZXIAcGFzcw==\r\n"),
        (Continuation("ignored", data=b"Username:"), b"+ VXNlcm5hbWU6\r\n"),
        (Continuation("a\r\nb"), b"+ a  b\r\n"),
        (Continuation("[x]"), b"+ x]\r\n"),
    ],
)
def test_continuation(response: Continuation, wire: bytes) -> None:
    assert serialize(response) == wire


# ---- untagged data --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "wire"),
    [
        (
            CapabilityResponse(("IMAP4rev1", "IDLE", "LITERAL+")),
            b"* CAPABILITY IMAP4rev1 IDLE LITERAL+\r\n",
        ),
        (Enabled(("CONDSTORE", "UTF8=ACCEPT")), b"* ENABLED CONDSTORE UTF8=ACCEPT\r\n"),
        (Enabled(()), b"* ENABLED\r\n"),
        (IdResponse(None), b"* ID NIL\r\n"),
        (IdResponse(()), b"* ID NIL\r\n"),
        (
            IdResponse((("name", "Roost"), ("version", "0.1"), ("vendor", None))),
            b'* ID ("name" "Roost" "version" "0.1" "vendor" NIL)\r\n',
        ),
        (IdResponse((("x", 'say "hi" \\'),)), b'* ID ("x" "say \\"hi\\" \\\\")\r\n'),
        (IdResponse((("x", "two\nlines"),)), b'* ID ("x" {9}\r\ntwo\nlines)\r\n'),
        (
            NamespaceResponse((("", "/"),), None, None),
            b'* NAMESPACE (("" "/")) NIL NIL\r\n',
        ),
        (
            NamespaceResponse(
                (("", "/"),), (("Other/", "/"),), (("Shared/", "/"), ("Public/", "/"))
            ),
            b'* NAMESPACE (("" "/")) (("Other/" "/")) (("Shared/" "/")("Public/" "/"))\r\n',
        ),
        (NamespaceResponse((), None, None), b"* NAMESPACE NIL NIL NIL\r\n"),
        (
            NamespaceResponse((("#x", "\\"),), None, None),
            b'* NAMESPACE (("#x" "\\\\")) NIL NIL\r\n',
        ),
        (Exists(3), b"* 3 EXISTS\r\n"),
        (Exists(0), b"* 0 EXISTS\r\n"),
        (Recent(2), b"* 2 RECENT\r\n"),
        (Expunged(2), b"* 2 EXPUNGE\r\n"),
        (Vanished((1, 2, 3), earlier=True), b"* VANISHED (EARLIER) 1:3\r\n"),
        (Vanished((9, 3, 1, 2, 3)), b"* VANISHED 1:3,9\r\n"),
        (
            FlagsResponse(("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "$Junk")),
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk)\r\n",
        ),
        (FlagsResponse(()), b"* FLAGS ()\r\n"),
        (
            StatusResponse("INBOX", (("MESSAGES", 3), ("UIDNEXT", 4))),
            b"* STATUS INBOX (MESSAGES 3 UIDNEXT 4)\r\n",
        ),
        (
            StatusResponse("Sent Items", (("HIGHESTMODSEQ", 7011231777),)),
            b'* STATUS "Sent Items" (HIGHESTMODSEQ 7011231777)\r\n',
        ),
        (StatusResponse("a", ()), b"* STATUS a ()\r\n"),
        (SearchResponse((2, 3, 6)), b"* SEARCH 2 3 6\r\n"),
        (SearchResponse(()), b"* SEARCH\r\n"),
        (SearchResponse((2, 5), modseq=917162500), b"* SEARCH 2 5 (MODSEQ 917162500)\r\n"),
        # RFC 7162 §3.1.5: no MODSEQ when nothing matched.
        (SearchResponse((), modseq=917162500), b"* SEARCH\r\n"),
        (
            ESearchResponse("A282", True, (("MIN", "2"), ("COUNT", "3"))),
            b'* ESEARCH (TAG "A282") UID MIN 2 COUNT 3\r\n',
        ),
        (
            ESearchResponse("A283", False, (("ALL", "1:5,9"),)),
            b'* ESEARCH (TAG "A283") ALL 1:5,9\r\n',
        ),
        (ESearchResponse("A284", False, ()), b'* ESEARCH (TAG "A284")\r\n'),
        (ESearchResponse(None, True, (("COUNT", "0"),)), b"* ESEARCH UID COUNT 0\r\n"),
    ],
)
def test_untagged_data(response: Response, wire: bytes) -> None:
    assert serialize(response) == wire


def test_vanished_needs_uids() -> None:
    with pytest.raises(ValueError):
        serialize(Vanished(()))


# ---- LIST, LSUB and mailbox names -----------------------------------------------------


@pytest.mark.parametrize(
    ("response", "wire"),
    [
        (
            ListResponse(("\\HasNoChildren", "\\Sent"), "/", "Sent"),
            b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n',
        ),
        (ListResponse((), "/", "INBOX"), b'* LIST () "/" INBOX\r\n'),
        (ListResponse(("\\Noselect",), None, ""), b'* LIST (\\Noselect) NIL ""\r\n'),
        (ListResponse(("\\Noselect",), "/", ""), b'* LIST (\\Noselect) "/" ""\r\n'),
        (ListResponse((), "\\", "a"), b'* LIST () "\\\\" a\r\n'),
        (ListResponse((), '"', "a"), b'* LIST () "\\"" a\r\n'),
        (
            ListResponse(("\\HasChildren",), "/", "Foo", child_info=("SUBSCRIBED",)),
            b'* LIST (\\HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        ),
        (
            ListResponse(("\\Noselect",), "/", "Foo", lsub=True),
            b'* LSUB (\\Noselect) "/" Foo\r\n',
        ),
        # LSUB has no extended data.
        (
            ListResponse((), "/", "Foo", child_info=("SUBSCRIBED",), lsub=True),
            b'* LSUB () "/" Foo\r\n',
        ),
    ],
)
def test_list(response: ListResponse, wire: bytes) -> None:
    assert serialize(response) == wire


@pytest.mark.parametrize(
    ("name", "plain", "utf8"),
    [
        ("Sent", b"Sent", b"Sent"),
        ("INBOX/Sub", b"INBOX/Sub", b"INBOX/Sub"),
        ("Sent Items", b'"Sent Items"', b'"Sent Items"'),
        (
            "~peter/mail/台北/日本語",
            b"~peter/mail/&U,BTFw-/&ZeVnLIqe-",
            '"~peter/mail/台北/日本語"'.encode(),
        ),
        ("Entwürfe", b"Entw&APw-rfe", '"Entwürfe"'.encode()),
        ("A&B", b"A&-B", b"A&B"),
        ("NIL", b'"NIL"', b'"NIL"'),  # never mistaken for a missing value
        ("nil", b'"nil"', b'"nil"'),
        ("[Gmail]/Sent", b'"[Gmail]/Sent"', b'"[Gmail]/Sent"'),
        ("a]b", b'"a]b"', b'"a]b"'),
        ("50%", b'"50%"', b'"50%"'),
        ("a*", b'"a*"', b'"a*"'),
        ("(x)", b'"(x)"', b'"(x)"'),
        ("{1}", b'"{1}"', b'"{1}"'),
        ('say "hi"', b'"say \\"hi\\""', b'"say \\"hi\\""'),
        ("back\\slash", b'"back\\\\slash"', b'"back\\\\slash"'),
    ],
)
def test_mailbox_names(name: str, plain: bytes, utf8: bytes) -> None:
    status = StatusResponse(name, (("MESSAGES", 1),))
    assert serialize(status) == b"* STATUS " + plain + b" (MESSAGES 1)\r\n"
    assert serialize(status, utf8=True) == b"* STATUS " + utf8 + b" (MESSAGES 1)\r\n"
    listed = ListResponse((), "/", name)
    assert serialize(listed) == b'* LIST () "/" ' + plain + b"\r\n"
    assert serialize(listed, utf8=True) == b'* LIST () "/" ' + utf8 + b"\r\n"


def test_namespace_prefix_is_a_string_in_the_session_encoding() -> None:
    response = NamespaceResponse((("Entwürfe/", "/"),), None, None)
    assert serialize(response) == b'* NAMESPACE (("Entw&APw-rfe/" "/")) NIL NIL\r\n'
    assert serialize(response, utf8=True) == '* NAMESPACE (("Entwürfe/" "/")) NIL NIL\r\n'.encode()


# ---- FETCH ----------------------------------------------------------------------------


def test_fetch_rfc_example() -> None:
    body = b"Subject: hi\r\n\r\nHello\r\n"
    response = FetchResponse(
        12,
        (
            ("UID", 5),
            ("FLAGS", FlagList(("\\Seen",))),
            ("INTERNALDATE", datetime(1996, 7, 17, 2, 44, 25, tzinfo=PDT)),
            ("RFC822.SIZE", 4286),
            ("BODY[]", NString(body)),
        ),
    )
    assert serialize(response) == (
        b'* 12 FETCH (UID 5 FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
        b"RFC822.SIZE 4286 BODY[] {22}\r\nSubject: hi\r\n\r\nHello\r\n)\r\n"
    )


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, b"0"),
        (18446744073709551615, b"18446744073709551615"),
        (True, b"1"),
        (NString(None), b"NIL"),
        (NString(b""), b"{0}\r\n"),
        (NString(b"abc"), b"{3}\r\nabc"),  # always a literal, even when quotable
        (NString(b"\x00\xff", binary=True), b"~{2}\r\n\x00\xff"),
        (NString(None, binary=True), b"NIL"),
        (FlagList(()), b"()"),
        (FlagList(("\\Seen", "\\Answered", "$Forwarded")), b"(\\Seen \\Answered $Forwarded)"),
        (RawValue(b'("date" "subject" NIL)'), b'("date" "subject" NIL)'),
        (Parenthesized(12345), b"(12345)"),
        ("plain", b'"plain"'),
        ("", b'""'),
        ('a "q" \\', b'"a \\"q\\" \\\\"'),
        ("two\r\nlines", b"{10}\r\ntwo\r\nlines"),
        ("Grüße", b"{7}\r\nGr\xc3\xbc\xc3\x9fe"),  # 8-bit is never quoted without UTF-8
    ],
)
def test_fetch_values(value: FetchValue, wire: bytes) -> None:
    response = FetchResponse(1, (("X", value),))
    assert serialize(response) == b"* 1 FETCH (X " + wire + b")\r\n"


def test_fetch_quoted_utf8_when_enabled() -> None:
    response = FetchResponse(1, (("X", "Grüße"),))
    assert serialize(response, utf8=True) == '* 1 FETCH (X "Grüße")\r\n'.encode()


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (datetime(1996, 7, 17, 2, 44, 25, tzinfo=PDT), b'"17-Jul-1996 02:44:25 -0700"'),
        # RFC 3501 date-day-fixed: a one-digit day is padded with a space.
        (datetime(2026, 7, 7, 9, 5, 3, tzinfo=UTC), b'" 7-Jul-2026 09:05:03 +0000"'),
        (datetime(2026, 1, 1, 0, 0, 0), b'" 1-Jan-2026 00:00:00 +0000"'),  # naive: UTC
        (
            datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            b'"31-Dec-2026 23:59:59 +0530"',
        ),
        (
            datetime(2026, 3, 10, 12, 0, 0, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
            b'"10-Mar-2026 12:00:00 -0930"',
        ),
    ],
)
def test_fetch_date_time(value: datetime, wire: bytes) -> None:
    response = FetchResponse(3, (("INTERNALDATE", value),))
    assert serialize(response) == b"* 3 FETCH (INTERNALDATE " + wire + b")\r\n"


def test_fetch_handles_subclasses_of_value_types() -> None:
    class Stamp(datetime):
        pass

    class Text(str):
        pass

    response = FetchResponse(1, (("A", Stamp(2026, 2, 3, 4, 5, 6, tzinfo=UTC)), ("B", Text("t"))))
    assert serialize(response) == b'* 1 FETCH (A " 3-Feb-2026 04:05:06 +0000" B "t")\r\n'


def test_fetch_modseq_and_binary() -> None:
    response = FetchResponse(
        7,
        (
            ("UID", 70),
            ("MODSEQ", Parenthesized(624140003)),
            ("BINARY[1]", NString(b"\x00\x01", binary=True)),
            ("BODY[HEADER.FIELDS (SUBJECT)]", NString(b"Subject: x\r\n\r\n")),
        ),
    )
    assert serialize(response) == (
        b"* 7 FETCH (UID 70 MODSEQ (624140003) BINARY[1] ~{2}\r\n\x00\x01 "
        b"BODY[HEADER.FIELDS (SUBJECT)] {14}\r\nSubject: x\r\n\r\n)\r\n"
    )


def test_serialize_many_concatenates_in_order() -> None:
    responses: list[Response] = [Exists(4), Recent(1), Tagged("A1", Status.OK, "NOOP completed")]
    assert serialize_many(responses) == (b"* 4 EXISTS\r\n* 1 RECENT\r\nA1 OK NOOP completed\r\n")
    assert serialize_many([], utf8=True) == b""


# ---- FlagFetchBatch: many FETCH responses of UID, FLAGS and MODSEQ in one loop -------


@pytest.mark.parametrize(
    "items",
    [
        ("UID", "FLAGS"),
        ("FLAGS",),
        ("UID",),
        ("MODSEQ",),
        ("FLAGS", "UID", "MODSEQ"),
        ("UID", "MODSEQ", "FLAGS"),
        ("MODSEQ", "FLAGS", "UID"),
        ("FLAGS", "MODSEQ"),
    ],
)
def test_flag_fetch_batch_writes_what_fetch_responses_write(items: tuple[str, ...]) -> None:
    seen, none = FlagList(("\\Seen",)), FlagList(())
    odd = FlagList(("\\Flagged", "$100%", "Ünï"))  # "%" must not reach %-formatting raw
    flags = {"seen": seen, "none": none, ("odd", True): odd}
    messages = [(10, "seen", 7), (11, "none", 8), (15, ("odd", True), 12345678901), (16, "seen", 9)]
    numbers = [1, 2, 5, 6]
    uids, keys, modseqs = ([m[i] for m in messages] for i in range(3))
    batch = FlagFetchBatch(items, numbers, uids, keys, modseqs, flags)
    expected = b"".join(
        serialize(
            FetchResponse(
                n,
                tuple(
                    (item, {"UID": uid, "FLAGS": flags[key], "MODSEQ": Parenthesized(m)}[item])
                    for item in items
                ),
            )
        )
        for n, (uid, key, m) in zip(numbers, messages, strict=True)
    )
    assert serialize(batch) == expected
    if "MODSEQ" not in items:  # the store reads no modseqs then
        assert serialize(FlagFetchBatch(items, numbers, uids, keys, None, flags)) == expected
    else:
        with pytest.raises(ValueError):
            serialize(FlagFetchBatch(items, numbers, uids, keys, None, flags))
    with pytest.raises(ValueError):  # columns of different lengths
        serialize(FlagFetchBatch(items, numbers, uids, keys[:-1], modseqs, flags))
    assert serialize(FlagFetchBatch(items, [], [], [], [], {})) == b""


# ---- FetchBatch: FETCH responses of the same items, as columns -----------------------


def test_fetch_batch_writes_what_fetch_responses_write() -> None:
    from roost.imap.uidonly import uid_form
    from roost.imap.wire.responses import ColumnKind, FetchBatch, FetchColumn, ObjectId

    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-3)))
    rows: list[dict[str, FetchValue]] = [
        {
            "UID": 10,
            "ENVELOPE": RawValue(b'("d" "100% sure" NIL)'),
            "RFC822.SIZE": 1234,
            "FLAGS": FlagList(("\\Seen", "$50%")),
            "INTERNALDATE": when,
            "THREADID": ObjectId("T1f"),
            "SAVEDATE": None,
            "MODSEQ": Parenthesized(77),
        },
        {
            "UID": 12,
            "ENVELOPE": RawValue(b"(NIL NIL)"),
            "RFC822.SIZE": 5,
            "FLAGS": FlagList(()),
            "INTERNALDATE": when,
            "THREADID": ObjectId(None),
            "SAVEDATE": when,
            "MODSEQ": Parenthesized(1),
        },
    ]
    kinds = {"UID": ColumnKind.NUMBER, "RFC822.SIZE": ColumnKind.NUMBER, "ENVELOPE": ColumnKind.RAW}
    items = tuple(rows[0])
    columns = []
    for item in items:
        kind = kinds.get(item, ColumnKind.VALUE)
        values = [row[item] for row in rows]
        if kind is ColumnKind.RAW:
            values = [value.data for value in values]  # type: ignore[union-attr]
        columns.append(FetchColumn(kind, values))  # type: ignore[arg-type]
    numbers = [3, 9]
    batch = FetchBatch(items, numbers, tuple(columns))
    responses = [FetchResponse(n, tuple(row.items())) for n, row in zip(numbers, rows, strict=True)]
    assert serialize(batch) == b"".join(serialize(r) for r in responses)
    assert serialize(uid_form(batch)) == b"".join(serialize(uid_form(r)) for r in responses)
    odd = FetchBatch(("BODY[HEADER.FIELDS (X%D)]",), [1], (FetchColumn(ColumnKind.RAW, [b"%s"]),))
    assert serialize(odd) == b"* 1 FETCH (BODY[HEADER.FIELDS (X%D)] %s)\r\n"
    with pytest.raises(ValueError):  # columns of different lengths
        serialize(FetchBatch(("UID",), [1, 2], (FetchColumn(ColumnKind.NUMBER, [1]),)))
    only_uid = FetchBatch(("UID",), [1, 2], (FetchColumn(ColumnKind.NUMBER, [7, 9]),))
    assert serialize(uid_form(only_uid)) == b"* 7 UIDFETCH (UID 7)\r\n* 9 UIDFETCH (UID 9)\r\n"


@pytest.mark.parametrize(
    ("response", "wire"),
    [
        # RFC 5464 §4.4.1: the server is mailbox ""; NIL for an entry without a value; a
        # value with CR/LF is a literal, one with a NUL a literal8 (§5).
        (
            MetadataResponse("", (("/shared/comment", b"Shared comment"),)),
            b'* METADATA "" (/shared/comment "Shared comment")\r\n',
        ),
        (
            MetadataResponse("INBOX", (("/private/comment", None), ("/shared/x", b"a\r\nb"))),
            b"* METADATA INBOX (/private/comment NIL /shared/x {4}\r\na\r\nb)\r\n",
        ),
        (
            MetadataResponse("Entwürfe", (("/private/vendor/v", b"a\x00b"),)),
            b"* METADATA Entw&APw-rfe (/private/vendor/v ~{3}\r\na\x00b)\r\n",
        ),
        # RFC 4314 §3.6-§3.8.
        (
            AclResponse("INBOX", (("alice", "lrswipkxtea"), ("Fred", "lr"))),
            b"* ACL INBOX alice lrswipkxtea Fred lr\r\n",
        ),
        (
            ListRightsResponse("Team", "smith", "", ("l", "r")),
            b'* LISTRIGHTS Team smith "" l r\r\n',
        ),
        (
            MyRightsResponse("Other Users/alice/Team", "lrs"),
            b'* MYRIGHTS "Other Users/alice/Team" lrs\r\n',
        ),
    ],
)
def test_metadata_and_acl(response: Response, wire: bytes) -> None:
    assert serialize(response) == wire


def test_inprogress_code_and_uidfetch() -> None:
    """RFC 9585 §3 progress code (tag quoted, NIL where unknown); RFC 9586 §3.3
    UIDFETCH, the same bytes from a FlagFetchBatch as from one response each."""
    from roost.imap.uidonly import uid_form
    from roost.imap.wire.responses import FlagFetchBatch, ProgressCode

    line = serialize(Untagged(Status.OK, "Working", ProgressCode("A1", 5, 10)))
    assert line == b'* OK [INPROGRESS ("A1" 5 10)] Working\r\n'
    line = serialize(Untagged(Status.OK, "Working", ProgressCode("A1", None, None)))
    assert line == b'* OK [INPROGRESS ("A1" NIL NIL)] Working\r\n'
    single = uid_form(FetchResponse(2, (("UID", 7), ("FLAGS", FlagList(("\\Seen",))))))
    assert serialize(single) == b"* 7 UIDFETCH (FLAGS (\\Seen))\r\n"
    only_uid = uid_form(FetchResponse(2, (("UID", 7),)))
    assert serialize(only_uid) == b"* 7 UIDFETCH (UID 7)\r\n"
    batch = FlagFetchBatch(
        ("UID", "FLAGS"), [1, 2], [7, 9], ["a", "a"], None, {"a": FlagList(("\\Seen",))}
    )
    assert serialize(uid_form(batch)) == (
        b"* 7 UIDFETCH (FLAGS (\\Seen))\r\n* 9 UIDFETCH (FLAGS (\\Seen))\r\n"
    )
