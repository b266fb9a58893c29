"""One LMTP connection: read bytes, feed the sans-IO core, answer its events.

Invariants:

- Replies to pipelined commands (RFC 2920) are written in order and sent in one batch
  when the input runs dry, so a pipelining client gets them without a round trip each.
- After the message ends, one reply per accepted recipient in RCPT order (RFC 2033
  §4.2). Recipients are delivered concurrently; the core puts the replies in order.
- A ``250`` is sent only after ``Account.append`` returned, i.e. the message is durable
  and IDLE sessions have been told. Anything transient (a full disk, a store error, a
  bug) is ``451 4.3.0``: the MTA keeps the message and retries; nothing transient is
  ever answered with a 5xx.
- A recipient given twice gets one delivery and the first one's reply twice.
- A recipient's account is opened at RCPT (its quota is checked there) and kept open
  until the transaction ends, so a delivery opens nothing.
- The message is spooled memory-then-file (``delivery.MessageSpool``) with the trace
  fields written first; the spool is dropped whenever the transaction ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from roost.delivery import (
    DeliveryStatus,
    Envelope,
    MessageSpool,
    Outcome,
    SpoolFull,
    Target,
    deliver,
    resolve,
    trace_fields,
)
from roost.lmtp.context import LmtpContext
from roost.smtp import (
    Auth,
    AuthResponse,
    Bdat,
    ChunkEnd,
    Connection,
    Content,
    Data,
    Hello,
    Help,
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
from roost.store.base import Account, NoSuchAccount

log = logging.getLogger("roost.lmtp")

READ_SIZE = 256 * 1024

NO_SUCH_USER = Reply(550, "5.1.1", "No such user here")
TEMPORARY = Reply(451, "4.3.0", "Temporary failure, try again later")
SHUTTING_DOWN = Reply(421, "4.3.2", "Server shutting down")
TIMED_OUT = Reply(421, "4.4.2", "Timeout, closing connection")
CANNOT_VRFY = Reply(252, "2.5.0", "Cannot VRFY, send some mail")
HELP = Reply(214, "2.0.0", "See RFC 2033")


def status_reply(status: DeliveryStatus, *, over_quota_tempfail: bool) -> Reply:
    """A delivery's outcome as the reply for its recipient."""
    match status.outcome:
        case Outcome.OK:
            return Reply(250, "2.0.0", status.text)
        case Outcome.QUOTA if over_quota_tempfail:
            return Reply(452, "4.2.2", "Mailbox is full, try again later")
        case Outcome.QUOTA:
            return Reply(552, "5.2.2", "Mailbox is full")
        case Outcome.NO_SUCH_USER:
            return NO_SUCH_USER
        case Outcome.PERMANENT:
            return Reply(554, "5.6.0", status.text)
        case Outcome.REJECTED:  # Sieve reject/ereject, refused at the protocol level
            return Reply(550, "5.7.1", _one_line(status.text))
        case Outcome.TEMPORARY:
            return Reply(451, "4.3.0", status.text)


def _one_line(text: str) -> str:
    """A reject reason as reply text: one line of printable ASCII (RFC 5429 §2.1.1)."""
    flat = " ".join(text.split())
    return "".join(c if " " <= c <= "~" else "?" for c in flat)[:400] or "Rejected"


class LmtpConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: LmtpContext,
        *,
        remote_ip: str,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.context = context
        self.remote_ip = remote_ip
        self.core = Connection(context.core_config())
        self._out = bytearray()
        self._spool: MessageSpool | None = None
        self._targets: dict[int, Target] = {}  # accepted recipient index -> target
        # The accounts of the transaction's recipients, opened at RCPT (to check the
        # quota) and kept open for the delivery; closed when the transaction ends.
        self._accounts: dict[str, _Recipient] = {}
        self._closing: set[asyncio.Future[None]] = set()  # closing after a delivery
        self._queue_id = ""

    async def run(self) -> None:
        self._write(self.core.greeting(self.context.server_name))
        try:
            await self._loop()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                self.writer.write(SHUTTING_DOWN.to_bytes())
                await asyncio.wait_for(self.writer.drain(), 1.0)
            raise
        finally:
            self._drop_message()
            await self._close_accounts()

    async def _loop(self) -> None:
        core = self.core
        while True:
            if self._accounts and core.transaction is None:
                await self._close_accounts()
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
                    self._answer(core.hello_reply(self.context.server_name))
                case MailFrom():
                    self._queue_id = secrets.token_hex(6).upper()
                    self._answer(replies.SENDER_OK)
                case RcptTo(recipient):
                    self._answer(await self._rcpt(str(recipient)))
                case Data():
                    reply = replies.START_MAIL_INPUT
                    self._answer(reply)
                    self._start_message()
                case ChunkEnd(size):
                    self._answer(Reply(250, "2.0.0", f"{size} octets received"))
                case MessageEnd(recipients, size):
                    await self._finish_message([r.index for r in recipients], size)
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
                case StartTls() | Auth() | AuthResponse():
                    self._answer(replies.NOT_IMPLEMENTED)  # LMTP is for trusted MTAs
                case Quit():
                    self._answer(replies.CLOSING)
                    await self._flush()
                    return

    async def _read(self) -> bytes:
        await self._flush()
        try:
            return await asyncio.wait_for(self.reader.read(READ_SIZE), self.context.lmtp.timeout)
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
        self._write(self.core.answer(reply))
        if self.core.transaction is None:
            self._drop_message()

    def _drop_message(self) -> None:
        if self._spool is not None:
            self._spool.discard()
            self._spool = None
        self._targets.clear()

    async def _rcpt(self, address: str) -> Reply:
        txn = self.core.transaction
        assert txn is not None  # the core refuses RCPT before MAIL
        store = self.context.store
        try:
            target = await resolve(store, self.context.delivery, address)
            if target is not None and target.account not in self._accounts:
                opened = await store.open_account(target.account)
                self._accounts[target.account] = _Recipient(opened)
        except NoSuchAccount:
            return NO_SUCH_USER  # deleted in between
        except Exception:
            log.exception("cannot look up recipient %s", address)
            return TEMPORARY
        if target is None:
            return NO_SUCH_USER
        if not await self._has_room(target.account, txn.mail.params.size or 0):
            # Refused now, as Dovecot does, so the MTA bounces (or retries, with
            # over_quota_tempfail) without sending the message; DATA checks again.
            status = DeliveryStatus(Outcome.QUOTA, "Mailbox is full")
            return status_reply(status, over_quota_tempfail=self.context.over_quota_tempfail)
        self._targets[len(txn.recipients)] = target  # the index this RCPT will get
        return replies.RECIPIENT_OK

    async def _has_room(self, name: str, size: int) -> bool:
        """Whether the account's quota leaves room for one message of the declared SIZE
        (RFC 1870; 0 when not declared); notes on the way whether it filters its mail.
        A failure to tell is no refusal: the append checks the quota again, atomically."""
        try:
            recipient = self._accounts[name]
            state = await recipient.account.delivery_state()
        except Exception:
            log.warning("cannot read the quota of %s", name, exc_info=True)
            return True
        recipient.filtering = state.filtering
        return state.quota.fits(size)

    async def _close_accounts(self) -> None:
        accounts, self._accounts = self._accounts, {}
        await _close_all(accounts)

    def _start_message(self) -> None:
        txn = self.core.transaction
        assert txn is not None
        session = self.core.session
        envelope = Envelope(
            sender=txn.mail.sender,
            recipients=tuple(r.command.recipient for r in txn.recipients),
            client_domain=session.client_domain or "unknown",
            client_address=None if self.remote_ip == "unknown" else self.remote_ip,
            server_name=self.context.server_name,
            protocol=trace.protocol_name(
                lmtp=True,
                extended=True,
                tls=False,
                authenticated=False,
                smtputf8=txn.mail.params.smtputf8,
            ),
            queue_id=self._queue_id,
            received=datetime.now(UTC),
        )
        self._spool = MessageSpool(self.context.spool_dir, self.context.lmtp.spool_threshold)
        self._spool.write(trace_fields(envelope))

    async def _finish_message(self, indices: Sequence[int], size: int) -> None:
        txn = self.core.transaction
        assert txn is not None and self._spool is not None
        sender = str(txn.mail.sender or "")
        addresses = {r.index: str(r.command.recipient) for r in txn.recipients}
        spool, self._spool = self._spool, None
        targets, self._targets = dict(self._targets), {}
        accounts, self._accounts = self._accounts, {}  # the transaction ends here
        try:
            source = spool.finish()
        except SpoolFull as error:
            log.error("cannot spool a message from %s: %s", sender, error)
            self._write(self.core.answer_message([TEMPORARY] * len(indices)))
            await _close_all(accounts)
            return
        tasks: dict[int, asyncio.Task[DeliveryStatus]] = {}
        try:
            first_index: dict[Target, int] = {}
            for index in indices:
                target = targets[index]
                if target in first_index:
                    continue  # RCPT given twice: one delivery, the first one's reply
                first_index[target] = index
                folder = target.detail if self.context.delivery.detail_folders else None
                opened = accounts.get(target.account)
                tasks[index] = asyncio.create_task(
                    deliver(
                        self.context.store,
                        target.account,
                        source,
                        spool.size,
                        folder=folder,
                        sender=sender,
                        recipient=addresses[index],
                        sieve=self.context.sieve,
                        queue_id=self._queue_id,
                        account=opened.account if opened else None,
                        filtering=opened.filtering if opened else None,
                    )
                )
            tempfail = self.context.over_quota_tempfail
            pending = {task: index for index, task in tasks.items()}
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    index = pending.pop(task)
                    reply = status_reply(task.result(), over_quota_tempfail=tempfail)
                    for other in indices:
                        if first_index[targets[other]] == index:
                            self._write(self.core.answer_recipient(other, reply))
                    await self._flush()
        finally:
            running = [task for task in tasks.values() if not task.done()]
            if running:  # cancelled (shutdown): the stores still read the spool
                finished = asyncio.gather(*running, return_exceptions=True)
                finished.add_done_callback(lambda _: self._after_cancel(spool, accounts))
            else:
                spool.discard()
                await _close_all(accounts)

    def _after_cancel(self, spool: MessageSpool, accounts: dict[str, _Recipient]) -> None:
        """The deliveries of a cancelled connection have ended: drop what they used."""
        spool.discard()
        closing = asyncio.ensure_future(_close_all(accounts))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)


@dataclass(slots=True)
class _Recipient:
    """A recipient's account, open from its RCPT until the transaction ends."""

    account: Account
    filtering: bool | None = None  # an active Sieve script (None: not known)


async def _close_all(accounts: dict[str, _Recipient]) -> None:
    for recipient in accounts.values():
        try:
            await recipient.account.close()
        except Exception:
            log.warning("cannot close the account %s", recipient.account.name, exc_info=True)


async def serve_lmtp_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: LmtpContext,
    *,
    remote_ip: str,
) -> None:
    """Serve one MTA connection until it quits, times out or goes away."""
    await LmtpConnection(reader, writer, context, remote_ip=remote_ip).run()
