"""Benchmark of the store's writer path (`Store.write_board`): one full snapshot, three ways.

A sandbox board of 10,000 cards is fetched once over loopback (the same request the sync makes)
and given realistic children: labels, members, a checklist of 3 items on every other card,
custom-field values, an attachment on every 4th card (every 8th links a Figma frame), plus the
1,000 newest actions. Each repetition, on a fresh SQLite file and a fresh PostgreSQL schema,
times three writes of the whole board in one transaction each:

- ``first``: the empty store receives the snapshot (all inserts, one history version per row);
- ``unchanged``: the same snapshot observed later (nothing changes but ``updated_at``);
- ``5% changed``: 500 cards renamed, moved, checked, relabelled or re-valued;
- ``unchanged again``: then ``--steady`` more snapshots that change nothing, one after the
  other, as a daemon's periodic full syncs write them (the median of those, per repetition).
  On PostgreSQL the ``card`` table's size is printed after them (its row versions: a snapshot
  moves every card's ``updated_at``).

Prints cards/s (best of 3, batches built outside the timing), the seconds and the CPU seconds
of this process (on a loaded machine the steadier figure; PostgreSQL's own work is not in it)
and the process's peak RSS. ``--cache FILE`` keeps the fetched snapshot for the next run.

    python bench/bench_writer.py [--cards 10000] [--repeat 3] [--steady 4] [--no-pg]
                                 [--no-sqlite] [--cache F]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import tempfile
import time
import uuid
from typing import Any

from adapters.sandbox import LARGE_SHORT_LINK, Sandbox, build_large_world
from state.store import BoardBatch, Store
from syncd.trello.rows import action_rows, snapshot_batch

PG = os.environ.get("SYNCD_TEST_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")
FIGMA_KEY = "JhZCwwrmaw2NYrITCj8QAK"


def fetch_snapshot(cards: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The board snapshot as the sync fetches it, with attachments added, and its actions."""
    world = build_large_world(cards=cards, actions=0)
    with Sandbox(world=world, rate_limit_per_10s=None) as sandbox:
        from adapters.trello import TrelloAPI, make_trello_session

        api = TrelloAPI(
            make_trello_session(
                api_base=sandbox.trello_api_base,
                api_key=sandbox.api_key,
                token=sandbox.token,
                max_requests_per_10s=90,
                timeout=120,
            )
        )
        snapshot = api.board_snapshot(LARGE_SHORT_LINK)
    actions = world.board_actions(snapshot["id"])[:1000]
    for index, card in enumerate(snapshot["cards"]):
        if index % 4 == 0:
            url = (
                f"https://www.figma.com/design/{FIGMA_KEY}/Maquettes?node-id=1-{index}"
                if index % 8 == 0
                else f"https://example.org/doc-{index}.pdf"
            )
            card["attachments"] = [
                {
                    "id": f"{card['id'][:16]}a{index:07d}",
                    "name": f"Pièce jointe {index}",
                    "url": url,
                    "date": card.get("dateLastActivity"),
                }
            ]
    return snapshot, actions


def changed(snapshot: dict[str, Any], share: float) -> dict[str, Any]:
    """A copy with `share` of its cards changed (one change each, five kinds in turn)."""
    out = copy.deepcopy(snapshot)
    cards = out["cards"]
    lists = [item["id"] for item in out["lists"]]
    step = max(1, round(1 / share))
    for n, card in enumerate(cards[::step]):
        kind = n % 5
        if kind == 0:
            card["name"] = f"{card['name']} (modifiée)"
        elif kind == 1:
            card["idList"] = lists[(lists.index(card["idList"]) + 1) % len(lists)]
        elif kind == 2 and out.get("checklists"):
            for checklist in out["checklists"]:
                if checklist.get("idCard") == card["id"]:
                    for item in checklist["checkItems"]:
                        item["state"] = "complete"
                    break
            else:
                card["desc"] = f"{card.get('desc', '')} (précisée)"
        elif kind == 3:
            card["idLabels"] = card.get("idLabels", [])[1:] or [out["labels"][0]["id"]]
            card["labels"] = []
        else:
            card["closed"] = not card.get("closed", False)
    return out


