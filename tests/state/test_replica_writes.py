"""Two stores (two replicas) on one PostgreSQL schema writing at the same moment: a delivery is
recorded by one of them, the same change is diffed (its history written) once, one open flag per
(département, code), replicas started together migrate once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from state import models as m
from state.store import BoardBatch, Store
from syncd.trello.rows import snapshot_batch

BOARD = "b0000000000000000000000b"
AT = "2026-11-01T00:00:00.000Z"


@pytest.fixture
def two(pg_store_url: str) -> Iterator[tuple[Store, Store]]:
    first, second = Store(pg_store_url), Store(pg_store_url)
    yield first, second
    first.close()
    second.close()


def at_once(*steps: Callable[[], Any]) -> list[Any]:
    """Run the steps in threads released together; their results in order."""
    barrier = threading.Barrier(len(steps))
    results: list[Any] = [None] * len(steps)
    errors: list[BaseException] = []

    def run(index: int, step: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = step()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in enumerate(steps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results


def board(cards: list[dict[str, Any]], at: str) -> BoardBatch:
    snap = {
        "id": BOARD,
        "shortLink": "oSmy09cz",
        "name": "lapins",
        "lists": [{"id": "L1", "name": "A faire"}, {"id": "L2", "name": "Fait"}],
        "labels": [],
        "members": [{"id": "m1", "fullName": "Camille Martin"}],
        "customFields": [],
        "cards": cards,
        "checklists": [],
    }
    return snapshot_batch(snap, board_ref="oSmy09cz", role="consortium", observed_at=at)


def cards_only(cards: list[dict[str, Any]], at: str) -> BoardBatch:
    """The cards alone, as a webhook or a refetch writes them (no board row to upsert)."""
    batch = board(cards, at)
    batch.board, batch.lists, batch.members, batch.labels = None, [], [], []
    batch.source = "webhook"
    return batch


def card(card_id: str, list_id: str) -> dict[str, Any]:
    return {"id": card_id, "idBoard": BOARD, "idList": list_id, "name": "Drôme (26)", "pos": 1}


def queue_row(action_id: str) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "board_ref": "oSmy09cz",
        "board_id": BOARD,
        "action": "{}",
        "queued_at": AT,
        "queued_by": "test",
    }


def test_a_delivery_is_queued_by_exactly_one_replica(two: tuple[Store, Store]) -> None:
    """Two replicas given the same deliveries at once (Trello's retry reaching the other
    replica): the queue's unique action id lets exactly one of them queue each."""
    queues = [store.delivery_queue() for store in two]
    for number in range(20):
        action = f"{number:024x}"
        results = at_once(
            lambda action=action: queues[0].enqueue([queue_row(action)]),
            lambda action=action: queues[1].enqueue([queue_row(action)]),
        )
        assert sorted(len(result) for result in results) == [0, 1], action
    batch = [queue_row(f"{n:024x}") for n in range(30)]
    queued = at_once(lambda: queues[0].enqueue(batch), lambda: queues[1].enqueue(batch))
    assert queued[0].keys() | queued[1].keys() == {f"{n:024x}" for n in range(20, 30)}
    assert not queued[0].keys() & queued[1].keys()
    assert two[0].count(m.WebhookQueue) == 30
    for queue in queues:
        queue.close()


def test_the_same_change_applied_by_two_replicas_is_diffed_once(two: tuple[Store, Store]) -> None:
    first, second = two
    cards = [card(f"{n:024x}", "L1") for n in range(50)]
    first.write_board(board(cards, AT))
    for round_ in range(5):
        moved = [card(c["id"], "L2" if round_ % 2 == 0 else "L1") for c in cards]
        later = f"2026-11-0{round_ + 2}T00:00:00.000Z"
        at_once(
            lambda later=later, moved=moved: first.write_board(cards_only(moved, later)),
            lambda later=later, moved=moved: second.write_board(cards_only(moved, later)),
        )
    table = m.CardVersion.__table__  # type: ignore[attr-defined]
    with first.reader.begin() as connection:
        rows = connection.execute(select(table.c.card_id, table.c.observed_at)).all()
    assert len(rows) == 5 * 50  # one "list" row per card per real move, never two
    assert len(set(rows)) == len(rows)


def test_two_evaluations_at_once_open_one_flag(two: tuple[Store, Store]) -> None:
    first, second = two
    findings: list[tuple[str, str, str]] = []
    for code in ("NO_REFERENT", "TOO_MANY_PRIORITIES", "STALE_PRIORITY"):
        findings = [*findings, ("77", code, "m"), ("26", code, "m")]
        at_once(
            lambda f=findings: first.record_evaluation(f, {}, [], AT),
            lambda f=findings: second.record_evaluation(f, {}, [], AT),
        )
    open_flags = [(f["department"], f["code"]) for f in first.flags()]
    assert len(open_flags) == 6 and len(set(open_flags)) == 6


def test_the_database_refuses_a_second_open_flag(store_url: str) -> None:
    store = Store(store_url)
    table = m.Flag.__table__  # type: ignore[attr-defined]
    row = {"department": "77", "code": "NO_REFERENT", "since": AT, "last_seen_at": AT}
    with store.engine.begin() as connection:
        connection.execute(table.insert().values(**row))
        connection.execute(table.insert().values(**row, resolved_at=AT))  # resolved: fine
    with pytest.raises(Exception, match=r"(?i)unique"), store.engine.begin() as connection:
        connection.execute(table.insert().values(**row))
    store.close()


def test_replicas_starting_together_migrate_once(pg_store_url: str) -> None:
    stores = at_once(*(lambda: Store(pg_store_url) for _ in range(3)))
    assert stores[0].count(m.Replica) == 0  # every table there, once
    for store in stores:
        store.close()
