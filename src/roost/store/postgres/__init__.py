"""The PostgreSQL backend: many stateless Roost nodes on one database (store.py)."""

from roost.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
