"""Benchmark of the designs for the webhook path, on the sandbox (loopback only, bounded).

Real changes are made on a sandbox world (moves, check items, labels, members, due dates,
descriptions, custom fields, comments, renames, new cards and checklists, in the mix below, one
second apart); each change's actions become signed deliveries that go through what the HTTP
route does (signature check, payload parse, board match), then through one design:

- **one by one**: `TrelloApplier.deliver` for each delivery: an action that carries its whole
  change is applied to the card's stored rows without a request, anything else refetches its
  card (one ``/1/batch`` request);
- **coalesced**: every delivery's card refetched, what is queued coalesced: recorded, its
  cards refetched together (10 per ``/1/batch`` request), written in one batch per board (a
  prototype written here to be measured);
- **direct+coal.**: `TrelloApplier.deliver_many` on what is queued (runs of the worker's
  ``MAX_RUN``): direct where the action carries its change, the rest coalesced.

Two arrival patterns: **backlog** (every delivery queued, then applied: after a pause, a mass
edit) and **trickle** (each change's deliveries applied as they come, nothing to coalesce).
Trello allows 100 requests per 10 s per token; syncd keeps to 90 (its token bucket, on here as
in production; the sandbox enforces Trello's 100). Printed: deliveries, distinct cards, Trello
requests, seconds, deliveries applied per second, and the ceiling the request cost sets within
90 requests / 10 s (9 requests a second).

    python bench/bench_webhook_designs.py [--deliveries 600] [--large-cards 1000]
        [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog

from adapters.sandbox import (
    CONSORTIUM_SHORT_LINK,
    FIGMA_URLS,
    LARGE_SHORT_LINK,
    PRODUCT_SHORT_LINK,
    Sandbox,
    TrelloWorld,
    build_large_world,
    build_sample_world,
    webhook_signature,
)
from state.store import Store
from state.timestamps import utc_iso
from syncd.config import BoardConfig, Secrets, Settings, StoreConfig, TrelloConfig
from syncd.daemon.worker import MAX_RUN
from syncd.runtime import Runtime, build_runtime
from syncd.trello.actions import action_checklist_id, changed_cards
from syncd.trello.apply import TrelloApplier
from syncd.trello.rows import action_rows, refetched_batch
from syncd.trello.schema import TrelloAction, parse_delivery
from syncd.trello.webhooks import BoardIndex, signature_ok

PG_BASE = os.environ.get("SYNCD_BENCH_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")
CALLBACK = "https://syncd.example.org/webhooks/trello"
BUDGET_PER_SECOND = 9.0  # syncd's 90 requests per 10 s
# The mix of a burst of changes (weights), as the sample boards' history has them.
MIX = {
    "move": 5,
    "check": 4,
    "label": 2,
    "member": 2,
    "custom_field": 2,
    "due": 1,
    "due_complete": 1,
    "desc": 1,
    "comment": 1,
    "rename": 1,
    "create_card": 0.5,
    "add_checklist": 0.5,
}


@dataclass
class Delivery:
    body: bytes
    signature: str


@contextmanager
def store_url(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
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


def runtime_for(sandbox: Sandbox, url: str, boards: tuple[BoardConfig, ...]) -> Runtime:
    settings = Settings(
        store=StoreConfig(url=url),
        trello=TrelloConfig(api_base=sandbox.trello_api_base, boards=boards),
        secrets=Secrets(
            TRELLO_API_KEY=sandbox.api_key,
            TRELLO_TOKEN=sandbox.token,
            TRELLO_API_SECRET=sandbox.api_secret,
        ),
    )
    return build_runtime(settings, store=Store(url))  # the token bucket stays at 90 / 10 s


# -- the burst ----------------------------------------------------------------------------


def changes(
    world: TrelloWorld, boards: list[str], count: int, cards: int, seed: int
) -> Iterator[list[dict]]:
    """`count` changes on `cards` cards of these boards, one second apart: each step makes one
    and yields the actions it recorded."""
    rng = random.Random(seed)
    w = world
    with w.lock:
        board_ids = [w.board(b)["id"] for b in boards]
        pool = sorted(c for c, card in w.cards.items() if card["idBoard"] in board_ids)
    chosen = rng.sample(pool, min(cards, len(pool)))
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    w.now = datetime.now(UTC).replace(microsecond=0)
    for _ in range(count):
        recorded = {bid: len(w.actions[bid]) for bid in board_ids}
        w.now += timedelta(seconds=1)
        card_id = rng.choice(chosen)
        card = w.cards[card_id]
        board = card["idBoard"]
        kind = rng.choices(kinds, weights)[0]
        items = [i for cl in card["idChecklists"] for i in w.checklists[cl]["checkItems"]]
        fields = [f for f in w.custom_fields.values() if f["idModel"] == board]
        if kind == "check" and items:
            item = rng.choice(items)
            w.set_check_item(card_id, item["id"], item["state"] != "complete")
        elif kind == "label":
            label = rng.choice([lb for lb in w.labels.values() if lb["idBoard"] == board])["id"]
            (w.remove_label if label in card["idLabels"] else w.add_label)(card_id, label)
        elif kind == "member":
            member = rng.choice([m["idMember"] for m in w.memberships[board]])
            (w.remove_member if member in card["idMembers"] else w.add_member)(card_id, member)
        elif kind == "custom_field" and fields:
            field = rng.choice(fields)
            options = [o["value"]["text"] for o in field.get("options", [])]
            text = rng.choice(options) if options else rng.choice(["Nina Petit", None])
            w.set_custom_field(card_id, field["id"], text)
        elif kind == "due":
            w.set_due(card_id, rng.choice([None, "2027-01-15T12:00:00.000Z"]))
        elif kind == "due_complete":
            w.set_due_complete(card_id, not card["dueComplete"])
        elif kind == "desc":
            w.set_desc(card_id, rng.choice(["Référent : Nina Petit", FIGMA_URLS["planning"]]))
        elif kind == "comment":
            w.comment(card_id, "Point d'étape avec le département")
        elif kind == "rename":
            w.rename_card(card_id, card["name"].rstrip(" *") + " *")
        elif kind == "create_card":
            created = w.create_card(board, card["idList"], "Nouvelle action [77]")
            chosen.append(created["data"]["card"]["id"])
        elif kind == "add_checklist":
            w.add_checklist(card_id, "Actions prioritaires", ["Convention", "Formation"])
        else:
            lists = [x["id"] for x in w.lists.values() if x["idBoard"] == board]
            w.move_card(card_id, rng.choice(lists))
        yield [a for bid in board_ids for a in w.actions[bid][recorded[bid] :]]


def signed(world: TrelloWorld, secret: str, actions: list[dict]) -> list[Delivery]:
    out = []
    for action in actions:
        model = world.board_model(world.boards[action["data"]["board"]["id"]])
        body = json.dumps({"action": action, "model": model}, ensure_ascii=False).encode()
        out.append(Delivery(body, webhook_signature(secret, body, CALLBACK)))
    return out


def received(delivery: Delivery, secret: str, index: BoardIndex) -> tuple[TrelloAction, Any, str]:
    """What the HTTP route does before it queues a delivery: the checked action."""
    if not signature_ok(delivery.body, delivery.signature, secret, CALLBACK):
        raise SystemExit("bad signature")
    checked = parse_delivery(delivery.body)
    match = index.resolve(*checked.board())
    if match is None:
        raise SystemExit("unknown board")
    return checked.action, *match


# -- the designs ---------------------------------------------------------------------------


class Receiver:
    """The webhook route's checks, then one design's way of applying what is queued."""

    def __init__(self, runtime: Runtime, secret: str) -> None:
        self.runtime = runtime
        self.secret = secret
        self.index = BoardIndex(runtime.settings.trello.boards, runtime.store)
        self.applier = TrelloApplier(
            store=runtime.store, trello=runtime.trello, mirror=runtime.mirror
        )
        self.hows: Counter[str] = Counter()
        apply_many = self.applier.apply_many

        def counted(actions: Any, board: Any, board_id: str, **options: Any) -> list[str]:
            hows = apply_many(actions, board, board_id, **options)
            self.hows.update(hows)
            return hows

        self.applier.apply_many = counted  # type: ignore[method-assign]

    def received(self, delivery: Delivery) -> tuple[TrelloAction, Any, str]:
        return received(delivery, self.secret, self.index)


def one_by_one(receiver: Receiver, queued: list[Delivery]) -> None:
    """Direct, each delivery alone: ``TrelloApplier.deliver`` (a run of one)."""
    for delivery in queued:
        if receiver.applier.deliver(*receiver.received(delivery)) != "applied":
            raise SystemExit("a delivery was not applied")


def direct_and_coalesced(receiver: Receiver, queued: list[Delivery]) -> None:
    """Direct, the rest coalesced: what is queued handed over in runs, as the worker does."""
    for start in range(0, len(queued), MAX_RUN):
        run = [receiver.received(d) for d in queued[start : start + MAX_RUN]]
        if set(receiver.applier.deliver_many(run)) != {"applied"}:
            raise SystemExit("a delivery was not applied")


def coalesced(receiver: Receiver, queued: list[Delivery]) -> None:
    """Every card refetched, coalesced (a prototype): record what is queued, refetch its
    cards together, write one batch per board."""
    runtime = receiver.runtime
    store, trello = runtime.store, runtime.trello
    per_board: dict[str, tuple[Any, str, list[dict]]] = {}
    for delivery in queued:
        action, board, board_id = receiver.received(delivery)
        if action.id not in store.delivered_actions([action.id]):
            per_board.setdefault(board.id, (board, board_id, []))[2].append(action.as_trello())
    for board, board_id, actions in per_board.values():
        checklists = {c for a in actions if (c := action_checklist_id(a)) is not None}
        deleted, touched = changed_cards(actions, store.checklist_cards(checklists))
        batch = refetched_batch(
            trello.cards(sorted(touched)) if touched else {},
            board_ref=board.id,
            role=board.role,
            board_id=board_id,
            observed_at=utc_iso(),
            options=store.custom_field_options(board_id),
            deleted=deleted,
            source="webhook",
        )
        batch.actions = action_rows(actions, board_id, "webhook")
        now = utc_iso()
        outcomes = [
            {"action_id": a["id"], "board_id": board_id, "received_at": now}
            | {"applied_at": now, "outcome": "applied"}
            for a in actions
        ]
        store.settle_deliveries(outcomes, batch=batch)
        receiver.hows["refetch"] += len(actions)


DESIGNS: dict[str, Callable[[Receiver, list[Delivery]], None]] = {
    "one by one": one_by_one,
    "coalesced": coalesced,
    "direct+coal.": direct_and_coalesced,
}


# -- a run ----------------------------------------------------------------------------------


def run(
    design: Callable[[Receiver, list[Delivery]], None],
    world_factory: Callable[[], TrelloWorld],
    boards: tuple[BoardConfig, ...],
    *,
    count: int,
    cards: int,
    backlog: bool,
    backend: str,
) -> dict[str, Any]:
    """`count` changes delivered as a backlog (all queued, then applied) or as a trickle (each
    change's deliveries applied as they come)."""
    with (
        Sandbox(world=world_factory(), deliver_webhooks=False) as sandbox,
        store_url(backend) as url,
    ):
        runtime = runtime_for(sandbox, url, boards)
        runtime.mirror.sync(full=True)
        receiver = Receiver(runtime, sandbox.api_secret)
        steps = changes(sandbox.world, [b.id for b in boards], count, cards, seed=count + cards)
        sandbox.reset_counts()
        sandbox.reset_rate_limit()
        delivered: list[dict] = []
        seconds = 0.0
        if backlog:
            delivered = [action for step in steps for action in step]
            queued = signed(sandbox.world, sandbox.api_secret, delivered)
            sandbox.reset_counts()
            started = time.perf_counter()
            design(receiver, queued)
            seconds = time.perf_counter() - started
        else:
            for step in steps:
                delivered += step
                queued = signed(sandbox.world, sandbox.api_secret, step)
                started = time.perf_counter()
                for delivery in queued:
                    design(receiver, [delivery])
                seconds += time.perf_counter() - started
        requests = sandbox.count("/1/")
        runtime.store.close()
    touched = {a["data"].get("card", {}).get("id") for a in delivered} - {None}
    return {
        "deliveries": len(delivered),
        "cards": len(touched),
        "requests": requests,
        "seconds": seconds,
        "rate": len(delivered) / seconds,
        "ceiling": BUDGET_PER_SECOND * len(delivered) / requests if requests else float("inf"),
        "hows": receiver.hows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=600, help="changes per burst")
    parser.add_argument("--large-cards", type=int, default=1000)
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    sample_boards = (
        BoardConfig(id=CONSORTIUM_SHORT_LINK, role="consortium"),
        BoardConfig(id=PRODUCT_SHORT_LINK, role="product"),
    )
    large = args.large_cards

    def large_world() -> TrelloWorld:
        return build_large_world(cards=large, actions=large)

    scenarios = [
        ("sample boards, 12 busy cards", build_sample_world, sample_boards, 12, args.deliveries),
        ("sample boards, every card", build_sample_world, sample_boards, 10_000, args.deliveries),
        (
            f"{large}-card board, every card",
            large_world,
            (BoardConfig(id=LARGE_SHORT_LINK, role="product"),),
            large,
            2 * large,
        ),
    ]
    print(f"webhook designs: {args.deliveries} changes per burst ({args.backend}), mix {MIX}")
    print(
        f"{'scenario':<31} {'arrival':<8} {'design':<13} {'deliv.':>6} {'cards':>5} "
        f"{'requests':>8} {'seconds':>8} {'deliv./s':>8} {'ceiling at 90 req/10 s':>22}  how"
    )
    for label, factory, boards, cards, count in scenarios:
        for backlog in (True, False):
            for name, design in DESIGNS.items():
                result = run(
                    design,
                    factory,
                    boards,
                    count=count,
                    cards=cards,
                    backlog=backlog,
                    backend=args.backend,
                )
                ceiling = result["ceiling"]
                ceiling_text = "no limit" if ceiling == float("inf") else f"{ceiling:,.0f} deliv./s"
                hows = ", ".join(f"{k} {v}" for k, v in sorted(result["hows"].items()))
                print(
                    f"{label:<31} {'backlog' if backlog else 'trickle':<8} {name:<13} "
                    f"{result['deliveries']:>6} {result['cards']:>5} {result['requests']:>8} "
                    f"{result['seconds']:>8.2f} {result['rate']:>8.0f} {ceiling_text:>22}  {hows}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
