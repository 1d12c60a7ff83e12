"""The scale scenario of bench/bench_scale.py at a tiny size: request counts only (no timing).

12 boards of 20 cards: the first sync costs, per board, 1 nested snapshot and ⌈actions/1000⌉
action pages (1,000 actions: the one page is full and ends with ``createBoard``, so no empty
second page is asked for), and the idle poll ⌈12/10⌉ = 2 change-check batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.sandbox import Sandbox
from adapters.sandbox.scale import ScaleWorld, build_scale_world, scale_short_link
from adapters.transport import RetryPolicy
from state import models as m
from syncd.config import BoardConfig, Secrets, Settings, StoreConfig, TrelloConfig
from syncd.runtime import build_runtime

BOARDS = 12
CARDS = 20


@pytest.fixture(params=[1000, 1500], ids=["1000-actions", "1500-actions"])
def scale_sandbox(request: pytest.FixtureRequest) -> Iterator[tuple[Sandbox, int]]:
    world = build_scale_world(BOARDS, CARDS, request.param)
    with Sandbox(world=world, rate_limit_per_10s=None, deliver_webhooks=False) as sandbox:
        yield sandbox, request.param


def listed(world: ScaleWorld, index: int) -> int:
    board_id = world.board(scale_short_link(index))["id"]
    return sum(1 for _ in world.actions_newest_first(board_id))


def test_the_scale_world_lists_exactly_the_actions_asked_for() -> None:
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    world = build_scale_world(3, 10, 1000, now=now)
    board_id = world.board(scale_short_link(1))["id"]
    ids = [action["id"] for action in world.actions_newest_first(board_id)]
    assert len(ids) == 1000 == len(set(ids))
    assert ids == sorted(ids, reverse=True)
    middle = ids[500]
    assert [a["id"] for a in world.actions_newest_first(board_id, before_id=middle)] == ids[501:]
    assert [a["id"] for a in world.actions_newest_first(board_id, since_id=middle)] == ids[:500]
    assert world.board_actions(board_id)[-1]["type"] == "createBoard"
    again = build_scale_world(3, 10, 1000, now=now)  # the same world for the same moment
    again_id = again.board(scale_short_link(1))["id"]
    assert [a["data"] for a in again.actions_newest_first(again_id)][:50] == [
        a["data"] for a in world.actions_newest_first(board_id)
    ][:50]
    assert again_id == board_id


def test_first_sync_at_the_floor_and_idle_poll_one_request_per_ten_boards(
    scale_sandbox: tuple[Sandbox, int], tmp_path: Path
) -> None:
    sandbox, actions = scale_sandbox
    boards = tuple(
        BoardConfig(id=scale_short_link(i), role="consortium" if i == 0 else "product")
        for i in range(BOARDS)
    )
    settings = Settings(
        store=StoreConfig(url=f"sqlite:///{tmp_path}/scale.db"),
        trello=TrelloConfig(
            api_base=sandbox.trello_api_base, boards=boards, max_requests_per_10s=100
        ),
        secrets=Secrets(TRELLO_API_KEY=sandbox.api_key, TRELLO_TOKEN=sandbox.token),
    )
    runtime = build_runtime(settings, policy=RetryPolicy(window_seconds=0.1))
    assert all(listed(sandbox.world, i) == actions for i in range(BOARDS))

    sandbox.reset_counts()
    reports = runtime.mirror.sync()
    assert {report.mode for report in reports} == {"full"}
    floor = BOARDS * (1 + math.ceil(actions / 1000))
    assert len(sandbox.requests) == floor
    assert runtime.store.count(m.Action) == BOARDS * actions
    assert runtime.store.count(m.Card) == BOARDS * CARDS

    sandbox.reset_counts()
    reports = runtime.mirror.sync()
    assert {report.mode for report in reports} == {"idle"}
    assert len(sandbox.requests) == math.ceil(BOARDS / 10) == 2
    assert {request.path for request in sandbox.requests} == {"/1/batch"}
