"""The SMTP/LMTP server state machine: ``feed`` bytes, take events, ``answer`` them.

The session (greeting, TLS, authentication) is kept apart from the transaction (MAIL,
accepted RCPTs, message size), as in Dovecot's lib-smtp: RSET, a finished message or
a new hello ends the transaction and leaves the session alone.

Invariants:

- Every command event and every ``Rejected`` must get exactly one ``answer`` before
  the next ``next_event``; the answer's code is what moves the state (a 2xx to MAIL
  opens a transaction, a 2xx to RCPT adds an accepted recipient, 354 to DATA starts
  the content). So pipelined commands (RFC 2920) are judged against the state their
  predecessors left, in order.
- After the message ends (``MessageEnd``) one reply per accepted recipient, in RCPT
  order, is owed in LMTP (RFC 2033 §4.2), exactly one in SMTP. ``answer_recipient``
  takes them in any order and returns the bytes that became sendable in order.
- Bad input never raises; it becomes ``Rejected(reply)``. Only the host misusing
  the API (answering nothing, answering twice) raises ``UsageError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from roost.smtp import receiver as wire
from roost.smtp import replies
from roost.smtp.commands import (
    Auth,
    Bdat,
    Body,
    Burl,
    Command,
    Data,
    Hello,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Rset,
    StartTls,
    parse_command,
)
from roost.smtp.replies import Reply


class Dialect(Enum):
    LMTP = "LMTP"  # RFC 2033
    SMTP = "SMTP"  # RFC 5321 / RFC 6409 submission


class BareLf(Enum):
    NORMALIZE = "normalize"  # read a bare LF as CRLF
    REJECT = "reject"  # 500 for a command line, 554 for the message


class UsageError(Exception):
    """The host broke the answer-every-event contract (a bug, not bad input)."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    dialect: Dialect = Dialect.LMTP
    max_message_size: int | None = None  # SIZE (RFC 1870); None: unlimited
    max_command_line: int = 4096  # octets with CRLF; RFC 5321 §4.5.3.1.4 allows 512
    # plus what extensions' parameters need, so room is left for them
    max_data_line: int | None = 1000  # octets with CRLF (RFC 5321 §4.5.3.1.6)
    max_recipients: int = 1000  # RFC 5321 §4.5.3.1.8 asks for at least 100
    bare_lf: BareLf = BareLf.NORMALIZE
    pipelining: bool = True
    enhanced_status_codes: bool = True
    eight_bit_mime: bool = True
    chunking: bool = True
    binary_mime: bool = False
    smtputf8: bool = True
    dsn: bool = False
    starttls: bool = False
    auth_mechanisms: tuple[str, ...] = ()
    burl: bool = False  # RFC 4468 "BURL imap", offered once authenticated

    def capabilities(self, *, tls_active: bool = False, authenticated: bool = False) -> list[str]:
        """The EHLO/LHLO keywords this configuration supports (RFC 5321 §4.1.1.1)."""
        offered = [
            ("PIPELINING", self.pipelining),
            ("ENHANCEDSTATUSCODES", self.enhanced_status_codes),
            ("8BITMIME", self.eight_bit_mime),
            ("CHUNKING", self.chunking),
            ("BINARYMIME", self.binary_mime and self.chunking),
            ("SMTPUTF8", self.smtputf8),
            ("DSN", self.dsn),
            ("STARTTLS", self.starttls and not tls_active),
            ("BURL imap", self.burl and authenticated),
            ("AUTH " + " ".join(self.auth_mechanisms), bool(self.auth_mechanisms))
            if not authenticated
            else ("", False),
        ]
        size = f"SIZE {self.max_message_size}" if self.max_message_size else "SIZE"
        return [size] + [keyword for keyword, on in offered if on]


@dataclass(slots=True)
class Session:
    client_domain: str | None = None  # from the accepted hello
    extended: bool = False  # greeted with EHLO/LHLO, not HELO
    tls_active: bool = False
    authenticated: bool = False


@dataclass(frozen=True, slots=True)
class Recipient:
    index: int  # position among accepted recipients, the order replies are sent in
    command: RcptTo


