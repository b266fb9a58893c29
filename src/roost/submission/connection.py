"""One submission connection (RFC 6409): sign in, check, relay, keep a Sent copy.

Invariants:

- AUTH is offered and accepted only over TLS (RFC 8314 §3; RFC 4954 §4), or on a
  plain listener when every plain submission listener is loopback and
  ``allow_plaintext_auth`` is set; elsewhere AUTH gets ``530 5.7.0``. MAIL before
  AUTH gets ``530 5.7.0`` (RFC 4954 §6). Sign-in goes through the one Authenticator
  (throttle, app passwords, two-factor, sign-in cache) with the protocol "submission".
- The envelope sender and every From: address must belong to the account
  (``policy.py``), else ``553 5.7.1``. Limits: SIZE (``552 5.3.4``, the core),
  recipients (``452 4.5.3``, the core), messages per hour per account
  (``450 4.7.1``, counted in the store so every worker sees the same count).
- The message is spooled as received, then relayed with a ``Received:`` line in
  front (``relay.py``); the client's reply to the end of the message is the relay's
  verdict. Nothing is queued here. A copy goes to \\Sent only after the relay said
  250, through ``Account.append`` like every other stored message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from roost.auth import sasl
from roost.auth.base import AuthResult
from roost.delivery import MessageSpool, SpoolFull
from roost.runtime.streams import drop_buffered_input
from roost.smtp import (
    Auth,
    AuthResponse,
    Bdat,
    Burl,
    ChunkEnd,
    Connection,
    Content,
    Data,
    Hello,
    Help,
    Mailbox,
    MailFrom,
    MessageEnd,
    MessageRejected,
    NeedData,
    Noop,
    Quit,
    RcptTo,
    Rejected,
    Reply,
    Rset,
    StartTls,
    Vrfy,
    replies,
    trace,
)
from roost.store.values import MessageSource
from roost.submission import policy
from roost.submission.context import SubmissionContext
from roost.submission.relay import RelayEnvelope, relay_message
from roost.submission.sent import save_sent_copy
from roost.urlauth import access

log = logging.getLogger("roost.submission")

READ_SIZE = 256 * 1024
HOUR = 3600.0

TLS_FIRST = Reply(530, "5.7.0", "Must issue a STARTTLS command first")
AUTH_FIRST = Reply(530, "5.7.0", "Authentication required")
NO_SUCH_MECHANISM = Reply(504, "5.5.4", "Unrecognized authentication type")
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_THROTTLED = Reply(454, "4.7.0", "Too many failed sign-ins, try again later")
AUTH_CANCELLED = Reply(501, "5.7.0", "Authentication cancelled")
BAD_BASE64 = Reply(501, "5.5.2", "Invalid base64 in the authentication response")
TOO_MANY_MESSAGES = Reply(
    450, "4.7.1", "Too many messages sent in the last hour (max_messages_per_hour)"
)
TEMPORARY = Reply(451, "4.3.0", "Temporary failure, try again later")
SHUTTING_DOWN = Reply(421, "4.3.2", "Server shutting down")
TIMED_OUT = Reply(421, "4.4.2", "Timeout, closing connection")
CANNOT_VRFY = Reply(252, "2.5.0", "Cannot VRFY, send some mail")
HELP = Reply(214, "2.0.0", "See RFC 6409")
BURL_FAILED = Reply(554, "5.6.6", "IMAP URL resolution failed")  # RFC 4468 §6


class _Closed(Exception):
    """The client went away or the TLS handshake failed."""


class SubmissionConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: SubmissionContext,
        *,
        tls_active: bool,
        remote_ip: str,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.context = context
        self.remote_ip = remote_ip
        mechanisms = sasl.available_mechanisms(context.authenticator)
        self.core = Connection(context.core_config(mechanisms))
        self.core.session.tls_active = tls_active
        self.account: str | None = None
        self._allowed: frozenset[str] = frozenset()
        self._sasl: sasl.SaslSignIn | None = None
        self._out = bytearray()
        self._spool: MessageSpool | None = None
        self._queue_id = ""

    @property
    def _may_authenticate(self) -> bool:
        return self.core.session.tls_active or self.context.submission.plaintext_auth_allowed

    async def run(self) -> None:
        self._write(self.core.greeting(self.context.server_name, "Submission ready"))
        try:
            await self._loop()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                self.writer.write(SHUTTING_DOWN.to_bytes())
                await asyncio.wait_for(self.writer.drain(), 1.0)
            raise
        except _Closed:
            pass
        finally:
            self._drop_message()

    async def _loop(self) -> None:
        core = self.core
        while True:
            event = core.next_event()
            match event:
                case NeedData():
                    data = await self._read()
                    if not data:
                        return
                    core.feed(data)
                case Content(data):
                    if self._spool is not None:
                        self._spool.write(data)
                case Bdat():
                    if self._spool is None:
                        self._start_message()
                case Hello():
                    self._answer(self._hello_reply())
                case StartTls():
                    await self._start_tls()
                case Auth(mechanism, initial):
                    self._answer(await self._auth(mechanism, initial))
                case AuthResponse(data):
                    self._answer(await self._auth_step(data))
                case MailFrom(sender):
                    self._answer(self._mail(str(sender) if sender else ""))
                case RcptTo():
                    self._answer(replies.RECIPIENT_OK)  # the relay judges recipients
                case Data():
                    self._answer(replies.START_MAIL_INPUT)
                    self._start_message()
                case Burl(url, last):
                    self._answer(await self._burl(url, last))
                case ChunkEnd(size):
                    self._answer(Reply(250, "2.0.0", f"{size} octets received"))
                case MessageEnd():
                    reply = await self._finish_message()
                    self._write(core.answer_recipient(0, reply))
                    self._drop_message()
                case MessageRejected(reply) | Rejected(reply):
                    self._answer(reply)
                case Rset():
                    self._answer(replies.RESET_OK)
                case Noop():
                    self._answer(replies.OK)
                case Vrfy():
                    self._answer(CANNOT_VRFY)
                case Help():
                    self._answer(HELP)
                case Quit():
                    self._answer(replies.CLOSING)
                    await self._flush()
                    return

    # ---- I/O -----------------------------------------------------------------------

    async def _read(self) -> bytes:
        await self._flush()
        try:
            return await asyncio.wait_for(
                self.reader.read(READ_SIZE), self.context.submission.timeout
            )
        except TimeoutError:
            self._write(TIMED_OUT.to_bytes())
            await self._flush()
            return b""

    def _write(self, data: bytes) -> None:
        self._out += data

    async def _flush(self) -> None:
        if self._out:
            self.writer.write(bytes(self._out))
            self._out.clear()
            await self.writer.drain()

    def _answer(self, reply: Reply) -> None:
        data = self.core.answer(reply)
        if data == b"334\r\n":
            data = b"334 \r\n"  # RFC 4954 §4: "334" SP [base64]; the serializer strips
        self._write(data)
        if self.core.transaction is None:
            self._drop_message()

    # ---- session -------------------------------------------------------------------

    def _hello_reply(self) -> Reply:
        reply = self.core.hello_reply(self.context.server_name)
        if self._may_authenticate:
            return reply
        lines = tuple(line for line in reply.lines if not line.startswith("AUTH "))
        return Reply(reply.code, reply.enhanced, lines)

    async def _start_tls(self) -> None:
        tls_context = self.context.tls_context
        assert tls_context is not None  # the core refuses STARTTLS without it
        self._answer(replies.READY_TO_START_TLS)
        await self._flush()
        # RFC 3207 §4.2: forget the hello and anything pipelined before the handshake.
        dropped = self.core.start_tls() + drop_buffered_input(self.reader)
        if dropped:
            log.info("dropped %d bytes sent before STARTTLS ip=%s", dropped, self.remote_ip)
        try:
            await self.writer.start_tls(tls_context, ssl_handshake_timeout=30.0)
        except (ConnectionError, OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            log.info("TLS handshake failed ip=%s: %r", self.remote_ip, error)
            raise _Closed from error

    async def _auth(self, mechanism: str, initial: bytes | None) -> Reply:
        if not self._may_authenticate:
            return TLS_FIRST
        exchange = sasl.SaslSignIn.for_mechanism(
            mechanism,
            self.context.authenticator,
            remote_ip=self.remote_ip,
            protocol="submission",
        )
        if exchange is None:
            return NO_SUCH_MECHANISM
        response: bytes | None = None
        if initial is not None:  # RFC 4954 §4: "=" is an empty initial response
            try:
                response = b"" if initial == b"=" else base64.b64decode(initial, validate=True)
            except (binascii.Error, ValueError):
                return BAD_BASE64
        return await self._advance(exchange, await exchange.start(response))

    async def _auth_step(self, line: bytes) -> Reply:
        exchange, self._sasl = self._sasl, None
        assert exchange is not None  # the core reads a response only after a 334
        return await self._advance(exchange, await exchange.step(line))

    async def _advance(self, exchange: sasl.SaslSignIn, outcome: sasl.SignInOutcome) -> Reply:
        match outcome:
            case sasl.Challenge():
                self._sasl = exchange
                return Reply(334, None, outcome.encoded().decode("ascii"))
            case sasl.SaslVerdict(result=result):
                return await self._signed_in(result)
            case sasl.SaslCancelled():
                return AUTH_CANCELLED
            case sasl.SaslFailure(bad_encoding=True):
                return BAD_BASE64
            case sasl.SaslFailure(reason=reason):
                log.info("sasl failure ip=%s: %s", self.remote_ip, reason)
                return AUTH_FAILED

    async def _signed_in(self, result: AuthResult) -> Reply:
        if result.throttled:
            return AUTH_THROTTLED
        if result.account is None:
            return AUTH_FAILED
        try:
            self._allowed = await policy.account_addresses(
                self.context.store, result.account, self.context.delivery
            )
        except Exception:
            log.exception("cannot read the addresses of %s", result.account)
            return Reply(454, "4.7.0", "Temporary authentication failure")
        self.account = result.account
        return replies.AUTH_SUCCEEDED

    # ---- the message ---------------------------------------------------------------

    def _mail(self, sender: str) -> Reply:
        if self.account is None:
            return AUTH_FIRST
        separator = self.context.delivery.subaddress_separator
        if not sender or not policy.owns(sender, self._allowed, separator):
            return policy.not_yours("Sender", sender)
        self._queue_id = secrets.token_hex(6).upper()
        return replies.SENDER_OK

    async def _burl(self, url: str, last: bool) -> Reply:
        """RFC 4468 §3: append what ``url`` names, checked by URLAUTH as the submit
        server acting for this user (``submit+<user>`` access, RFC 4467 §2.3)."""
        txn = self.core.transaction
        assert txn is not None and self.account is not None  # the core checked
        if self._spool is None:
            self._start_message()
        assert self._spool is not None
        requester = access.Requester(submit_for=self.account)
        data = await access.fetch(self.context.store, url, requester)
        if data is None:
            return BURL_FAILED
        limit = self.context.submission.max_message_size
        if txn.size + len(data) > limit:
            return replies.MESSAGE_TOO_BIG
        self._spool.write(data)
        txn.size += len(data)
        if not last:
            return Reply(250, "2.0.0", f"{len(data)} octets appended")
        return await self._finish_message()

    def _start_message(self) -> None:
        settings = self.context.submission
        self._spool = MessageSpool(self.context.spool_dir, settings.spool_threshold)

    def _drop_message(self) -> None:
        if self._spool is not None:
            self._spool.discard()
            self._spool = None

    async def _finish_message(self) -> Reply:
        core, context, settings = self.core, self.context, self.context.submission
        txn = core.transaction
        assert txn is not None and self._spool is not None and self.account is not None
        spool, self._spool = self._spool, None
        try:
            source = spool.finish()
            head = await _read_head(source, policy.MAX_HEADER)
            separator = context.delivery.subaddress_separator
            refusal = policy.check_from(policy.header_block(head), self._allowed, separator)
            if refusal is not None:
                return refusal
            now = time.time()
            limit = settings.max_messages_per_hour
            counted = limit > 0
            if counted and not await context.store.claim_submission(self.account, now, HOUR, limit):
                log.warning("account=%s reached max_messages_per_hour=%d", self.account, limit)
                return TOO_MANY_MESSAGES
            only = txn.recipients[0].command.recipient if len(txn.recipients) == 1 else None
            received = self._received(only)
            envelope = RelayEnvelope(
                sender=str(txn.mail.sender or ""),
                params=txn.mail.params,
                recipients=tuple(
                    (str(r.command.recipient), r.command.params) for r in txn.recipients
                ),
            )
            started = time.monotonic()
            reply = await relay_message(
                settings.relay,
                envelope,
                _content(received, source),
                len(received) + spool.size,
                helo_name=context.server_name,
                reply_timeout=settings.relay_timeout,
                tls_context=context.relay_tls_context,
            )
            self._log(envelope, spool.size, reply, time.monotonic() - started)
            if reply.code != 250 and counted:
                await context.store.release_submission(self.account, now)
            elif settings.save_sent:
                await save_sent_copy(context.store, self.account, source)
            return reply
        except SpoolFull as error:
            log.error("cannot spool a message from %s: %s", self.account, error)
            return TEMPORARY
        except Exception:
            log.exception("submission from %s failed", self.account)
            return TEMPORARY
        finally:
            spool.discard()

    def _received(self, recipient: Mailbox | None) -> bytes:
        session, txn = self.core.session, self.core.transaction
        assert txn is not None
        hide = self.context.submission.hide_client_ip or self.remote_ip == "unknown"
        return trace.received(
            client_domain=session.client_domain or "unknown",
            client_address=None if hide else self.remote_ip,
            server_name=self.context.server_name,
            protocol=trace.protocol_name(
                lmtp=False,
                extended=session.extended,
                tls=session.tls_active,
                authenticated=True,
                smtputf8=txn.mail.params.smtputf8,
            ),
            queue_id=self._queue_id,
            recipient=recipient,
            when=datetime.now(UTC),
        )

    def _log(self, envelope: RelayEnvelope, size: int, reply: Reply, seconds: float) -> None:
        log.info(
            "submission account=%s from=<%s> rcpts=%d size=%d ms=%d result=%d %s",
            self.account,
            envelope.sender,
            len(envelope.recipients),
            size,
            seconds * 1000,
            reply.code,
            reply.lines[-1],
            extra={
                "event": "submission",
                "account": self.account,
                "sender": envelope.sender,
                "recipients": len(envelope.recipients),
                "size": size,
                "result": reply.code,
                "queue_id": self._queue_id,
            },
        )


async def _read_head(source: MessageSource, limit: int) -> bytes:
    if source.data is not None:
        return source.data[:limit]
    assert source.path is not None
    path = source.path

    def read() -> bytes:
        with path.open("rb") as file:
            return file.read(limit)

    return await asyncio.to_thread(read)


async def _content(received: bytes, source: MessageSource) -> AsyncIterator[bytes]:
    """The message as relayed: our trace field, then the bytes as received."""
    yield received
    if source.data is not None:
        yield source.data
        return
    assert source.path is not None
    with source.path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, READ_SIZE):
            yield chunk


async def serve_submission_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: SubmissionContext,
    *,
    tls_active: bool,
    remote_ip: str,
) -> None:
    """Serve one submitting client until it quits, times out or goes away."""
    await SubmissionConnection(
        reader, writer, context, tls_active=tls_active, remote_ip=remote_ip
    ).run()
