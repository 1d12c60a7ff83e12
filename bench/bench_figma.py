"""Figma request budget per sync, against the sandbox (loopback only).

Prints the requests each step of the Figma mirror spends, by endpoint: the first sync (the
only steady-state read of the file tree), a sync with no new version, a sync after a new
version, webhook refreshes, and a 429 with a one-day ``Retry-After`` (recorded, not slept).

    python bench/bench_figma.py
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from adapters.figma import FigmaAPI, make_figma_session
from adapters.sandbox import FIGMA_FILE_KEY, Sandbox
from adapters.sandbox.figma_world import build_sample_figma
from state.store import Store
from syncd.figma.engine import FigmaMirror
from syncd.logs import configure_logging


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def main() -> None:
    configure_logging(json_lines=True)
    world = build_sample_figma()
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp, Sandbox(figma=world) as sandbox:
        session = make_figma_session(
            api_base=sandbox.figma_api_base, token="bench", max_requests_per_minute=100, timeout=10
        )
        mirror = FigmaMirror(
            FigmaAPI(session), Store(f"sqlite:///{tmp}/f.db"), [FIGMA_FILE_KEY], clock=clock
        )

        def step(label: str, action) -> None:  # type: ignore[no-untyped-def]
            sandbox.reset_counts()
            started = time.perf_counter()
            (report,) = action()
            seconds = time.perf_counter() - started
            endpoints = Counter(
                request.path.rsplit("/", 1)[-1] if request.path.count("/") > 3 else "tree"
                for request in sandbox.requests
            )
            detail = ", ".join(f"{name} {count}" for name, count in sorted(endpoints.items()))
            print(
                f"{label:<40} {len(sandbox.requests):>2} requests  {seconds:6.3f} s  "
                f"mode={report.mode} tree={'yes' if report.tree_read else 'no'}  [{detail}]"
            )

        step("first sync", mirror.sync)
        step("next sync, no new version", mirror.sync)
        world.new_version("Agenda v3", "Nouvelle vue")
        step("sync after a new version", mirror.sync)
        step("webhook PING", lambda: [mirror.refresh(FIGMA_FILE_KEY, "PING")])
        step("webhook FILE_COMMENT", lambda: [mirror.refresh(FIGMA_FILE_KEY, "FILE_COMMENT")])
        world.new_version("Agenda v4", "")
        step(
            "webhook FILE_VERSION_UPDATE (new version)",
            lambda: [mirror.refresh(FIGMA_FILE_KEY, "FILE_VERSION_UPDATE")],
        )
        world.rate_limit_next(1, retry_after=86400)
        step("429, Retry-After 86400", mirror.sync)
        step("sync within the day", mirror.sync)
        clock.now += timedelta(days=1, minutes=1)
        step("sync the day after", mirror.sync)


if __name__ == "__main__":
    main()
