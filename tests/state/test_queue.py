"""The durable delivery queue (`state.queue`), on SQLite and PostgreSQL: what is queued, in
which order, what a replay leaves out, and that a run is settled in one transaction."""

from __future__ import annotations

import json
from typing import Any

import pytest

from state import models as m
from state.store import BoardBatch, Store

AT = "2026-11-01T00:00:00.000Z"
LATER = "2026-11-01T00:01:00.000Z"
BOARD = "b0000000000000000000000b"
CARD = "c" * 23 + "1"


def _row(action_id: str, at: str = AT) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "board_ref": "oSmy09cz",
        "board_id": BOARD,
        "action": json.dumps({"id": action_id}),
        "queued_at": at,
        "queued_by": "",
    }


def _outcome(action_id: str, outcome: str = "applied") -> dict[str, Any]:
    return {
        "action_id": action_id,
        "board_id": BOARD,
        "received_at": AT,
        "applied_at": AT,
        "outcome": outcome,
    }


@pytest.fixture
def store(store_url: str) -> Store:
    store = Store(store_url)
    yield store
    store.close()


def test_a_group_is_queued_in_order_and_a_retry_is_left_out(store: Store) -> None:
    queue = store.delivery_queue()
    first = queue.enqueue([_row("a1"), _row("a2"), _row("a1"), _row("a3")])
    assert sorted(first) == ["a1", "a2", "a3"]  # a1 twice in the group: queued once
    assert first["a1"] < first["a2"] < first["a3"]
    assert queue.enqueue([_row("a2"), _row("a4")]).keys() == {"a4"}  # a2 is still queued
    rows = store.queued_deliveries(10)
    assert [row["action_id"] for row in rows] == ["a1", "a2", "a3", "a4"]
    assert rows[0]["action"] == '{"id": "a1"}' and rows[0]["board_ref"] == "oSmy09cz"
    assert [r["action_id"] for r in store.queued_deliveries(2, after=rows[0]["seq"])] == [
        "a2",
        "a3",
    ]
    queue.close()


def test_an_action_delivered_before_is_not_queued_again(store: Store) -> None:
    queue = store.delivery_queue()
    seqs = queue.enqueue([_row("a1"), _row("a2")])
    store.settle_deliveries([_outcome("a1")], [seqs["a1"]])
    assert store.delivered_actions(["a1", "a2"]) == {"a1"}
    assert queue.enqueue([_row("a1")]) == {}  # Trello's retry after it was applied
    assert [row["action_id"] for row in store.queued_deliveries(10)] == ["a2"]
    queue.close()


def test_older_than_gives_only_the_rows_queued_before(store: Store) -> None:
    queue = store.delivery_queue()
    queue.enqueue([_row("a1", AT), _row("a2", LATER)])
    assert [r["action_id"] for r in store.queued_deliveries(10, older_than=LATER)] == ["a1"]
    queue.close()


def test_settling_records_the_outcomes_and_dequeues_with_the_applied_rows(store: Store) -> None:
    queue = store.delivery_queue()
    seqs = queue.enqueue([_row("a1"), _row("a2")])
    batch = BoardBatch(
        board_ref="oSmy09cz",
        role="consortium",
        observed_at=AT,
        full=True,
        board={"id": BOARD, "short_link": "oSmy09cz", "name": "lapins", "role": "consortium"},
        lists=[{"id": "L1", "board_id": BOARD, "name": "Départements", "pos": 1.0}],
        cards=[{"id": CARD, "board_id": BOARD, "list_id": "L1", "name": "Drôme"}],
        actions=[{"id": "a1", "board_id": BOARD, "type": "updateCard", "date": AT, "data": {}}],
    )
    store.settle_deliveries([_outcome("a1")], [seqs["a1"]], batch=batch)
    assert store.count(m.Card) == 1 and store.known_actions(["a1"]) == {"a1"}
    assert [row["action_id"] for row in store.queued_deliveries(10)] == ["a2"]
    store.settle_deliveries([_outcome("a1", "replay"), _outcome("a2", "failed")], [seqs["a2"]])
    assert store.queued_deliveries(10) == []
    table = m.WebhookDelivery.__table__  # type: ignore[attr-defined]
    with store.reader.begin() as connection:
        outcomes = dict(
            connection.execute(
                table.select().with_only_columns(table.c.action_id, table.c.outcome)
            ).all()
        )
    assert outcomes == {"a1": "applied", "a2": "failed"}  # a recorded delivery keeps its row
    queue.close()


def test_a_failed_settle_leaves_the_run_queued(store: Store) -> None:
    """One transaction: if the applied rows cannot be written, nothing is recorded nor
    dequeued (the delivery stays queued, applied by the next attempt)."""
    queue = store.delivery_queue()
    seqs = queue.enqueue([_row("a1")])
    broken = BoardBatch(board_ref="never-synced", role="consortium", observed_at=AT)
    broken.cards = [{"id": CARD, "board_id": BOARD, "list_id": "L1", "name": "Drôme"}]
    with pytest.raises(Exception, match="never been snapshotted"):
        store.settle_deliveries([_outcome("a1")], [seqs["a1"]], batch=broken)
    assert [row["action_id"] for row in store.queued_deliveries(10)] == ["a1"]
    assert store.delivered_actions(["a1"]) == set()
    queue.close()
