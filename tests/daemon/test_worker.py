"""The webhook worker's intake (`syncd.daemon.worker.WebhookWorker`), without HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncd.daemon.worker import WebhookWorker


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
