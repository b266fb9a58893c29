"""The asyncio glue of one POP3 connection: bytes in, bytes out, time-outs, STLS.

It reads from the socket into the sans-IO ``LineReceiver``, hands each line to the
``Session`` and writes what the session yields, serialized in the one serializer.
Output is buffered and flushed when the input runs dry — so pipelined commands (RFC
2449 §6.6) are answered in one write, strictly in order — when the buffer grows large
(a big RETR streams through it), and before any wait.

Time-outs: ``preauth_timeout`` from connecting to sign-in, in all; ``auth_timeout`` of
silence after it (RFC 1939 §3: at least ten minutes); and ``command_timeout`` for a line
to be complete once its first byte has arrived, so a byte now and then (slowloris)
cannot hold a connection. On expiry the connection closes without a response and
without entering UPDATE, as RFC 1939 §3 prescribes; so does a dropped connection. A
client that stops reading is given ``auth_timeout`` to drain each write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from roost.observability import sessions
from roost.pop3.context import Pop3Context
from roost.pop3.dispatch import handle_line, line_too_long
from roost.pop3.handler_types import State
from roost.pop3.session import Session
from roost.pop3.wire.receiver import Line, LineReceiver, LineTooLong, NeedData
from roost.pop3.wire.responses import SYS_TEMP, Err, Response, serialize
from roost.runtime.streams import drop_buffered_input

log = logging.getLogger("roost.pop3")

READ_SIZE = 64 * 1024
FLUSH_AT = 256 * 1024


class ConnectionEnded(Exception):
    """The peer went away or the connection must close; nothing more to write."""


class Pop3Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: Pop3Context,
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
        self.receiver = LineReceiver(max_line_length=self.limits.max_line_length)
        self.out = bytearray()
        loop = asyncio.get_running_loop()
        self._preauth_deadline = loop.time() + self.limits.preauth_timeout
        self._line_started: float | None = None  # first byte of an incomplete line
        self._task: asyncio.Task[Any] | None = None
        # In the registry for `roost who` and `kick`; its end writes the session's log line.
        self.record = context.sessions.open(
            "pop3",
            remote_ip,
            user_of=lambda: self.session.counted_account,
            state_of=lambda: self.session.state.value,
            kick=self._kick,
        )

    # ---- output ------------------------------------------------------------------------

    def write(self, response: Response) -> None:
        self.out += serialize(response)

    async def flush(self) -> None:
        if not self.out:
            return
        data = bytes(self.out)
        self.out.clear()
        try:
            self.writer.write(data)
            self.record.bytes_out += len(data)
            async with asyncio.timeout(self.limits.auth_timeout):
                await self.writer.drain()
        except TimeoutError:
            log.info("write timeout ip=%s", self.remote_ip)
            raise ConnectionEnded from None
        except (ConnectionError, OSError) as error:
            raise ConnectionEnded from error

    # ---- input -------------------------------------------------------------------------

    def _deadline(self, now: float) -> tuple[float, str]:
        """When the wait for input ends, and what to call it then."""
        if self.session.state is State.AUTHORIZATION:
            deadline, why = self._preauth_deadline, "no sign-in in time"
        else:
            deadline, why = now + self.limits.auth_timeout, "idle for too long"
        if self.receiver.mid_line:
            if self._line_started is None:
                self._line_started = now
            line_deadline = self._line_started + self.limits.command_timeout
            if line_deadline < deadline:
                deadline, why = line_deadline, "command not completed in time"
        else:
            self._line_started = None
        return deadline, why

    async def _read(self) -> None:
        await self.flush()
        deadline, why = self._deadline(asyncio.get_running_loop().time())
        try:
            async with asyncio.timeout_at(deadline):
                data = await self.reader.read(READ_SIZE)
        except TimeoutError:
            # RFC 1939 §3: close without a response, and without entering UPDATE.
            log.info("timeout ip=%s state=%s: %s", self.remote_ip, self.session.state.value, why)
            self.record.reason = sessions.TIMEOUT
            raise ConnectionEnded from None
        except (ConnectionError, OSError) as error:
            raise ConnectionEnded from error
        if not data:
            raise ConnectionEnded
        self.record.bytes_in += len(data)
        self.receiver.feed(data)

    # ---- the loop ----------------------------------------------------------------------

    def _kick(self) -> None:
        """``roost kick``: end the connection with -ERR (handled in ``run``), no UPDATE."""
        if self._task is not None:
            self._task.cancel(sessions.KICKED)

    async def run(self) -> None:
        session = self.session
        self._task = asyncio.current_task()
        try:
            self.write(session.greeting())
            while not session.finished:
                event = self.receiver.next_event()
                match event:
                    case NeedData():
                        await self._read()
                    case LineTooLong(length=length):
                        self._line_started = None
                        self.write(line_too_long(session, length))
                    case Line(data=line):
                        self._line_started = None
                        await self._handle(line)
            self.record.reason = sessions.LOGOUT
            await self.flush()
        except ConnectionEnded:
            pass
        except asyncio.CancelledError:
            # Server shutdown or `roost kick`: say so if the socket still listens;
            # nothing is deleted.
            kicked = self.record.reason == sessions.KICKED and self._task is not None
            with contextlib.suppress(Exception):
                self.out.clear()
                goodbye = Err("Administrator kicked you") if kicked else None
                self.write(goodbye or Err("Server shutting down", SYS_TEMP))
                self.writer.write(bytes(self.out))
            if not kicked or (self._task is not None and self._task.uncancel() > 0):
                self.record.reason = sessions.SHUTDOWN
                raise
        except Exception:
            self.record.reason = sessions.ERROR
            log.exception("connection failed ip=%s", self.remote_ip)
            with contextlib.suppress(Exception):
                self.write(Err("Internal server error, logged", SYS_TEMP))
                await self.flush()
        finally:
            self._task = None  # no kick from here on: the connection is closing
            self.record.closing()
            with contextlib.suppress(Exception):
                await session.close()
            with contextlib.suppress(Exception):
                self.writer.close()
            self.record.end()

    async def _handle(self, line: bytes) -> None:
        self.record.commands += 1
        async with contextlib.aclosing(handle_line(self.session, line)) as responses:
            async for response in responses:
                self.write(response)
                if len(self.out) >= FLUSH_AT:
                    await self.flush()
        if self.session.tls_requested:
            await self._start_tls()

    async def _start_tls(self) -> None:
        await self.flush()
        # RFC 2595 §4: nothing the client sent before the handshake may be executed —
        # neither what the receiver holds nor what the StreamReader has buffered since
        # the last read. From start_tls on, the socket's bytes go to the TLS layer.
        dropped = self.receiver.clear_buffer() + drop_buffered_input(self.reader)
        if dropped:
            log.info(
                "dropped %d bytes sent before the TLS handshake ip=%s", dropped, self.remote_ip
            )
        tls_context = self.context.tls_context
        assert tls_context is not None
        try:
            await self.writer.start_tls(
                tls_context, ssl_handshake_timeout=self.limits.preauth_timeout
            )
        except (ConnectionError, OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            log.info("TLS handshake failed ip=%s: %r", self.remote_ip, error)
            raise ConnectionEnded from error
        self.session.tls_started()


async def serve_pop3_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: Pop3Context,
    *,
    tls_active: bool,
    remote_ip: str,
) -> None:
    """Serve one client until it quits, times out or goes away."""
    await Pop3Connection(reader, writer, context, tls_active=tls_active, remote_ip=remote_ip).run()
