"""`/readyz` tells the truth (`syncd.daemon.health.SyncHealth`): 503 naming every reason when a
board is stale, the last pass failed (a board, a Figma file, the pass itself) or the report
cannot be built; degraded rows listed without making the process unready; a duty another
replica now holds is not this one's failure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from state.store import Store
from state.timestamps import utc_iso
from syncd.config import BoardConfig, FigmaConfig, Settings, StoreConfig, TrelloConfig
from syncd.daemon.health import SyncHealth
from syncd.figma.engine import FigmaFileReport
from syncd.rules.governance import Rules
from syncd.trello.engine import BoardReport
from syncd.trello.rows import snapshot_batch

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
REF, BOARD_ID, KEY = "oSmy09cz", "b" * 24, "JhZCwwrmaw2NYrITCj8QAK"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Settings, Store]]:
    settings = Settings(
        store=StoreConfig(url=f"sqlite:///{tmp_path / 'store.db'}"),
        trello=TrelloConfig(boards=(BoardConfig(id=REF, role="consortium"),)),
        figma=FigmaConfig(files=(KEY,)),
        governance=Rules(departments=("26",)),
    )
    store = Store(settings.store.url)
    snapshot: dict[str, Any] = {
        "id": BOARD_ID,
        "shortLink": REF,
        "name": "consortium",
        "lists": [{"id": "l" * 24, "name": "Départements", "pos": 1}],
        "cards": [{"id": "c" * 24, "idList": "l" * 24, "name": "Drôme", "pos": 1, "idMembers": []}],
    }
    store.write_board(
        snapshot_batch(snapshot, board_ref=REF, role="consortium", observed_at=utc_iso(NOW))
    )
    yield settings, store
    store.close()


def _report(board: str, error: str | None) -> BoardReport:
    return BoardReport(board=board, mode="incremental", error=error)


def test_ready_then_each_reason(store: tuple[Settings, Store]) -> None:
    settings, db = store
    health = SyncHealth(settings, db, clock=lambda: NOW)
    ready, body = health.readiness()
    assert ready and body["status"] == "ready" and body["report"]["ok"]
    assert body["report"]["degraded_rows"] == 0

    health.note_boards([_report(REF, "Trello answered 500")])
    health.note_pass([FigmaFileReport(KEY, "failed", error="figma GET …: 404")])
    ready, body = health.readiness()
    assert not ready
    assert body["reason"] == (
        "the last sync pass failed: oSmy09cz: Trello answered 500; figma JhZCwwrmaw2NYrITCj8QAK:"
        " figma GET …: 404"
    )

    health.note_boards([_report(REF, None)])
    health.note_pass([FigmaFileReport(KEY, "rate_limited")])  # a rate limit is not a failure
    assert health.readiness()[0]

    health.note_pass(error="sync pass failed: database is locked")
    ready, body = health.readiness()
    assert not ready and body["reason"] == "the last sync pass failed: sync pass failed: " + (
        "database is locked"
    )
    health.note_pass([])
    assert health.readiness()[0]


def test_a_report_that_cannot_be_built_is_named(
    store: tuple[Settings, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, db = store
    health = SyncHealth(settings, db, clock=lambda: NOW, report_every=0)

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("no such table:\n  card")

    monkeypatch.setattr("syncd.daemon.health.build_report", broken)
    ready, body = health.readiness()
    assert not ready and body["report"]["ok"] is False
    assert body["reason"] == "the report cannot be built: no such table: card"  # one line


def test_a_duty_held_elsewhere_is_not_this_replicas_failure(
    store: tuple[Settings, Store],
) -> None:
    settings, db = store
    held = {f"board:{REF}", f"figma:{KEY}"}
    health = SyncHealth(settings, db, clock=lambda: NOW, duties=lambda: held)
    health.note_boards([_report(REF, "Trello answered 500")])
    assert not health.readiness()[0]
    held.clear()  # the board went to another replica: its last attempt here is history
    assert health.readiness()[0]
