"""Many devices, one mailbox: each client's picture, built only from what the server
told it, must end equal to the store, UID by UID and flag by flag.

* Three devices: one goes offline while the others append, flag, move and expunge; it
  comes back with QRESYNC (RFC 7162 §3.2.5) and catches up in one round trip. The
  scenario, ``three_devices``, also runs with the devices spread over two worker
  processes (tests/e2e/test_workers.py).
* A seeded random walk of thousands of operations from several sessions (plain,
  CONDSTORE, QRESYNC), every view checked against the store after each NOOP.
  ROOST_RANDOM_OPS raises the count for a longer run by hand.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Awaitable, Callable

import pytest

from roost.store.base import MailboxSnapshot
from tests.conftest import ImapServer
from tests.support.imap_client import ImapClient, message
from tests.support.mailbox_model import MailboxModel, parse_uid_set

pytestmark = pytest.mark.both_backends  # also on PostgreSQL (tests/conftest.py)

RANDOM_OPS = int(os.environ.get("ROOST_RANDOM_OPS", "1500"))
FLAG_CHOICES = ("\\Seen", "\\Flagged", "\\Answered", "\\Draft", "$Label1", "$Junk")


async def store_truth(imap: ImapServer, mailbox: str = "INBOX") -> list[tuple[int, frozenset[str]]]:
    account = await imap.store.open_account("alice")
    try:
        info = await account.get_mailbox(mailbox)
        snapshot: MailboxSnapshot = await account.snapshot(info.id)
        found = await account.fetch_flags(info.id, snapshot.uids)
        return [(uid, flags) for uid, flags, _ in found.states()]
    finally:
        await account.close()


async def open_view(client: ImapClient, enable: str | None) -> MailboxModel:
    if enable:
        await client.ok(f"ENABLE {enable}")
    model = MailboxModel()
    model.apply((await client.ok("SELECT INBOX")).untagged)
    if model.uids:
        model.apply((await client.ok("FETCH 1:* (UID FLAGS)")).untagged)
    return model


async def catch_up(client: ImapClient, model: MailboxModel) -> None:
    """NOOP, then learn the UIDs and flags of new messages, as a real client does."""
    model.apply((await client.ok("NOOP")).untagged)
    if None in model.uids:
        first = model.uids.index(None) + 1
        model.apply((await client.ok(f"FETCH {first}:* (UID FLAGS)")).untagged)


def highest(lines: list[bytes], code: bytes) -> int:
    for line in lines:
        match = re.search(rb"\[" + code + rb" (\d+)\]", line)
        if match:
            return int(match.group(1))
    raise AssertionError(f"no {code!r}")


Truth = list[tuple[int, frozenset[str]]]


async def test_three_devices_offline_one_resyncs_with_qresync(imap: ImapServer) -> None:
    async def login(device: str) -> ImapClient:
        return await imap.login()

    await three_devices(login, lambda: store_truth(imap))


async def three_devices(
    login: Callable[[str], Awaitable[ImapClient]], truth_of: Callable[[], Awaitable[Truth]]
) -> None:
    """Laptop and tablet change INBOX while the phone is offline; the phone (a new
    connection each time ``login("phone")`` is called) resyncs with QRESYNC. Every
    view must end equal to ``truth_of()``, the store's INBOX."""
    laptop = await login("laptop")
    for i in range(20):
        await laptop.append("INBOX", message(f"seed {i}"))

    # The phone syncs, remembers what it knows, and goes offline.
    phone = await login("phone")
    await phone.ok("ENABLE QRESYNC")
    reply = await phone.ok("SELECT INBOX")
    validity, modseq = (
        highest(reply.untagged, b"UIDVALIDITY"),
        highest(reply.untagged, b"HIGHESTMODSEQ"),
    )
    cache = MailboxModel()
    cache.apply(reply.untagged)
    cache.apply((await phone.ok("UID FETCH 1:* (FLAGS)")).untagged)
    phone_cache = dict(
        zip(
            [u for u in cache.uids if u is not None],
            [cache.flags[u] for u in cache.uids if u],
            strict=True,
        )
    )
    await phone.ok("LOGOUT")

    # Laptop and tablet change things meanwhile.
    tablet = await login("tablet")
    await tablet.ok("ENABLE CONDSTORE")
    await laptop.ok("SELECT INBOX")
    await tablet.ok("SELECT INBOX")
    for i in range(5):
        await laptop.append("INBOX", message(f"new {i}"))
    await tablet.ok("UID STORE 1:4 +FLAGS (\\Seen)")
    await laptop.ok("UID MOVE 5:7 Archive")
    await tablet.ok("UID STORE 8,9 +FLAGS.SILENT (\\Deleted)")
    await tablet.ok("UID EXPUNGE 8,9")
    await laptop.ok("UID STORE 10 FLAGS ($Important)")
    await tablet.append("INBOX", message("from tablet"))
    await laptop.ok("UID STORE 22 +FLAGS (\\Flagged)")  # one of the new ones

    # The phone comes back: one SELECT with QRESYNC, one fetch of what is new.
    phone = await login("phone")
    await phone.ok("ENABLE QRESYNC")
    known = ",".join(str(u) for u in sorted(phone_cache))
    reply = await phone.ok(f"SELECT INBOX (QRESYNC ({validity} {modseq} {known}))")
    for line in reply.untagged:
        if match := re.fullmatch(rb"\* VANISHED \(EARLIER\) ([\d:,]+)", line):
            for uid in parse_uid_set(match.group(1)):
                phone_cache.pop(uid, None)
        elif b" FETCH " in line:
            uid = int(re.search(rb"UID (\d+)", line).group(1))  # type: ignore[union-attr]
            flags = re.search(rb"FLAGS \(([^)]*)\)", line).group(1)  # type: ignore[union-attr]
            phone_cache[uid] = frozenset(f for f in flags.decode().split() if f != "\\Recent")
    newer = await phone.ok(f"UID FETCH {max(phone_cache) + 1}:* (FLAGS)")
    for line in newer.untagged:
        uid = int(re.search(rb"UID (\d+)", line).group(1))  # type: ignore[union-attr]
        flags = re.search(rb"FLAGS \(([^)]*)\)", line).group(1)  # type: ignore[union-attr]
        phone_cache[uid] = frozenset(f for f in flags.decode().split() if f != "\\Recent")

    truth = await truth_of()
    assert sorted(phone_cache.items()) == truth
    laptop_view = MailboxModel()
    laptop_view.uids = [None] * len(truth)
    laptop_view.apply((await laptop.ok("FETCH 1:* (UID FLAGS)")).untagged)
    assert laptop_view.state() == truth
    assert len(truth) == 20 + 5 + 1 - 3 - 2


