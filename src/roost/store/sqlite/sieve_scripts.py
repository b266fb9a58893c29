"""Sieve scripts and Sieve tracking of one account (run on its worker thread).

Invariants:

* A script row holds the source exactly as uploaded and the compiled form that was made
  from it; both change together, in one transaction, so a reader never pairs one script's
  source with another's compiled form.
* At most one row has ``active = 1`` (a partial unique index): SETACTIVE clears the old
  one and sets the new one in one transaction (RFC 5804 §2.8).
* Tracking rows expire; expired ones are ignored when read and removed when something
  new is remembered, so the table stays as small as the live entries.
"""

from __future__ import annotations

from roost.store.errors import NoSuchScript, ScriptActive, ScriptExists
from roost.store.sqlite.db import Database
from roost.store.values import SieveScript

_COLUMNS = "name, source, compiled, compiled_version, active"


def _row(row: tuple[str, str, str, int, int]) -> SieveScript:
    return SieveScript(row[0], row[1], row[2], int(row[3]), bool(row[4]))


def list_scripts(db: Database) -> list[SieveScript]:
    with db.read():
        rows = db.conn.execute(f"SELECT {_COLUMNS} FROM sieve_scripts ORDER BY name").fetchall()
    return [_row(row) for row in rows]


def get_script(db: Database, name: str) -> SieveScript:
    with db.read():
        row = db.conn.execute(
            f"SELECT {_COLUMNS} FROM sieve_scripts WHERE name = ?", (name,)
        ).fetchone()
    if row is None:
        raise NoSuchScript(name)
    return _row(row)


def active_script(db: Database) -> SieveScript | None:
    with db.read():
        row = db.conn.execute(f"SELECT {_COLUMNS} FROM sieve_scripts WHERE active = 1").fetchone()
    return None if row is None else _row(row)


def put_script(db: Database, name: str, source: str, compiled: str, version: int) -> None:
    with db.write():
        db.conn.execute(
            "INSERT INTO sieve_scripts (name, source, compiled, compiled_version)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET source = excluded.source,"
            " compiled = excluded.compiled, compiled_version = excluded.compiled_version",
            (name, source, compiled, version),
        )


def update_compiled(db: Database, name: str, source: str, compiled: str, version: int) -> None:
    with db.write():
        db.conn.execute(
            "UPDATE sieve_scripts SET compiled = ?, compiled_version = ?"
            " WHERE name = ? AND source = ?",
            (compiled, version, name, source),
        )


def delete_script(db: Database, name: str) -> None:
    with db.write():
        row = db.conn.execute("SELECT active FROM sieve_scripts WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NoSuchScript(name)
        if row[0]:
            raise ScriptActive(name)
        db.conn.execute("DELETE FROM sieve_scripts WHERE name = ?", (name,))


def rename_script(db: Database, old: str, new: str) -> None:
    with db.write():
        if db.conn.execute("SELECT 1 FROM sieve_scripts WHERE name = ?", (old,)).fetchone() is None:
            raise NoSuchScript(old)
        if old == new:
            return
        if db.conn.execute("SELECT 1 FROM sieve_scripts WHERE name = ?", (new,)).fetchone():
            raise ScriptExists(new)
        db.conn.execute("UPDATE sieve_scripts SET name = ? WHERE name = ?", (new, old))


def set_active_script(db: Database, name: str | None) -> None:
    with db.write():
        if name is not None:
            exists = db.conn.execute("SELECT 1 FROM sieve_scripts WHERE name = ?", (name,))
            if exists.fetchone() is None:
                raise NoSuchScript(name)
        db.conn.execute("UPDATE sieve_scripts SET active = 0 WHERE active = 1")
        if name is not None:
            db.conn.execute("UPDATE sieve_scripts SET active = 1 WHERE name = ?", (name,))


def tracked(db: Database, kind: str, key: str, now: float) -> bool:
    with db.read():
        row = db.conn.execute(
            "SELECT 1 FROM sieve_tracking WHERE kind = ? AND key = ? AND expires > ?",
            (kind, key, int(now)),
        ).fetchone()
    return row is not None


def track(db: Database, kind: str, key: str, expires: float, now: float) -> None:
    with db.write():
        db.conn.execute("DELETE FROM sieve_tracking WHERE expires <= ?", (int(now),))
        db.conn.execute(
            "INSERT INTO sieve_tracking (kind, key, expires) VALUES (?, ?, ?)"
            " ON CONFLICT (kind, key) DO UPDATE SET expires = max(expires, excluded.expires)",
            (kind, key, int(expires)),
        )
