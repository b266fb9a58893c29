"""The asyncio glue of one IMAP connection: bytes in, bytes out, time-outs, TLS.

It reads from the socket into the sans-IO ``Receiver``, runs each command through
``dispatch.run_command`` on its ``Session`` and writes what that yields, serialized in
the one serializer.

Output is buffered and flushed when the input runs dry (so pipelined commands are
answered in one write), when the buffer grows large, and before any wait.

Pipelined commands are answered strictly in order: the receiver parses one command at a
time, so a pipelined IDLE or AUTHENTICATE sees the lines that follow it as its own.

What one connection may cost is bounded (README "Security"):

- Memory: compressed input (RFC 4978) is inflated a piece at a time, only when the
  receiver has consumed the previous piece, so a small "deflate bomb" never expands at
  once; the receiver bounds each command (line and literal limits).
- Disk: before sign-in a command's literals total at most ``max_preauth_literal``
  bytes, so nothing is spooled; after it, spooled literals count against the process's
  ``SpoolBudget``.
- Time: before sign-in the whole phase has ``preauth_timeout``; after it, silence has
  ``auth_timeout``; and a command, once its first byte arrived, must be complete within
  ``command_timeout`` plus a second per ``min_literal_rate`` bytes of its literals, so
  a byte now and then (slowloris) cannot hold a connection.
- The loop: a ``CommandPacer`` yields to other connections every few commands and
  slows a connection past ``max_commands_per_second``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from roost.imap.context import ImapContext
from roost.imap.dispatch import continue_sasl, prefetch_fetches, run_command
from roost.imap.handler_types import Awaiting, State, store_error_response
from roost.imap.progress import is_progress
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.receiver import (
    Event,
    LiteralTooLarge,
    NeedData,
    NeedLiteral,
    RawLine,
    Receiver,
    SpoolFailed,
)
from roost.imap.wire.responses import (
    CapabilityCode,
    Code,
    Continuation,
    Response,
    Status,
    Tagged,
    Untagged,
)
from roost.imap.wire.serializer import serialize
from roost.observability import sessions
from roost.runtime.pacing import CommandPacer
from roost.runtime.streams import drop_buffered_input
from roost.store.base import ChangeEvent, StorageFull

log = logging.getLogger("roost.imap")

READ_SIZE = 64 * 1024
FLUSH_AT = 256 * 1024
# COMPRESS output is deflated by ISA-L (igzip) at its level 2: on mail, about as small as
# zlib's level 6 (Dovecot's default; 0.60 against 0.59 of the input on the benchmark's
# mail, 0.22 against 0.19 on plain text) at a tenth of the CPU: zlib's level 6 took
# three quarters of the server's CPU in a cold sync by mbsync. Where no ISA-L build
# exists for the platform (pyproject.toml installs it where wheels are published), zlib's
# fastest level stands in.
try:
    from isal import isal_zlib as _deflate_library

    DEFLATE_LEVEL = 2
except ImportError:  # pragma: no cover - every platform CI runs on has ISA-L
    _deflate_library = zlib  # type: ignore[misc]
    DEFLATE_LEVEL = 1
# With COMPRESS on, output of at least this size is deflated on a thread: ISA-L releases
# the GIL, so the loop parses and answers the next pipelined commands meanwhile (a cold
# sync by mbsync on two cores: about a quarter less time than deflating on the loop).
DEFLATE_ON_THREAD_AT = 64 * 1024
# FETCHes pipelined behind one another read from the store together, at most this many
# (and at most one FETCH batch of messages: fetch.prefetch).
PIPELINED_FETCHES = 64
SEND_GRACE = 5.0  # seconds a closing connection waits for its last write
INFLATE_CHUNK = 64 * 1024  # inflated bytes handed to the receiver at a time


class Deflater(Protocol):
    """A raw DEFLATE compressor: ISA-L's or zlib's (same calls, same stream format)."""

    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self, mode: int, /) -> bytes: ...


class ConnectionEnded(Exception):
    """The peer went away or the connection must close; nothing more to write."""


class ImapConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: ImapContext,
        *,
        tls_active: bool,
        remote_ip: str,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.context = context
        self.limits = context.limits
        self.remote_ip = remote_ip
        self.session = Session(context, tls_active=tls_active, remote_ip=remote_ip)
        self.receiver = Receiver(
            max_line_length=self.limits.max_line_length,
            max_literal_size=self.limits.max_literal_size,
            max_nesting_depth=self.limits.max_nesting_depth,
            spool_threshold=self.limits.spool_threshold,
            spool_dir=context.spool_dir,
            spool_budget=context.spool_budget,
        )
        self._signed_in = False
        self._set_literal_limits()
        loop = asyncio.get_running_loop()
        self._pacer = CommandPacer(self.limits.max_commands_per_second, clock=loop.time)
        self._preauth_deadline = loop.time() + self.limits.preauth_timeout
        self._command_started: float | None = None  # first byte of an incomplete command
        # Serialized responses not yet sent, joined once when flushed: appending each to
        # one growing bytearray copied every message again as the buffer was resized.
        self.out: list[bytes] = []
        self._out_size = 0
        self.bad_in_a_row = 0
        # RFC 4978: raw DEFLATE both ways once COMPRESS succeeds; None until then.
        self._deflate: Deflater | None = None
        self._inflate: zlib._Decompress | None = None
        self._compressed = b""  # received, not yet inflated
        self._inflate_pending = False  # inflating may give more without more input
        self._read_task: asyncio.Future[bytes] | None = None
        # The output being deflated on a thread and then written; at most one at a time,
        # and every other write waits for it, so output keeps its order.
        self._sending: asyncio.Task[None] | None = None
        self._task: asyncio.Task[Any] | None = None
        # In the registry for `roost who` and `kick`; its end writes the session's log line.
        self.record = context.sessions.open(
            "imap",
            remote_ip,
            user_of=lambda: self.session.counted_account,
            state_of=lambda: self.session.state.value,
            kick=self._kick,
        )
        self._held: Event | None = None  # received, to run next (``_run_fetches``)

    # ---- output ------------------------------------------------------------------------

    def write(self, response: Response) -> None:
        data = serialize(response, utf8=self.session.utf8)
        self.out.append(data)
        self._out_size += len(data)
        if isinstance(response, Tagged):
            self.bad_in_a_row = self.bad_in_a_row + 1 if response.status is Status.BAD else 0

    async def flush(self) -> None:
        """Send what is buffered. A large compressed write may still be in progress
        when this returns; the next flush waits for it (and raises its failure)."""
        if not self.out:
            return
        data = self.out[0] if len(self.out) == 1 else b"".join(self.out)
        self.out = []
        self._out_size = 0
        await self._sent()
        if self._deflate is not None and len(data) >= DEFLATE_ON_THREAD_AT:
            self._sending = asyncio.create_task(self._deflate_and_send(data))
            return
        await self._send(self._encode(data))

    async def _sent(self) -> None:
        """Wait for the write in progress, if any."""
        sending, self._sending = self._sending, None
        if sending is not None:
            await sending

    async def _deflate_and_send(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        await self._send(await loop.run_in_executor(None, self._encode, data))

    async def _send(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            self.record.bytes_out += len(data)
            await self.writer.drain()
        except (ConnectionError, OSError) as error:
            raise ConnectionEnded from error

    async def _finish_sending(self) -> None:
        """At the end of the connection: let the write in progress finish (a goodbye
        may be in it), for at most ``SEND_GRACE`` seconds."""
        sending, self._sending = self._sending, None
        if sending is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, ConnectionEnded):
                await asyncio.wait_for(sending, SEND_GRACE)

    async def write_all(self, responses: AsyncIterator[Response]) -> None:
        """Write an async stream of responses, flushing as the buffer fills."""
        async for response in responses:
            self.write(response)
            # RFC 9585: a progress report is worth nothing once the command has ended.
            if self._out_size >= FLUSH_AT or is_progress(response):
                await self.flush()

    # ---- input -------------------------------------------------------------------------

    def _deadline(self, now: float) -> tuple[float, str]:
        """When the wait for input ends, and what to call it then."""
        limits = self.limits
        if self.session.state is State.NOT_AUTHENTICATED:
            deadline, why = self._preauth_deadline, "no sign-in in time"
        else:
            deadline, why = now + limits.auth_timeout, "idle for too long"
        if self.receiver.mid_command:
            if self._command_started is None:
                self._command_started = now
            allowance = self.receiver.command_literal_bytes / limits.min_literal_rate
            command_deadline = self._command_started + limits.command_timeout + allowance
            if command_deadline < deadline:
                deadline, why = command_deadline, "command not completed in time"
        else:
            self._command_started = None
        return deadline, why

    async def _read(self) -> None:
        """Wait for more input. With NOTIFY on, tell the client of changes meanwhile
        (RFC 5465 §5: notifications may come while no command is in progress)."""
        if self._inflate_next():
            return
        await self.flush()
        loop = asyncio.get_running_loop()
        deadline, why = self._deadline(loop.time())
        while True:
            remaining = deadline - loop.time()
            watch = self.session.notifier is not None
            result = await self._wait(remaining, watch_events=watch) if remaining > 0 else None
            if result is None:
                log.info(
                    "timeout ip=%s state=%s: %s", self.remote_ip, self.session.state.value, why
                )
                self.record.reason = sessions.TIMEOUT
                self.write(Untagged(Status.BYE, f"Autologout: {why}"))
                await self.flush()
                raise ConnectionEnded
            if isinstance(result, bytes):
                self._feed(result)
                return
            self.session.note_events(result)
            await self.write_all(self.session.notify_updates())
            await self.flush()

    async def _wait(
        self, seconds: float, *, watch_events: bool
    ) -> bytes | list[ChangeEvent] | None:
        """The next input bytes, or change events when ``watch_events``, or None after
        ``timeout`` seconds. A pending read survives for the next call, so no byte is
        ever lost to an event winning the race."""
        if self._read_task is None:
            self._read_task = asyncio.ensure_future(self.reader.read(READ_SIZE))
        waiting: set[asyncio.Future[Any]] = {self._read_task}
        listener = self.session.listener
        wait_task: asyncio.Future[list[ChangeEvent]] | None = None
        if watch_events and listener is not None:
            wait_task = asyncio.ensure_future(listener.wait())
            waiting.add(wait_task)
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if wait_task is not None and not wait_task.done():
                wait_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await wait_task
        if self._read_task in done:
            task, self._read_task = self._read_task, None
            try:
                data = task.result()
            except (ConnectionError, OSError) as error:
                raise ConnectionEnded from error
            if not data:
                raise ConnectionEnded
            self.record.bytes_in += len(data)
            return data
        if wait_task is not None and wait_task in done:
            return wait_task.result()
        return None

    def _encode(self, data: bytes) -> bytes:
        if self._deflate is None:
            return data
        # A sync flush per write: the client must see each response whole, now.
        return self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def _feed(self, data: bytes) -> None:
        """Hand received bytes to the receiver; compressed ones only as far as their
        first inflated piece (``_inflate_next`` gives the rest, as it is consumed)."""
        if self._inflate is None:
            self.receiver.feed(data)
            return
        self._compressed += data
        self._inflate_pending = True
        self._inflate_next()

    def _inflate_next(self) -> bool:
        """Feed the receiver the next piece of inflated input, at most INFLATE_CHUNK
        bytes; False when there is none without reading more.

        A 24 KiB deflate bomb inflates to ~25 MB: inflated at once, every byte of it
        would sit in the receiver's buffer. Piece by piece, the receiver consumes each
        (commands answered, a too-long line discarded) before the next is made."""
        inflate = self._inflate
        if inflate is None or not self._inflate_pending:
            return False
        try:
            piece = inflate.decompress(self._compressed, INFLATE_CHUNK)
        except zlib.error as error:
            log.info("bad compressed data ip=%s: %s", self.remote_ip, error)
            raise ConnectionEnded from error
        self._compressed = inflate.unconsumed_tail
        # A full piece may leave output inside zlib even when all input was taken.
        self._inflate_pending = bool(self._compressed) or len(piece) == INFLATE_CHUNK
        if not piece:
            return False
        self.receiver.feed(piece)
        return True

    async def _raw_line(self) -> bytes:
        self.receiver.expect_raw_line()
        while True:
            event = self.receiver.next_event()
            if isinstance(event, RawLine):
                return event.data
            if isinstance(event, NeedData):
                await self._read()
                continue
            # A line too long to be a SASL answer or DONE arrives as BadCommand.
            return b""

    # ---- the loop ----------------------------------------------------------------------

    def _kick(self) -> None:
        """``roost kick``: end the connection with a BYE (handled in ``run``)."""
        if self._task is not None:
            self._task.cancel(sessions.KICKED)

    async def run(self) -> None:
        self._task = asyncio.current_task()
        try:
            self.write(
                Untagged(
                    Status.OK,
                    f"{self.context.server_name} ready",
                    CapabilityCode(self.session.capabilities()),
                )
            )
            while self.session.state is not State.LOGOUT:
                event, self._held = self._held or self.receiver.next_event(), None
                if not isinstance(event, NeedData | NeedLiteral):
                    self._command_started = None  # a command is complete or refused
                match event:
                    case NeedData():
                        await self._read()
                    case NeedLiteral():
                        self.write(Continuation("Ready for literal data"))
                        await self.flush()
                    case LiteralTooLarge(tag=tag, size=size, synchronizing=sync, limit=limit):
                        log.info(
                            "literal too large ip=%s size=%d limit=%d", self.remote_ip, size, limit
                        )
                        # Not the size: an absurd one is thousands of digits (saturated).
                        text = f"Literal too large: the limit is {limit} bytes"
                        if not self._signed_in:
                            text += " before sign-in"
                        if not sync:
                            self.write(Untagged(Status.BYE, text, Code("TOOBIG")))
                            self.record.reason = sessions.TOO_BIG
                            break
                        self.write(Tagged(tag, Status.NO, text, Code("TOOBIG")))
                    case SpoolFailed(tag=tag, reason=reason, over_budget=True):
                        log.warning("literal not stored ip=%s: %s", self.remote_ip, reason)
                        text = "Too much is being uploaded at once; try again later"
                        self.write(Tagged(tag, Status.NO, text, Code("LIMIT")))
                    case SpoolFailed(tag=tag, reason=reason, no_space=no_space):
                        # A literal could not be spooled; the command was read and dropped.
                        if no_space:
                            log.warning("literal not stored ip=%s: %s", self.remote_ip, reason)
                            error = store_error_response(StorageFull(reason))
                            self.write(Tagged(tag, error.status, error.text, error.code))
                        else:
                            log.error("literal not stored ip=%s: %s", self.remote_ip, reason)
                            self.write(
                                Tagged(
                                    tag,
                                    Status.NO,
                                    "Could not store the literal, logged",
                                    Code("SERVERBUG"),
                                )
                            )
                    case RawLine():
                        pass  # only expected after expect_raw_line, handled there
                    case c.Fetch() if self.session.state is State.SELECTED:
                        await self._run_fetches(event)
                    case c.Command():
                        if (delay := self._pacer.before_command()) is not None:
                            await self._pace(delay)
                        await self.run_command(event)
                if self.bad_in_a_row >= self.limits.max_bad_commands:
                    log.info("too many bad commands ip=%s", self.remote_ip)
                    self.write(Untagged(Status.BYE, "Too many invalid commands"))
                    self.record.reason = sessions.TOO_MANY_ERRORS
                    break
            if self.session.state is State.LOGOUT:
                self.record.reason = sessions.LOGOUT
            await self.flush()
        except ConnectionEnded:
            pass
        except asyncio.CancelledError:
            # Server shutdown or `roost kick`: say goodbye if the socket still listens.
            kicked = self.record.reason == sessions.KICKED and self._task is not None
            if self._sending is None:  # else the deflate stream is the thread's
                with contextlib.suppress(Exception):
                    self.out = []
                    text = "Administrator kicked you" if kicked else "Server shutting down"
                    self.write(Untagged(Status.BYE, text))
                    self.writer.write(self._encode(b"".join(self.out)))
            if not kicked or (self._task is not None and self._task.uncancel() > 0):
                self.record.reason = sessions.SHUTDOWN
                raise
        except Exception:
            self.record.reason = sessions.ERROR
            log.exception("connection failed ip=%s", self.remote_ip)
            with contextlib.suppress(Exception):
                self.write(Untagged(Status.BYE, "Internal server error, logged"))
                await self.flush()
        finally:
            self._task = None  # no kick from here on: the connection is closing
            self.record.closing()
            if self._read_task is not None:
                self._read_task.cancel()
            with contextlib.suppress(Exception):
                await self._finish_sending()
            self.receiver.close()
            with contextlib.suppress(Exception):
                await self.session.close()
            with contextlib.suppress(Exception):
                self.writer.close()
            self.record.end()

    async def _run_fetches(self, first: c.Fetch) -> None:
        """``first`` and the FETCHes pipelined right behind it (already received), whose
        messages are read from the store in one round trip (``prefetch_fetches``); the
        first other event is held for the loop. Each FETCH still runs and answers on its
        own, in order."""
        group = [first]
        while len(group) < PIPELINED_FETCHES:
            following = self.receiver.next_event()
            if not isinstance(following, c.Fetch):
                self._held = following
                break
            group.append(following)
        if len(group) > 1:
            await prefetch_fetches(self.session, group)
        pacer = self._pacer
        try:
            for command in group:
                if (delay := pacer.before_command()) is not None:
                    await self._pace(delay)  # (a coroutine only when there is a wait)
                await self.run_command(command)
        finally:
            self.session.prefetched = None

    async def _pace(self, delay: float) -> None:
        """Give other connections their turn: ``delay`` is what ``CommandPacer`` said."""
        if delay > 0:
            if self._pacer.slowed == 1:
                log.info(
                    "commands slowed ip=%s: over %d per second",
                    self.remote_ip,
                    self.limits.max_commands_per_second,
                )
            await self.flush()
        await asyncio.sleep(delay)

    def _set_literal_limits(self) -> None:
        """Before sign-in only small literals (LOGIN's); the full size after it. A
        sign-in, or UNAUTHENTICATE (RFC 8437), also restarts the pre-auth clock."""
        signed_in = self.session.state is not State.NOT_AUTHENTICATED
        if signed_in and self._signed_in:
            return  # as set after the sign-in (this runs after every command)
        limits = self.limits
        if signed_in:
            self.receiver.limit_literals(limits.max_literal_size)
        else:
            preauth = limits.max_preauth_literal
            self.receiver.limit_literals(min(preauth, limits.max_literal_size), preauth)
            if self._signed_in:
                loop = asyncio.get_running_loop()
                self._preauth_deadline = loop.time() + limits.preauth_timeout
        self._signed_in = signed_in

    async def run_command(self, command: c.Command) -> None:
        self.record.commands += 1
        await self.write_all(run_command(self.session, command))
        self.receiver.discard_spools()
        session = self.session
        while session.awaiting is not Awaiting.NOTHING:
            match session.awaiting:
                case Awaiting.TLS_HANDSHAKE:
                    await self._start_tls()
                case Awaiting.COMPRESSION:
                    await self.flush()  # the tagged OK goes out uncompressed
                    self._deflate = _deflate_library.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)
                    # Input is inflated by the standard zlib: what clients send is small,
                    # and untrusted bytes go to the most proven inflater.
                    self._inflate = zlib.decompressobj(-15)
                    # Bytes the client sent after COMPRESS are already compressed.
                    pending = self.receiver.take_buffer()
                    self.session.compression_started()
                    if pending:
                        self._feed(pending)
                case Awaiting.SASL_RESPONSE:
                    await self.flush()
                    line = await self._raw_line()
                    await self.write_all(continue_sasl(session, line))
                case Awaiting.IDLE_DONE:
                    await self._idle()
        self._set_literal_limits()

    async def _start_tls(self) -> None:
        await self.flush()
        # RFC 9051 §6.2.1: nothing the client sent before the handshake may be executed,
        # neither what the receiver holds nor what the stream has buffered below it.
        self.receiver.clear_buffer()
        if drop_buffered_input(self.reader):
            log.info("dropped input sent before the TLS handshake ip=%s", self.remote_ip)
        tls_context = self.context.tls_context
        assert tls_context is not None
        try:
            await self.writer.start_tls(tls_context)
        except (ConnectionError, OSError, asyncio.IncompleteReadError) as error:
            log.info("TLS handshake failed ip=%s: %s", self.remote_ip, error)
            raise ConnectionEnded from error
        self.session.tls_started()

    async def _idle(self) -> None:
        """Wait for DONE while telling the client of changes as they happen (RFC 2177),
        with a keep-alive line so NAT boxes keep the flow open (CLIENTS.md)."""
        session = self.session
        self.receiver.expect_raw_line()
        await self.write_all(session.idle_updates())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.auth_timeout
        while True:
            event = self.receiver.next_event()
            if isinstance(event, RawLine):
                await self.write_all(session.idle_done(event.data))
                return
            if not isinstance(event, NeedData):
                self.write(Tagged(session.pending_tag, Status.BAD, "Expected DONE"))
                session.awaiting = Awaiting.NOTHING
                return
            if self._inflate_next():
                continue
            await self.flush()
            if loop.time() >= deadline:
                self.record.reason = sessions.TIMEOUT
                self.write(Untagged(Status.BYE, "Autologout: idle for too long"))
                await self.flush()
                raise ConnectionEnded
            result = await self._wait(self.limits.idle_keepalive_interval, watch_events=True)
            if result is None:
                self.write(Untagged(Status.OK, "Still here"))
            elif isinstance(result, bytes):
                self._feed(result)
            else:
                session.note_events(result)
                await self.write_all(session.idle_updates())


async def serve_imap_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: ImapContext,
    *,
    tls_active: bool,
    remote_ip: str,
) -> None:
    """Serve one client until it logs out, times out or goes away."""
    await ImapConnection(reader, writer, context, tls_active=tls_active, remote_ip=remote_ip).run()
