"""The webhook worker hands the Trello deliveries waiting in its queue to the applier together,
in arrival order, keeps a Figma delivery in its place, and coalesces a burst of Figma events."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from state.store import Store
from syncd.config import BoardConfig
from syncd.daemon.worker import MAX_RUN, WebhookWorker
from syncd.trello.schema import parse_action

BOARD = BoardConfig(id="oSmy09cz", role="consortium")
AT = "2026-11-01T00:00:00.000Z"


class _Applier:
    """Records each run it is given, once the test releases it."""

    def __init__(self) -> None:
        self.runs: list[list[str]] = []
        self.queued: list[list[int | None]] = []
        self.release = threading.Event()

    def deliver_many(
        self, deliveries: list[tuple[Any, BoardConfig, str]], *, queued: Any = None
    ) -> list[str]:
        self.release.wait(10)
        self.runs.append([action.id for action, _, _ in deliveries])
        self.queued.append(list(queued or []))
        return ["replay" if action.id.endswith("r") else "applied" for action, _, _ in deliveries]


class _Figma:
    def __init__(self, order: list[str], applier: _Applier) -> None:
        self.order = order
        self.applier = applier

    def refresh(self, key: str, event: str) -> Any:
        self.order.append(f"figma after {len(self.applier.runs)} runs")
        return None


@dataclass(frozen=True)
class _Action:
    """What the worker reads of a checked action: its id (the applier gets it whole)."""

    id: str


def _action(action_id: str) -> Any:
    return _Action(action_id)


def test_queued_trello_deliveries_are_applied_as_runs_in_order() -> None:
    applier = _Applier()
    order: list[str] = []
    changes: list[int] = []
    worker = WebhookWorker(
        applier,  # type: ignore[arg-type]
        figma=_Figma(order, applier),
        on_change=lambda: changes.append(1),
    )
    for index in range(6):
        assert worker.offer_trello(_action(f"a{index}"), BOARD, "b" * 24)
    worker.offer_figma("JhZCwwrmaw2NYrITCj8QAK", "FILE_UPDATE")
    for index in range(6, 9):
        worker.offer_trello(_action(f"a{index}" + ("r" if index == 8 else "")), BOARD, "b" * 24)
    assert not worker.offer_trello(_action("a3"), BOARD, "b" * 24)  # a replay, never queued
    applier.release.set()
    worker.start()
    assert worker.wait_idle(10)
    worker.stop()
    assert applier.runs == [["a0", "a1", "a2", "a3", "a4", "a5"], ["a6", "a7", "a8r"]]
    assert order == ["figma after 1 runs"]  # in its place, between the two runs
    assert len(changes) == 2  # each run applied something


def test_a_run_is_at_most_max_run_deliveries() -> None:
    applier = _Applier()
    worker = WebhookWorker(applier)  # type: ignore[arg-type]
    for index in range(MAX_RUN + 5):
        worker.offer_trello(_action(f"a{index}"), BOARD, "b" * 24)
    applier.release.set()
    worker.start()
    assert worker.wait_idle(10)
    worker.stop()
    assert [len(run) for run in applier.runs] == [MAX_RUN, 5]


@dataclass
class SlowFigma:
    refreshed: list[tuple[str, str]] = field(default_factory=list)

    def refresh(self, key: str, event: str) -> Any:
        self.refreshed.append((key, event))
        return None


def test_a_burst_of_figma_events_is_one_refresh_per_file_and_event() -> None:
    figma = SlowFigma()
    worker = WebhookWorker(applier=None, figma=figma)  # type: ignore[arg-type]
    for _ in range(50):  # a flood while the worker is busy (not started yet)
        worker.offer_figma("FILE1", "FILE_UPDATE")
        worker.offer_figma("FILE1", "FILE_COMMENT")
        worker.offer_figma("FILE2", "FILE_UPDATE")
    worker.start()
    assert worker.wait_idle(10)
    assert sorted(figma.refreshed) == [
        ("FILE1", "FILE_COMMENT"),
        ("FILE1", "FILE_UPDATE"),
        ("FILE2", "FILE_UPDATE"),
    ]
    worker.offer_figma("FILE1", "FILE_UPDATE")  # after the refresh began: a new one
    assert worker.wait_idle(10)
    assert figma.refreshed.count(("FILE1", "FILE_UPDATE")) == 2
    worker.stop()


def test_rows_left_in_the_queue_are_applied_first_at_start(tmp_path: Path) -> None:
    """What a killed process left in ``webhook_queue`` is handed to the applier at start-up,
    in queue order with its seqs (the applier settles them); a row that cannot be applied any
    more (its board is no longer configured) is recorded failed and dequeued."""
    store = Store(f"sqlite:///{tmp_path}/store.db")
    queue = store.delivery_queue()

    def row(action_id: str, board_ref: str = BOARD.id) -> dict[str, Any]:
        action = {"id": action_id, "type": "commentCard", "date": AT, "data": {"text": "x"}}
        return {
            "action_id": action_id,
            "board_ref": board_ref,
            "board_id": "b" * 24,
            "action": json.dumps(action),
            "queued_at": AT,
            "queued_by": "",
        }

    seqs = queue.enqueue([row("a" * 24), row("c" * 24, "gone0000"), row("d" * 24)])
    queue.close()
    applier = _Applier()
    applier.release.set()
    worker = WebhookWorker(applier, store=store, boards=[BOARD])  # type: ignore[arg-type]
    worker.start()
    assert worker.wait_idle(10)
    worker.stop()
    assert applier.runs == [["a" * 24, "d" * 24]]
    assert applier.queued == [[seqs["a" * 24], seqs["d" * 24]]]
    assert store.delivered_actions(["c" * 24]) == {"c" * 24}  # recorded (failed), dequeued
    assert [r["action_id"] for r in store.queued_deliveries(10)] == ["a" * 24, "d" * 24]
    store.close()


def test_an_offer_is_answered_once_queued_and_a_retry_is_a_replay(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/store.db")
    applier = _Applier()
    worker = WebhookWorker(applier, store=store, boards=[BOARD])  # type: ignore[arg-type]
    action = parse_action(
        {"id": "a" * 24, "type": "commentCard", "date": AT, "data": {"text": "x"}}
    )
    assert worker.offer_trello(action, BOARD, "b" * 24)
    assert [r["action_id"] for r in store.queued_deliveries(10)] == ["a" * 24]  # committed
    assert not worker.offer_trello(action, BOARD, "b" * 24)  # seen in this process
    fresh = WebhookWorker(applier, store=store, boards=[BOARD])  # type: ignore[arg-type]
    assert not fresh.offer_trello(action, BOARD, "b" * 24)  # queued already: the store says
    worker.stop()
    fresh.stop()
    store.close()
