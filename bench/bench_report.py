"""Benchmark of the drift report: 101 départements (one dashboard card each) over 10,000 cards.

Builds a store on SQLite (in a temporary folder) with a consortium board whose first list holds
a dashboard card per département, with priority and topic checklists, and a product board of
10,000 cards whose titles name départements in every supported way (and often none); then times
`build_report` (store read + evaluation) and each rendering.

    python bench/bench_report.py [--cards 10000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime

from state.store import Store
from state.timestamps import utc_iso
from syncd.config import (
    BoardConfig,
    Secrets,
    Settings,
    StoreConfig,
    TrelloConfig,
)
from syncd.report.build import build_report
from syncd.report.render import render
from syncd.rules.departments import all_departments
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/report.db"
        store = Store(url)
        for snapshot, role in (
            (consortium_snapshot(), "consortium"),
            (product_snapshot(args.cards), "product"),
        ):
            store.write_board(
                snapshot_batch(
                    snapshot, board_ref=snapshot["shortLink"], role=role, observed_at=utc_iso()
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
        now = datetime.now(UTC)
        build_report(store, settings, now=now)  # warm-up (imports, caches)
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


if __name__ == "__main__":
    main()
