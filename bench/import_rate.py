"""How fast ``roost import`` brings in an mbox: 100,000 small messages, default settings.

Generates the mbox in a temporary directory, creates an account, runs
``python -m roost import`` on it exactly as an operator would (durable store, default
batch size) and prints messages per second. The target (issue 16) is over 1,000/s.

    .venv/bin/python bench/import_rate.py [--messages N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "meeting report budget invoice travel lunch review draft project schedule quarterly "
    "update release notes question answer thanks regards please attached follow"
).split()


def write_mbox(path: Path, count: int) -> int:
    """An mboxrd file of ``count`` small, distinct messages; returns its size."""
    rng = random.Random(16)
    with open(path, "wb") as out:
        for n in range(count):
            day = 1 + n % 28
            subject = " ".join(rng.choices(WORDS, k=5))
            body = "\n".join(" ".join(rng.choices(WORDS, k=12)) for _ in range(8))
            out.write(
                f"From sender{n % 97}@example.org Mon Mar {day:2d} 10:{n % 60:02d}:00 2025\n"
                f"From: Sender {n % 97} <sender{n % 97}@example.org>\n"
                f"To: user@example.org\n"
                f"Subject: {subject} #{n}\n"
                f"Date: Mon, {day} Mar 2025 10:{n % 60:02d}:00 +0000\n"
                f"Message-ID: <{n}.import-bench@example.org>\n"
                f"Status: {'RO' if n % 3 else 'O'}\n"
                f"\n{body}\n\n".encode()
            )
    return path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="roost-import-bench-") as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        mbox = work / "bench.mbox"
        size = write_mbox(mbox, args.messages)
        data = work / "data"
        roost = [sys.executable, "-m", "roost"]
        subprocess.run(
            [*roost, "user", "add", "bench", "--password-stdin", "--data-dir", str(data)],
            input=b"bench-password\n",
            check=True,
            capture_output=True,
        )
        started = time.monotonic()
        subprocess.run(
            [*roost, "import", "bench", str(mbox), "--data-dir", str(data)],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        seconds = time.monotonic() - started
    rate = args.messages / seconds
    print(
        f"import: {args.messages} messages ({size / 1e6:.1f} MB mbox) in {seconds:.1f} s"
        f" = {rate:,.0f} messages/s (target > 1,000)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
