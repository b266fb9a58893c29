"""How long the fuzzers run, and how many inputs they tried.

In CI (the default) each harness runs a fixed number of examples with Hypothesis'
derandomized seed, so ``make test`` is deterministic and bounded. By hand, set
``ROOST_FUZZ_SECONDS`` (per harness): it then keeps drawing fresh random batches until
the time is up, with Hypothesis' example database on, so a failure found is replayed
first next time. ``make fuzz`` does that for every harness, then runs atheris.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

_BATCH = 500  # examples per Hypothesis run in the timed mode


@dataclass
class FuzzRun:
    name: str
    iterations: int
    seconds: float


# Every run of this process, for the summary at the end of the session (conftest.py).
RUNS: list[FuzzRun] = []


def fuzz_seconds() -> float | None:
    value = os.environ.get("ROOST_FUZZ_SECONDS", "").strip()
    return float(value) if value else None


def harness_timeout(ci_seconds: float = 120.0) -> float:
    """A pytest-timeout for a harness: generous in CI, above the budget by hand."""
    budget = fuzz_seconds()
    return ci_seconds if budget is None else budget * 2 + 300


def run_fuzz(
    name: str,
    strategy: st.SearchStrategy[Any],
    check: Callable[[Any], None],
    *,
    ci_examples: int,
) -> FuzzRun:
    """Run ``check`` on examples of ``strategy``; return how many it ran and how long."""
    count = 0

    def body(value: Any) -> None:
        nonlocal count
        count += 1
        check(value)

    common = {
        "deadline": None,
        "suppress_health_check": list(HealthCheck),
        "print_blob": True,
    }
    started = time.monotonic()
    budget = fuzz_seconds()
    if budget is None:
        test = settings(max_examples=ci_examples, derandomize=True, database=None, **common)(
            given(strategy)(body)
        )
        test()
    else:
        stop = started + budget
        while time.monotonic() < stop:
            test = settings(max_examples=_BATCH, **common)(given(strategy)(body))
            seed(random.getrandbits(64))(test)()
    run = FuzzRun(name, count, time.monotonic() - started)
    RUNS.append(run)
    return run
