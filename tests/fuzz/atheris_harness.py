"""Coverage-guided fuzzing with atheris (libFuzzer), for long runs by hand.

    python -m tests.fuzz.atheris_harness --target wire [libFuzzer options] [corpus dirs]
    python -m tests.fuzz.atheris_harness --target session [libFuzzer options] [corpus dirs]

``make fuzz`` runs both. Each input is the raw bytes a client sends. ``wire`` checks
that the receiver gives the same events whole and cut in 7-byte chunks, and leaves no
spool file; ``session`` runs the input through a real session on a real store, signed
in with INBOX selected, with every check of ``SessionDriver`` (tests/support). A broken
check raises, and libFuzzer keeps the input as a ``crash-*`` file: copy it into
tests/fuzz/regressions/ so that the normal test suite replays it.

atheris is not a dependency of the project or of its tests; install it into .venv
(``pip install atheris``) to use this.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["roost"]):
    from tests.fuzz.harness import Example, check_receiver, session_fuzzer
    from tests.fuzz.strategies import cut


_KEEP_OPEN = contextlib.ExitStack()


def wire_target() -> Callable[[bytes], None]:
    spool = Path(tempfile.mkdtemp(prefix="roost-fuzz-"))

    def test_one_input(data: bytes) -> None:
        check_receiver(data, cut(data, range(7, len(data), 7)), spool)

    return test_one_input


def session_target() -> Callable[[bytes], None]:
    directory = Path(tempfile.mkdtemp(prefix="roost-fuzz-"))
    fuzzer = _KEEP_OPEN.enter_context(session_fuzzer(directory))  # as long as the process

    def test_one_input(data: bytes) -> None:
        fuzzer.check(Example("selected", [data]))

    return test_one_input


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--target", choices=("wire", "session"), default="wire")
    options, rest = parser.parse_known_args()
    target = wire_target() if options.target == "wire" else session_target()
    atheris.Setup([sys.argv[0], *rest], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
