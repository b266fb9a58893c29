"""The harnesses every fuzzer shares: the receiver run on a byte stream, and whole
sessions on a real store (tests/support/session_driver.py), with the checks around
them. Used by the Hypothesis tests, the regression replay and the atheris harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.auth.passwords import hash_password
from roost.imap.wire import commands as c
from roost.imap.wire.receiver import NeedData, Receiver
from roost.imap.wire.responses import Status, Tagged
from roost.runtime.tls import ensure_self_signed, server_context
from roost.store.base import Account, MessageSource, NewMessage
from tests.support.session_driver import (
    FAST_HASHER,
    FUZZ_LIMITS,
    FuzzStore,
    ProtocolViolation,
    SessionDriver,
    open_fuzz_store,
)

# ---- the receiver alone ----------------------------------------------------------------


def normalize(value: Any) -> Any:
    """An event as plain comparable data; a spooled literal becomes its content."""
    if isinstance(value, c.Literal):
        data = value.path.read_bytes()
        assert len(data) == value.size, "spool file size differs from the literal's"
        return ("Literal", data, value.binary)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(normalize(getattr(value, f.name)) for f in dataclasses.fields(value)),
        )
    if isinstance(value, tuple | list):
        return tuple(normalize(item) for item in value)
    return value


def receiver_events(chunks: list[bytes], spool_dir: Path) -> list[Any]:
    """Every event the receiver gives for ``chunks``, NeedData left out. After IDLE and
    AUTHENTICATE the next line is asked for raw, as the session does."""
    limits = FUZZ_LIMITS
    receiver = Receiver(
        max_line_length=limits.max_line_length,
        max_literal_size=limits.max_literal_size,
        max_nesting_depth=limits.max_nesting_depth,
        spool_threshold=limits.spool_threshold,
        spool_dir=spool_dir,
    )
    events: list[Any] = []
    for chunk in chunks:
        receiver.feed(chunk)
        while not isinstance(event := receiver.next_event(), NeedData):
            events.append(normalize(event))
            if isinstance(event, c.Command):
                receiver.discard_spools()
            if isinstance(event, c.Idle | c.Authenticate):
                receiver.expect_raw_line()
    receiver.close()
    leaked = list(spool_dir.iterdir())
    assert not leaked, f"spool files left behind: {leaked}"
    return events


def check_receiver(data: bytes, chunks: list[bytes], spool_dir: Path) -> list[Any]:
    """The same events for ``data`` whole and cut into ``chunks``; return them."""
    assert b"".join(chunks) == data
    whole = receiver_events([data], spool_dir)
    cut = receiver_events(chunks, spool_dir)
    if cut != whole:
        raise ProtocolViolation(f"events depend on how the input is cut: {whole!r} / {cut!r}")
    return whole


# ---- whole sessions --------------------------------------------------------------------


PASSWORD = "pw"
SEED_MESSAGES = [
    b"From: a@example.org\r\nSubject: one\r\n\r\nHello.\r\n",
    b"Subject: two\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
    b"--x\r\n\r\npart\r\n--x--\r\n",
    b"no header, no body separator",
]
PRELUDES = {
    "not authenticated": [],
    "authenticated": ["LOGIN"],
    "selected": ["LOGIN", "P2 SELECT INBOX"],
    "examined": ["LOGIN", "P2 EXAMINE INBOX"],
    "utf8 selected": ["LOGIN", "P2 ENABLE UTF8=ACCEPT", "P3 SELECT INBOX"],
}


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Example:
    prelude: str
    chunks: list[bytes]


class SessionFuzzer:
    """One store for the whole run, a fresh account per example (so that a failure
    replays alone), and bob, whom no example may touch."""

    def __init__(self, runner: asyncio.Runner, fuzz: FuzzStore) -> None:
        self.runner = runner
        self.fuzz = fuzz
        self.count = 0
        self.password_hash = hash_password(PASSWORD, hasher=FAST_HASHER)
        self.bob: Account | None = None  # held open for the run: no reopening per example
        self.bob_before: object = None
        self.errors = _Errors()

    async def setup(self) -> None:
        store = self.fuzz.store
        await store.create_account("bob", self.password_hash)
        self.bob = bob = await store.open_account("bob")
        await bob.create_mailbox("Secret")
        for name in ("INBOX", "Secret"):
            info = await bob.get_mailbox(name)
            await bob.append(info.id, [NewMessage(MessageSource(data=b"Subject: bob\r\n\r\n"))])
        self.bob_before = await self.bob_state()

    async def close(self) -> None:
        if self.bob is not None:
            await self.bob.close()
            self.bob = None

    async def bob_state(self) -> object:
        assert self.bob is not None
        state = []
        for info in await self.bob.list_mailboxes():
            status = await self.bob.status(info.id)
            state.append((info.name, info.uidvalidity, status.messages, status.uidnext))
        return state

    async def example(self, example: Example) -> None:
        self.count += 1
        name = f"fuzz{self.count}"
        store = self.fuzz.store
        await store.create_account(name, self.password_hash)
        # Held open until the session is over, so that the session shares its worker.
        account = await store.open_account(name)
        driver = SessionDriver(self.fuzz.context)
        try:
            inbox = await account.get_mailbox("INBOX")
            await account.append(
                inbox.id, [NewMessage(MessageSource(data=m)) for m in SEED_MESSAGES]
            )
            for line in PRELUDES[example.prelude]:
                text = f"P1 LOGIN {name} {PASSWORD}" if line == "LOGIN" else line
                replies = await driver.feed(text.encode() + b"\r\n")
                assert isinstance(replies[-1], Tagged) and replies[-1].status is Status.OK, replies
            for chunk in example.chunks:
                await driver.feed(chunk)
            driver.check_complete()
        finally:
            await driver.close()
            await account.close()
        leaked = list(self.fuzz.context.spool_dir.iterdir())  # type: ignore[union-attr]
        if leaked:
            raise ProtocolViolation(f"spool files left behind: {leaked}")
        if self.errors.records:
            messages = [self.errors.format(r) for r in self.errors.records]
            self.errors.records.clear()
            raise ProtocolViolation("logged at ERROR:\n" + "\n".join(messages))
        if await self.bob_state() != self.bob_before:
            raise ProtocolViolation("another account changed")
        await store.delete_account(name)

    def check(self, example: Example) -> None:
        self.runner.run(self.example(example))


@contextlib.contextmanager
def session_fuzzer(directory: Path | None = None) -> Iterator[SessionFuzzer]:
    """A ``SessionFuzzer`` on a fresh store in ``directory`` (a temporary one if None)."""
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cert, key = ensure_self_signed(directory / "tls")
        runner = stack.enter_context(asyncio.Runner())
        fuzz = runner.run(open_fuzz_store(directory, tls_context=server_context(cert, key)))
        fuzzer = SessionFuzzer(runner, fuzz)
        logger = logging.getLogger("roost")
        logger.addHandler(fuzzer.errors)
        try:
            runner.run(fuzzer.setup())
            yield fuzzer
        finally:
            logger.removeHandler(fuzzer.errors)
            runner.run(fuzzer.close())
            runner.run(fuzz.close())
