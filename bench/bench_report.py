"""Benchmark of the drift report: 101 départements (one dashboard card each) over 10,000 cards.

Builds a store on SQLite (in a temporary folder, or `--db` kept and reused) with a consortium
board whose first list holds a dashboard card per département, with priority and topic
checklists, and product boards (`--boards`, 1 by default) of `--cards` cards in all whose titles
name départements in every supported way (and often none); then times `build_report` (store
read + evaluation + trends): the first build of the process (nothing remembered: the title
matches are made then) and the best of 3 after it (what the daemon's dashboard pays), then each
rendering; then, over `--weeks` of weekly history (evaluations after a few priority items
changed), the trends alone and a report rebuilt at a past moment (`--at`). Last, a cold process
(what `syncd report` pays, imports excluded) builds the report once: seconds and peak RSS.

    python bench/bench_report.py [--cards 10000] [--boards 1] [--db PATH]
    python bench/bench_report.py --cards 100000 --boards 50 --db /tmp/scale.db   # scale
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from state.models import MirrorHistory
from state.store import Store
from state.timestamps import utc_iso
from syncd.config import (
    BoardConfig,
    Secrets,
    Settings,
    StoreConfig,
    TrelloConfig,
)
from syncd.history.trends import build_trends
from syncd.report.build import build_report
from syncd.report.render import render
from syncd.rules.departments import all_departments
from syncd.rules.flags import recompute
from syncd.rules.governance import Rules
from syncd.trello.rows import snapshot_batch


def oid(n: int) -> str:
    return f"{0x60000000 + n:08x}{n:016x}"


def consortium_snapshot() -> dict:
    cards, checklists = [], []
    for index, department in enumerate(all_departments()):
        card_id = oid(1_000_000 + index)
        cards.append(
            {
                "id": card_id,
                "idList": "L0",
                "name": department.name,
                "pos": index,
                "desc": f"Référent : Agent {index}" if index % 7 else "",
                "dateLastActivity": utc_iso(),
            }
        )
        checklists.append(
            {
                "id": oid(2_000_000 + index),
                "idCard": card_id,
                "name": "Actions prioritaires",
                "checkItems": [
                    {
                        "id": oid(3_000_000 + index * 10 + i),
                        "name": f"Action {i}",
                        "state": "incomplete" if i % 3 else "complete",
                    }
                    for i in range(2 + index % 4)
                ],
            }
        )
        checklists.append(
            {
                "id": oid(4_000_000 + index),
                "idCard": card_id,
                "name": "Sujets importants",
                "checkItems": [
                    {
                        "id": oid(5_000_000 + index * 10 + i),
                        "name": f"Sujet {i}",
                        "state": "incomplete",
                    }
                    for i in range(4)
                ],
            }
        )
    return {
        "id": oid(1),
        "shortLink": "oSmy09cz",
        "name": "consortium",
        "lists": [{"id": "L0", "name": "Départements", "pos": 0}],
        "labels": [],
        "members": [],
        "customFields": [],
        "cards": cards,
        "checklists": checklists,
    }


def product_snapshot(count: int, board: int = 0) -> dict:
    rng = random.Random(7 + board)
    departments = all_departments()
    styles = [
        "[Agent] Export pour {name}",
        "[Usager] Rappel SMS ({code})",
        "CD{code} paramétrage",
        "[Bug] Correction #{n} sur l'agenda",
        "[Agent] Nouvelle vue planning v2.{n}",
        "Réunion du {n}/11 : la somme des RDV",
        "{code} - {name} : ouverture",
    ]
    cards = []
    for n in range(count):
        department = rng.choice(departments)
        title = rng.choice(styles).format(name=department.name, code=department.code, n=n % 28 + 1)
        cards.append(
            {
                "id": oid(10_000_000 + board * 1_000_000 + n),
                "idList": f"P{board}",
                "name": title,
                "pos": n,
                "idLabels": ["prio"] if n % 97 == 0 else [],
                "dateLastActivity": utc_iso(),
            }
        )
    return {
        "id": oid(2 + board),
        "shortLink": product_link(board),
        "name": "product" if board == 0 else f"product {board}",
        "lists": [{"id": f"P{board}", "name": "Backlog", "pos": 0}],
        "labels": [{"id": "prio", "name": "Prioritaire"}],
        "members": [],
        "customFields": [],
        "cards": cards,
        "checklists": [],
    }


def product_link(board: int) -> str:
    return "BiT8tx09" if board == 0 else f"Prod{board:04d}"


def weeks_of_history(store: Store, settings: Settings, weeks: int, end: datetime) -> datetime:
    """`weeks` weekly evaluations before `end`, each after ticking a few priority items (flags,
    priority counts and card documents get a history); returns the first week's moment."""
    rng = random.Random(12)
    snapshot = consortium_snapshot()
    rules = settings.governance
    first = end - timedelta(weeks=weeks)
    for week in range(weeks):
        moment = first + timedelta(weeks=week)
        for checklist in rng.sample(snapshot["checklists"], 20):
            for item in checklist["checkItems"]:
                item["state"] = rng.choice(("complete", "incomplete"))
        store.write_board(
            snapshot_batch(
                snapshot, board_ref="oSmy09cz", role="consortium", observed_at=utc_iso(moment)
            )
        )
        recompute(store, rules, moment)
    return first