@dataclass(slots=True)
class Transaction:
    mail: MailFrom
    recipients: list[Recipient] = field(default_factory=list)
    chunked: bool = False  # a BDAT was accepted: no DATA now (RFC 3030 §2)
    size: int = 0  # content octets received so far (BDAT chunks add up)


@dataclass(frozen=True, slots=True)
class Rejected:
    """The core refused a command or line; answer with ``reply`` (or a better one)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """A SASL answer line, read because the last answer to AUTH was 334."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ChunkEnd:
    """A BDAT chunk without LAST was received in full; answer 250 (or an error)."""

    size: int


@dataclass(frozen=True, slots=True)
class MessageEnd:
    """The message is complete; answer each of ``recipients`` (LMTP) or once (SMTP)."""

    recipients: tuple[Recipient, ...]
    size: int


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """The message broke a limit and was swallowed; answer ``reply``, drop the spool."""

    reply: Reply


NeedData = wire.NeedData
Content = wire.Content
Event = (
    NeedData | Content | Command | Rejected | AuthResponse | ChunkEnd | MessageEnd
) | MessageRejected

_FAILURE_REPLIES = {
    wire.Failure.TOO_BIG: replies.MESSAGE_TOO_BIG,
    wire.Failure.LINE_TOO_LONG: replies.MESSAGE_LINE_TOO_LONG,
    wire.Failure.BARE_LF: replies.BARE_LF_MESSAGE,
}


