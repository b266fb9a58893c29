"""What the POP3 session, the command runner and the handlers share, and nothing else.

The session's states (RFC 1939 §3) and ``CommandError``, a client's mistake. It imports
no handler and no session, so every one of them can import it without an import cycle.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"


class CommandError(Exception):
    """A client's mistake: becomes ``-ERR [code] text``. ``invalid`` counts it towards
    ``max_bad_commands``."""

    def __init__(self, text: str, code: str | None = None, *, invalid: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.invalid = invalid
