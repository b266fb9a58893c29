"""BURL (RFC 4468 §3) in the sans-IO core: parsed, judged against the transaction,
mixed with BDAT but never DATA, and ``LAST`` (or a refusal) ends the transaction."""

from __future__ import annotations

from roost.smtp import Bdat, Burl, Connection, Dialect, Rejected, ServerConfig, replies
from roost.smtp.commands import parse_command
from roost.smtp.replies import Reply

URL = "imap://a@h/INBOX/;uid=1;urlauth=submit+a:internal:" + "0" * 32
CONFIG = ServerConfig(dialect=Dialect.SMTP, burl=True, auth_mechanisms=("PLAIN",))


def test_parse() -> None:
    assert parse_command(f"BURL {URL} LAST".encode()) == Burl(URL, True)
    assert parse_command(f"burl {URL}".encode()) == Burl(URL, False)
    for bad in (b"BURL", f"BURL {URL} FIRST".encode(), f"BURL {URL} LAST x".encode()):
        assert parse_command(bad) == replies.SYNTAX_ERROR


def _connection(lines: bytes, config: ServerConfig = CONFIG) -> Connection:
    conn = Connection(config)
    conn.feed(lines)
    return conn


def _accept(conn: Connection, count: int) -> None:
    for _ in range(count):
        conn.next_event()
        conn.answer(replies.OK)


def test_offered_after_auth_only() -> None:
    conn = Connection(CONFIG)
    assert "BURL imap" not in conn.hello_reply("mx").lines
    conn.session.authenticated = True
    assert "BURL imap" in conn.hello_reply("mx").lines
    assert "BURL imap" not in Connection(ServerConfig()).hello_reply("mx").lines


def test_burl_then_bdat_then_burl_last_ends_the_transaction() -> None:
    envelope = b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"
    conn = _connection(envelope + f"BURL {URL}\r\nBDAT 2\r\nabBURL {URL} LAST\r\n".encode())
    _accept(conn, 3)
    assert conn.next_event() == Burl(URL, False)
    conn.answer(Reply(250, "2.0.0", "appended"))
    assert conn.next_event() == Bdat(2, False)
    conn.next_event()  # the chunk's content
    conn.next_event()  # its end
    conn.answer(replies.OK)
    assert conn.next_event() == Burl(URL, True)
    conn.answer(Reply(250, "2.0.0", "sent"))
    assert conn.transaction is None


def test_refusals() -> None:
    conn = _connection(f"EHLO c\r\nBURL {URL}\r\nMAIL FROM:<a@x>\r\nBURL {URL}\r\n".encode())
    _accept(conn, 1)
    assert conn.next_event() == Rejected(replies.MAIL_FIRST)
    conn.answer(replies.MAIL_FIRST)
    _accept(conn, 1)
    assert conn.next_event() == Rejected(replies.NO_RECIPIENTS_SMTP)
    # Not offered (LMTP, or a server without URLAUTH): 502.
    conn = _connection(f"EHLO c\r\nBURL {URL}\r\n".encode(), ServerConfig(dialect=Dialect.SMTP))
    _accept(conn, 1)
    assert conn.next_event() == Rejected(replies.NOT_IMPLEMENTED)


def test_data_after_burl_and_a_failed_burl() -> None:
    envelope = b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"
    conn = _connection(envelope + f"BURL {URL}\r\nDATA\r\n".encode())
    _accept(conn, 3)
    conn.next_event()
    conn.answer(replies.OK)
    assert conn.next_event() == Rejected(replies.DATA_AFTER_BDAT)
    conn = _connection(envelope + f"BURL {URL}\r\n".encode())
    _accept(conn, 3)
    conn.next_event()
    conn.answer(Reply(554, "5.6.6", "IMAP URL resolution failed"))
    assert conn.transaction is None
