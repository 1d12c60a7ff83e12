"""The sync engine over real HTTP against the sandbox: request counts, idle polls, incremental
refetch, faults ridden out, the paged fallback, and a process killed mid-sync."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.sandbox import (
    CONSORTIUM_SHORT_LINK,
    FIGMA_FILE_KEY,
    LARGE_SHORT_LINK,
    PRODUCT_SHORT_LINK,
    Sandbox,
    build_large_world,
    build_sample_world,
)
from adapters.sandbox.figma_world import build_sample_figma
from adapters.transport import RetryPolicy
from state import models as m
from state.store import Store
from syncd.config import BoardConfig, Secrets, Settings, StoreConfig, TrelloConfig
from syncd.rules.governance import Rules
from syncd.runtime import Runtime, build_runtime
from syncd.sync_pass import sync_pass

FAST_RETRIES = RetryPolicy(
    max_attempts=8, backoff_initial=0.01, backoff_max=0.05, window_seconds=0.2
)
BOARDS = (
    BoardConfig(id=CONSORTIUM_SHORT_LINK, role="consortium"),
    BoardConfig(id=PRODUCT_SHORT_LINK, role="product"),
)


def settings_for(
    sandbox: Sandbox, store_url: str, boards: tuple[BoardConfig, ...] = BOARDS
) -> Settings:
    return Settings(
        store=StoreConfig(url=store_url),
        trello=TrelloConfig(api_base=sandbox.trello_api_base, boards=boards),
        governance=Rules(departments=("77", "95")),
        secrets=Secrets(TRELLO_API_KEY=sandbox.api_key, TRELLO_TOKEN=sandbox.token),
    )


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(world=build_sample_world()) as running:
        yield running


def runtime_for(sandbox: Sandbox, store_url: str, **kwargs: object) -> Runtime:
    return build_runtime(settings_for(sandbox, store_url, **kwargs), policy=FAST_RETRIES)  # type: ignore[arg-type]


def sqlite_dump(url: str) -> list[str]:
    connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def live_cards(store: Store, board_id: str) -> int:
    return store.count(m.Card, m.Card.board_id == board_id, m.Card.deleted_at.is_(None))  # type: ignore[arg-type]


def test_first_sync_costs_one_board_request_plus_action_pages(
    sandbox: Sandbox, store_url: str
) -> None:
    runtime = runtime_for(sandbox, store_url)
    sandbox.reset_counts()
    reports = runtime.mirror.sync()
    assert [r.mode for r in reports] == ["full", "full"]
    for board in (CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK):
        assert sandbox.count(f"/1/boards/{board}", method="GET") == 2  # snapshot + 1 action page
        assert sandbox.count(f"/1/boards/{board}/actions") == 1
    assert len(sandbox.requests) == 4
    world_board = sandbox.world.board(CONSORTIUM_SHORT_LINK)
    assert live_cards(runtime.store, world_board["id"]) == len(
        sandbox.world.board_cards(world_board["id"])
    )
    assert runtime.store.count(m.Action) == sum(
        len(sandbox.world.board_actions(sandbox.world.board(b)["id"]))
        for b in (CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK)
    )


def test_idle_poll_costs_one_request_and_writes_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/idle.db"
    runtime = runtime_for(sandbox, url)
    sync_pass(runtime)
    before = sqlite_dump(url)
    sandbox.reset_counts()
    result = sync_pass(runtime)
    assert [r.mode for r in result.boards] == ["idle", "idle"]
    assert len(sandbox.requests) == 1  # one /1/batch asks both boards for their new actions
    assert sandbox.requests[0].path == "/1/batch"
    assert sqlite_dump(url) == before
    assert set(runtime.mirror.last_checked) == {CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK}


def test_a_board_refused_by_the_change_check_fails_alone_and_counts_its_request(
    sandbox: Sandbox, store_url: str
) -> None:
    """The product board disappears from the token's reach after the first sync: inside the
    one /1/batch check it answers 404 while the consortium board answers as usual."""
    runtime = runtime_for(sandbox, store_url)
    sync_pass(runtime)
    product = sandbox.world.board(PRODUCT_SHORT_LINK)
    del sandbox.world.boards[product["id"]]
    sandbox.reset_counts()
    reports = runtime.mirror.sync()
    assert [(r.board, r.mode) for r in reports] == [
        (CONSORTIUM_SHORT_LINK, "idle"),
        (PRODUCT_SHORT_LINK, "failed"),
    ]
    assert "change check of board BiT8tx09: 404" in (reports[1].error or "")
    # the one check request is counted once, on the first board it served
    assert len(sandbox.requests) == 1 and sum(r.requests for r in reports) == 1
    state = runtime.store.sync_state(PRODUCT_SHORT_LINK)
    assert state is not None and "404" in (state["last_error"] or "")


def test_a_lone_board_that_fails_its_change_check_reports_the_request(
    sandbox: Sandbox, store_url: str
) -> None:
    boards = (BoardConfig(id=CONSORTIUM_SHORT_LINK, role="consortium"),)
    runtime = runtime_for(sandbox, store_url, boards=boards)
    sync_pass(runtime)
    consortium = sandbox.world.board(CONSORTIUM_SHORT_LINK)
    del sandbox.world.boards[consortium["id"]]
    sandbox.reset_counts()
    (report,) = runtime.mirror.sync()
    assert (report.mode, report.requests) == ("failed", 1)
    assert len(sandbox.requests) == 1
    # the catch-up path of the webhooks counts (and survives) its check the same way
    sandbox.reset_counts()
    again = runtime.mirror.sync_board(boards[0])
    assert (again.mode, again.requests) == ("failed", 1) and len(sandbox.requests) == 1


def test_a_change_check_that_fails_as_a_whole_fails_every_board_with_its_requests(
    sandbox: Sandbox, store_url: str
) -> None:
    runtime = runtime_for(sandbox, store_url)
    sync_pass(runtime)
    sandbox.reset_counts()
    sandbox.fail_next(FAST_RETRIES.max_attempts, status=502, path_prefix="/1/batch")
    reports = runtime.mirror.sync()
    assert [r.mode for r in reports] == ["failed", "failed"]
    assert len(sandbox.requests) == FAST_RETRIES.max_attempts
    assert [r.requests for r in reports] == [FAST_RETRIES.max_attempts, 0]
    assert all(s["last_error"] for s in runtime.store.sync_states())


def test_changed_cards_alone_are_refetched(sandbox: Sandbox, store_url: str) -> None:
    runtime = runtime_for(sandbox, store_url)
    runtime.mirror.sync()
    world = sandbox.world
    product = world.board(PRODUCT_SHORT_LINK)["id"]
    cards = world.board_cards(product)[:3]
    done = world.find_list(product, "Fait")
    for card in cards:
        world.move_card(card["id"], done)
    world.rename_card(cards[0]["id"], "[Agent] Renommée par le test")
    sandbox.reset_counts()

    reports = {r.board: r for r in runtime.mirror.sync()}
    assert reports[PRODUCT_SHORT_LINK].mode == "incremental"
    assert reports[CONSORTIUM_SHORT_LINK].mode == "idle"
    # the change check (which brings the new actions), one batch of the 3 cards
    assert len(sandbox.requests) == 2
    batch = [r for r in sandbox.requests if r.path == "/1/batch"][-1]
    routes = batch.query["urls"][0].split(",")
    assert len(routes) == 3
    fetched = {route.split("?")[0].rsplit("/", 1)[-1] for route in routes}
    assert fetched == {card["id"] for card in cards}
    rows = {c["id"]: c for c in runtime.store.read_mirror().cards}
    assert all(rows[card["id"]]["list_id"] == done for card in cards)
    assert rows[cards[0]["id"]]["name"] == "[Agent] Renommée par le test"
    versions = runtime.store.card_versions_since("2000-01-01T00:00:00.000Z")
    assert {(v["card_id"], v["field"]) for v in versions} == {
        *((card["id"], "list") for card in cards),
        (cards[0]["id"], "name"),
    }


def test_a_checklist_renamed_names_no_card_yet_its_card_is_refetched(
    sandbox: Sandbox, store_url: str
) -> None:
    """``updateChecklist`` carries the checklist alone: the poll finds its card in the store."""
    runtime = runtime_for(sandbox, store_url)
    runtime.mirror.sync()
    world = sandbox.world
    card = world.find_card("77 – Seine-et-Marne")
    checklist = world.find_checklist(card["id"], "Actions prioritaires")
    world.rename_checklist(checklist, "Priorités 2027")
    sandbox.reset_counts()
    reports = {r.board: r for r in runtime.mirror.sync()}
    assert reports[CONSORTIUM_SHORT_LINK].mode == "incremental"
    assert reports[CONSORTIUM_SHORT_LINK].cards == 1
    assert len(sandbox.requests) == 2  # the change check with the new action, one batch
    names = {row["id"]: row["name"] for row in runtime.store.read_mirror().checklists}
    assert names[checklist] == "Priorités 2027"


def test_deleted_card_is_marked_not_erased(sandbox: Sandbox, store_url: str) -> None:
    runtime = runtime_for(sandbox, store_url)
    runtime.mirror.sync()
    world = sandbox.world
    card = world.board_cards(world.board(PRODUCT_SHORT_LINK)["id"])[0]
    world.delete_card(card["id"])
    runtime.mirror.sync()
    row = next(c for c in runtime.store.read_mirror().cards if c["id"] == card["id"])
    assert row["deleted_at"] is not None and row["name"] == card["name"]


def test_429_storm_and_5xx_and_disconnects_lose_nothing(
    sandbox: Sandbox, store_url: str, tmp_path: Path
) -> None:
    sandbox.rate_limit_next(6)
    sandbox.fail_next(2, status=502)
    sandbox.disconnect_next(2)
    runtime = runtime_for(sandbox, store_url)
    result = sync_pass(runtime)
    assert result.failed == []
    assert runtime.trello.session.stats.rate_limited == 6
    clean = runtime_for(sandbox, f"sqlite:///{tmp_path}/clean.db")
    sync_pass(clean)
    ours, theirs = runtime.store.read_mirror(), clean.store.read_mirror()
    assert sorted(c["id"] for c in ours.cards) == sorted(c["id"] for c in theirs.cards)
    assert len(ours.check_items) == len(theirs.check_items)
    assert runtime.store.count(m.Action) == clean.store.count(m.Action)


def test_garbage_answer_fails_one_board_cleanly_and_the_next_pass_recovers(
    sandbox: Sandbox, store_url: str
) -> None:
    runtime = runtime_for(sandbox, store_url)
    sandbox.garbage_next(1)
    reports = runtime.mirror.sync()
    failed = [r for r in reports if r.error]
    assert len(failed) == 1 and "not JSON" in (failed[0].error or "")
    assert "\n" not in (failed[0].error or "")
    state = runtime.store.sync_state(failed[0].board)
    assert state is not None and "not JSON" in (state["last_error"] or "")
    assert [r.mode for r in runtime.mirror.sync()].count("full") == 1
    assert all(s["last_error"] is None for s in runtime.store.sync_states())


def test_board_too_large_falls_back_to_paged_cards(store_url: str) -> None:
    world = build_large_world(cards=1500, actions=200)
    with Sandbox(world=world, rate_limit_per_10s=None) as sandbox:
        sandbox.too_many_cards_threshold = 1000
        runtime = runtime_for(
            sandbox, store_url, boards=(BoardConfig(id=LARGE_SHORT_LINK, role="product"),)
        )
        (report,) = runtime.mirror.sync()
        assert report.mode == "paged"
        board_id = world.board(LARGE_SHORT_LINK)["id"]
        assert live_cards(runtime.store, board_id) == len(world.board_cards(board_id))
        assert sandbox.count(f"/1/boards/{LARGE_SHORT_LINK}/cards") == 2  # 1000 + 500


KILL_CONFIG = """
[store]
url = "sqlite:///{db}"
[trello]
api_base = "{api}"
[[trello.boards]]
id = "{board}"
role = "product"
"""


@pytest.mark.slow
def test_kill_9_mid_sync_leaves_a_consistent_store(tmp_path: Path) -> None:
    world = build_large_world(cards=1500, actions=2500)
    with Sandbox(world=world, latency=0.02, rate_limit_per_10s=None) as sandbox:
        board_id = world.board(LARGE_SHORT_LINK)["id"]
        expected = len(world.board_cards(board_id))
        db = tmp_path / "killed.db"
        config = tmp_path / "syncd.toml"
        config.write_text(
            KILL_CONFIG.format(db=db, api=sandbox.trello_api_base, board=LARGE_SHORT_LINK)
        )
        env = {**os.environ, "TRELLO_API_KEY": sandbox.api_key, "TRELLO_TOKEN": sandbox.token}
        command = [sys.executable, "-m", "syncd", "--config", str(config), "sync", "--full"]
        outcomes = []
        for delay in (0.0, 0.15, 0.4, 0.8):
            sandbox.reset_counts()
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 60
            while sandbox.count(f"/1/boards/{LARGE_SHORT_LINK}/actions") < 3:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.005)
            time.sleep(delay)  # the last page is in flight, then the write
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            outcomes.append(process.returncode)
            connection = sqlite3.connect(db)
            try:
                assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
                assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
                state = connection.execute(
                    "SELECT last_full_at FROM sync_state WHERE board_ref = ?", (LARGE_SHORT_LINK,)
                ).fetchone()
                cards = connection.execute(
                    "SELECT count(*) FROM card WHERE deleted_at IS NULL"
                ).fetchone()[0]
            finally:
                connection.close()
            # either the previous complete state (nothing yet) or the whole board: never half
            assert (state is None and cards == 0) or (state is not None and cards == expected)
        assert -signal.SIGKILL in outcomes
        finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr
        store = Store(f"sqlite:///{db}")
        assert live_cards(store, board_id) == expected
        state = store.sync_state(LARGE_SHORT_LINK)
        assert state is not None and state["action_cursor"] == max(
            a["id"] for a in world.board_actions(board_id)
        )


def test_sync_command_reports_per_board(sandbox: Sandbox, tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(
        KILL_CONFIG.format(
            db=tmp_path / "cli.db", api=sandbox.trello_api_base, board=PRODUCT_SHORT_LINK
        )
    )
    env = {**os.environ, "TRELLO_API_KEY": sandbox.api_key, "TRELLO_TOKEN": sandbox.token}
    done = subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(config), "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{PRODUCT_SHORT_LINK}: full, 2 requests")
    assert sandbox.token not in done.stderr and sandbox.api_key not in done.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(config), "sync"],
        env={k: v for k, v in env.items() if k != "TRELLO_TOKEN"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert (
        missing.stderr.strip() == "syncd: config error: TRELLO_TOKEN: missing from the environment"
    )


def test_clock_is_used_for_observation_times(sandbox: Sandbox, store_url: str) -> None:
    fixed = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    runtime = build_runtime(
        settings_for(sandbox, store_url), policy=FAST_RETRIES, clock=lambda: fixed
    )
    sync_pass(runtime)
    states = runtime.store.sync_states()
    assert {s["last_full_at"] for s in states} == {"2026-11-30T08:00:00.000Z"}


def test_check_and_db_upgrade_commands(sandbox: Sandbox, tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(
        KILL_CONFIG.format(
            db=tmp_path / "check.db", api=sandbox.trello_api_base, board=PRODUCT_SHORT_LINK
        )
    )
    env = {
        **os.environ,
        "TRELLO_API_KEY": sandbox.api_key,
        "TRELLO_TOKEN": sandbox.token,
        "TRELLO_API_SECRET": sandbox.api_secret,
    }
    base = [sys.executable, "-m", "syncd", "--config", str(config)]
    upgrade = subprocess.run(
        [*base, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert "latest schema" in upgrade.stdout
    sandbox.figma = build_sample_figma()
    with config.open("a") as handle:
        handle.write(
            f'[figma]\napi_base = "{sandbox.figma_api_base}"\nfiles = ["{FIGMA_FILE_KEY}"]\n'
        )
    env["FIGMA_TOKEN"] = "figma-token"
    sandbox.reset_counts()
    check = subprocess.run([*base, "check"], env=env, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"ok    trello board {PRODUCT_SHORT_LINK}" in check.stdout
    assert f"ok    figma file {FIGMA_FILE_KEY}: 'RDV-Solidarités – Maquettes'" in check.stdout
    assert len(sandbox.requests) == 2  # one batched change check, one Figma /meta
    wrong = subprocess.run(
        [*base, "check"],
        env={**env, "TRELLO_TOKEN": "wrong"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 1
    assert "FAIL  trello:" in wrong.stdout and "401" in wrong.stdout
    assert "wrong" not in wrong.stdout + wrong.stderr