class Connection:
    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.session = Session()
        self.transaction: Transaction | None = None
        self._receiver = wire.Receiver(max_line_length=self.config.max_command_line - 2)
        self._awaiting: Event | None = None
        self._sasl = False
        self._chunk_rejection: Reply | None = None  # swallowing a refused BDAT chunk
        self._chunk_last = False
        self._slots: list[Reply | None] = []  # per-recipient replies owed
        self._sent = 0  # how many of _slots were returned as bytes

    def feed(self, data: bytes) -> None:
        self._receiver.feed(data)

    def greeting(self, server_name: str, text: str = "ready") -> bytes:
        protocol = self.config.dialect.value
        return Reply(220, None, f"{server_name} {protocol} {text}").to_bytes()

    def hello_reply(self, server_name: str, text: str = "", extra: tuple[str, ...] = ()) -> Reply:
        capabilities = self.config.capabilities(
            tls_active=self.session.tls_active, authenticated=self.session.authenticated
        )
        return replies.hello_reply(server_name, [*capabilities, *extra], text)

    def start_tls(self) -> int:
        """Call after sending 220 to STARTTLS, before the handshake. Drops pipelined
        input and forgets the hello (RFC 3207 §4.2); returns octets dropped."""
        self.session = Session(tls_active=True)
        self.transaction = None
        return self._receiver.clear_buffer()

    def next_event(self) -> Event:
        if self._awaiting is not None or self._sent < len(self._slots):
            raise UsageError(f"answer {self._awaiting or 'the recipients'} first")
        event = self._next_event()
        if not isinstance(event, (NeedData, Content, Bdat)):
            self._awaiting = event
        return event

    def _next_event(self) -> Event:
        match self._receiver.next_event():
            case wire.NeedData() | wire.Content() as event:
                return event
            case wire.LineTooLong():
                self._sasl = False
                return Rejected(replies.LINE_TOO_LONG)
            case wire.Line(data, bare_lf):
                if bare_lf and self.config.bare_lf is BareLf.REJECT:
                    self._sasl = False
                    return Rejected(replies.BARE_LF_COMMAND)
                if self._sasl:
                    self._sasl = False
                    return AuthResponse(data)
                command = parse_command(data)
                if isinstance(command, Reply):
                    return Rejected(command)
                return self._check(command)
            case wire.ContentEnd(size, failure):
                return self._content_end(size, failure)

    def _check(self, command: Command) -> Event:
        """Judge a parsed command against dialect, extensions and state."""
        config, session, txn = self.config, self.session, self.transaction
        lmtp = config.dialect is Dialect.LMTP
        if isinstance(command, Bdat):
            return self._check_bdat(command)
        refusal: Reply | None = None
        match command:
            case Hello(verb=verb):
                if lmtp and verb != "LHLO":
                    refusal = replies.WRONG_HELLO_LMTP
                elif not lmtp and verb == "LHLO":
                    refusal = replies.WRONG_HELLO_SMTP
            case MailFrom(sender, params):
                if session.client_domain is None:
                    refusal = replies.SEND_HELLO_FIRST
                elif txn is not None:
                    refusal = replies.NESTED_MAIL
                elif not self._mail_params_allowed(command):
                    refusal = replies.UNKNOWN_PARAMETER
                elif params.smtputf8 is False and sender and not sender.is_ascii:
                    refusal = replies.NON_ASCII_WITHOUT_SMTPUTF8
                elif (
                    params.size is not None
                    and config.max_message_size is not None
                    and params.size > config.max_message_size
                ):
                    refusal = replies.MESSAGE_TOO_BIG
            case RcptTo(recipient, params):
                if txn is None:
                    refusal = replies.MAIL_FIRST
                elif txn.chunked:
                    refusal = replies.RCPT_AFTER_BDAT
                elif params.unknown or ((params.notify or params.orcpt) and not config.dsn):
                    refusal = replies.UNKNOWN_PARAMETER
                elif not txn.mail.params.smtputf8 and not recipient.is_ascii:
                    refusal = replies.NON_ASCII_WITHOUT_SMTPUTF8
                elif len(txn.recipients) >= config.max_recipients:
                    refusal = replies.TOO_MANY_RECIPIENTS
            case Data():
                if txn is None:
                    refusal = replies.MAIL_FIRST
                elif txn.chunked:
                    refusal = replies.DATA_AFTER_BDAT
                elif txn.mail.params.body is Body.BINARY_MIME:
                    refusal = replies.BINARYMIME_NEEDS_BDAT  # RFC 3030 §3
                elif not txn.recipients:
                    refusal = self._no_recipients()
            case StartTls():
                if not config.starttls:
                    refusal = replies.NOT_IMPLEMENTED
                elif session.tls_active:
                    refusal = replies.ALREADY_TLS
            case Burl():
                if not config.burl:
                    refusal = replies.NOT_IMPLEMENTED
                elif txn is None:
                    refusal = replies.MAIL_FIRST
                elif not txn.recipients:
                    refusal = self._no_recipients()
                elif txn.mail.params.body is Body.BINARY_MIME:
                    refusal = replies.BINARYMIME_NEEDS_BDAT
                else:
                    txn.chunked = True  # RFC 4468 §3: mixes with BDAT, never DATA
            case Auth():
                if not config.auth_mechanisms:
                    refusal = replies.NOT_IMPLEMENTED
                elif session.client_domain is None:
                    refusal = replies.SEND_HELLO_FIRST
                elif session.authenticated:
                    refusal = replies.ALREADY_AUTHENTICATED
                elif txn is not None:
                    refusal = replies.AUTH_IN_TRANSACTION  # RFC 4954 §4
        return command if refusal is None else Rejected(refusal)

    def _mail_params_allowed(self, mail: MailFrom) -> bool:
        config, params = self.config, mail.params
        if params == type(params)():
            return True
        return (
            self.session.extended  # HELO sessions take no parameters
            and not params.unknown
            and (params.smtputf8 is False or config.smtputf8)
            and ((params.ret is None and params.envid is None) or config.dsn)
            and (params.auth is None or bool(config.auth_mechanisms))
            and (params.body is not Body.EIGHT_BIT_MIME or config.eight_bit_mime)
            and (params.body is not Body.BINARY_MIME or (config.binary_mime and config.chunking))
        )

    def _no_recipients(self) -> Reply:
        lmtp = self.config.dialect is Dialect.LMTP
        return replies.NO_RECIPIENTS_LMTP if lmtp else replies.NO_RECIPIENTS_SMTP

    def _check_bdat(self, command: Bdat) -> Event:
        """BDAT's octets follow the command at once, so a refused chunk is still read
        and dropped before the refusal is given (RFC 3030 §2)."""
        txn = self.transaction
        refusal: Reply | None = None
        if not self.config.chunking:
            refusal = replies.NOT_IMPLEMENTED
        elif txn is None:
            refusal = replies.MAIL_FIRST
        elif not txn.recipients:
            refusal = self._no_recipients()
        self._chunk_rejection = refusal
        self._chunk_last = command.last
        if refusal is not None or txn is None:
            self._receiver.expect_chunk(command.size, budget=None, discard=True)
            return self._next_event()
        txn.chunked = True
        limit = self.config.max_message_size
        budget = None if limit is None else max(limit - txn.size, 0)
        self._receiver.expect_chunk(command.size, budget=budget)
        return command

    def _content_end(self, size: int, failure: wire.Failure | None) -> Event:
        if self._chunk_rejection is not None:
            refusal, self._chunk_rejection = self._chunk_rejection, None
            if self.transaction is not None:
                self.transaction = None  # RFC 3030 §4.2: a failed chunk fails the txn
            return Rejected(refusal)
        txn = self.transaction
        assert txn is not None  # content is only read inside a transaction
        txn.size += size
        if failure is not None:
            self.transaction = None
            return MessageRejected(_FAILURE_REPLIES[failure])
        if txn.chunked and not self._chunk_last:
            return ChunkEnd(size)
        self._slots = [None] * (len(txn.recipients) if self.config.dialect is Dialect.LMTP else 1)
        self._sent = 0
        return MessageEnd(tuple(txn.recipients), txn.size)

    def answer(self, reply: Reply) -> bytes:
        """Answer the pending event; returns the bytes to send."""
        event, self._awaiting = self._awaiting, None
        if event is None or isinstance(event, MessageEnd):
            self._awaiting = event
            raise UsageError("nothing to answer" if event is None else "use answer_recipient")
        positive = reply.is_positive
        match event:
            case Hello(verb, domain) if positive:
                self.session.client_domain = domain
                self.session.extended = verb != "HELO"
                self.transaction = None
            case MailFrom() if positive:
                self.transaction = Transaction(event)
            case RcptTo() if positive and self.transaction is not None:
                recipients = self.transaction.recipients
                recipients.append(Recipient(len(recipients), event))
            case Data() if reply.code == 354 and self.transaction is not None:
                self._receiver.expect_data(
                    budget=self.config.max_message_size,
                    max_line_length=self.config.max_data_line,
                    reject_bare_lf=self.config.bare_lf is BareLf.REJECT,
                )
            case ChunkEnd() if not positive:
                self.transaction = None
            case Burl(last=last) if last or not positive:
                self.transaction = None  # the host relayed (or refused) the message
            case Rset():
                self.transaction = None
            case Auth() | AuthResponse():
                self._sasl = reply.code == 334
                self.session.authenticated |= reply.code == 235
            case StartTls() | Quit() | Noop():
                pass
        return self._serialize(reply)

    def answer_recipient(self, index: int, reply: Reply) -> bytes:
        """Give recipient ``index``'s reply to ``MessageEnd`` (index 0 in SMTP).
        Returns the replies now sendable in RCPT order (possibly none)."""
        if not 0 <= index < len(self._slots) or self._slots[index] is not None:
            raise UsageError(f"no reply owed for recipient {index}")
        self._slots[index] = reply
        out = bytearray()
        while self._sent < len(self._slots) and (ready := self._slots[self._sent]):
            out += self._serialize(ready)
            self._sent += 1
        if self._sent == len(self._slots):
            self._slots, self._sent, self._awaiting = [], 0, None
            self.transaction = None
        return bytes(out)

    def answer_message(self, message_replies: list[Reply]) -> bytes:
        """All of ``MessageEnd``'s replies at once, in RCPT order."""
        if len(message_replies) != len(self._slots):
            raise UsageError(f"{len(self._slots)} replies owed, not {len(message_replies)}")
        return b"".join(self.answer_recipient(i, r) for i, r in enumerate(message_replies))

    def _serialize(self, reply: Reply) -> bytes:
        enhanced = self.config.enhanced_status_codes and self.session.extended
        return reply.to_bytes(enhanced=enhanced)
