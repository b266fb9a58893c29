"""Fuzzing whole sessions: client bytes → receiver → a real Session on a real store.

Each example signs a fresh account in (or not), perhaps selects INBOX, then feeds the
fuzz input in random chunks through ``SessionDriver`` (tests/support), which checks
that every command gets its tagged reply or the session ends with BYE, that nothing
raises, that no reply is ``NO [SERVERBUG]`` and that no response line can be forged.
Around each example the harness also checks that nothing was logged at ERROR, that no
spool file is left, and that another account (bob) is exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import strategies as st

from tests.fuzz import strategies
from tests.fuzz.budget import harness_timeout, run_fuzz
from tests.fuzz.harness import PRELUDES, Example, SessionFuzzer, session_fuzzer


@pytest.fixture
def fuzzer(tmp_path: Path) -> Iterator[SessionFuzzer]:
    with session_fuzzer(tmp_path) as fuzzer:
        yield fuzzer


@st.composite
def examples(draw: st.DrawFn, inputs: st.SearchStrategy[bytes]) -> Example:
    prelude = draw(st.sampled_from(list(PRELUDES)))
    data = draw(inputs)
    return Example(prelude, draw(strategies.splits(data)))


@pytest.mark.timeout(harness_timeout())
def test_grammar_driven_sessions(fuzzer: SessionFuzzer) -> None:
    inputs = st.one_of(strategies.programs, strategies.programs, strategies.mutated())
    run_fuzz("session-grammar", examples(inputs), fuzzer.check, ci_examples=600)


@pytest.mark.timeout(harness_timeout())
def test_random_byte_sessions(fuzzer: SessionFuzzer) -> None:
    inputs = st.one_of(strategies.random_lines, st.binary(max_size=300))
    run_fuzz("session-bytes", examples(inputs), fuzzer.check, ci_examples=250)
