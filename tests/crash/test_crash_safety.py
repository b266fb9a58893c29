"""Crash safety (ARCHITECTURE.md decision 2): SIGKILL at random moments loses nothing
acknowledged and leaves nothing half-visible.

The real server runs as a child process (``roost serve --config``) on a data directory
in tmp. Several clients APPEND, COPY, MOVE, STORE and EXPUNGE at once, each in its own
pair of mailboxes of one account (so each client's model of its mailboxes is exact, and
they still share one database, one blob store and one worker thread). At a random
moment (seeded) the server is SIGKILLed, restarted on the same directory, and checked:

* every acknowledged message is there, byte-identical (BODY.PEEK[]), with the flags
  its last acknowledged STORE gave it; acknowledged EXPUNGE and MOVE removed theirs;
* what was in flight at the kill happened entirely or not at all: a message the server
  never acknowledged is either absent or complete (its body one of those sent), a MOVE
  is never both or neither, a COPY never half done;
* every message listed can be read, and its RFC822.SIZE is its length;
* UIDVALIDITY never changes and UIDNEXT never goes back, so no UID is reused;
* ``PRAGMA integrity_check`` is "ok" for every SQLite file, opened read-only, after
  every kill.

``ROOST_CRASH_CYCLES`` (default 20) and ``ROOST_CRASH_SEED`` run it longer or
differently by hand.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import random
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from roost.auth.passwords import hash_password
from roost.store.sqlite import SqliteStore
from tests.crash.conftest import CRASH_STATS
from tests.support.imap_client import ImapClient
from tests.support.server_process import RoostProcess, integrity_check, write_config

CYCLES = int(os.environ.get("ROOST_CRASH_CYCLES", "20"))
SEED = int(os.environ.get("ROOST_CRASH_SEED", "20260522"))
WORKERS = 3
USER, PASSWORD = "crash", "crash password"
FLAG_CHOICES = ("\\Seen", "\\Flagged", "\\Answered", "$Work")
MAILBOX_CAP = 25  # above this many messages, a client moves and expunges
SPOOL_THRESHOLD = 64 * 1024  # so that the larger messages take the spooled path
CONNECTION_LOST = (ConnectionError, OSError, asyncio.IncompleteReadError, EOFError)
SHARED_BODIES = [  # identical content across clients: one blob, many references
    b"Subject: shared %d\r\n\r\n" % n + b"same words every time\r\n" * (n * 40 + 1)
    for n in range(3)
]


class CrashCheckFailed(AssertionError):
    pass


# ---- the model of one client's mailboxes ------------------------------------------------


@dataclass
class Message:
    body: bytes
    flags: frozenset[str]


@dataclass
class Mailbox:
    name: str
    uidvalidity: int | None = None
    uidnext_floor: int = 1  # UIDNEXT is at least this: UIDs never go back
    messages: dict[int, Message] = field(default_factory=dict)


@dataclass
class InFlight:
    """The command sent and not yet acknowledged: at a kill, it happened or not."""

    kind: str  # "append", "copy", "move", "store", "expunge"
    target: str  # the mailbox messages are added to or changed in
    source: str = ""  # COPY/MOVE: where they come from
    uids: tuple[int, ...] = ()  # COPY/MOVE/STORE/EXPUNGE: the messages concerned
    bodies: tuple[bytes, ...] = ()  # APPEND/COPY/MOVE: what may appear in target
    new_flags: dict[int, frozenset[str]] = field(default_factory=dict)  # STORE


@dataclass
class ClientModel:
    number: int
    boxes: dict[str, Mailbox]
    in_flight: InFlight | None = None
    acknowledged: int = 0


# ---- wire helpers ---------------------------------------------------------------------


def parse_uid_set(text: bytes) -> list[int]:
    uids: list[int] = []
    for part in text.split(b","):
        low, _, high = part.partition(b":")
        first, last = int(low), int(high or low)
        uids += range(min(first, last), max(first, last) + 1)
    return uids


def uid_set(uids: list[int] | tuple[int, ...]) -> str:
    return ",".join(str(u) for u in uids)


def flag_set(text: bytes) -> frozenset[str]:
    return frozenset(f for f in text.decode().split() if f != "\\Recent")


_FETCH_LITERAL = re.compile(rb"BODY\[\] \{(\d+)\}\r\n")


def parse_fetch(line: bytes) -> tuple[int, frozenset[str], int, bytes]:
    """UID, flags, RFC822.SIZE and body from one FETCH response line."""
    literal = _FETCH_LITERAL.search(line)
    if literal is None:
        raise CrashCheckFailed(f"message without a readable body: {line[:200]!r}")
    size = int(literal.group(1))
    body = line[literal.end() : literal.end() + size]
    items = line[: literal.start()] + line[literal.end() + size :]
    uid = re.search(rb"UID (\d+)", items)
    flags = re.search(rb"FLAGS \(([^)]*)\)", items)
    rfc822_size = re.search(rb"RFC822\.SIZE (\d+)", items)
    if uid is None or flags is None or rfc822_size is None or len(body) != size:
        raise CrashCheckFailed(f"malformed FETCH response: {line[:200]!r}")
    return int(uid.group(1)), flag_set(flags.group(1)), int(rfc822_size.group(1)), body


def response_code(lines: list[bytes], name: bytes) -> list[bytes] | None:
    for line in lines:
        found = re.search(rb"\[" + name + rb" ([^\]]*)\]", line)
        if found:
            return found.group(1).split(b" ")
    return None


# ---- one client ---------------------------------------------------------------------------


def make_body(rng: random.Random, client: int, serial: int) -> bytes:
    if rng.random() < 0.2:
        return rng.choice(SHARED_BODIES)
    size = rng.randint(SPOOL_THRESHOLD, 2 * SPOOL_THRESHOLD) if rng.random() < 0.05 else 0
    size = size or rng.randint(50, 4000)
    text = base64.encodebytes(rng.randbytes(size * 3 // 4)).replace(b"\n", b"\r\n")
    header = b"Subject: client %d message %d\r\nMessage-ID: <%d.%d@crash>\r\n\r\n" % (
        client,
        serial,
        client,
        serial,
    )
    return header + text


class Client:
    """Runs random commands until the connection dies, keeping the model exact:
    the model changes only when a command is acknowledged."""

    def __init__(self, model: ClientModel, rng: random.Random, serial_base: int) -> None:
        self.model = model
        self.rng = rng
        self.serial = serial_base
        self.imap: ImapClient | None = None
        self.selected = ""
        self.ready = asyncio.Event()

    async def run(self, port: int) -> None:
        try:
            self.imap = await ImapClient.connect("127.0.0.1", port)
            await self.imap.login(USER, PASSWORD)
            await self.select(self.rng.choice(list(self.model.boxes)))
            self.ready.set()
            while True:
                await self.step()
        except TimeoutError:
            raise  # a server that stops answering is a failure, not a kill
        except CONNECTION_LOST:
            return
        finally:
            self.ready.set()
            if self.imap is not None:
                await self.imap.close()

    async def command(self, text: str | bytes) -> tuple[list[bytes], bytes]:
        assert self.imap is not None
        reply = await self.imap.command(text)
        if reply.status != "OK":
            raise CrashCheckFailed(f"{text[:80]!r} answered {reply.line!r}")
        return reply.untagged, reply.line

    async def select(self, name: str) -> None:
        untagged, _ = await self.command(f"SELECT {name}")
        box = self.model.boxes[name]
        check_ids(box, untagged)
        self.selected = name

    async def step(self) -> None:
        rng, boxes = self.rng, self.model.boxes
        box = boxes[self.selected]
        other = next(b for b in boxes.values() if b.name != box.name)
        uids = sorted(box.messages)
        choice = rng.random()
        if len(uids) > MAILBOX_CAP:  # keep the checks after each restart quick
            choice = rng.choice([0.55, 0.9])
        if choice < 0.35 or not uids:
            await self.append(rng.choice(list(boxes.values())))
        elif choice < 0.5:
            await self.copy_or_move("copy", box, other, self.pick(uids))
        elif choice < 0.65:
            await self.copy_or_move("move", box, other, self.pick(uids))
        elif choice < 0.8:
            await self.store(box, self.pick(uids))
        elif choice < 0.92:
            await self.expunge(box, self.pick(uids))
        else:
            await self.select(other.name)

    def pick(self, uids: list[int]) -> list[int]:
        return sorted(self.rng.sample(uids, self.rng.randint(1, min(3, len(uids)))))

    async def append(self, box: Mailbox) -> None:
        self.serial += 1
        body = make_body(self.rng, self.model.number, self.serial)
        flags = frozenset(f for f in FLAG_CHOICES if self.rng.random() < 0.3)
        self.model.in_flight = InFlight("append", box.name, bodies=(body,))
        command = f"APPEND {box.name} ({' '.join(sorted(flags))}) {{{len(body)}+}}\r\n"
        _, line = await self.command(command.encode() + body)
        code = response_code([line], b"APPENDUID")
        assert code is not None, line
        uidvalidity, uid = int(code[0]), int(code[1])
        record_uidvalidity(box, uidvalidity)
        box.messages[uid] = Message(body, flags)
        box.uidnext_floor = max(box.uidnext_floor, uid + 1)
        self.settled()

    async def copy_or_move(self, kind: str, box: Mailbox, other: Mailbox, uids: list[int]) -> None:
        bodies = tuple(box.messages[u].body for u in uids)
        self.model.in_flight = InFlight(kind, other.name, box.name, tuple(uids), bodies)
        untagged, line = await self.command(f"UID {kind.upper()} {uid_set(uids)} {other.name}")
        code = response_code([line, *untagged], b"COPYUID")
        assert code is not None, (line, untagged)
        record_uidvalidity(other, int(code[0]))
        for source_uid, dest_uid in zip(
            parse_uid_set(code[1]), parse_uid_set(code[2]), strict=True
        ):
            message = box.messages[source_uid]
            other.messages[dest_uid] = Message(message.body, message.flags)
            other.uidnext_floor = max(other.uidnext_floor, dest_uid + 1)
            if kind == "move":
                del box.messages[source_uid]
        self.settled()

    async def store(self, box: Mailbox, uids: list[int]) -> None:
        mode = self.rng.choice(["+", "-", ""])
        flags = frozenset(f for f in FLAG_CHOICES if self.rng.random() < 0.5)
        new_flags = {}
        for uid in uids:
            old = box.messages[uid].flags
            new_flags[uid] = old | flags if mode == "+" else old - flags if mode == "-" else flags
        self.model.in_flight = InFlight("store", box.name, uids=tuple(uids), new_flags=new_flags)
        silent = self.rng.choice(["", ".SILENT"])
        await self.command(
            f"UID STORE {uid_set(uids)} {mode}FLAGS{silent} ({' '.join(sorted(flags))})"
        )
        for uid, flags_now in new_flags.items():
            box.messages[uid].flags = flags_now
        self.settled()

    async def expunge(self, box: Mailbox, uids: list[int]) -> None:
        await self.store_deleted(box, uids)
        doomed = tuple(u for u, m in box.messages.items() if "\\Deleted" in m.flags)
        self.model.in_flight = InFlight("expunge", box.name, uids=doomed)
        await self.command("EXPUNGE")
        for uid in doomed:
            del box.messages[uid]
        self.settled()

    async def store_deleted(self, box: Mailbox, uids: list[int]) -> None:
        new_flags = {u: box.messages[u].flags | {"\\Deleted"} for u in uids}
        self.model.in_flight = InFlight("store", box.name, uids=tuple(uids), new_flags=new_flags)
        await self.command(f"UID STORE {uid_set(uids)} +FLAGS.SILENT (\\Deleted)")
        for uid, flags_now in new_flags.items():
            box.messages[uid].flags = flags_now
        self.settled()

    def settled(self) -> None:
        self.model.in_flight = None
        self.model.acknowledged += 1


def record_uidvalidity(box: Mailbox, uidvalidity: int) -> None:
    if box.uidvalidity is None:
        box.uidvalidity = uidvalidity
    elif box.uidvalidity != uidvalidity:
        raise CrashCheckFailed(f"{box.name}: UIDVALIDITY {box.uidvalidity} → {uidvalidity}")


def check_ids(box: Mailbox, select_lines: list[bytes]) -> int:
    """UIDVALIDITY unchanged and UIDNEXT not gone back; return UIDNEXT."""
    uidvalidity = response_code(select_lines, b"UIDVALIDITY")
    uidnext = response_code(select_lines, b"UIDNEXT")
    assert uidvalidity is not None and uidnext is not None, select_lines
    record_uidvalidity(box, int(uidvalidity[0]))
    if int(uidnext[0]) < box.uidnext_floor:
        raise CrashCheckFailed(
            f"{box.name}: UIDNEXT went back from {box.uidnext_floor} to {int(uidnext[0])}"
        )
    return int(uidnext[0])


# ---- checking after a restart -------------------------------------------------------------


async def verify(port: int, models: list[ClientModel]) -> int:
    """Compare what the restarted server holds with every client's model, settle what
    was in flight, and return how many message bodies were compared."""
    checked = 0
    client = await ImapClient.connect("127.0.0.1", port)
    try:
        await client.login(USER, PASSWORD)
        for model in models:
            found: dict[str, tuple[dict[int, Message], int]] = {}
            for box in model.boxes.values():
                found[box.name] = await read_mailbox(client, box)
            for box in model.boxes.values():
                check_mailbox(box, found[box.name][0], model.in_flight)
            check_move_atomic(model, {name: actual for name, (actual, _) in found.items()})
            for box in model.boxes.values():
                actual, uidnext = found[box.name]
                checked += len(actual)
                box.messages = actual
                box.uidnext_floor = max(box.uidnext_floor, uidnext, *(u + 1 for u in actual))
            model.in_flight = None
    finally:
        await client.close()
    return checked


async def read_mailbox(client: ImapClient, box: Mailbox) -> tuple[dict[int, Message], int]:
    """Every message of ``box`` as the server has it, and its UIDNEXT."""
    reply = await client.ok(f"EXAMINE {box.name}")
    uidnext = check_ids(box, reply.untagged)
    fetched = await client.ok("UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[])")
    actual: dict[int, Message] = {}
    for line in fetched.untagged:
        if b" FETCH " not in line:
            continue
        uid, flags, size, body = parse_fetch(line)
        if size != len(body):
            raise CrashCheckFailed(f"{box.name} UID {uid}: RFC822.SIZE {size} ≠ {len(body)}")
        actual[uid] = Message(body, flags)
    return actual, uidnext


def check_mailbox(box: Mailbox, actual: dict[int, Message], in_flight: InFlight | None) -> None:
    expected = box.messages
    pending = in_flight if in_flight is not None else InFlight("none", "")
    where = f"{box.name} (in flight: {pending.kind} {pending.uids})"
    removable = set()
    if pending.kind == "expunge" and pending.target == box.name:
        removable = set(pending.uids)
    if pending.kind == "move" and pending.source == box.name:
        removable = set(pending.uids)
    gone = set(expected) - set(actual)
    if gone - removable:
        raise CrashCheckFailed(f"{where}: acknowledged messages lost: {sorted(gone)}")
    if gone and gone != removable:
        raise CrashCheckFailed(f"{where}: only some of {sorted(removable)} removed")
    for uid in sorted(set(expected) & set(actual)):
        want, got = expected[uid], actual[uid]
        if got.body != want.body:
            raise CrashCheckFailed(f"{where}: UID {uid} body differs from the one acknowledged")
        allowed = {want.flags}
        if pending.kind == "store" and pending.target == box.name and uid in pending.new_flags:
            allowed.add(pending.new_flags[uid])
        if got.flags not in allowed:
            raise CrashCheckFailed(f"{where}: UID {uid} flags {set(got.flags)} not in {allowed}")
    new = sorted(set(actual) - set(expected))
    if new:
        if pending.target != box.name or pending.kind not in ("append", "copy", "move"):
            raise CrashCheckFailed(f"{where}: unexplained messages appeared: {new}")
        if len(new) != len(pending.bodies):
            raise CrashCheckFailed(f"{where}: {len(new)} of {len(pending.bodies)} messages added")
        if sorted(actual[u].body for u in new) != sorted(pending.bodies):
            raise CrashCheckFailed(f"{where}: messages added with bodies never sent")
        if min(new) < box.uidnext_floor:
            raise CrashCheckFailed(f"{where}: new UID {min(new)} below {box.uidnext_floor}")


def check_move_atomic(model: ClientModel, actual: dict[str, dict[int, Message]]) -> None:
    """A MOVE in flight left the source exactly when it reached the destination
    (RFC 6851 §3.3: as one operation)."""
    pending = model.in_flight
    if pending is None or pending.kind != "move":
        return
    left = not (set(pending.uids) & set(actual[pending.source]))
    arrived = bool(set(actual[pending.target]) - set(model.boxes[pending.target].messages))
    if left != arrived:
        raise CrashCheckFailed(f"MOVE {pending.uids} half done: left={left} arrived={arrived}")


def check_blob_files(data_dir: Path, models: list[ClientModel]) -> None:
    """After a restart (whose first sign-in sweeps orphans), the blobs kept — message
    files on disk and small messages in the database — are exactly those of the
    messages there: none lost, none left over from a command that was killed before it
    committed."""
    on_disk = {
        path.parent.name + path.name
        for path in data_dir.glob("accounts/*/blobs/??/*")
        if path.is_file()
    }
    for database in data_dir.glob("accounts/*/mail.db"):
        with contextlib.closing(sqlite3.connect(database)) as conn:
            on_disk |= {blob_id for (blob_id,) in conn.execute("SELECT blob_id FROM blob_data")}
    referenced = {
        hashlib.sha256(message.body).hexdigest()
        for model in models
        for box in model.boxes.values()
        for message in box.messages.values()
    }
    missing, orphans = referenced - on_disk, on_disk - referenced
    if missing or orphans:
        raise CrashCheckFailed(f"blob files: {len(missing)} missing, {len(orphans)} orphaned")


# ---- the test -------------------------------------------------------------------------------


async def create_account(data_dir: Path, models: list[ClientModel]) -> None:
    """The account and every client's mailboxes, made with the store directly (durably).
    A cheap hash: the server upgrades it at the first sign-in."""
    store = await SqliteStore.open(data_dir, durable=True)
    try:
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        await store.create_account(USER, hash_password(PASSWORD, hasher=hasher))
        account = await store.open_account(USER)
        try:
            for model in models:
                for name in model.boxes:
                    await account.create_mailbox(name)
        finally:
            await account.close()
    finally:
        await store.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RoostProcess]:
    config = write_config(
        tmp_path / "roost.toml",
        tmp_path / "data",
        limits={"spool_threshold": SPOOL_THRESHOLD, "max_connections_per_account": 1000},
    )
    process = RoostProcess(config, tmp_path / "server.log")
    try:
        yield process
    finally:
        process.stop()


async def run_cycle(
    server: RoostProcess, models: list[ClientModel], rng: random.Random, cycle: int
) -> int:
    """Start, check, load, kill. Return how many message bodies were compared."""
    port = await asyncio.to_thread(server.start)
    checked = await verify(port, models)
    clients = [
        Client(model, random.Random(rng.getrandbits(64)), cycle * 10_000) for model in models
    ]
    tasks = [asyncio.create_task(client.run(port)) for client in clients]
    try:
        await asyncio.gather(*(client.ready.wait() for client in clients))
        await asyncio.sleep(rng.uniform(0.05, 0.6))  # the random moment is the test
        server.kill()
    finally:
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return checked


@pytest.mark.timeout(120 + CYCLES * 15)
async def test_sigkill_loses_nothing_acknowledged(server: RoostProcess, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    models = [
        ClientModel(n, {f"c{n}a": Mailbox(f"c{n}a"), f"c{n}b": Mailbox(f"c{n}b")})
        for n in range(WORKERS)
    ]
    data_dir = tmp_path / "data"
    await create_account(data_dir, models)
    checked = databases = 0
    for cycle in range(CYCLES):
        checked += await run_cycle(server, models, rng, cycle)
        databases += integrity_check(data_dir)
    port = await asyncio.to_thread(server.start)
    checked += await verify(port, models)
    check_blob_files(data_dir, models)
    server.kill()
    databases += integrity_check(data_dir)
    assert server.errors_logged() == []
    acknowledged = sum(m.acknowledged for m in models)
    CRASH_STATS.append((CYCLES, acknowledged, checked))
    assert acknowledged > CYCLES  # the clients got real work done between the kills