def batch(snapshot: dict[str, Any], actions: list[dict[str, Any]], observed_at: str) -> BoardBatch:
    out = snapshot_batch(snapshot, board_ref="bench", role="product", observed_at=observed_at)
    out.actions = action_rows(actions, snapshot["id"], "poll")
    return out


def fresh_pg() -> tuple[str, str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return schema, f"{PG}?options=-csearch_path%3D{schema}"


def drop_pg(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def one_round(
    url: str, base: dict, edited: dict, actions: list, steady: int
) -> tuple[dict[str, tuple[float, float]], float | None]:
    """The timed writes of one fresh store (wall and CPU seconds), and on PostgreSQL the size
    of its ``card`` table after them (MB)."""
    store = Store(url)
    seconds: dict[str, tuple[float, float]] = {}
    steps = [
        ("first", base, "2026-12-01T08:00:00.000Z"),
        ("unchanged", base, "2026-12-01T09:00:00.000Z"),
        ("5% changed", edited, "2026-12-01T10:00:00.000Z"),
    ]
    steps += [("again", edited, f"2026-12-01T11:{minute:02d}:00.000Z") for minute in range(steady)]
    again: list[tuple[float, float]] = []
    try:
        for label, snapshot, at in steps:
            prepared = batch(snapshot, actions, at)
            started, cpu = time.perf_counter(), time.process_time()
            store.write_board(prepared)
            taken = (time.perf_counter() - started, time.process_time() - cpu)
            if label == "again":
                again.append(taken)
            else:
                seconds[label] = taken
        if again:
            seconds["unchanged again"] = (
                statistics.median(wall for wall, _ in again),
                statistics.median(cpu for _, cpu in again),
            )
        size = None
        if not store.is_sqlite:
            with store.engine.connect() as connection:
                size = connection.exec_driver_sql("SELECT pg_relation_size('card')").scalar()
    finally:
        store.close()
    return seconds, None if size is None else size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steady", type=int, default=4, help="unchanged snapshots at the end")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--cache", help="a JSON file keeping the fetched snapshot")
    args = parser.parse_args()

    if args.cache and os.path.exists(args.cache):
        with open(args.cache, encoding="utf-8") as file:
            base, actions = json.load(file)
    else:
        base, actions = fetch_snapshot(args.cards)
        if args.cache:
            with open(args.cache, "w", encoding="utf-8") as file:
                json.dump([base, actions], file)
    edited = changed(base, 0.05)
    sample = batch(base, actions, "2026-12-01T08:00:00.000Z")
    children = sum(
        len(getattr(sample, name))
        for name in (
            "card_labels",
            "card_members",
            "checklists",
            "check_items",
            "custom_field_items",
            "attachments",
            "figma_links",
        )
    )
    n_cards = len(sample.cards)
    del sample
    print(
        f"snapshot: {n_cards} cards, {children} child rows, {len(actions)} actions; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    rss_inputs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backends: list[str] = [] if args.no_sqlite else ["SQLite"]
    if not args.no_pg:
        backends.append("PostgreSQL")
    for backend in backends:
        best: dict[str, float] = {}
        best_cpu: dict[str, float] = {}
        sizes: list[float] = []
        for _ in range(args.repeat):
            if backend == "SQLite":
                with tempfile.TemporaryDirectory() as tmp:
                    seconds, size = one_round(
                        f"sqlite:///{tmp}/w.db", base, edited, actions, args.steady
                    )
            else:
                schema, url = fresh_pg()
                try:
                    seconds, size = one_round(url, base, edited, actions, args.steady)
                finally:
                    drop_pg(schema)
            if size is not None:
                sizes.append(size)
            for label, (value, cpu) in seconds.items():
                best[label] = min(best.get(label, value), value)
                best_cpu[label] = min(best_cpu.get(label, cpu), cpu)
        for label, value in best.items():
            print(
                f"  {backend:<11} {label:<15} {value:6.2f} s  {n_cards / value:7.0f} cards/s"
                f"  CPU here {best_cpu[label]:5.2f} s ({n_cards / best_cpu[label]:6.0f} cards/s)"
                f"  (best of {args.repeat})"
            )
        if sizes:
            print(
                f"  {backend:<11} card table after {3 + args.steady} snapshots: "
                + ", ".join(f"{size:.1f}" for size in sizes)
                + " MB"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak RSS: {peak:.0f} MB (inputs built: {rss_inputs:.0f} MB; "
        f"load now {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
