"""Benchmark of the drift report: 101 départements (one dashboard card each) over 10,000 cards.

Builds a store on SQLite (in a temporary folder) with a consortium board whose first list holds
a dashboard card per département, with priority and topic checklists, and a product board of
10,000 cards whose titles name départements in every supported way (and often none); then times
`build_report` (store read + evaluation + trends) and each rendering; then, over `--weeks` of
weekly history (evaluations after a few priority items changed), the trends alone and a report
rebuilt at a past moment (`--at`).

    python bench/bench_report.py [--cards 10000]
"""

from __future__ import annotations

import argparse
import random
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


def product_snapshot(count: int) -> dict:
    rng = random.Random(7)
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
                "id": oid(10_000_000 + n),
                "idList": "P0",
                "name": title,
                "pos": n,
                "idLabels": ["prio"] if n % 97 == 0 else [],
                "dateLastActivity": utc_iso(),
            }
        )
    return {
        "id": oid(2),
        "shortLink": "BiT8tx09",
        "name": "product",
        "lists": [{"id": "P0", "name": "Backlog", "pos": 0}],
        "labels": [{"id": "prio", "name": "Prioritaire"}],
        "members": [],
        "customFields": [],
        "cards": cards,
        "checklists": [],
    }


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--weeks", type=int, default=12, help="weeks of history before now")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/report.db"
        store = Store(url)
        now = datetime.now(UTC)
        synced = utc_iso(now - timedelta(weeks=args.weeks, days=1))
        for snapshot, role in (
            (consortium_snapshot(), "consortium"),
            (product_snapshot(args.cards), "product"),
        ):
            store.write_board(
                snapshot_batch(
                    snapshot, board_ref=snapshot["shortLink"], role=role, observed_at=synced
                )
            )
        settings = Settings(
            store=StoreConfig(url=url),
            trello=TrelloConfig(
                boards=(
                    BoardConfig(id="oSmy09cz", role="consortium"),
                    BoardConfig(id="BiT8tx09", role="product"),
                )
            ),
            governance=Rules(),
            secrets=Secrets(),
        )
        first = weeks_of_history(store, settings, args.weeks, now) if args.weeks else now
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            report = build_report(store, settings, now=now)
            runs.append(time.perf_counter() - started)
        print(
            f"report of {len(report['departments'])} départements over "
            f"{args.cards + 101} cards: best {min(runs):.3f} s, worst {max(runs):.3f} s "
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


if __name__ == "__main__":
    main()
