"""Change events across nodes: NOTIFY in the writing transaction, one LISTEN per node.

Invariants:

* A write sends ``NOTIFY roost_changes`` inside its transaction (``notify``):
  PostgreSQL delivers it only if the transaction commits, after the commit, to every
  listening node. The payload is small — the account, each mailbox's new modseq,
  whether the mailbox list changed, and the sender — and only says "ask the store":
  sessions read the change itself from the tables (``changes_since``).
* A node ignores its own notifications (its hub already had them, published locally
  after commit) and hands the others to its hub's local listeners only (``deliver``),
  so nothing echoes back.
* After the LISTEN connection drops, the node reconnects (with a growing pause) and
  then wakes every local listener with ``MailboxListChanged``: whatever was missed
  meanwhile, every session re-syncs from its own modseq.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets

import asyncpg

from roost.store.events import ChangeEvent, EventHub, MailboxChanged, MailboxListChanged

log = logging.getLogger(__name__)

CHANNEL = "roost_changes"
RECONNECT_FIRST = 0.1
RECONNECT_MAX = 5.0


def new_node_id() -> str:
    """The id of one store (a node, or one worker of it): its own notifications are
    skipped by its own LISTEN."""
    return secrets.token_hex(6)


def payload(node: str, account: str, events: list[ChangeEvent]) -> str:
    mailboxes: dict[int, int] = {}
    listed = False
    for event in events:
        match event:
            case MailboxChanged(mailbox_id=mailbox_id, modseq=modseq):
                mailboxes[mailbox_id] = max(modseq, mailboxes.get(mailbox_id, 0))
            case MailboxListChanged():
                listed = True
    return json.dumps(
        {"n": node, "a": account, "m": list(mailboxes.items()), "l": listed},
        separators=(",", ":"),
    )


def parse(text: str) -> tuple[str, str, list[ChangeEvent]]:
    """(sender, account, events) of a payload."""
    data = json.loads(text)
    events: list[ChangeEvent] = [MailboxChanged(int(m), int(s)) for m, s in data["m"]]
    if data["l"]:
        events.append(MailboxListChanged())
    return str(data["n"]), str(data["a"]), events


async def notify(
    conn: asyncpg.Connection, node: str, account: str, events: list[ChangeEvent]
) -> None:
    """Inside the writing transaction: tell the other nodes (module docstring)."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload(node, account, events))


class Notifier:
    """This node's LISTEN connection, feeding other nodes' changes to ``hub``."""

    def __init__(self, url: str, hub: EventHub, node: str) -> None:
        self._url = url
        self._node = node
        self._hub = hub
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    @classmethod
    async def start(cls, url: str, hub: EventHub, node: str) -> Notifier:
        notifier = cls(url, hub, node)
        await notifier._connect()
        notifier._task = asyncio.create_task(notifier._keep_listening())
        return notifier

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)

    def drop(self) -> None:
        """Cut the LISTEN connection (tests of the reconnect)."""
        if self._conn is not None:
            self._conn.terminate()
            self._lost.set()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._url)
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(CHANNEL, self._received)
        self._conn = conn
        self._lost.clear()
        self.connected.set()

    async def _keep_listening(self) -> None:
        pause = RECONNECT_FIRST
        while True:
            await self._lost.wait()
            self.connected.clear()
            log.warning("lost the LISTEN connection to the database; reconnecting")
            while True:
                try:
                    await self._connect()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("cannot LISTEN yet (%s); retrying in %.1fs", error, pause)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, RECONNECT_MAX)
                    continue
                break
            pause = RECONNECT_FIRST
            log.info("LISTEN connection back; every session re-syncs")
            # Changes may have passed while we were cut off: every session re-syncs.
            self._hub.deliver_everywhere([MailboxListChanged()])

    def _received(self, _conn: object, _pid: int, _channel: str, text: str) -> None:
        try:
            sender, account, events = parse(text)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed change notification")
            return
        if sender != self._node and events:
            self._hub.deliver(account, events)
