"""The fuzz harnesses report how many inputs they tried (the issue asks for the figure)."""

from __future__ import annotations

import pytest

from tests.fuzz.budget import RUNS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RUNS:
        return
    total = sum(run.iterations for run in RUNS)
    parts = ", ".join(f"{run.name} {run.iterations} in {run.seconds:.1f} s" for run in RUNS)
    terminalreporter.write_line(f"fuzz: {total} inputs ({parts})")
