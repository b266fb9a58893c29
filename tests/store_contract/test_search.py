"""Search, sort and thread queries (``Account.search``, ``Account.thread_fields``), and
the analysis every stored message carries (``MessageMeta.model``).

The first part is the contract every backend passes. The last part checks what only
the SQLite backend promises: the FTS5 index answers text searches (EXPLAIN QUERY PLAN),
copies share one analysis, analyses go with their message file, and messages stored
before analyses existed are analysed from their files at the first search.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from roost.mime.casemap import casemap
from roost.mime.model import MessageModel
from roost.mime.parse import MimeLimits
from roost.store.base import (
    DELETED,
    FLAGGED,
    SEEN,
    Account,
    Criterion,
    DateComparison,
    FlagOp,
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
    MatchSentDay,
    MatchSmaller,
    MatchText,
    MatchUids,
    MessageSource,
    NewMessage,
    SearchQuery,
    SortField,
    SortOrder,
    TextField,
)
from roost.store.blobs import BlobStore
from roost.store.sqlite import SqliteStore
from roost.store.sqlite import analyses as analyses_module
from roost.store.sqlite import search as search_module
from roost.store.sqlite.account import SqliteAccount
from tests.store_contract.helpers import new

CET = timezone(timedelta(hours=1))


def mail(
    subject: str = "Hello",
    body: str = "Hi there.",
    *,
    sender: str = "Bob <bob@example.org>",
    to: str = "Alice <alice@example.org>",
    date_header: str | None = "Mon, 03 Feb 2025 10:00:00 +0100",
    extra: str = "",
) -> bytes:
    date_line = f"Date: {date_header}\r\n" if date_header else ""
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n{date_line}{extra}\r\n{body}\r\n"
    ).encode()


async def found(account: Account, mailbox_id: int, criterion: Criterion) -> list[int]:
    return (await account.search(mailbox_id, SearchQuery(criterion))).uids


async def store(account: Account, mailbox_id: int, *messages: bytes, **kw: object) -> list[int]:
    result = await account.append(mailbox_id, [new(m, **kw) for m in messages])  # type: ignore[arg-type]
    return result.uids


# ---- text -----------------------------------------------------------------------------


async def test_text_is_a_case_insensitive_substring_of_decoded_text(
    alice: Account, inbox_id: int
) -> None:
    await store(
        alice,
        inbox_id,
        mail("Quarterly report", "The figures are attached."),
        mail(
            "=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=",
            "PGh0bWw+PGJvZHk+PHA+Qm9uam91ciDDoCB0b3VzPC9wPjwvYm9keT48L2h0bWw+",
            extra="Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
        ),
        mail(
            "Soft line breaks",
            "caf=C3=A9 and a very long soft=\r\nly broken word",
            extra="Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n",
        ),
    )
    assert await found(alice, inbox_id, MatchText(TextField.SUBJECT, "QUARTER")) == [1]
    assert await found(alice, inbox_id, MatchText(TextField.SUBJECT, "münchen")) == [2]
    assert await found(alice, inbox_id, MatchText(TextField.SUBJECT, "MÜNCHEN")) == [2]
    assert await found(alice, inbox_id, MatchText(TextField.BODY, "bonjour à")) == [2]
    assert await found(alice, inbox_id, MatchText(TextField.BODY, "<p>")) == []
    assert await found(alice, inbox_id, MatchText(TextField.BODY, "café")) == [3]
    assert await found(alice, inbox_id, MatchText(TextField.BODY, "softly broken")) == [3]
    assert await found(alice, inbox_id, MatchText(TextField.BODY, "quarterly")) == []
    assert await found(alice, inbox_id, MatchText(TextField.TEXT, "quarterly")) == [1]
    assert await found(alice, inbox_id, MatchText(TextField.HEADER, "subject: soft")) == [3]
    assert await found(alice, inbox_id, MatchText(TextField.TEXT, "")) == [1, 2, 3]


async def test_needles_shorter_than_a_trigram(alice: Account, inbox_id: int) -> None:
    await store(alice, inbox_id, mail("ab", "x"), mail("AB", "é"), mail("cd", "É y"))
    assert await found(alice, inbox_id, MatchText(TextField.SUBJECT, "b")) == [1, 2]
    assert await found(alice, inbox_id, MatchText(TextField.SUBJECT, "aB")) == [1, 2]
    assert await found(alice, inbox_id, MatchText(TextField.BODY, "é")) == [2, 3]
    assert await found(alice, inbox_id, MatchText(TextField.BODY, "É")) == [2, 3]
    assert await found(alice, inbox_id, MatchText(TextField.TEXT, "y")) == [3]
    assert await found(alice, inbox_id, MatchNot(MatchText(TextField.SUBJECT, "c"))) == [1, 2]


async def test_address_fields(alice: Account, inbox_id: int) -> None:
    await store(
        alice,
        inbox_id,
        mail(sender="=?utf-8?q?J=C3=BCrgen?= <j@example.org>", to="team@example.org"),
        mail(sender="bob@example.org", extra="Cc: Carol <carol@example.net>\r\nBcc: dave@x\r\n"),
    )
    assert await found(alice, inbox_id, MatchText(TextField.FROM, "jürgen")) == [1]
    assert await found(alice, inbox_id, MatchText(TextField.FROM, "example.org")) == [1, 2]
    assert await found(alice, inbox_id, MatchText(TextField.TO, "team@")) == [1]
    assert await found(alice, inbox_id, MatchText(TextField.CC, "carol")) == [2]
    assert await found(alice, inbox_id, MatchText(TextField.BCC, "dave")) == [2]
    assert await found(alice, inbox_id, MatchText(TextField.TO, "carol")) == []


async def test_header_field(alice: Account, inbox_id: int) -> None:
    await store(
        alice,
        inbox_id,
        mail(extra="X-Mailer: Thunderbird 115\r\nX-Spam: no\r\n"),
        mail(extra="X-Mailer: mutt\r\nIn-Reply-To: <x@y>\r\n"),
        mail(),
    )
    assert await found(alice, inbox_id, MatchHeader("x-mailer", "bird")) == [1]
    assert await found(alice, inbox_id, MatchHeader("X-MAILER", "")) == [1, 2]
    assert await found(alice, inbox_id, MatchHeader("X-Mailer", "t")) == [1, 2]
    assert await found(alice, inbox_id, MatchHeader("X-Spam", "no")) == [1]
    assert await found(alice, inbox_id, MatchHeader("To", "x@y")) == []  # not In-Reply-To
    assert await found(alice, inbox_id, MatchHeader("Subject", "hello")) == [1, 2, 3]
    assert await found(alice, inbox_id, MatchHeader("X-Nope", "")) == []


# ---- columns --------------------------------------------------------------------------


async def test_flags_and_keywords(alice: Account, inbox_id: int) -> None:
    await store(alice, inbox_id, mail(), mail(), mail())
    await alice.store_flags(inbox_id, [1], FlagOp.ADD, frozenset({SEEN, "$Label1"}))
    await alice.store_flags(inbox_id, [2], FlagOp.ADD, frozenset({DELETED, "Work"}))
    assert await found(alice, inbox_id, MatchFlag(SEEN)) == [1]
    assert await found(alice, inbox_id, MatchFlag("\\seen")) == [1]
    assert await found(alice, inbox_id, MatchNot(MatchFlag(DELETED))) == [1, 3]
    assert await found(alice, inbox_id, MatchFlag("$label1")) == [1]
    assert await found(alice, inbox_id, MatchFlag("work")) == [2]
    assert await found(alice, inbox_id, MatchFlag("Wor")) == []
    assert await found(alice, inbox_id, MatchFlag("\\Recent")) == []
    assert await found(alice, inbox_id, MatchNot(MatchFlag("Unknown"))) == [1, 2, 3]


async def test_dates_disregard_time_and_zone(alice: Account, inbox_id: int) -> None:
    """RFC 9051 §6.4.4: each date is compared as the day it is in its own zone."""
    late = datetime(2025, 2, 3, 23, 30, tzinfo=CET)  # 2025-02-03 22:30 UTC
    early = datetime(2025, 2, 4, 0, 30, tzinfo=CET)  # 2025-02-03 23:30 UTC
    await alice.append(
        inbox_id,
        [
            new(mail(date_header="Tue, 04 Feb 2025 00:30:00 +0100"), internaldate=late),
            new(mail(date_header="Mon, 03 Feb 2025 23:30:00 -0500"), internaldate=early),
            new(mail(date_header=None), internaldate=early),
            new(mail(date_header="not a date"), internaldate=late),
        ],
    )
    feb3, feb4 = date(2025, 2, 3), date(2025, 2, 4)
    on, before, since = DateComparison.ON, DateComparison.BEFORE, DateComparison.SINCE
    assert await found(alice, inbox_id, MatchArrivalDay(on, feb3)) == [1, 4]
    assert await found(alice, inbox_id, MatchArrivalDay(on, feb4)) == [2, 3]
    assert await found(alice, inbox_id, MatchArrivalDay(before, feb4)) == [1, 4]
    assert await found(alice, inbox_id, MatchArrivalDay(since, feb4)) == [2, 3]
    # The Date header's own day; INTERNALDATE's where there is no usable Date.
    assert await found(alice, inbox_id, MatchSentDay(on, feb4)) == [1, 3]
    assert await found(alice, inbox_id, MatchSentDay(on, feb3)) == [2, 4]
    assert await found(alice, inbox_id, MatchSentDay(since, feb4)) == [1, 3]
    assert await found(alice, inbox_id, MatchSentDay(before, feb3)) == []


async def test_arrival_instant_size_modseq(alice: Account, inbox_id: int) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await alice.append(
        inbox_id,
        [
            new(mail(body="x" * 10), internaldate=now - timedelta(hours=2)),
            new(mail(body="x" * 500), internaldate=now),
        ],
    )
    [small, large] = await alice.fetch_meta(inbox_id, [1, 2], with_model=False)
    assert await found(alice, inbox_id, MatchArrivedBy(now - timedelta(hours=1))) == [1]
    assert await found(alice, inbox_id, MatchArrivedBy(now)) == [1, 2]
    assert await found(alice, inbox_id, MatchLarger(small.size)) == [2]
    assert await found(alice, inbox_id, MatchSmaller(large.size)) == [1]
    assert await found(alice, inbox_id, MatchSmaller(small.size)) == []
    result = await alice.store_flags(inbox_id, [1], FlagOp.ADD, frozenset({FLAGGED}))
    modseq = result.updated[0].modseq
    assert await found(alice, inbox_id, MatchModSeq(modseq)) == [1]
    everything = await alice.search(inbox_id, SearchQuery(MatchModSeq(0)))
    assert everything.uids == [1, 2]
    assert everything.highest_modseq == modseq
    assert (await alice.search(inbox_id, SearchQuery(MatchModSeq(modseq + 1)))).highest_modseq == 0


async def test_uid_ranges_and_max_uid(alice: Account, inbox_id: int) -> None:
    await store(alice, inbox_id, *(mail(f"m{n}") for n in range(1, 61)))
    assert await found(alice, inbox_id, MatchUids(((3, 5), (58, 99)))) == [3, 4, 5, 58, 59, 60]
    assert await found(alice, inbox_id, MatchUids(())) == []
    many = tuple((n, n) for n in range(1, 61, 2))  # more ranges than BETWEENs
    assert await found(alice, inbox_id, MatchUids(many)) == list(range(1, 61, 2))
    assert await found(alice, inbox_id, MatchUids(((1, 2**32 - 1),))) == list(range(1, 61))
    query = SearchQuery(MatchAll(), max_uid=4)
    assert (await alice.search(inbox_id, query)).uids == [1, 2, 3, 4]


async def test_mixed_keys_thunderbird_style(alice: Account, inbox_id: int) -> None:
    """Thunderbird adds UNDELETED to its searches (CLIENTS.md): flags, text and dates
    in one query, with OR over several fields."""
    await store(
        alice,
        inbox_id,
        mail("Invoice 42", "please pay"),
        mail("Meeting", "invoice attached"),
        mail("Invoice 43", "reminder"),
        mail("Lunch", "nothing"),
    )
    await alice.store_flags(inbox_id, [3], FlagOp.ADD, frozenset({DELETED}))
    either = MatchAnyOf(
        (MatchText(TextField.SUBJECT, "invoice"), MatchText(TextField.BODY, "invoice"))
    )
    criterion = MatchAllOf(
        (
            MatchNot(MatchFlag(DELETED)),
            either,
            MatchSentDay(DateComparison.SINCE, date(2025, 1, 1)),
        )
    )
    assert await found(alice, inbox_id, criterion) == [1, 2]
    both = MatchAllOf((MatchText(TextField.SUBJECT, "invoice"), MatchText(TextField.BODY, "pay")))
    assert await found(alice, inbox_id, both) == [1]
    short_and_long = MatchAnyOf(
        (MatchText(TextField.SUBJECT, "Lu"), MatchText(TextField.BODY, "remind"))
    )
    assert await found(alice, inbox_id, short_and_long) == [3, 4]
    assert await found(alice, inbox_id, MatchAnyOf(())) == []
    assert await found(alice, inbox_id, MatchAllOf(())) == [1, 2, 3, 4]


async def test_search_sees_only_its_mailbox(alice: Account, inbox_id: int) -> None:
    trash = await alice.get_mailbox("Trash")
    await store(alice, inbox_id, mail("alpha"))
    await store(alice, trash.id, mail("alpha"), mail("beta"))
    assert await found(alice, inbox_id, MatchText(TextField.SUBJECT, "alpha")) == [1]
    assert await found(alice, trash.id, MatchText(TextField.SUBJECT, "alpha")) == [1]
    assert await found(alice, trash.id, MatchText(TextField.SUBJECT, "a")) == [1, 2]


async def test_copies_and_moves_are_found_with_their_text(alice: Account, inbox_id: int) -> None:
    work = await alice.create_mailbox("Work")
    await store(alice, inbox_id, mail("needle in a haystack"), mail("other"))
    await alice.copy(inbox_id, [1], work.id)
    await alice.move(inbox_id, [2], work.id)
    assert await found(alice, work.id, MatchText(TextField.SUBJECT, "haystack")) == [1]
    assert await found(alice, work.id, MatchText(TextField.SUBJECT, "other")) == [2]
    await alice.store_flags(inbox_id, [1], FlagOp.ADD, frozenset({DELETED}))
    await alice.expunge(inbox_id)
    assert await found(alice, inbox_id, MatchText(TextField.SUBJECT, "haystack")) == []
    assert await found(alice, work.id, MatchText(TextField.SUBJECT, "haystack")) == [1]


# ---- sort and thread ------------------------------------------------------------------


async def sorted_uids(account: Account, mailbox_id: int, *order: SortOrder) -> list[int]:
    return (await account.search(mailbox_id, SearchQuery(MatchAll(), tuple(order)))).uids


async def test_sort_keys(alice: Account, inbox_id: int) -> None:
    """RFC 5256 §3 (and RFC 5957): each key, REVERSE, and message order for ties."""
    base = datetime(2025, 1, 1, tzinfo=UTC)
    await alice.append(
        inbox_id,
        [
            new(
                mail(
                    "Re: beta",
                    "x" * 30,
                    sender="Zed <a@x>",
                    to="b@x",
                    date_header="Wed, 01 Jan 2025 12:00:00 +0000",
                ),
                internaldate=base + timedelta(days=3),
            ),
            new(
                mail(
                    "alpha",
                    "x",
                    sender="Amy <z@x>",
                    to="Carl <c@x>",
                    date_header="Wed, 01 Jan 2025 12:00:00 +0100",
                ),
                internaldate=base + timedelta(days=1),
            ),
            new(
                mail("[list] Gamma", "x" * 10, sender="m@x", to="a@x", date_header=None),
                internaldate=base + timedelta(days=2),
            ),
            new(
                mail(
                    "ALPHA",
                    "x" * 10,
                    sender="_@x",
                    to="d@x",
                    date_header="Wed, 01 Jan 2025 10:00:00 +0000",
                ),
                internaldate=base,
            ),
        ],
    )
    S = SortField
    assert await sorted_uids(alice, inbox_id, SortOrder(S.ARRIVAL)) == [4, 2, 3, 1]
    # Sent date (in UTC); INTERNALDATE for the message without one.
    assert await sorted_uids(alice, inbox_id, SortOrder(S.DATE)) == [4, 2, 1, 3]
    sizes = {m.uid: m.size for m in await alice.fetch_meta(inbox_id, [1, 2, 3, 4])}
    by_size = sorted(sizes, key=lambda uid: (sizes[uid], uid))
    assert await sorted_uids(alice, inbox_id, SortOrder(S.SIZE)) == by_size
    by_size.sort(key=lambda uid: (-sizes[uid], uid))
    assert await sorted_uids(alice, inbox_id, SortOrder(S.SIZE, reverse=True)) == by_size
    # Base subjects, ASCII case-insensitive, ties by message number.
    assert await sorted_uids(alice, inbox_id, SortOrder(S.SUBJECT)) == [2, 4, 1, 3]
    assert await sorted_uids(alice, inbox_id, SortOrder(S.SUBJECT, True)) == [3, 1, 2, 4]
    alphas = sorted((2, 4), key=lambda uid: -sizes[uid])  # "alpha" and "ALPHA" tie
    assert await sorted_uids(alice, inbox_id, SortOrder(S.SUBJECT), SortOrder(S.SIZE, True)) == [
        *alphas,
        1,
        3,
    ]
    # Mailbox parts; i;ascii-casemap puts "_" after letters ("_" > "Z").
    assert await sorted_uids(alice, inbox_id, SortOrder(S.FROM)) == [1, 3, 2, 4]
    assert await sorted_uids(alice, inbox_id, SortOrder(S.TO)) == [3, 1, 2, 4]
    assert await sorted_uids(alice, inbox_id, SortOrder(S.CC)) == [1, 2, 3, 4]
    assert await sorted_uids(alice, inbox_id, SortOrder(S.DISPLAY_FROM)) == [2, 3, 1, 4]
    assert await sorted_uids(alice, inbox_id, SortOrder(S.DISPLAY_TO)) == [3, 1, 2, 4]


async def test_sort_with_criteria(alice: Account, inbox_id: int) -> None:
    await store(alice, inbox_id, mail("b"), mail("a"), mail("c"))
    query = SearchQuery(MatchNot(MatchUids(((2, 2),))), (SortOrder(SortField.SUBJECT, True),))
    assert (await alice.search(inbox_id, query)).uids == [3, 1]


async def test_thread_fields(alice: Account, inbox_id: int) -> None:
    await store(
        alice,
        inbox_id,
        mail("=?utf-8?q?Gr=C3=BC=C3=9Fe?=", extra="Message-ID: <1@x>\r\n"),
        mail(
            "Re: Grüße",
            date_header=None,
            extra="Message-ID: <2@x>\r\nIn-Reply-To: <1@x>\r\nReferences: <0@x>\r\n <1@x>\r\n",
        ),
    )
    [first, second] = await alice.thread_fields(inbox_id, SearchQuery(MatchAll()))
    # The subject in i;unicode-casemap form, as threading compares it (RFC 5255).
    assert (first.uid, first.subject, first.message_id) == (1, casemap("Grüße"), "<1@x>")
    assert first.sent == datetime(2025, 2, 3, 9, 0, tzinfo=UTC)
    assert (first.in_reply_to, first.references) == ("", ())
    assert (second.uid, second.subject, second.in_reply_to) == (2, casemap("Re: Grüße"), "<1@x>")
    assert second.references == ("<0@x>", "<1@x>")
    [meta] = await alice.fetch_meta(inbox_id, [2], with_model=False)
    assert second.sent == meta.internaldate  # no Date: INTERNALDATE
    only = await alice.thread_fields(inbox_id, SearchQuery(MatchUids(((2, 2),))))
    assert [f.uid for f in only] == [2]


async def test_every_message_carries_its_model(alice: Account, inbox_id: int) -> None:
    trash = await alice.get_mailbox("Trash")
    await store(alice, inbox_id, mail(), mail("other"))
    await alice.copy(inbox_id, [1], trash.id)
    metas = await alice.fetch_meta(inbox_id, [1, 2])
    assert all(m.model for m in metas)
    assert metas[0].model != metas[1].model
    [copied] = await alice.fetch_meta(trash.id, [1])
    assert copied.model == metas[0].model
    assert [m.model for m in await alice.fetch_meta(inbox_id, [1, 2], with_model=False)] == [
        None,
        None,
    ]


async def test_spooled_messages_are_analysed(alice: Account, inbox_id: int, tmp_path: Path) -> None:
    spooled = tmp_path / "spooled.eml"
    spooled.write_bytes(mail("From a file", "spooled body " * 1000))
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    await alice.append(
        inbox_id, [NewMessage(MessageSource(path=spooled)), NewMessage(MessageSource(path=empty))]
    )
    assert await found(alice, inbox_id, MatchText(TextField.BODY, "spooled body")) == [1]
    assert await found(alice, inbox_id, MatchText(TextField.SUBJECT, "file")) == [1]


# ---- SQLite specifics -----------------------------------------------------------------


@pytest.fixture
async def sqlite_account(tmp_path: Path) -> AsyncIterator[SqliteAccount]:
    store = await SqliteStore.open(tmp_path / "data", durable=False)
    await store.create_account("alice", "h")
    account = await store.open_account("alice")
    try:
        yield account
    finally:
        await account.close()
        await store.close()


def mail_db(tmp_path: Path) -> Path:
    [directory] = (tmp_path / "data" / "accounts").iterdir()
    return directory / "mail.db"


def text_rows(conn: sqlite3.Connection) -> int:
    """Texts in the FTS5 index plus those queued for it (analyses.py, text_pending)."""
    rows: int = conn.execute(
        "SELECT (SELECT count(*) FROM message_text) + (SELECT count(*) FROM text_pending)"
    ).fetchone()[0]
    return rows


def plan(sql: str, params: Sequence[object], db: Path) -> str:
    with sqlite3.connect(db) as conn:
        search_module.register_functions(conn)
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return "\n".join(row[-1] for row in rows)


async def test_text_search_uses_the_fts_index(
    sqlite_account: SqliteAccount, tmp_path: Path
) -> None:
    """ARCHITECTURE.md decision 7: SEARCH TEXT is an FTS5 lookup (FTS5 names its MATCH
    plan "M"), never a scan of the text. Its hits drive the query: each is looked up in
    messages_by_blob, so a rare word is cheap in a mailbox of any size."""
    inbox = await sqlite_account.get_mailbox("INBOX")
    db = mail_db(tmp_path)

    def plan_of(criterion: Criterion) -> list[str]:
        query = SearchQuery(criterion, max_uid=10)
        sql, params = search_module._select(inbox.id, query, "m.uid", [], False)
        return plan(sql, params, db).splitlines()

    undeleted = MatchNot(MatchFlag(DELETED))
    thunderbird = MatchAllOf(
        (
            undeleted,
            MatchAnyOf((MatchText(TextField.FROM, "word"), MatchText(TextField.SUBJECT, "word"))),
        )
    )
    for criterion in (MatchText(TextField.TEXT, "word"), thunderbird):
        steps = plan_of(criterion)
        assert re.fullmatch(r"SCAN message_text VIRTUAL TABLE INDEX \d+:M\d*", steps[0]), steps
        assert re.match(r"SEARCH m USING (COVERING )?INDEX messages_by_blob \(blob_id=\?", steps[2])
    # An OR with a non-text key: one pass over this mailbox's rows, the index run once.
    steps = plan_of(MatchAnyOf((MatchText(TextField.TEXT, "word"), MatchFlag(SEEN))))
    assert steps[0] == "SEARCH m USING PRIMARY KEY (mailbox_id=? AND uid<?)", steps
    assert any(re.fullmatch(r"SCAN message_text VIRTUAL TABLE INDEX \d+:M\d*", s) for s in steps)
    # A needle too short for trigrams reads the text of this mailbox's messages only,
    # each by its rowid.
    steps = plan_of(MatchText(TextField.TEXT, "wo"))
    assert steps[0] == "SEARCH m USING PRIMARY KEY (mailbox_id=? AND uid<?)", steps
    assert any(re.search(r" t VIRTUAL TABLE INDEX \d+:=", s) for s in steps), steps


async def test_copies_share_one_analysis(
    sqlite_account: SqliteAccount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = analyses_module.analyze

    def counting(data: bytes | memoryview, *limits: MimeLimits) -> object:
        calls.append(len(data))
        return real(data, *limits)

    monkeypatch.setattr(analyses_module, "analyze", counting)
    inbox = await sqlite_account.get_mailbox("INBOX")
    trash = await sqlite_account.get_mailbox("Trash")
    await store(sqlite_account, inbox.id, mail("one"), mail("two"))
    assert len(calls) == 2
    await sqlite_account.copy(inbox.id, [1, 2], trash.id)
    await sqlite_account.move(trash.id, [1], inbox.id)
    await sqlite_account.rename_mailbox("INBOX", "Old")
    assert len(calls) == 2  # never parsed again
    with sqlite3.connect(mail_db(tmp_path)) as conn:
        assert conn.execute("SELECT count(*) FROM analyses").fetchone() == (2,)
        assert text_rows(conn) == 2


async def test_analyses_go_with_their_message_file(
    sqlite_account: SqliteAccount, tmp_path: Path
) -> None:
    inbox = await sqlite_account.get_mailbox("INBOX")
    trash = await sqlite_account.get_mailbox("Trash")
    await store(sqlite_account, inbox.id, mail("one"), mail("two"))
    await sqlite_account.copy(inbox.id, [1], trash.id)
    await sqlite_account.store_flags(inbox.id, [1, 2], FlagOp.ADD, frozenset({DELETED}))
    await sqlite_account.expunge(inbox.id)

    def counts() -> tuple[int, int]:
        with sqlite3.connect(mail_db(tmp_path)) as conn:
            a = conn.execute("SELECT count(*) FROM analyses").fetchone()[0]
            return a, text_rows(conn)

    assert counts() == (1, 1)  # "one" lives on in Trash
    await sqlite_account.delete_mailbox("Trash")
    assert counts() == (0, 0)


async def test_a_mass_expunge_leaves_analyses_for_the_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most FORGET_BATCH analyses go with one release; the rest are unreachable
    until the sweep at the next open, and an APPEND of the same content reuses them."""
    monkeypatch.setattr(analyses_module, "FORGET_BATCH", 1)
    data = tmp_path / "data"
    store_ = await SqliteStore.open(data, durable=False)
    await store_.create_account("alice", "h")
    account = await store_.open_account("alice")
    inbox = await account.get_mailbox("INBOX")
    await store(account, inbox.id, mail("one"), mail("two"), mail("three"))
    await account.store_flags(inbox.id, [1, 2, 3], FlagOp.ADD, frozenset({DELETED}))
    await account.expunge(inbox.id)
    db = mail_db(tmp_path)

    def count() -> int:
        with sqlite3.connect(db) as conn:
            return text_rows(conn)

    assert count() == 2
    assert await found(account, inbox.id, MatchText(TextField.SUBJECT, "t")) == []
    await store(account, inbox.id, mail("three"))
    assert await found(account, inbox.id, MatchText(TextField.SUBJECT, "three")) == [4]
    assert count() in (2, 3)  # its old analysis if it was left behind, else a new one
    await account.close()
    await store_.close()
    store_ = await SqliteStore.open(data, durable=False)
    account = await store_.open_account("alice")  # the sweep
    try:
        assert count() == 1
        assert await found(account, inbox.id, MatchText(TextField.SUBJECT, "three")) == [4]
    finally:
        await account.close()
        await store_.close()