def timed(label: str, build: Callable[[], Any], runs: int = 3) -> Any:
    """Best and worst of `runs` calls, printed; the last result returned."""
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = build()
        times.append(time.perf_counter() - started)
    print(f"{label:<44} best {min(times):.3f} s, worst {max(times):.3f} s")
    return result


def settings_for(url: str, boards: int) -> Settings:
    return Settings(
        store=StoreConfig(url=url),
        trello=TrelloConfig(
            boards=(
                BoardConfig(id="oSmy09cz", role="consortium"),
                *(BoardConfig(id=product_link(board), role="product") for board in range(boards)),
            )
        ),
        governance=Rules(),
        secrets=Secrets(),
    )


COLD = """
import json, resource, sys, time
from datetime import datetime
from bench_report import settings_for
from state.store import Store
from syncd.report.build import build_report
url, boards, now = sys.argv[1], int(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
store = Store(url)
started = time.perf_counter()
report = build_report(store, settings_for(url, boards), now=now)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak}))
"""


def cold_process(url: str, boards: int, now: datetime) -> dict[str, float]:
    """One report built in a fresh process (imports and store opening not counted)."""
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, root])}
    out = subprocess.run(
        [sys.executable, "-c", COLD, url, str(boards), now.isoformat()],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=10_000, help="product cards in all")
    parser.add_argument("--boards", type=int, default=1, help="product boards")
    parser.add_argument("--weeks", type=int, default=12, help="weeks of history before now")
    parser.add_argument("--db", help="SQLite file to keep (reused when it exists)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or f"{tmp}/report.db"
        url = f"sqlite:///{path}"
        reuse = os.path.exists(path)
        store = Store(url)
        settings = settings_for(url, args.boards)
        now = datetime.now(UTC)
        if reuse:  # the week-old history of the kept store stays in the window
            first = datetime.fromisoformat(store.history_starts_at() or "") + timedelta(days=1)
        else:
            first = fill(store, settings, args, now)
        print(f"load: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores")
        runs = []
        for _ in range(4):
            started = time.perf_counter()
            report = build_report(store, settings, now=now)
            runs.append(time.perf_counter() - started)
        cards = sum(board["cards"] for board in report["boards"])
        print(
            f"report of {len(report['departments'])} départements over {cards} cards: "
            f"first {runs[0]:.3f} s, then best {min(runs[1:]):.3f} s, worst {max(runs[1:]):.3f} s "
            f"({sum(len(d['priority_actions']) for d in report['departments'])} priority actions)"
        )
        for fmt in ("json", "table", "markdown", "html"):
            started = time.perf_counter()
            text = render(report, fmt)
            print(f"  render {fmt:<8} {time.perf_counter() - started:.3f} s  {len(text):>8} chars")
        if args.weeks:
            print(
                f"history: {args.weeks} weekly evaluations, {store.count(MirrorHistory)} versions"
            )
            timed(
                "  trends alone (12 weeks, 101 départements)",
                lambda: build_trends(
                    store, report["departments"], end=now, zone=settings.digest.zone
                ),
            )
            past = first + timedelta(weeks=args.weeks // 2, hours=1)
            timed(
                f"  report --at ({args.weeks // 2} weeks ago)",
                lambda: build_report(store, settings, now=now, at=past),
            )
        store.close()
        cold = [cold_process(url, args.boards, now) for _ in range(3)]
        print(
            f"cold process (syncd report, imports excluded): best "
            f"{min(c['seconds'] for c in cold):.3f} s, peak RSS "
            f"{min(c['peak_mb'] for c in cold):.0f} MB; this process's peak RSS "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        )


def fill(store: Store, settings: Settings, args: argparse.Namespace, now: datetime) -> datetime:
    """The boards written `--weeks` weeks and a day before `now`, then the weekly history;
    returns the first week's moment."""
    synced = utc_iso(now - timedelta(weeks=args.weeks, days=1))
    snapshots = [(consortium_snapshot(), "consortium")]
    per_board = -(-args.cards // args.boards)
    for board in range(args.boards):
        count = min(per_board, args.cards - board * per_board)
        snapshots.append((product_snapshot(count, board), "product"))
    for snapshot, role in snapshots:
        store.write_board(
            snapshot_batch(snapshot, board_ref=snapshot["shortLink"], role=role, observed_at=synced)
        )
    return weeks_of_history(store, settings, args.weeks, now) if args.weeks else now


if __name__ == "__main__":
    main()
