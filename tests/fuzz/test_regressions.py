"""Every input kept in tests/fuzz/regressions/, replayed on every run: through the
receiver whole and cut in several ways, and through a real session in every state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz.harness import PRELUDES, Example, SessionFuzzer, check_receiver, session_fuzzer
from tests.fuzz.strategies import cut

REGRESSIONS = sorted(
    path
    for path in (Path(__file__).parent / "regressions").iterdir()
    if path.is_file() and path.suffix != ".md"
)


def cuts(data: bytes) -> list[list[bytes]]:
    """The input whole, a byte at a time, and in chunks of 2, 3 and 7 bytes."""
    ways = [[data], [data[i : i + 1] for i in range(len(data))]]
    ways += [cut(data, range(step, len(data), step)) for step in (2, 3, 7)]
    return ways


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionFuzzer]:
    with session_fuzzer(tmp_path_factory.mktemp("regressions")) as fuzzer:
        yield fuzzer


def test_there_are_regression_inputs() -> None:
    assert REGRESSIONS


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda path: path.name)
def test_receiver_replay(path: Path, tmp_path: Path) -> None:
    data = path.read_bytes()
    for chunks in cuts(data):
        check_receiver(data, chunks, tmp_path)


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda path: path.name)
def test_session_replay(path: Path, fuzzer: SessionFuzzer) -> None:
    data = path.read_bytes()
    for prelude in PRELUDES:
        for chunks in cuts(data)[:2]:
            fuzzer.check(Example(prelude, chunks))
