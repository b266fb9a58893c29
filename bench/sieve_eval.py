#!/usr/bin/env python3
"""Sieve evaluation time for one message against a 100-rule script (issue 18).

    .venv/bin/python bench/sieve_eval.py               # 2000 runs per figure
    .venv/bin/python bench/sieve_eval.py --runs 10000

The script is what people write: 100 rules filing mailing lists, senders and subjects
into folders (header :contains, address :is/:domain, list-id :matches with a match
variable, a spamtest, one anyof), none of which matches the message except the last
rule, so every test is evaluated.  Figures, in µs per message: evaluation alone (the
message parsed once, as delivery does), and parse of the message plus evaluation; each
the best and the median of 7 batches of CPU time (process_time), since the machine
may be shared.
Compilation happens once, at upload, and is reported separately.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

from roost.sieve import (
    CompiledScript,
    Envelope,
    ParsedMessage,
    ScoreSource,
    compile_script,
    run,
)


class BenchHost:
    def mailbox_exists(self, mailbox: str) -> bool:
        return True

    def duplicate_seen(self, duplicate_id: str) -> bool:
        return False

    def vacation_responded(self, sender: str, handle: str) -> bool:
        return False

    def now(self) -> datetime:
        return datetime(2026, 12, 7, tzinfo=UTC)

    def own_addresses(self) -> Sequence[str]:
        return ["me@example.org"]

    def score_source(self, test: Literal["spamtest", "virustest"]) -> ScoreSource | None:
        return ScoreSource("X-Spam-Score", 10.0)

    def redirect_loops(self, address: str) -> bool:
        return False

    def load_script(
        self, name: str, location: Literal["personal", "global"]
    ) -> CompiledScript | None:
        return None


def hundred_rules() -> str:
    rules = [
        'require ["fileinto", "variables", "spamtest", "relational",'
        ' "comparator-i;ascii-numeric", "imap4flags"];'
    ]
    for i in range(96):
        match i % 4:
            case 0:
                rules.append(f'if header :contains "subject" "project-{i}" {{ fileinto "P/{i}"; }}')
            case 1:
                rules.append(
                    f'if address :is "from" "person{i}@example.com" {{ fileinto "F/{i}"; }}'
                )
            case 2:
                rules.append(
                    f'if header :matches "list-id" "*<list{i}.*>*" {{ fileinto "L/${{2}}"; stop; }}'
                )
            case _:
                rules.append(
                    f'if anyof (address :domain :is "to" "dept{i}.example.com",'
                    f' header :is "x-mailer" "bot{i}") {{ addflag "$bot"; }}'
                )
    rules.append(
        'if spamtest :value "ge" :comparator "i;ascii-numeric" "9" { fileinto "Junk"; stop; }'
    )
    rules.append('if exists "x-never" { discard; }')
    rules.append('if size :over 10M { fileinto "Big"; }')
    rules.append('if header :contains "subject" "quarterly" { fileinto "Reports"; }')
    return "\n".join(rules)


MESSAGE = (
    b"Received: from mx.example.com by mail.example.org; Mon, 7 Dec 2026 10:00:00 +0100\r\n"
    b"From: Alice Example <alice@example.com>\r\n"
    b"To: Me <me@example.org>, team@example.org\r\n"
    b"Subject: The quarterly report\r\n"
    b"Date: Mon, 7 Dec 2026 10:00:00 +0100\r\n"
    b"Message-ID: <1234@example.com>\r\n"
    b"List-Id: Team list <team.example.org>\r\n"
    b"X-Spam-Score: 1.2\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n" + b"Numbers attached.\r\n" * 40
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    source = hundred_rules()
    start = time.process_time()
    script = compile_script(source)
    compile_us = (time.process_time() - start) * 1e6
    host = BenchHost()
    envelope = Envelope("alice@example.com", "me@example.org")
    message = ParsedMessage(MESSAGE)
    result = run(script, message, envelope, host)
    assert result.status == "ok" and str(result.actions[0]).startswith("FileInto(mailbox='Reports'")
    for _ in range(200):  # warm up
        run(script, message, envelope, host)
    evaluate = batches(lambda: run(script, message, envelope, host), args.runs)
    parse_evaluate = batches(lambda: run(script, ParsedMessage(MESSAGE), envelope, host), args.runs)
    print(f"rules: 100, source {len(source)} bytes, compile once: {compile_us:.0f} µs")
    print(f"evaluate one message: best {evaluate[0]:.1f} µs, median {evaluate[1]:.1f} µs")
    print(
        f"parse message header + evaluate: best {parse_evaluate[0]:.1f} µs,"
        f" median {parse_evaluate[1]:.1f} µs"
    )


def batches(work: Callable[[], object], runs: int, count: int = 7) -> tuple[float, float]:
    """µs per call: the best and the median of ``count`` batches (the machine is shared)."""
    per_batch = max(runs // count, 1)
    figures = []
    for _ in range(count):
        start = time.process_time()
        for _ in range(per_batch):
            work()
        figures.append((time.process_time() - start) / per_batch * 1e6)
    return min(figures), statistics.median(figures)


if __name__ == "__main__":
    main()
