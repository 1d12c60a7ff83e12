"""Benchmark of write-back against the sandbox (loopback only, bounded): a burst of flags.

The sample boards plus `--burst` new dashboard cards without referent (one per département not
in the sample): every one opens ``NO_REFERENT`` at once. Served with 50 ms latency per request,
Trello's 100 requests per 10 s per token enforced by the sandbox, syncd's own budget of 90.

Prints the first sync; the write-back round run in its own thread as the daemon does, with a
full sync beside it (comment POSTs, seconds, 429s, the most comment POSTs and the most requests
of any 10 s window, the full sync's seconds beside the burst and alone); and the re-sync after
the comments (requests: syncd's own comments cost no refetch).

    python bench/bench_writeback.py [--burst 60] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from datetime import UTC, datetime

from adapters.sandbox import CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK, Sandbox
from adapters.sandbox import build_sample_world as sample
from adapters.sandbox.trello_world import TrelloWorld
from syncd.config import (
    BoardConfig,
    Secrets,
    Settings,
    StoreConfig,
    TrelloConfig,
    WritebackConfig,
)
from syncd.logs import configure_logging
from syncd.rules.departments import all_departments
from syncd.rules.flags import recompute
from syncd.rules.governance import Rules
from syncd.runtime import build_runtime
from syncd.writeback.service import RoundReport


def settings(sandbox: Sandbox, url: str) -> Settings:
    return Settings(
        store=StoreConfig(url=url),
        trello=TrelloConfig(
            api_base=sandbox.trello_api_base,
            boards=(
                BoardConfig(id=CONSORTIUM_SHORT_LINK, role="consortium"),
                BoardConfig(id=PRODUCT_SHORT_LINK, role="product"),
            ),
        ),
        governance=Rules(departments=("77", "95")),
        writeback=WritebackConfig(enabled=True),
        secrets=Secrets(TRELLO_API_KEY=sandbox.api_key, TRELLO_TOKEN=sandbox.token),
    )


def add_dashboards(world: TrelloWorld, count: int, taken: set[str]) -> int:
    """Dashboard cards without referent for `count` départements the sample lacks."""
    board = world.board(CONSORTIUM_SHORT_LINK)["id"]
    dashboards = world.find_list(board, "Départements")
    names = [d.name for d in all_departments() if d.code not in taken][:count]
    for name in names:
        world.create_card(board, dashboards, name)
    return len(names)


def comment_posts(sandbox: Sandbox) -> list[float]:
    return [r.at for r in sandbox.requests if r.method == "POST" and r.path.endswith("/comments")]


def busiest_window(moments: list[float], seconds: float = 10.0) -> int:
    moments = sorted(moments)
    best, start = 0, 0
    for end, moment in enumerate(moments):
        while moment - moments[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def now() -> datetime:
    return datetime.now(UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", type=int, default=60)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    configure_logging(json_lines=True)
    sample_codes = {"12", "14", "22", "26", "55", "62", "64", "77", "78", "80", "92"}

    with tempfile.TemporaryDirectory() as tmp, Sandbox(world=sample(), latency=args.latency) as sb:
        added = add_dashboards(sb.world, args.burst, sample_codes)
        runtime = build_runtime(settings(sb, f"sqlite:///{tmp}/wb.db"))
        sb.reset_counts()
        started = time.perf_counter()
        boards = runtime.mirror.sync()
        print(f"burst: {added} new dashboards without referent + the sample's 4 flags")
        print(
            f"first sync                   {len(sb.requests):>4} requests  "
            f"{time.perf_counter() - started:6.2f} s  modes={[b.mode for b in boards]}"
        )
        started = time.perf_counter()
        runtime.mirror.sync(full=True)
        alone = time.perf_counter() - started

        # The daemon's way: the round in its own thread, a full sync running beside it.
        flags = recompute(runtime.store, runtime.settings.governance, now())
        assert runtime.writeback is not None
        sb.reset_counts()
        rounds: list[RoundReport] = []
        thread = threading.Thread(target=lambda: rounds.append(runtime.writeback.run(flags)))
        started = time.perf_counter()
        thread.start()
        time.sleep(0.2)  # the round is under way
        synced = time.perf_counter()
        runtime.mirror.sync(full=True)
        beside = time.perf_counter() - synced
        thread.join()
        round_seconds = time.perf_counter() - started
        posts = comment_posts(sb)
        limited = sum(1 for r in sb.requests if r.status == 429)
        print(
            f"write-back round             {len(posts):>4} POSTs     {round_seconds:6.2f} s  "
            f"posted={rounds[0].posted} owed={rounds[0].owed} 429s={limited}"
        )
        print(
            f"busiest 10 s window          {busiest_window(posts):>4} comment POSTs, "
            f"{busiest_window([r.at for r in sb.requests]):>4} requests "
            "(syncd's budget 90, Trello's limit 100)"
        )
        print(f"full sync alone              {alone:6.2f} s; beside the burst {beside:6.2f} s")
        sb.reset_counts()
        runtime.mirror.sync()
        paths = ", ".join(sorted({r.path for r in sb.requests}))
        print(f"re-sync after the comments   {len(sb.requests):>4} requests ({paths})")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB (this process, the sandbox included)")


if __name__ == "__main__":
    main()
