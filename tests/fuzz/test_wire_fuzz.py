"""Fuzzing the sans-IO receiver, tokenizer and grammar (STYLE.md §12).

The receiver must turn any byte stream into the same events however it is cut into
chunks, never raise, and leave no spool file behind once closed. Inputs are random
bytes and IMAP-like programs drawn from the grammar (tests/fuzz/strategies.py), so
that the parser is exercised past its first checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import strategies as st

from roost.imap.wire import commands as c
from tests.fuzz import strategies
from tests.fuzz.budget import harness_timeout, run_fuzz
from tests.fuzz.harness import check_receiver, normalize
from tests.support.session_driver import FUZZ_LIMITS


@pytest.mark.timeout(harness_timeout())
def test_receiver_gives_the_same_events_however_the_input_is_cut(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
        data = draw(strategies.client_input)
        return data, draw(strategies.splits(data))

    def check(case: tuple[bytes, list[bytes]]) -> None:
        check_receiver(*case, spool)

    run = run_fuzz("wire", cases(), check, ci_examples=1500)
    assert run.iterations >= 1


@pytest.mark.timeout(harness_timeout())
def test_receiver_survives_long_and_deep_input(tmp_path: Path) -> None:
    """Inputs around the limits: lines longer than max_line_length, literals around
    max_literal_size and the spool threshold, nesting beyond max_nesting_depth."""
    spool = tmp_path / "spool"
    spool.mkdir()
    limits = FUZZ_LIMITS

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
        kind = draw(st.integers(0, 3))
        tag = draw(strategies.tags)
        if kind == 0:
            size = draw(st.integers(limits.max_line_length - 8, limits.max_line_length + 8))
            data = (
                tag + b" NOOP " + b"x" * size + draw(st.sampled_from([b"\r\n", b"{3+}\r\nabc\r\n"]))
            )
        elif kind == 1:
            size = draw(
                st.sampled_from(
                    [
                        limits.spool_threshold,
                        limits.spool_threshold + 1,
                        limits.max_literal_size,
                        limits.max_literal_size + 1,
                    ]
                )
            )
            plus = draw(st.sampled_from([b"", b"+"]))
            data = tag + b" APPEND INBOX {%d%s}\r\n" % (size, plus) + b"m" * size + b"\r\n"
        elif kind == 2:
            depth = draw(st.integers(limits.max_nesting_depth - 1, 200))
            data = tag + b" FETCH 1 " + strategies.deep_list(depth) + b"\r\n"
        else:
            count = draw(st.integers(1, 6))
            each = draw(st.integers(0, 2 * limits.spool_threshold))
            data = (
                tag
                + b" APPEND INBOX"
                + b"".join(b" {%d+}\r\n" % each + b"q" * each for _ in range(count))
                + b"\r\n"
            )
        data += b"Z NOOP\r\n"
        return data, draw(strategies.splits(data))

    def check(case: tuple[bytes, list[bytes]]) -> None:
        whole = check_receiver(*case, spool)
        # Whatever came before, the NOOP at the end is reached.
        assert whole[-1] == normalize(c.Noop("Z")), whole[-3:]

    run_fuzz("wire-limits", cases(), check, ci_examples=300)