async def test_messages_stored_before_analyses_are_backfilled(tmp_path: Path) -> None:
    """A database from before the migration: its messages are analysed from their
    files at the first search, once."""
    data = tmp_path / "data"
    store_ = await SqliteStore.open(data, durable=False)
    await store_.create_account("alice", "h")
    account = await store_.open_account("alice")
    inbox = await account.get_mailbox("INBOX")
    await store(account, inbox.id, mail("old message", "from the archive"), mail("another"))
    await account.close()
    await store_.close()
    db = mail_db(tmp_path)
    blobs = BlobStore(db.parent / "blobs", db.parent / "tmp", durable=False)
    with sqlite3.connect(db) as conn:  # back to schema version 1: every message a file
        conn.execute("ALTER TABLE messages DROP COLUMN analysis_id")  # schema version 16
        conn.execute("DROP TABLE acl")  # ACL, schema version 12
        conn.execute("DROP TRIGGER metadata_on_mailbox_delete")  # METADATA, version 11
        conn.execute("DROP TABLE metadata")
        for (content,) in conn.execute("SELECT data FROM blob_data"):
            blobs.put(MessageSource(data=content))
        conn.execute("DROP TRIGGER mailbox_size_on_insert")  # STATUS counters, version 12
        conn.execute("DROP TRIGGER mailbox_size_on_delete")
        conn.execute("DROP INDEX messages_deleted")
        conn.execute("ALTER TABLE mailboxes DROP COLUMN message_count")
        conn.execute("ALTER TABLE mailboxes DROP COLUMN message_size")
        conn.execute("DROP TRIGGER usage_on_insert")  # quota usage, schema version 9
        conn.execute("DROP TRIGGER usage_on_delete")
        conn.execute("ALTER TABLE counters DROP COLUMN storage")
        conn.execute("ALTER TABLE counters DROP COLUMN messages")
        conn.execute("DROP TABLE blob_data")
        conn.execute("DROP TABLE uid_lists")
        conn.execute("DROP INDEX messages_unseen")
        conn.execute("DROP TABLE message_text")
        conn.execute("DROP TABLE text_pending")
        conn.execute("DROP TABLE analyses")
        conn.execute("ALTER TABLE counters DROP COLUMN unanalyzed")
        conn.execute("ALTER TABLE counters DROP COLUMN reindex_below")
        conn.execute("ALTER TABLE messages DROP COLUMN savedate")
        conn.execute("DROP TABLE sieve_scripts")  # Sieve scripts and tracking
        conn.execute("DROP TABLE sieve_tracking")
        conn.execute("PRAGMA user_version = 1")

    store_ = await SqliteStore.open(data, durable=False)
    account = await store_.open_account("alice")
    try:
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT unanalyzed FROM counters").fetchone() == (1,)
        # The migration counted the quota usage of the messages already there.
        usage = await account.quota()
        assert usage.messages == 2 and usage.storage > 0
        assert await account.recalculate_quota() == (usage, usage)
        assert await found(account, inbox.id, MatchText(TextField.BODY, "archive")) == [1]
        assert await found(account, inbox.id, MatchText(TextField.SUBJECT, "other")) == [2]
        [meta] = await account.fetch_meta(inbox.id, [1])
        assert meta.model
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT unanalyzed FROM counters").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM analyses").fetchone() == (2,)
            # Backfilled analyses are joined by id from then on.
            unjoined = "SELECT count(*) FROM messages WHERE analysis_id IS NULL"
            assert conn.execute(unjoined).fetchone() == (0,)
    finally:
        await account.close()
        await store_.close()


