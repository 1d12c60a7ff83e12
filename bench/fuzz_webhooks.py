"""The heavy run of the webhook path's differential test (``tests/trello/test_differential.py``).

CI runs the test with a few dozen examples; this runs it with many more, and longer ones, and
prints how long it took. A failure prints Hypothesis's shrunk example (the sequence of changes
and deliveries) and exits non-zero.

    python bench/fuzz_webhooks.py [--examples 1000] [--steps 80]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=80)
    args = parser.parse_args()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SYNCD_DIFFERENTIAL_EXAMPLES": str(args.examples),
        "SYNCD_DIFFERENTIAL_STEPS": str(args.steps),
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--hypothesis-show-statistics",
        str(ROOT / "tests" / "trello" / "test_differential.py"),
    ]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    seconds = time.perf_counter() - started
    print(
        f"differential test: {args.examples} examples of up to {args.steps} steps, {seconds:.0f} s"
    )
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
