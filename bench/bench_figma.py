"""Figma request budget per sync, against the sandbox (loopback only).

Prints the Figma requests each step spends, by endpoint, with the sample boards mirrored so
that cards link to frames, to layers inside frames and to a node that does not exist: the first
sync (tree, then ``/nodes`` for the linked ids the depth-2 tree does not show), a sync with no
new version, autosave versions inside and after the interval between Tier-1 reads
(``figma.tree_read_interval_minutes``, 60 by default), a link added at the same version, webhook
refreshes, and a 429 with a one-day ``Retry-After`` (recorded, not slept).

    python bench/bench_figma.py
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.sandbox import FIGMA_FILE_KEY, PRODUCT_SHORT_LINK, Sandbox, build_sample_world
from adapters.sandbox.figma_world import build_sample_figma
from syncd.demo import demo_settings
from syncd.logs import configure_logging
from syncd.runtime import build_runtime

DESIGN = f"https://www.figma.com/design/{FIGMA_FILE_KEY}/RDV-Solidarites"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def main() -> None:
    configure_logging(json_lines=True)
    clock = Clock()
    world = build_sample_figma(clock.now)
    with tempfile.TemporaryDirectory() as tmp, Sandbox(world=build_sample_world()) as sandbox:
        sandbox.figma = world
        trello = sandbox.world
        product = trello.board(PRODUCT_SHORT_LINK)["id"]
        backlog = trello.board_lists(product)[0]["id"]
        trello.create_card(
            product,
            backlog,
            "[Usager] Bouton « Prendre RDV » trop discret sur mobile",
            f"Maquette : {DESIGN}?node-id=5-131",  # a button inside a banner inside a frame
        )
        settings = demo_settings(sandbox, Path(tmp) / "f.db")
        figma_settings = settings.figma.model_copy(update={"max_requests_per_minute": 1000})
        runtime = build_runtime(settings.model_copy(update={"figma": figma_settings}), clock=clock)
        runtime.mirror.sync(full=True)  # the cards and their Figma links
        mirror = runtime.figma
        assert mirror is not None

        def step(label: str, action) -> None:  # type: ignore[no-untyped-def]
            sandbox.reset_counts()
            started = time.perf_counter()
            (report,) = action()
            seconds = time.perf_counter() - started
            figma_requests = [r for r in sandbox.requests if r.path.startswith("/v1/")]
            endpoints = Counter(
                request.path.rsplit("/", 1)[-1] if request.path.count("/") > 3 else "tree"
                for request in figma_requests
            )
            detail = ", ".join(f"{name} {count}" for name, count in sorted(endpoints.items()))
            held = " (Tier-1 read held back)" if report.tier1_postponed_until else ""
            print(
                f"{label:<46} {len(figma_requests):>2} requests  {seconds:6.3f} s  "
                f"mode={report.mode} tree={'yes' if report.tree_read else 'no'} "
                f"nodes={report.nodes_checked}  [{detail}]{held}"
            )

        step("first sync", mirror.sync)
        step("next sync, no new version", mirror.sync)
        world.new_version("", "")  # an autosave
        clock.now += timedelta(minutes=30)
        step("autosave, 30 min after the last tree read", mirror.sync)
        world.new_version("", "")
        clock.now += timedelta(minutes=31)
        step("autosave, 61 min after the last tree read", mirror.sync)
        step("webhook PING", lambda: [mirror.refresh(FIGMA_FILE_KEY, "PING")])
        step("webhook FILE_COMMENT", lambda: [mirror.refresh(FIGMA_FILE_KEY, "FILE_COMMENT")])
        card = trello.find_card("Bouton « Prendre RDV »", board=PRODUCT_SHORT_LINK)
        trello.set_desc(card["id"], f"Maquettes : {DESIGN}?node-id=5-131, {DESIGN}?node-id=5-120")
        runtime.mirror.sync()
        clock.now += timedelta(minutes=61)
        step("a new link to a layer, same version", mirror.sync)
        world.new_version("Agenda v4", "")
        clock.now += timedelta(minutes=61)
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
