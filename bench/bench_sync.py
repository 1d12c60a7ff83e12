"""Benchmark of the Trello sync engine against the sandbox (loopback only, bounded).

Prints, for the two sample boards served with 50 ms latency per request: requests and seconds
of a first sync, an idle poll and a poll after 5 card changes on each of the 2 boards (issue 15:
2 requests); then, for a board of 1,000 cards and 5,000 actions: the first full sync, an idle
poll, a 10-card incremental sync and a later full reconcile; then cards/s of the store's writer
path into SQLite and PostgreSQL, and the process's peak RSS (sandbox included, as it runs in
the same process).

    python bench/bench_sync.py [--cards 1000] [--actions 5000] [--latency 0.05] [--no-pg]
        [--no-writer]
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
import uuid

from adapters.sandbox import (
    CONSORTIUM_SHORT_LINK,
    LARGE_SHORT_LINK,
    PRODUCT_SHORT_LINK,
    Sandbox,
    build_large_world,
    build_sample_world,
)
from state.store import Store
from state.timestamps import utc_iso
from syncd.config import BoardConfig, Secrets, Settings, StoreConfig, TrelloConfig
from syncd.logs import configure_logging
from syncd.runtime import build_runtime
from syncd.trello.rows import snapshot_batch

PG = "postgresql+psycopg://root@127.0.0.1:5432/test"


SAMPLE_BOARDS = (
    BoardConfig(id=CONSORTIUM_SHORT_LINK, role="consortium"),
    BoardConfig(id=PRODUCT_SHORT_LINK, role="product"),
)
LARGE_BOARDS = (BoardConfig(id=LARGE_SHORT_LINK, role="product"),)


def settings(sandbox: Sandbox, url: str, boards: tuple[BoardConfig, ...]) -> Settings:
    return Settings(
        store=StoreConfig(url=url),
        trello=TrelloConfig(api_base=sandbox.trello_api_base, boards=boards),
        secrets=Secrets(TRELLO_API_KEY=sandbox.api_key, TRELLO_TOKEN=sandbox.token),
    )


def timed_sync(runtime, sandbox: Sandbox, label: str, *, full: bool = False) -> None:  # type: ignore[no-untyped-def]
    sandbox.reset_counts()
    started = time.perf_counter()
    reports = runtime.mirror.sync(full=full)
    seconds = time.perf_counter() - started
    boards = "; ".join(
        f"mode={r.mode} requests={r.requests} cards={r.cards} actions={r.actions} "
        f"changes={r.changes}"
        for r in reports
    )
    print(f"{label:<42} {len(sandbox.requests):>4} requests  {seconds:7.2f} s  {boards}")


def two_boards(latency: float) -> None:
    """The two sample boards: first sync, idle poll, then 5 card changes on each board."""
    world = build_sample_world()
    print(f"\ntwo sample boards, latency {latency * 1000:.0f} ms/request")
    with tempfile.TemporaryDirectory() as tmp, Sandbox(world=world, latency=latency) as sandbox:
        runtime = build_runtime(settings(sandbox, f"sqlite:///{tmp}/two.db", SAMPLE_BOARDS))
        timed_sync(runtime, sandbox, "first sync")
        timed_sync(runtime, sandbox, "idle poll (target 1)")
        for link in (CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK):
            board_id = world.board(link)["id"]
            for index, card in enumerate(world.board_cards(board_id)[:5]):
                world.rename_card(card["id"], f"{card['name']} (bench {index})")
        timed_sync(runtime, sandbox, "5 changes on each of 2 boards (target 2)")


def write_rate(url: str, snapshot: dict, cards: int) -> float:
    store = Store(url)
    batch = snapshot_batch(snapshot, board_ref="bench", role="product", observed_at=utc_iso())
    started = time.perf_counter()
    store.write_board(batch)
    seconds = time.perf_counter() - started
    store.close()
    return cards / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--actions", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--write-cards", type=int, default=10000)
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument(
        "--no-writer", action="store_true", help="skip the writer-path rates (requests only)"
    )
    args = parser.parse_args()
    configure_logging(json_lines=True)

    two_boards(args.latency)
    world = build_large_world(cards=args.cards, actions=args.actions)
    board_id = world.board(LARGE_SHORT_LINK)["id"]
    n_actions = len(world.board_actions(board_id))
    print(
        f"\nlarge board: {len(world.board_cards(board_id))} cards, {n_actions} actions, "
        f"latency {args.latency * 1000:.0f} ms/request"
    )
    print(f"target first sync: <= {2 + math.ceil(n_actions / 1000)} requests")
    with (
        tempfile.TemporaryDirectory() as tmp,
        Sandbox(world=world, latency=args.latency) as sandbox,
    ):
        runtime = build_runtime(settings(sandbox, f"sqlite:///{tmp}/bench.db", LARGE_BOARDS))
        timed_sync(runtime, sandbox, "first full sync")
        timed_sync(runtime, sandbox, "idle poll")
        lists = world.board_lists(board_id)
        for index, card in enumerate(world.board_cards(board_id)[:10]):
            world.move_card(card["id"], lists[(index + 1) % len(lists)]["id"])
        timed_sync(runtime, sandbox, "10-card incremental sync")
        for card in world.board_cards(board_id)[10:15]:
            world.comment(card["id"], "relance")
        timed_sync(runtime, sandbox, "later full reconcile", full=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS after the syncs: {peak:.0f} MB (this process, the sandbox included)")
    if args.no_writer:
        return

    big = build_large_world(cards=args.write_cards, actions=0)
    with Sandbox(world=big, rate_limit_per_10s=None) as sandbox:
        from adapters.trello import TrelloAPI, make_trello_session

        api = TrelloAPI(
            make_trello_session(
                api_base=sandbox.trello_api_base,
                api_key=sandbox.api_key,
                token=sandbox.token,
                max_requests_per_10s=90,
                timeout=60,
            )
        )
        snapshot = api.board_snapshot(LARGE_SHORT_LINK)
    n_cards = len(snapshot["cards"])
    with tempfile.TemporaryDirectory() as tmp:
        print(f"writer path, {n_cards} cards (+ children) in one transaction:")
        print(
            f"  SQLite      {write_rate(f'sqlite:///{tmp}/w.db', snapshot, n_cards):9.0f} cards/s"
        )
    if not args.no_pg:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = f"{PG}?options=-csearch_path%3D{schema}"
            print(f"  PostgreSQL  {write_rate(url, snapshot, n_cards):9.0f} cards/s")
        finally:
            with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as connection:
                connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS at the end: {peak:.0f} MB (with the {n_cards}-card world and its JSON)")


if __name__ == "__main__":
    main()
