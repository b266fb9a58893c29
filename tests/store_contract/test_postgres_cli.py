"""The command line on a PostgreSQL store: ``roost db migrate`` and ``roost user
--store URL``, and a node's refusal of a database it has not migrated."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from click.testing import CliRunner, Result

from roost.cli import main
from roost.store.postgres.schema import MIGRATIONS
from tests.support.postgres import SCRATCH, url_for


@pytest.fixture
async def empty_database(monkeypatch: pytest.MonkeyPatch) -> str:
    """A database without Roost's schema; $ROOST_STORE restored afterwards (--store
    sets it for the processes of the command)."""
    monkeypatch.setenv("ROOST_STORE", "")
    await SCRATCH.check()
    admin = await asyncpg.connect(url_for("postgres"))
    name = f"roost_cli_{id(monkeypatch)}"
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    SCRATCH.adopt(name)
    return url_for(name)


async def test_migrate_then_manage_users(empty_database: str) -> None:
    url = empty_database
    runner = CliRunner()
    refused = await _invoke(runner, ["user", "--store", url, "list"])
    assert refused.exit_code == 1 and "roost db migrate" in refused.output
    migrated = await _invoke(runner, ["db", "migrate", "--store", url])
    assert migrated.exit_code == 0, migrated.output
    assert f"from version 0 to {len(MIGRATIONS)}" in migrated.output
    again = await _invoke(runner, ["db", "migrate", "--store", url])
    assert "is current" in again.output
    added = await _invoke(
        runner, ["user", "--store", url, "add", "alice", "--password-stdin"], "pw\n"
    )
    assert added.exit_code == 0, added.output
    listed = await _invoke(runner, ["user", "--store", url, "list"])
    assert listed.output.split() == ["alice"]


async def _invoke(runner: CliRunner, args: list[str], stdin: str | None = None) -> Result:
    # The commands run their own event loop: off this test's.
    return await asyncio.to_thread(runner.invoke, main, args, input=stdin)
