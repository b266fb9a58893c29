"""Roost's sans-IO SMTP-family server core: LMTP (RFC 2033) now, submission later.

No sockets, no asyncio, no store: the host reads bytes, feeds them, takes events,
and writes the bytes ``answer`` returns. Limits and the dialect are ``ServerConfig``
fields.

Driving it::

    conn = Connection(ServerConfig(dialect=Dialect.LMTP, max_message_size=...))
    write(conn.greeting("mx.example"))
    while True:
        event = conn.next_event()
        match event:
            case NeedData():          conn.feed(await read())   # b"" never fed: EOF
            case Hello():             write(conn.answer(conn.hello_reply("mx.example")))
            case MailFrom() | RcptTo() | Data() | Rset() | Noop() | Vrfy() | Help():
                write(conn.answer(decide(event)))  # 354 to Data starts the content
            case Bdat():              pass           # chunk content follows, no answer
            case Burl(url, last):     write(conn.answer(fetch_and_append(url)))  # RFC 4468
            case Content(data):       spool.write(data)
            case ChunkEnd():          write(conn.answer(replies.OK))
            case MessageEnd(recipients):
                for r in recipients:  # in any order, e.g. as deliveries finish
                    write(conn.answer_recipient(r.index, deliver(r)))
            case MessageRejected(reply) | Rejected(reply):
                write(conn.answer(reply))       # drop the spool for MessageRejected
            case StartTls():          write(conn.answer(replies.READY_TO_START_TLS))
                                      conn.start_tls(); handshake()
            case Auth() | AuthResponse():       # after a 334 answer, the next
                write(conn.answer(sasl_step(event)))  # line is an AuthResponse
            case Quit():              write(conn.answer(replies.CLOSING)); close()

Every event except ``NeedData``, ``Content`` and ``Bdat`` must be answered before the
next ``next_event`` (``UsageError`` otherwise); the answer's code moves the state.
``conn.session`` and ``conn.transaction`` (MAIL, accepted ``Recipient``s) are
readable by the host. ``trace`` builds Return-Path/Received/Delivered-To.
"""

from roost.smtp import replies, trace
from roost.smtp.commands import (
    Auth,
    Bdat,
    Body,
    Burl,
    Command,
    Data,
    Hello,
    Help,
    MailFrom,
    MailParams,
    Noop,
    Quit,
    RcptParams,
    RcptTo,
    Rset,
    StartTls,
    Vrfy,
)
from roost.smtp.connection import (
    AuthResponse,
    BareLf,
    ChunkEnd,
    Connection,
    Content,
    Dialect,
    Event,
    MessageEnd,
    MessageRejected,
    NeedData,
    Recipient,
    Rejected,
    ServerConfig,
    Session,
    Transaction,
    UsageError,
)
from roost.smtp.paths import Mailbox
from roost.smtp.replies import Reply

__all__ = [
    "Auth",
    "AuthResponse",
    "BareLf",
    "Bdat",
    "Body",
    "Burl",
    "ChunkEnd",
    "Command",
    "Connection",
    "Content",
    "Data",
    "Dialect",
    "Event",
    "Hello",
    "Help",
    "MailFrom",
    "MailParams",
    "Mailbox",
    "MessageEnd",
    "MessageRejected",
    "NeedData",
    "Noop",
    "Quit",
    "RcptParams",
    "RcptTo",
    "Recipient",
    "Rejected",
    "Reply",
    "Rset",
    "ServerConfig",
    "Session",
    "StartTls",
    "Transaction",
    "UsageError",
    "Vrfy",
    "replies",
    "trace",
]
