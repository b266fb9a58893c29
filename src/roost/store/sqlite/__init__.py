"""The embedded backend: SQLite (WAL) per account plus content-addressed message files."""

from roost.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
