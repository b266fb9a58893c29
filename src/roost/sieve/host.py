"""What the interpreter asks of its host, and the limits it runs under.

The interpreter knows no store, no clock and no network: each question that needs the
outside world is a method of ``Host`` (Pigeonhole's lda-sieve-plugin callbacks).  Effects
the host must remember once delivery succeeded — duplicate ids, vacation responses — come
back as actions, never as calls, so a failed delivery leaves no trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from roost.sieve.compiled import CompiledScript
from roost.sieve.message import MessageView

# Fields naming addresses a message already went through: Delivered-To (added at final
# delivery, Postfix and Dovecot alike) and X-Sieve-Redirected-By (added by a host when it
# sends a redirect, as Pigeonhole does).
LOOP_FIELDS = ("delivered-to", "x-sieve-redirected-by")


@dataclass(frozen=True, slots=True)
class ScoreSource:
    """Where spamtest/virustest read their score: a header and the score meaning "certain"."""

    header: str
    max_score: float


class Host(Protocol):
    def mailbox_exists(self, mailbox: str) -> bool: ...

    def duplicate_seen(self, duplicate_id: str) -> bool:
        """Whether the id was recorded and has not expired (RFC 7352)."""
        ...

    def vacation_responded(self, sender: str, handle: str) -> bool:
        """Whether a reply with this handle went to ``sender`` within its period (RFC 5230)."""
        ...

    def now(self) -> datetime:
        """The current time, timezone-aware; its zone is the "local" zone of date tests."""
        ...

    def own_addresses(self) -> Sequence[str]:
        """The user's addresses: no vacation to them, and one must be a recipient of the mail."""
        ...

    def score_source(self, test: Literal["spamtest", "virustest"]) -> ScoreSource | None: ...

    def redirect_loops(self, address: str) -> bool:
        """Whether the message already went through ``address`` (e.g. its Delivered-To)."""
        ...

    def load_script(
        self, name: str, location: Literal["personal", "global"]
    ) -> CompiledScript | None:
        """A script for ``include`` (RFC 6609), or None when there is none of that name."""
        ...


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard limits of one run; beyond any of them the run fails and the mail is kept."""

    max_instructions: int = 100_000
    max_redirects: int = 4
    max_actions: int = 32
    max_include_depth: int = 5
    max_variable_size: int = 4096
    max_variables: int = 256
    default_duplicate_seconds: int = 7 * 86400
    max_duplicate_seconds: int = 90 * 86400
    default_vacation_seconds: int = 7 * 86400
    # RFC 5230 §4.1 lets a site bound :days; RFC 6131 allows 0 seconds (reply every time).
    min_vacation_seconds: int = 86400
    max_vacation_seconds: int = 90 * 86400


def passed_through(message: MessageView) -> frozenset[str]:
    """Addresses (lower case) the message already went through; for ``redirect_loops``."""
    seen: set[str] = set()
    for name, value in message.header_fields():
        if name.lower() in LOOP_FIELDS:
            seen.add(value.strip().strip("<>").lower())
    return frozenset(seen)
