"""Issue 9's target, measured: thousands of hostile requests against ``syncd run`` on loopback.

Starts the sandbox and ``syncd run`` (SQLite in a temporary folder, a free port on 127.0.0.1),
then sends N hostile requests drawn from the fuzz suite's strategies
(`tests/support/hostile.py`: random and invalid-UTF-8 bodies, deep nesting, 5,000-digit numbers,
NaN, lone surrogates, valid deliveries with one value made hostile and signed right, wrong or
not at all, Figma events with the right passcode or not, odd headers and query strings, clients
gone mid-body) on every route, with and without credentials, each over its own connection, with
a real sandbox change delivered every 25 requests; then prints the figures and checks the
target: 0 answers 5xx, 0 values stored from a refused delivery, the daemon alive and ready,
valid deliveries applied, no traceback in its log (exit 1 otherwise).

python bench/fuzz_http.py [--requests 2000] [--rounds 1]

Nothing leaves the machine."""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "support")]

import structlog  # noqa: E402
from hostile_run import assert_clean, fuzz_syncd, running_syncd  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1, help="fresh daemons, one after another")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # the sandbox
    failed = False
    for round_ in range(1, args.rounds + 1):
        started = time.perf_counter()
        with running_syncd() as run:
            figures = fuzz_syncd(run, requests=args.requests)
        print(f"== round {round_}: syncd run on loopback, {time.perf_counter() - started:.1f} s")
        print("\n".join(figures.lines()))
        try:
            assert_clean(figures)
        except AssertionError as exc:
            failed = True
            print(f"TARGET MISSED: {exc}")
        else:
            print("target met: 0 5xx, 0 stored from refused, alive and ready, valid applied")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (this client process) {peak:.0f} MiB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
