"""The ``roost`` command: serve, user add|passwd|del|list, user app-password
add|list|revoke, user totp enable|disable, user quota set|show|recalc, check-config,
db migrate
(and ``worker``, hidden: one worker process of ``serve --workers N``, started by the
supervisor).

``main`` (the console entry point, ``roost.cli:main``) is the click group of
``common.py``; importing ``serve``, ``user`` and ``user_quota`` registers their
commands on it.
"""

from roost.cli import db, serve, user, user_quota
from roost.cli.common import main
from roost.cli.serve import ServeOptions

__all__ = ["ServeOptions", "db", "main", "serve", "user", "user_quota"]
