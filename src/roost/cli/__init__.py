"""The ``roost`` command: serve, deliver, who, kick, mailbox, index, migrate, import,
export, backup, restore, verify, user add|passwd|del|list|import-passwd, user
app-password add|list|revoke, user totp enable|disable, user quota set|show|recalc,
user alias add|del|list,
sieve test|put|list|activate|get|delete, check-config, db migrate, store copy (and
``worker``, hidden: one worker process of ``serve --workers N``, started by the
supervisor).

``main`` (the console entry point, ``roost.cli:main``) is the click group of
``common.py``; importing ``serve``, ``user`` and the others registers their commands on it.
"""

from roost.cli import (
    admin_ops,
    data_ops,
    db,
    deliver,
    mail_io,
    migrate,
    passwd_import,
    serve,
    sieve,
    user,
    user_alias,
    user_quota,
)
from roost.cli.common import main
from roost.cli.serve import ServeOptions

__all__ = [
    "ServeOptions",
    "admin_ops",
    "data_ops",
    "db",
    "deliver",
    "mail_io",
    "main",
    "migrate",
    "passwd_import",
    "serve",
    "sieve",
    "user",
    "user_alias",
    "user_quota",
]