ATTACHED = (
    b"From: a@example.org\r\nSubject: report\r\nCc: Team: zed@example.org;\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
    b"--x\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
    b"--x\r\nContent-Type: application/pdf\r\n"
    b"Content-Disposition: attachment; filename*=utf-8''Quartalsbericht%C3%BC.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--x--\r\n"
)


async def test_text_of_earlier_analyses_is_remade(tmp_path: Path) -> None:
    """RFC 9051 §6.4.4: the body of a multipart holds its parts' headers, so TEXT and
    BODY find an attachment's (RFC 2231) file name; a group's name is Cc text and its
    sort key (RFC 5256). Messages analysed before that was so get their text and keys
    remade from their files at the first search after the migration, keeping their
    analysis (and so their thread id)."""
    data = tmp_path / "data"
    store_ = await SqliteStore.open(data, durable=False)
    await store_.create_account("alice", "h")
    account = await store_.open_account("alice")
    inbox = await account.get_mailbox("INBOX")
    await store(account, inbox.id, ATTACHED, mail("plain", "nothing attached"))
    name = MatchText(TextField.TEXT, "quartalsberichtü")
    assert await found(account, inbox.id, name) == [1]
    await account.close()
    await store_.close()
    db = mail_db(tmp_path)
    with sqlite3.connect(db) as conn:  # as the text was before: no part headers
        before = conn.execute("SELECT id, thread_id FROM analyses ORDER BY id").fetchall()
        conn.execute(
            "UPDATE message_text SET body = 'See attached.', addr_cc = 'zed@example.org'"
            " WHERE rowid = 1"
        )
        conn.execute("UPDATE analyses SET sort_cc = 'zed' WHERE id = 1")
        conn.execute("UPDATE counters SET reindex_below = 3")

    store_ = await SqliteStore.open(data, durable=False)
    account = await store_.open_account("alice")
    try:
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT body FROM message_text WHERE rowid = 1").fetchone() == (
                "See attached.",
            )
        assert await found(account, inbox.id, name) == [1]
        assert await found(account, inbox.id, MatchText(TextField.BODY, "nothing")) == [2]
        assert await found(account, inbox.id, MatchText(TextField.CC, "team")) == [1]
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT reindex_below FROM counters").fetchone() == (0,)
            assert conn.execute("SELECT sort_cc FROM analyses WHERE id = 1").fetchone() == ("TEAM",)
            after = conn.execute("SELECT id, thread_id FROM analyses ORDER BY id").fetchall()
            assert after == before
    finally:
        await account.close()
        await store_.close()


async def test_failed_analysis_still_stores_the_message(
    sqlite_account: SqliteAccount,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    request.keywords["allow_server_errors"] = True  # the failure is logged as a bug

    def broken(data: bytes | memoryview) -> object:
        raise RuntimeError("bug")

    monkeypatch.setattr(analyses_module, "analyze", broken)
    inbox = await sqlite_account.get_mailbox("INBOX")
    with caplog.at_level("ERROR", logger="roost"):
        await store(sqlite_account, inbox.id, mail("unparsed"))
    assert "message analysis failed" in caplog.text
    # FETCH still gets a model: parsed from the file on the account's worker, not on
    # the event loop (issue 13, item 8)
    [meta] = await sqlite_account.fetch_meta(inbox.id, [1])
    assert meta.model is not None
    assert b'"unparsed"' in MessageModel.from_blob(meta.model).envelope
    [meta] = await sqlite_account.fetch_meta(inbox.id, [1], with_model=False)
    assert meta.model is None
    assert await found(sqlite_account, inbox.id, MatchAll()) == [1]
    assert await found(sqlite_account, inbox.id, MatchText(TextField.SUBJECT, "unparsed")) == []
