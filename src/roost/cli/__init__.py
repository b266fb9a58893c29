"""The ``roost`` command: serve, user add|passwd|del|list, user app-password
add|list|revoke, user totp enable|disable, check-config, deliver (and ``worker``, hidden: one
worker process of ``serve --workers N``, started by the supervisor).

``main`` (the console entry point, ``roost.cli:main``) is the click group of
``common.py``; importing ``serve`` and ``user`` registers their commands on it.
"""

from roost.cli import deliver, serve, user
from roost.cli.common import main
from roost.cli.serve import ServeOptions

__all__ = ["ServeOptions", "deliver", "main", "serve", "user"]
