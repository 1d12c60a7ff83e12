"""The webhook worker hands the Trello deliveries waiting in its queue to the applier together,
in arrival order, and keeps a Figma delivery in its place."""

from __future__ import annotations

import threading
from typing import Any

from syncd.config import BoardConfig
from syncd.daemon.worker import MAX_RUN, WebhookWorker

BOARD = BoardConfig(id="oSmy09cz", role="consortium")


class _Applier:
    """Records each run it is given, once the test releases it."""

    def __init__(self) -> None:
        self.runs: list[list[str]] = []
        self.release = threading.Event()

    def deliver_many(self, deliveries: list[tuple[dict[str, Any], BoardConfig, str]]) -> list[str]:
        self.release.wait(10)
        self.runs.append([action["id"] for action, _, _ in deliveries])
        return [
            "replay" if action["id"].endswith("r") else "applied" for action, _, _ in deliveries
        ]


class _Figma:
    def __init__(self, order: list[str], applier: _Applier) -> None:
        self.order = order
        self.applier = applier

    def refresh(self, key: str, event: str) -> Any:
        self.order.append(f"figma after {len(self.applier.runs)} runs")
        return None


def _action(action_id: str) -> dict[str, Any]:
    return {"id": action_id, "type": "updateCard", "data": {}}


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
