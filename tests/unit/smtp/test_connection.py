"""The SMTP/LMTP core over whole transcripts, each fed whole, bytewise and split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roost.smtp import (
    BareLf,
    Bdat,
    ChunkEnd,
    Connection,
    Content,
    Data,
    Dialect,
    Hello,
    MailFrom,
    MessageEnd,
    MessageRejected,
    NeedData,
    RcptTo,
    Rejected,
    ServerConfig,
    UsageError,
    replies,
)
from roost.smtp.commands import Body
from roost.smtp.replies import Reply
from tests.unit.smtp.helpers import run, run_all_ways

HELLO = b"LHLO client.example\r\n"
ENVELOPE = HELLO + b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\n"


def test_pipelined_lmtp_transaction_gives_one_reply_per_recipient_in_order() -> None:
    data = ENVELOPE + b"DATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n"
    events, content, out = run_all_ways(data)
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "Hello",
        "MailFrom",
        "RcptTo",
        "RcptTo",
        "Data",
        "Content",
        "MessageEnd",
        "Quit",
    ]
    assert content == b"Subject: hi\r\n\r\nbody\r\n"
    lines = out.split(b"\r\n")
    assert b"250 2.0.0 <b@y.example> delivered" in lines
    assert lines.index(b"250 2.0.0 <b@y.example> delivered") + 1 == lines.index(
        b"250 2.0.0 <c@y.example> delivered"
    )


def test_dot_unstuffing_and_end_only_at_crlf_dot_crlf() -> None:
    body = b"..leading\r\n.\r\n"  # "." line inside would end; stuffed it is "..\r\n"
    data = ENVELOPE + b"DATA\r\n..leading\r\n..\r\n.x\r\nend\r\n.\r\n"
    _, content, _ = run_all_ways(data)
    assert content == b".leading\r\n.\r\nx\r\nend\r\n"
    assert body  # the example above, stated for the reader


def test_empty_message() -> None:
    events, content, _ = run_all_ways(ENVELOPE + b"DATA\r\n.\r\n")
    assert content == b"" and isinstance(events[-1], MessageEnd)


def test_bare_lf_normalized_but_never_ends_data() -> None:
    data = ENVELOPE + b"DATA\r\na\nb\n.\nc\r\n.\r\n"
    events, content, _ = run_all_ways(data)
    assert content == b"a\r\nb\r\n\r\nc\r\n"
    assert isinstance(events[-1], MessageEnd)


def test_bare_lf_rejected_swallows_message_and_stays_usable() -> None:
    config = ServerConfig(bare_lf=BareLf.REJECT)
    data = ENVELOPE + b"DATA\r\na\nb\r\n.\r\nNOOP\r\nNOOP\n"
    events, _, out = run_all_ways(data, config)
    assert MessageRejected(replies.BARE_LF_MESSAGE) in events
    assert out.endswith(
        b"554 5.6.0 Bare LF in message, end lines with CRLF\r\n250 2.0.0 OK\r\n"
        b"500 5.5.2 Bare LF not allowed, end lines with CRLF\r\n"
    )


def test_oversized_data_is_swallowed_then_552_and_session_continues() -> None:
    config = ServerConfig(max_message_size=100)
    body = b"x" * 60 + b"\r\n"
    data = ENVELOPE + b"DATA\r\n" + body * 5 + b".\r\n" + b"MAIL FROM:<>\r\n"
    events, content, out = run_all_ways(data, config)
    assert MessageRejected(replies.MESSAGE_TOO_BIG) in events
    assert len(content) <= 100
    assert isinstance(events[-1], MailFrom) and events[-1].sender is None
    assert b"552 5.3.4 Message too big\r\n250 2.0.0 OK\r\n" in out


def test_declared_size_over_limit_refused_at_mail() -> None:
    config = ServerConfig(max_message_size=100)
    events, _, _ = run_all_ways(HELLO + b"MAIL FROM:<a@x> SIZE=101\r\n", config)
    assert events[-1] == Rejected(replies.MESSAGE_TOO_BIG)


def test_data_line_length_limit() -> None:
    config = ServerConfig(max_data_line=10)
    data = ENVELOPE + b"DATA\r\n12345678\r\n123456789\r\n.\r\n"
    events, _, _ = run_all_ways(data, config)
    assert events[-1] == MessageRejected(replies.MESSAGE_LINE_TOO_LONG)


def test_streaming_never_holds_the_message() -> None:
    conn = Connection(ServerConfig(max_data_line=None))
    conn.feed(ENVELOPE + b"DATA\r\n")
    for _ in range(5):
        event = conn.next_event()
        conn.answer(replies.START_MAIL_INPUT if isinstance(event, Data) else replies.OK)
    chunk = (b"y" * 998 + b"\r\n") * 64
    total = 0
    for _ in range(300):  # ~19 MB through a bounded buffer
        conn.feed(chunk)
        event = conn.next_event()
        assert isinstance(event, Content)
        total += len(event.data)
        assert conn._receiver._start <= len(chunk) + 4096 or len(conn._receiver._buffer) < 2 * len(
            chunk
        )
        assert isinstance(conn.next_event(), NeedData)
    assert total == 300 * len(chunk)
    conn.feed(b".\r\n")
    assert isinstance(conn.next_event(), MessageEnd)


def test_bdat_chunks_and_last() -> None:
    data = ENVELOPE + b"BDAT 5\r\nhel.\nBDAT 0\r\nBDAT 7 LAST\r\nlo\r\n.\r\nNOOP\r\n"
    events, content, _out = run_all_ways(data)
    assert content == b"hel.\nlo\r\n.\r\n"
    kinds = [type(e).__name__ for e in events if not isinstance(e, Content)]
    assert kinds[4:] == ["Bdat", "ChunkEnd", "Bdat", "ChunkEnd", "Bdat", "MessageEnd", "Noop"]
    end = next(e for e in events if isinstance(e, MessageEnd))
    assert end.size == 12 and len(end.recipients) == 2
    assert Bdat(7, True) in events and ChunkEnd(5) in events


def test_bdat_without_mail_swallows_its_chunk() -> None:
    events, _, out = run_all_ways(HELLO + b"BDAT 10 LAST\r\nNOOP\r\nxx\r\nNOOP\r\n")
    assert events[1:] == [Rejected(replies.MAIL_FIRST), Noop()]
    assert out.endswith(b"503 5.5.1 MAIL needed first\r\n250 2.0.0 OK\r\n")


def test_data_after_bdat_and_binarymime_with_data_refused() -> None:
    events, _, _ = run_all_ways(ENVELOPE + b"BDAT 2\r\nabDATA\r\n")
    assert events[-1] == Rejected(replies.DATA_AFTER_BDAT)
    config = ServerConfig(binary_mime=True)
    data = HELLO + b"MAIL FROM:<a@x> BODY=BINARYMIME\r\nRCPT TO:<b@y>\r\nDATA\r\n"
    events, _, _ = run_all_ways(data, config)
    assert events[1] == MailFrom(events[1].sender, events[1].params)  # type: ignore[union-attr]
    assert events[1].params.body is Body.BINARY_MIME  # type: ignore[union-attr]
    assert events[-1] == Rejected(replies.BINARYMIME_NEEDS_BDAT)


def test_bdat_over_size_fails_transaction() -> None:
    config = ServerConfig(max_message_size=4)
    events, content, _ = run_all_ways(ENVELOPE + b"BDAT 3\r\nabcBDAT 3 LAST\r\ndefRSET\r\n", config)
    assert content == b"abc"
    assert MessageRejected(replies.MESSAGE_TOO_BIG) in events
    assert type(events[-1]).__name__ == "Rset"


def test_sequence_errors() -> None:
    events, _, out = run_all_ways(HELLO + b"RCPT TO:<b@y>\r\nDATA\r\nMAIL FROM:<a@x>\r\nDATA\r\n")
    assert events[1] == Rejected(replies.MAIL_FIRST)
    assert events[2] == Rejected(replies.MAIL_FIRST)
    assert events[4] == Rejected(replies.NO_RECIPIENTS_LMTP)
    assert out.endswith(b"503 5.5.1 No valid recipients\r\n")
    smtp = ServerConfig(dialect=Dialect.SMTP)
    events, _, _ = run_all_ways(b"EHLO c\r\nMAIL FROM:<a@x>\r\nDATA\r\n", smtp)
    assert events[-1] == Rejected(replies.NO_RECIPIENTS_SMTP)


def test_mail_before_hello_and_nested_mail() -> None:
    events, _, _ = run_all_ways(
        b"MAIL FROM:<a@x>\r\n" + HELLO + b"MAIL FROM:<a@x>\r\nMAIL FROM:<a@x>\r\n"
    )
    assert events[0] == Rejected(replies.SEND_HELLO_FIRST)
    assert events[-1] == Rejected(replies.NESTED_MAIL)


def test_refused_rcpt_is_not_counted() -> None:
    def answer(event: object) -> Reply | list[Reply] | None:
        if isinstance(event, RcptTo) and event.recipient.local_part == "b":
            return Reply(550, "5.1.1", "No such user")
        if isinstance(event, Data):
            return replies.START_MAIL_INPUT
        if isinstance(event, MessageEnd):
            return [Reply(250, "2.0.0", str(r.command.recipient)) for r in event.recipients]
        return getattr(event, "reply", replies.OK)

    events, _, out = run_all_ways(ENVELOPE + b"DATA\r\nx\r\n.\r\n", answer=answer)
    end = events[-1]
    assert isinstance(end, MessageEnd)
    assert [str(r.command.recipient) for r in end.recipients] == ["c@y.example"]
    assert out.endswith(b"250 2.0.0 c@y.example\r\n")


def test_dialect_hello() -> None:
    events, _, _ = run_all_ways(b"EHLO c\r\nhelo c\r\nlhlo c\r\n")
    assert events[:2] == [Rejected(replies.WRONG_HELLO_LMTP)] * 2
    assert events[2] == Hello("LHLO", "c")
    smtp = ServerConfig(dialect=Dialect.SMTP)
    events, _, out = run_all_ways(b"LHLO c\r\nHELO c\r\nMAIL FROM:<a@x>\r\n", smtp)
    assert events[0] == Rejected(replies.WRONG_HELLO_SMTP)
    assert out.endswith(b"250 OK\r\n250 OK\r\n")  # no enhanced codes after HELO


def test_two_megabyte_command_line_then_usable() -> None:
    data = HELLO + b"NOOP " + b"a" * 2_000_000 + b"\r\nNOOP\r\n"
    events, _, out = run([data[i : i + 65536] for i in range(0, len(data), 65536)])
    assert events[1:] == [Rejected(replies.LINE_TOO_LONG), Noop()]
    assert out.endswith(b"500 5.5.2 Line too long\r\n250 2.0.0 OK\r\n")
    events, _, _ = run_all_ways(HELLO + b"NOOP " + b"a" * 5000 + b"\r\nNOOP\r\n")
    assert events[1:] == [Rejected(replies.LINE_TOO_LONG), Noop()]


def test_lmtp_replies_emitted_in_rcpt_order_whatever_order_they_finish() -> None:
    conn = Connection()
    conn.feed(ENVELOPE + b"DATA\r\n.\r\n")
    for _ in range(5):
        event = conn.next_event()
        conn.answer(replies.START_MAIL_INPUT if isinstance(event, Data) else replies.OK)
    end = conn.next_event()
    assert isinstance(end, MessageEnd)
    with pytest.raises(UsageError):
        conn.next_event()
    assert conn.answer_recipient(1, Reply(452, "4.2.2", "Over quota")) == b""
    assert conn.answer_recipient(0, replies.OK) == (b"250 2.0.0 OK\r\n452 4.2.2 Over quota\r\n")
    assert conn.transaction is None
    assert isinstance(conn.next_event(), NeedData)


def test_hello_reply_lists_capabilities() -> None:
    conn = Connection(ServerConfig(max_message_size=1000, starttls=True))
    assert conn.hello_reply("mx").to_bytes() == (
        b"250-mx\r\n250-SIZE 1000\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
        b"250-8BITMIME\r\n250-CHUNKING\r\n250-SMTPUTF8\r\n250 STARTTLS\r\n"
    )


def test_starttls_drops_pipelined_input_and_forgets_hello() -> None:
    conn = Connection(ServerConfig(starttls=True))
    conn.feed(HELLO + b"STARTTLS\r\nMAIL FROM:<a@x>\r\n")
    conn.answer(conn.hello_reply("mx")) if isinstance(conn.next_event(), Hello) else None
    assert type(conn.next_event()).__name__ == "StartTls"
    assert conn.answer(replies.READY_TO_START_TLS).startswith(b"220 2.0.0")
    assert conn.start_tls() == len(b"MAIL FROM:<a@x>\r\n")
    conn.feed(b"MAIL FROM:<a@x>\r\n")
    assert conn.next_event() == Rejected(replies.SEND_HELLO_FIRST)


def test_auth_reads_sasl_lines() -> None:
    conn = Connection(ServerConfig(dialect=Dialect.SMTP, auth_mechanisms=("PLAIN",)))
    conn.feed(b"EHLO c\r\nauth plain\r\nAHVzZXIAcGFzcw==\r\nAUTH PLAIN =\r\n")
    conn.answer(conn.hello_reply("mx")) if isinstance(conn.next_event(), Hello) else None
    assert conn.next_event() == __import__("roost.smtp").smtp.Auth("PLAIN", None)
    conn.answer(Reply(334, None, ""))
    assert conn.next_event() == __import__("roost.smtp").smtp.AuthResponse(b"AHVzZXIAcGFzcw==")
    conn.answer(replies.AUTH_SUCCEEDED)
    assert conn.next_event() == Rejected(replies.ALREADY_AUTHENTICATED)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=8), st.sampled_from(list(Dialect)))
def test_random_bytes_never_raise(pieces: list[bytes], dialect: Dialect) -> None:
    prefix = [b"LHLO c\r\nEHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"]
    config = ServerConfig(dialect=dialect, max_message_size=50, max_command_line=40)
    run(prefix + pieces + [b"\r\n.\r\n"], config)


from roost.smtp import Noop  # noqa: E402  (kept next to its only users above)
