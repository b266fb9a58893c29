"""The per-connection command pacer (runtime/pacing.py), on an injected clock."""

from __future__ import annotations

import pytest

from roost.runtime.pacing import CommandPacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(pacer: CommandPacer, clock: Clock, count: int) -> list[float | None]:
    """``count`` commands as a connection runs them: waiting out every delay."""
    decisions = []
    for _ in range(count):
        delay = pacer.before_command()
        decisions.append(delay)
        if delay:
            clock.now += delay
    return decisions


def test_yields_every_few_commands_within_the_rate() -> None:
    clock = Clock()
    pacer = CommandPacer(1000, clock=clock, yield_every=4)
    assert run(pacer, clock, 8) == [None, None, None, 0.0, None, None, None, 0.0]
    assert pacer.slowed == 0


def test_past_the_burst_commands_wait_for_tokens() -> None:
    clock = Clock()
    pacer = CommandPacer(10, clock=clock, yield_every=1000)
    assert run(pacer, clock, 10) == [None] * 10  # the burst
    assert run(pacer, clock, 3) == [pytest.approx(0.1)] * 3  # then 10 per second
    assert pacer.slowed == 3
    clock.now += 5.0  # a pause refills the bucket, up to one second's worth
    assert run(pacer, clock, 10) == [None] * 10
    assert run(pacer, clock, 1) == [pytest.approx(0.1)]


def test_a_high_rate_waits_in_steps_not_per_command() -> None:
    clock = Clock()
    pacer = CommandPacer(10_000, clock=clock, yield_every=1_000_000)
    assert run(pacer, clock, 10_000) == [None] * 10_000
    started = clock.now
    waits = [wait for wait in run(pacer, clock, 1000) if wait]
    assert waits == [pytest.approx(0.01)] * 10  # one per 100 commands (10 ms of them)
    assert clock.now - started == pytest.approx(0.1)  # 1000 commands at 10,000 a second
