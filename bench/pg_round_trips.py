"""Round trips to PostgreSQL per IMAP command of the mixed workload (issue 15).

On a loaded machine the PostgreSQL backend's speed is mostly the number of times a
command waits for the database: each round trip wakes two processes. This counts them
exactly, independent of load: one session of the mixed workload's loop (LOGIN, SELECT,
FETCH headers, FETCH a body, STORE \\Deleted, EXPUNGE, APPEND, LOGOUT) driven in-process
against a PostgreSQL store on a scratch database (created and dropped), counting every
statement asyncpg sends. The first round warms up (first sign-in); the second is
printed.

    .venv/bin/python bench/pg_round_trips.py [--pg-url URL] [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
from asyncpg.connection import Connection

import corpus

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

COUNTED = ("execute", "executemany", "fetch", "fetchrow", "fetchval")
MESSAGES = 200


class Counter:
    """Wraps asyncpg's statement methods to count them under the current label."""

    def __init__(self) -> None:
        self.label = "-"
        self.counts: collections.Counter[str] = collections.Counter()
        self.statements: list[str] = []

    def install(self) -> None:
        for name in COUNTED:
            original = getattr(Connection, name)
            setattr(Connection, name, self._wrap(original))

    def _wrap(self, original: Any) -> Any:
        counter = self

        async def counted(conn: Connection, query: str, *args: Any, **kwargs: Any) -> Any:
            counter.counts[counter.label] += 1
            counter.statements.append(f"{counter.label}: {' '.join(query.split())[:160]}")
            return await original(conn, query, *args, **kwargs)

        return counted


async def run(server_url: str, verbose: bool) -> None:
    from tests.support.session_driver import FAST_HASHER

    from roost.auth.authenticator import StoreAuthenticator
    from roost.auth.throttle import LoginThrottle, ThrottlePolicy
    from roost.imap.context import ImapContext
    from roost.store.base import MessageSource, NewMessage
    from roost.store.postgres import PostgresStore
    from roost.store.postgres.schema import migrate

    name = f"roost_round_trips_{os.getpid()}"
    url = server_url.rpartition("/")[0] + "/" + name
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    counter = Counter()
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        store = await PostgresStore.open(url, listen=False)
        try:
            await store.create_account("user", FAST_HASHER.hash("password"))
            account = await store.open_account("user")
            inbox = (await account.get_mailbox("INBOX")).id
            mail = corpus.generate(MESSAGES, 1)
            await account.append(
                inbox, [NewMessage(MessageSource(data=m.data), frozenset(), m.date) for m in mail]
            )
            await account.close()
            context = ImapContext(
                store=store,
                authenticator=StoreAuthenticator(
                    store,
                    LoginThrottle(ThrottlePolicy.disabled()),
                    hasher=FAST_HASHER,
                    rehash=False,
                ),
                allow_plaintext_auth=True,
                spool_dir=Path(tempfile.mkdtemp(prefix="roost-round-trips-")),
            )
            counter.install()
            for round_number in (1, 2):
                counter.counts.clear()
                counter.statements.clear()
                await one_session(context, counter, round_number)
        finally:
            await store.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    counter.counts.pop("-", None)
    for label, count in counter.counts.items():
        print(f"{label:14} {count}")
    print(f"{'session':14} {sum(counter.counts.values())}")
    if verbose:
        print()
        print("\n".join(s for s in counter.statements if not s.startswith("-:")))


async def one_session(context: Any, counter: Counter, round_number: int) -> None:
    from tests.support.session_driver import SessionDriver

    from roost.imap.wire.responses import Status, Tagged

    driver = SessionDriver(context)
    message = corpus.new_message(round_number, "mixed")
    steps = [
        ("LOGIN", b"a LOGIN user password\r\n"),
        ("SELECT", b"b SELECT INBOX\r\n"),
        (
            "FETCH headers",
            b"c UID FETCH %d:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS"
            b" (FROM TO CC SUBJECT DATE MESSAGE-ID)])\r\n" % (MESSAGES - 20),
        ),
        ("FETCH body", b"d FETCH 37 (BODY.PEEK[])\r\n"),
        ("STORE", b"e UID STORE %d +FLAGS.SILENT (\\Deleted)\r\n" % (MESSAGES - round_number)),
        ("EXPUNGE", b"f EXPUNGE\r\n"),
        ("APPEND", b"g APPEND INBOX {%d+}\r\n%s\r\n" % (len(message), message)),
        ("LOGOUT", b"h LOGOUT\r\n"),
    ]
    for label, data in steps:
        counter.label = label
        replies = await driver.feed(data)
        last = replies[-1] if replies else None
        if not isinstance(last, Tagged) or last.status is not Status.OK:
            raise SystemExit(f"{label} failed: {last!r}")
    await driver.close()
    counter.label = "-"  # what follows is not the session's


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "ROOST_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server's URL, of a role that may create databases",
    )
    parser.add_argument("--verbose", action="store_true", help="print every statement")
    args = parser.parse_args()
    asyncio.run(run(args.pg_url, args.verbose))
    return 0


if __name__ == "__main__":
    sys.exit(main())
