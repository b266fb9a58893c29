"""Administration: bringing mail in and out, backups, consistency checks.

Everything here works through the Store and Account interfaces (import, export) or on a
stopped or live data directory with SQLite's own tools (backup, verify). The store never
imports this package; the CLI (``roost.cli``) only parses arguments and prints.
"""
