"""Scale benchmark: many large boards mirrored by `syncd sync` subprocesses (loopback only).

The sandbox (``adapters/sandbox/scale.py``: ``--boards`` boards of ``--cards`` cards and
``--actions`` listed actions *each*, seeded) runs in this process; every syncd step is its own
``python -m syncd`` subprocess started through a small launcher (``bench/peak_rss.py``), so the
peak RSS printed is syncd's alone, not the sandbox's it was forked from. Prints:

1. the first sync: requests against the floor, per board 1 nested snapshot + ⌈actions/1000⌉
   action pages, i.e. ``boards × (1 + ⌈actions/1000⌉)``; seconds (and the part the rate budget
   alone imposes), syncd's CPU time and peak RSS, rows written per second;
2. an idle poll: requests against ``⌈boards/10⌉`` (one ``/1/batch`` change check per 10 boards);
3. an incremental pass after a few changes on three boards;
4. the report over the filled store: ``build_report`` in this process (best of 3), then
   ``syncd report --format json`` as a subprocess (wall time, peak RSS).

    python bench/bench_scale.py [--boards 50] [--cards 2000] [--actions 20000]
                                [--backend sqlite|postgresql] [--rate 100] [--latency 0]

A small run: ``--boards 5 --cards 200 --actions 2000`` (about a minute). ``--report-only DIR``
times the report alone over a store kept by ``--keep DIR`` (in this process, best of 3). The
targets (issue 15): first sync at the floor of requests, idle poll ⌈boards/10⌉, syncd's peak
RSS ≤ 300 MB, report ≤ 1 s. PostgreSQL: ``postgresql+psycopg://root@127.0.0.1:5432/test``
(or ``SYNCD_BENCH_PG``), one fresh schema, dropped at the end. Every process started is waited
for.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peak_rss import Measured

from adapters.sandbox import Sandbox
from adapters.sandbox.scale import ScaleWorld, build_scale_world, scale_short_link

REPO = Path(__file__).resolve().parents[1]
PG_BASE = os.environ.get("SYNCD_BENCH_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")
PAGE = 1000  # actions per page (Trello's maximum)
BATCH = 10  # routes per /1/batch


@dataclass(frozen=True)
class Step:
    """One syncd subprocess: what it cost."""

    label: str
    requests: int
    seconds: float
    cpu_seconds: float
    peak_mb: float
    output: str


def listed_actions(world: ScaleWorld, boards: int) -> list[int]:
    """Each board's listed actions (the build makes more than asked when creating its cards
    alone takes more)."""
    return [
        sum(1 for _ in world.actions_newest_first(world.board(scale_short_link(index))["id"]))
        for index in range(boards)
    ]


def first_sync_floor(listed: list[int]) -> int:
    """Per board: 1 nested snapshot + ⌈listed actions / 1000⌉ action pages."""
    return sum(1 + math.ceil(count / PAGE) for count in listed)


def write_config(path: Path, sandbox: Sandbox, boards: int, url: str, budget: int) -> None:
    entries = "".join(
        f'\n[[trello.boards]]\nid = "{scale_short_link(index)}"\n'
        f'role = "{"consortium" if index == 0 else "product"}"\n'
        for index in range(boards)
    )
    path.write_text(
        f'[store]\nurl = "{url}"\n\n[trello]\napi_base = "{sandbox.trello_api_base}"\n'
        f"max_requests_per_10s = {budget}\ntimeout_seconds = 120\n{entries}",
        encoding="utf-8",
    )


def environment(sandbox: Sandbox) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SYNCD_", "TRELLO_", "FIGMA_"))
    }
    env.update(
        TRELLO_API_KEY=sandbox.api_key,
        TRELLO_TOKEN=sandbox.token,
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        SYNCD_LOG_FORMAT="json",
    )
    return env


def run_syncd(
    label: str, args: list[str], config: Path, env: dict[str, str], sandbox: Sandbox, logs: Path
) -> Step:
    """`python -m syncd --config CONFIG ARGS…`, its wall time, CPU time and peak RSS."""
    sandbox.reset_counts()
    log = logs / f"{label.replace(' ', '-')}.log"
    with log.open("wb") as err, tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        usage = Measured(
            [sys.executable, "-m", "syncd", "--config", str(config), *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=err,
        ).wait()
        seconds = time.perf_counter() - started
        out.seek(0)
        output = out.read().decode("utf-8", "replace")
    if usage.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise SystemExit(f"{label}: syncd exited {usage.returncode}\n{tail}")
    return Step(
        label, len(sandbox.requests), seconds, usage.cpu_seconds, usage.peak_rss_kb / 1024, output
    )


def show(step: Step, target: str = "") -> None:
    print(
        f"{step.label:<22} {step.requests:>6} requests{target:<18} {step.seconds:8.2f} s  "
        f"cpu {step.cpu_seconds:7.2f} s  peak RSS {step.peak_mb:6.0f} MB"
    )


@contextmanager
def store_url(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp}/scale.db"
        return
    import psycopg

    libpq = PG_BASE.replace("postgresql+psycopg://", "postgresql://")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(libpq, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def stored_rows(url: str) -> dict[str, int]:
    from state import models as m
    from state.store import Store

    store = Store(url, migrate=False)
    try:
        return {
            "cards": store.count(m.Card),
            "actions": store.count(m.Action),
            "check items": store.count(m.CheckItem),
        }
    finally:
        store.close()


def report_seconds(config: Path, env: dict[str, str], rounds: int = 3) -> tuple[float, float, int]:
    """`build_report` over the store in this process: the best of `rounds` wall and CPU
    seconds, and the départements."""
    from state.store import Store
    from syncd.config import load_settings
    from syncd.report.build import build_report

    settings = load_settings(config, environ=env)
    store = Store(settings.store.url, migrate=False)
    try:
        best = best_cpu = math.inf
        departments = 0
        for _ in range(rounds):
            started, cpu = time.perf_counter(), time.process_time()
            report = build_report(store, settings, now=datetime.now(UTC))
            best = min(best, time.perf_counter() - started)
            best_cpu = min(best_cpu, time.process_time() - cpu)
            departments = len(report["departments"])
        return best, best_cpu, departments
    finally:
        store.close()


def report_only(kept: Path) -> None:
    """The report over a kept store (`--keep`): first build, then the best of 3, in this
    process (no remote is called: the secrets are placeholders)."""
    import resource

    placeholders = {"TRELLO_API_KEY": "-", "TRELLO_TOKEN": "-", "TRELLO_API_SECRET": "-"}
    env = {**os.environ, **placeholders, "FIGMA_TOKEN": "-"}
    started = time.perf_counter()
    first, _, _ = report_seconds(kept / "scale.toml", env, rounds=1)
    seconds, cpu, departments = report_seconds(kept / "scale.toml", env)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"report over {kept}: first {first:.3f} s, best of 3 {seconds:.3f} s (cpu {cpu:.3f} s), "
        f"{departments} départements; peak RSS {peak:.0f} MB; "
        f"{time.perf_counter() - started:.1f} s in all; load {os.getloadavg()[0]:.2f}"
    )


def changes(world: ScaleWorld) -> int:
    """A few changes on three boards (a move, a rename, a comment, a ticked item)."""
    made = 0
    for index in (1, 2, 3):
        try:
            board_id = world.board(scale_short_link(index))["id"]
        except KeyError:
            continue
        cards = world.board_cards(board_id)[:2]
        lists = world.board_lists(board_id)
        if not cards:
            continue
        first = cards[0]
        world.move_card(first["id"], next(x["id"] for x in lists if x["id"] != first["idList"]))
        world.rename_card(first["id"], first["name"] + " (relu)")
        world.comment(cards[-1]["id"], "Point fait en comité")
        made += 3
        if first["idChecklists"]:
            item = world.checklists[first["idChecklists"][0]]["checkItems"][0]
            world.set_check_item(first["id"], item["id"], item["state"] != "complete")
            made += 1
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=50)
    parser.add_argument("--cards", type=int, default=2000, help="cards per board")
    parser.add_argument("--actions", type=int, default=20000, help="listed actions per board")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--rate",
        type=int,
        default=100,
        help="the sandbox's requests per 10 s (Trello: 100); syncd's budget is 90",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--keep", help="keep the logs, config and SQLite store in this folder")
    parser.add_argument(
        "--report-only",
        metavar="KEPT",
        help="only time the report over a store kept by --keep in this folder (no sandbox)",
    )
    args = parser.parse_args()
    if args.report_only:
        report_only(Path(args.report_only))
        return

    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    world = build_scale_world(args.boards, args.cards, args.actions)
    built = time.perf_counter() - started
    listed = listed_actions(world, args.boards)
    floor = first_sync_floor(listed)
    idle_floor = math.ceil(args.boards / BATCH)
    print(
        f"world: {args.boards} boards × {args.cards} cards × {max(listed)} listed actions "
        f"per board ({args.boards * args.cards} cards, {sum(listed)} actions), "
        f"built in {built:.1f} s; store {args.backend}; load {os.getloadavg()[0]:.2f}"
    )
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        Sandbox(
            world=world,
            latency=args.latency,
            rate_limit_per_10s=args.rate or None,
            deliver_webhooks=False,
        ) as sandbox,
        store_url(args.backend, Path(args.keep or tmp_name)) as url,
    ):
        tmp = Path(args.keep or tmp_name)
        config = tmp / "scale.toml"
        write_config(config, sandbox, args.boards, url, 90)
        env = environment(sandbox)
        run_syncd("db upgrade", ["db", "upgrade"], config, env, sandbox, tmp)

        first = run_syncd("first sync", ["sync"], config, env, sandbox, tmp)
        show(first, f" (floor {floor})")
        budget_floor = max(0.0, (first.requests - 90) / 9)
        rows = stored_rows(url)
        written = sum(rows.values())
        print(
            f"  floor = boards × (1 snapshot + ⌈actions/{PAGE}⌉ pages) = {floor}; "
            f"{'AT the floor' if first.requests == floor else f'{first.requests - floor:+d}'}"
            f"; the 90/10 s budget alone needs ≥ {budget_floor:.0f} s"
        )
        print(
            f"  stored: {rows['cards']} cards, {rows['actions']} actions, "
            f"{rows['check items']} check items: {written / first.seconds:,.0f} rows/s "
            f"({rows['cards'] / first.seconds:,.0f} cards/s, "
            f"{rows['actions'] / first.seconds:,.0f} actions/s) over the wall time"
        )

        idle = run_syncd("idle poll", ["sync"], config, env, sandbox, tmp)
        show(idle, f" (target {idle_floor})")

        made = changes(world)
        incremental = run_syncd("incremental", ["sync"], config, env, sandbox, tmp)
        show(incremental, f" ({made} changes)")

        seconds, cpu, departments = report_seconds(config, env)
        print(
            f"report build (in process, best of 3): {seconds:.3f} s (cpu {cpu:.3f} s) over "
            f"{rows['cards']} cards, {departments} départements (target ≤ 1 s)"
        )
        cli_report = run_syncd(
            "syncd report", ["report", "--format", "json"], config, env, sandbox, tmp
        )
        show(cli_report)

        peak = max(first.peak_mb, idle.peak_mb, incremental.peak_mb)
        print(
            f"syncd sync peak RSS: {peak:.0f} MB (target ≤ 300 MB); "
            f"report {cli_report.peak_mb:.0f} MB"
        )


if __name__ == "__main__":
    main()
