"""Drive one IMAP session from raw client bytes, without sockets, checking as it goes.

``SessionDriver.feed(data)`` does what ``imap/connection.py`` does with bytes from a
socket — the sans-IO ``Receiver`` turns them into events, each command goes through a
real ``Session`` on a real store, every response through the one serializer — and
checks the promises a stranger's input must not break:

* nothing raises out of the receiver, the session or the serializer;
* every command the receiver produced gets exactly one tagged reply, unless the
  session ended (BYE) or the input stopped while the command waits for more (IDLE,
  AUTHENTICATE);
* no reply is ``NO [SERVERBUG]`` (an internal error is a bug even when it is caught);
* every serialized response is one line: CRLF only at its end or inside a literal
  it announces, so no input can forge a response line.

A broken promise raises ``ProtocolViolation`` naming it. The fuzz harnesses
(tests/fuzz/) and the regression replay use this; the asyncio glue itself is tested
against a real server in tests/abuse/.

STARTTLS has no socket to upgrade here: the driver does what the connection does
around the handshake (drop buffered input, mark TLS active) without a handshake; after
COMPRESS the bytes fed stand for what the connection would have inflated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher

from roost.auth.authenticator import StoreAuthenticator
from roost.auth.throttle import LoginThrottle, ThrottlePolicy
from roost.imap.context import ImapContext, ImapLimits
from roost.imap.dispatch import continue_sasl, run_command
from roost.imap.handler_types import Awaiting, State
from roost.imap.session import Session
from roost.imap.wire import commands as c
from roost.imap.wire.receiver import (
    LiteralTooLarge,
    NeedData,
    NeedLiteral,
    RawLine,
    Receiver,
    SpoolFailed,
)
from roost.imap.wire.responses import (
    Code,
    Continuation,
    FlagFetchBatch,
    Response,
    Status,
    Tagged,
    Untagged,
)
from roost.imap.wire.serializer import serialize
from roost.store.sqlite import SqliteStore

_LITERAL_MARKER = re.compile(rb"~?\{(\d+)\+?\}\r\n")

# Cheap hashing: sign-in is not what is fuzzed (tests/unit checks the real parameters).
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

# Small limits, so that short inputs reach every edge: long lines, big literals,
# spooled literals, deep nesting.
FUZZ_LIMITS = ImapLimits(
    max_line_length=1024,
    max_literal_size=4096,
    max_nesting_depth=8,
    spool_threshold=256,
    max_bad_commands=1_000_000,  # the harness wants every command answered
)


class ProtocolViolation(AssertionError):
    """A promise of the session to its client was broken."""


@dataclass
class Transcript:
    """What one driver saw: the commands parsed and the responses given."""

    commands: list[c.Command] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    wire: bytearray = field(default_factory=bytearray)
    ended: bool = False  # BYE sent: the connection would be closed


def check_one_line(data: bytes) -> None:
    """``data`` is one response line: CRLF at its end, and elsewhere only right after a
    literal marker, followed by exactly that many bytes."""
    if check_line(data, 0) != len(data):
        raise ProtocolViolation(f"response with more than one line: {data[:200]!r}")


def check_lines(data: bytes) -> None:
    """``data`` is whole response lines, each as ``check_one_line`` requires: what one
    ``FlagFetchBatch`` (one ``* n FETCH`` line per message) serializes to."""
    position = 0
    while position < len(data):
        position = check_line(data, position)


def check_line(data: bytes, position: int) -> int:
    """Check the response line that starts at ``position``; return where it ends."""
    while True:
        end = data.find(b"\r\n", position)
        bare_lf = data.find(b"\n", position)
        if end < 0 or bare_lf < end or data.find(b"\r", position) < end:
            raise ProtocolViolation(f"response line with a bare CR or LF: {data[:200]!r}")
        marker = _LITERAL_MARKER.search(data, position, end + 2)
        if marker is None or marker.end() != end + 2:
            return end + 2
        position = end + 2 + int(marker.group(1))
        if position > len(data):
            raise ProtocolViolation(f"literal runs past the response: {data[:200]!r}")


class SessionDriver:
    def __init__(
        self,
        context: ImapContext,
        *,
        tls_active: bool = False,
        remote_ip: str = "192.0.2.1",
    ) -> None:
        limits = context.limits
        self.context = context
        self.session = Session(context, tls_active=tls_active, remote_ip=remote_ip)
        self.receiver = Receiver(
            max_line_length=limits.max_line_length,
            max_literal_size=limits.max_literal_size,
            max_nesting_depth=limits.max_nesting_depth,
            spool_threshold=limits.spool_threshold,
            spool_dir=context.spool_dir,
        )
        self.transcript = Transcript()
        self._unanswered: list[str] = []  # tags of commands still owed a tagged reply
        self._raw_line_for: Awaiting | None = None  # a raw line is expected for this

    @property
    def ended(self) -> bool:
        return self.transcript.ended

    async def feed(self, data: bytes) -> list[Response]:
        """Feed client bytes and run every command they complete; return the responses
        produced (also kept in ``transcript``)."""
        if self.ended:
            return []
        start = len(self.transcript.responses)
        self.receiver.feed(data)
        await self._pump()
        return self.transcript.responses[start:]

    async def close(self) -> None:
        """End as the connection does when the client goes away."""
        self.receiver.close()
        await self.session.close()

    def check_complete(self) -> None:
        """Every command fed so far has its tagged reply, unless the session ended or
        waits for a continuation line."""
        if self.ended or self._raw_line_for is not None:
            return
        if self._unanswered:
            raise ProtocolViolation(f"commands without a tagged reply: {self._unanswered!r}")

    # ---- the loop, as in ImapConnection.run --------------------------------------------

    async def _pump(self) -> None:
        while not self.ended:
            event = self.receiver.next_event()
            match event:
                case NeedData():
                    return
                case NeedLiteral():
                    self._emit(Continuation("Ready for literal data"))
                case LiteralTooLarge(tag=tag, synchronizing=sync):
                    code = Code("TOOBIG")
                    if not sync:
                        self._emit(Untagged(Status.BYE, "Literal too large", code))
                        return
                    self._emit(Tagged(tag, Status.NO, "Literal too large", code))
                case SpoolFailed(tag=tag):
                    self._emit(Tagged(tag, Status.NO, "Storage is full", Code("LIMIT")))
                case RawLine(data=line):
                    await self._continue(line)
                case c.Command():
                    await self._run_command(event)
            if self.session.state is State.LOGOUT and not self.ended:
                raise ProtocolViolation("session logged out without BYE")

    async def _run_command(self, command: c.Command) -> None:
        if self._raw_line_for is not None:
            # A line too long to be a continuation line: ImapConnection passes b"".
            assert isinstance(command, c.BadCommand), command
            await self._continue(b"")
            return
        self.transcript.commands.append(command)
        self._unanswered.append(command.tag)
        await self._collect(run_command(self.session, command))
        self.receiver.discard_spools()
        await self._after_command()

    async def _after_command(self) -> None:
        session = self.session
        match session.awaiting:
            case Awaiting.NOTHING:
                pass
            case Awaiting.TLS_HANDSHAKE:
                self.receiver.clear_buffer()  # RFC 9051 §6.2.1
                session.tls_started()
            case Awaiting.COMPRESSION:
                # The bytes fed from now on stand for the inflated stream (RFC 4978).
                session.compression_started()
            case Awaiting.SASL_RESPONSE | Awaiting.IDLE_DONE:
                self._raw_line_for = session.awaiting
                self.receiver.expect_raw_line()
                if session.awaiting is Awaiting.IDLE_DONE:
                    await self._collect(session.idle_updates())

    async def _continue(self, line: bytes) -> None:
        awaiting, self._raw_line_for = self._raw_line_for, None
        if awaiting is Awaiting.SASL_RESPONSE:
            await self._collect(continue_sasl(self.session, line))
        elif awaiting is Awaiting.IDLE_DONE:
            await self._collect(self.session.idle_done(line))
        else:
            raise ProtocolViolation(f"raw line nobody asked for: {line!r}")
        await self._after_command()

    async def _collect(self, responses: object) -> None:
        async for response in responses:  # type: ignore[attr-defined]
            self._emit(response)

    def _emit(self, response: Response) -> None:
        data = serialize(response, utf8=self.session.utf8)
        if isinstance(response, FlagFetchBatch):
            check_lines(data)  # one line per message, by design
        else:
            check_one_line(data)
        transcript = self.transcript
        transcript.responses.append(response)
        transcript.wire += data
        if isinstance(response, Tagged):
            if response.code is not None and getattr(response.code, "name", "") == "SERVERBUG":
                raise ProtocolViolation(f"internal error answered: {data!r}")
            if response.tag in self._unanswered:
                self._unanswered.remove(response.tag)
            elif response.tag != "*":
                raise ProtocolViolation(f"tagged reply for no pending command: {data!r}")
        elif isinstance(response, Untagged) and response.status is Status.BYE:
            transcript.ended = True


# ---- a store to drive sessions against ---------------------------------------------------


@dataclass
class FuzzStore:
    """A real SQLite store in a temporary directory, with accounts ready to sign in."""

    store: SqliteStore
    context: ImapContext
    data_dir: Path

    async def close(self) -> None:
        await self.store.close()


async def open_fuzz_store(
    data_dir: Path, *, limits: ImapLimits = FUZZ_LIMITS, tls_context: object = None
) -> FuzzStore:
    """Open a fresh store in ``data_dir``; passwords are checked with a cheap hasher."""
    store = await SqliteStore.open(data_dir / "data", durable=False)
    spool = data_dir / "spool"
    spool.mkdir(exist_ok=True)
    context = ImapContext(
        store=store,
        authenticator=StoreAuthenticator(
            store, LoginThrottle(ThrottlePolicy.disabled()), hasher=FAST_HASHER, rehash=False
        ),
        limits=limits,
        tls_context=tls_context,  # type: ignore[arg-type]
        allow_plaintext_auth=True,
        spool_dir=spool,
    )
    return FuzzStore(store, context, data_dir)
