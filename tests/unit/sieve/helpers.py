"""A recording Host and a one-call runner for the Sieve tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from roost.sieve import (
    CompiledScript,
    Discard,
    Envelope,
    FileInto,
    Keep,
    Limits,
    ParsedMessage,
    Redirect,
    Reject,
    Result,
    ScoreSource,
    TrackDuplicate,
    Vacation,
    compile_script,
    run,
)


@dataclass
class FakeHost:
    mailboxes: set[str] = field(default_factory=lambda: {"INBOX"})
    seen_duplicates: set[str] = field(default_factory=set)
    responded: set[tuple[str, str]] = field(default_factory=set)
    clock: datetime = datetime(2026, 12, 7, 9, 30, 0, tzinfo=UTC)
    addresses: list[str] = field(default_factory=lambda: ["me@example.org"])
    scores: dict[str, ScoreSource] = field(default_factory=dict)
    loops: set[str] = field(default_factory=set)
    scripts: dict[tuple[str, str], str] = field(default_factory=dict)
    loaded: list[str] = field(default_factory=list)

    def mailbox_exists(self, mailbox: str) -> bool:
        return mailbox in self.mailboxes

    def duplicate_seen(self, duplicate_id: str) -> bool:
        return duplicate_id in self.seen_duplicates

    def vacation_responded(self, sender: str, handle: str) -> bool:
        return (sender, handle) in self.responded

    def now(self) -> datetime:
        return self.clock

    def own_addresses(self) -> Sequence[str]:
        return self.addresses

    def score_source(self, test: Literal["spamtest", "virustest"]) -> ScoreSource | None:
        return self.scores.get(test)

    def redirect_loops(self, address: str) -> bool:
        return address in self.loops

    def load_script(
        self, name: str, location: Literal["personal", "global"]
    ) -> CompiledScript | None:
        self.loaded.append(name)
        source = self.scripts.get((location, name))
        return None if source is None else compile_script(source)


MESSAGE = (
    b"Return-Path: <alice@example.com>\r\n"
    b"Received: from mx.example.com by mail.example.org; Mon, 7 Dec 2026 10:00:00 +0100\r\n"
    b"From: Alice Example <alice@example.com>\r\n"
    b"To: Me <me@example.org>, other+lists@example.net\r\n"
    b"Cc: team@example.org\r\n"
    b"Subject: [acme-users] [fwd] version 1.0 is out\r\n"
    b"Date: Mon, 7 Dec 2026 10:00:00 +0100\r\n"
    b"Message-ID: <1234@example.com>\r\n"
    b"X-Spam-Score: 7.5\r\n"
    b"\r\n"
    b"Hello there, this is the body.\r\n"
)


def message(*headers: str, body: str = "Hello.\r\n") -> ParsedMessage:
    head = "".join(f"{header}\r\n" for header in headers)
    return ParsedMessage((head + "\r\n" + body).encode())


def sieve(
    source: str,
    data: bytes | ParsedMessage = MESSAGE,
    host: FakeHost | None = None,
    envelope: Envelope | None = None,
    limits: Limits | None = None,
) -> Result:
    """Compile ``source``, round-trip it through JSON, and run it."""
    script = CompiledScript.from_json(compile_script(source).to_json())
    parsed = data if isinstance(data, ParsedMessage) else ParsedMessage(data)
    return run(
        script,
        parsed,
        envelope or Envelope("alice@example.com", "me@example.org"),
        host or FakeHost(),
        limits,
    )


def summary(result: Result) -> list[str]:
    """Compact action words: "keep", "fileinto Lists", "redirect a@b", "error", ..."""
    words: list[str] = ["error"] if result.status == "error" else []
    for action in result.actions:
        match action:
            case Keep(flags=flags):
                words.append("keep" + (f" [{' '.join(flags)}]" if flags else ""))
            case FileInto(mailbox=mailbox, flags=flags, copy=copy):
                extra = (" :copy" if copy else "") + (f" [{' '.join(flags)}]" if flags else "")
                words.append(f"fileinto {mailbox}{extra}")
            case Redirect(address=address, copy=copy):
                words.append(f"redirect {address}" + (" :copy" if copy else ""))
            case Reject(extended=extended):
                words.append("ereject" if extended else "reject")
            case Discard():
                words.append("discard")
            case Vacation(recipient=recipient):
                words.append(f"vacation {recipient}")
            case TrackDuplicate():
                words.append("track")
    return words