async def test_random_operations_keep_every_view_consistent(imap: ImapServer) -> None:
    rng = random.Random(20261122)
    seeder = await imap.login()
    for i in range(10):
        await seeder.append("INBOX", message(f"seed {i}"))
    clients: list[tuple[ImapClient, MailboxModel]] = []
    for enable in (None, "CONDSTORE", "QRESYNC"):
        client = await imap.login()
        clients.append((client, await open_view(client, enable)))
    checks = 0
    for step in range(RANDOM_OPS):
        client, model = rng.choice(clients)
        count = len(model.uids)
        operation = rng.random()
        if operation < 0.15 or count == 0:
            reply = await client.append("INBOX", message(f"step {step}"))
        elif operation < 0.45:
            msn = rng.randint(1, count)
            mode = rng.choice(("+", "-", ""))
            flags = " ".join(rng.sample(FLAG_CHOICES, rng.randint(1, 3)))
            silent = rng.choice((".SILENT", ""))
            reply = await client.ok(f"STORE {msn} {mode}FLAGS{silent} ({flags})")
            if silent:
                model.stored_silently(msn, mode, set(flags.split()))
        elif operation < 0.55:
            uid = rng.choice([u for u in model.uids if u is not None] or [1])
            reply = await client.ok(f"UID STORE {uid} +FLAGS (\\Seen)")
        elif operation < 0.65:
            msn = rng.randint(1, count)
            model.apply((await client.ok(f"STORE {msn} +FLAGS.SILENT (\\Deleted)")).untagged)
            model.stored_silently(msn, "+", {"\\Deleted"})
            reply = await client.ok("EXPUNGE")
        elif operation < 0.72:
            reply = await client.ok(f"MOVE {rng.randint(1, count)} Archive")
        elif operation < 0.77:
            reply = await client.ok(f"COPY {rng.randint(1, count)} INBOX")
        elif operation < 0.87:
            reply = await client.ok(f"FETCH 1:{count} (FLAGS)")
            assert not any(line.endswith(b"EXPUNGE") for line in reply.untagged), (
                "EXPUNGE during FETCH (RFC 9051 §7.5.1)"
            )
        else:
            await catch_up(client, model)
            assert model.state() == await store_truth(imap), f"view drifted at step {step}"
            checks += 1
            continue
        model.apply(reply.untagged)
    for client, model in clients:
        await catch_up(client, model)
        assert model.state() == await store_truth(imap)
        checks += 1
    assert checks > RANDOM_OPS // 20
