"""The poll's request counts (issue 15): the change check brings each board's actions since its
cursor inside one `/1/batch`, then one `/1/batch` refetches the changed cards of every board
together. Counted on the sandbox's request log (deterministic), and on the per-board reports,
which add up to the requests made."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from adapters.sandbox import (
    CONSORTIUM_SHORT_LINK,
    PRODUCT_SHORT_LINK,
    Sandbox,
    build_sample_world,
)
from adapters.transport import ApiError, RetryPolicy
from state import models as m
from syncd.config import BoardConfig, Secrets, Settings, StoreConfig, TrelloConfig
from syncd.runtime import Runtime, build_runtime
from syncd.trello.engine import BoardReport

FAST_RETRIES = RetryPolicy(
    max_attempts=3, backoff_initial=0.01, backoff_max=0.05, window_seconds=0.2
)
BOARDS = (
    BoardConfig(id=CONSORTIUM_SHORT_LINK, role="consortium"),
    BoardConfig(id=PRODUCT_SHORT_LINK, role="product"),
)


def runtime_for(
    sandbox: Sandbox, store_url: str, boards: tuple[BoardConfig, ...] = BOARDS
) -> Runtime:
    settings = Settings(
        store=StoreConfig(url=store_url),
        trello=TrelloConfig(api_base=sandbox.trello_api_base, boards=boards),
        secrets=Secrets(TRELLO_API_KEY=sandbox.api_key, TRELLO_TOKEN=sandbox.token),
    )
    return build_runtime(settings, policy=FAST_RETRIES)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(world=build_sample_world(), rate_limit_per_10s=None) as running:
        yield running


@pytest.fixture
def mirrored(sandbox: Sandbox, store_url: str) -> Runtime:
    """Both sample boards mirrored once, the request log cleared."""
    runtime = runtime_for(sandbox, store_url)
    assert [r.mode for r in runtime.mirror.sync()] == ["full", "full"]
    sandbox.reset_counts()
    return runtime


def rename_cards(sandbox: Sandbox, link: str, n: int) -> list[str]:
    """Rename the first `n` cards of a board (one ``updateCard`` each); their ids."""
    world = sandbox.world
    cards = world.board_cards(world.board(link)["id"])[:n]
    for index, card in enumerate(cards):
        world.rename_card(card["id"], f"{card['name']} (renommée {index})")
    return [card["id"] for card in cards]


def batch_routes(sandbox: Sandbox) -> list[list[str]]:
    """The routes of each `/1/batch` request, in order."""
    return [r.query["urls"][0].split(",") for r in sandbox.requests if r.path == "/1/batch"]


def card_of(route: str) -> str:
    return urlsplit(route).path.rsplit("/", 1)[-1]


def stored_names(runtime: Runtime) -> dict[str, str]:
    return {c["id"]: c["name"] for c in runtime.store.read_mirror().cards}


def by_board(reports: list[BoardReport]) -> dict[str, BoardReport]:
    return {r.board: r for r in reports}


def test_five_changes_on_both_boards_cost_two_requests(sandbox: Sandbox, mirrored: Runtime) -> None:
    renamed = rename_cards(sandbox, CONSORTIUM_SHORT_LINK, 5)
    renamed += rename_cards(sandbox, PRODUCT_SHORT_LINK, 5)
    cursors = {s["board_ref"]: s["action_cursor"] for s in mirrored.store.sync_states()}
    reports = by_board(mirrored.mirror.sync())
    assert [r.path for r in sandbox.requests] == ["/1/batch", "/1/batch"]
    check, cards = batch_routes(sandbox)
    # the check asks each board for its actions since its cursor, with the poll's filter
    for route, link in zip(check, (CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK), strict=True):
        query = parse_qs(urlsplit(route).query)
        assert urlsplit(route).path == f"/boards/{link}/actions"
        assert query["filter"] == ["all"] and query["limit"] == ["1000"]
        assert query["memberCreator_fields"] == ["fullName,username"]  # encoded in the route
        assert query["since"] == [cursors[link]] and cursors[link]
    # one batch refetches the cards of both boards
    assert sorted(card_of(route) for route in cards) == sorted(renamed)
    assert {(r.mode, r.cards, r.actions) for r in reports.values()} == {("incremental", 5, 5)}
    # shared requests are counted on the first board they served
    assert reports[CONSORTIUM_SHORT_LINK].requests == 2
    assert reports[PRODUCT_SHORT_LINK].requests == 0
    names = stored_names(mirrored)
    assert all("(renommée" in names[card] for card in renamed)


def test_one_changed_board_costs_two_requests(sandbox: Sandbox, mirrored: Runtime) -> None:
    rename_cards(sandbox, PRODUCT_SHORT_LINK, 3)
    reports = by_board(mirrored.mirror.sync())
    assert len(sandbox.requests) == 2
    assert reports[CONSORTIUM_SHORT_LINK].mode == "idle"
    assert reports[PRODUCT_SHORT_LINK].mode == "incremental"
    # the check was first served to the consortium board, the card batch to the product board
    assert (reports[CONSORTIUM_SHORT_LINK].requests, reports[PRODUCT_SHORT_LINK].requests) == (1, 1)


def test_the_card_batch_is_shared_ten_routes_per_request(
    sandbox: Sandbox, mirrored: Runtime
) -> None:
    """8 + 8 cards: 16 routes in 2 card batches of 10 and 6; the first one mixes both boards."""
    consortium = rename_cards(sandbox, CONSORTIUM_SHORT_LINK, 8)
    product = rename_cards(sandbox, PRODUCT_SHORT_LINK, 8)
    reports = by_board(mirrored.mirror.sync())
    check, first, second = batch_routes(sandbox)
    assert len(check) == 2 and (len(first), len(second)) == (10, 6)
    assert {card_of(r) for r in first} == set(sorted(consortium)) | set(sorted(product)[:2])
    assert (reports[CONSORTIUM_SHORT_LINK].requests, reports[PRODUCT_SHORT_LINK].requests) == (2, 1)
    assert sum(r.requests for r in reports.values()) == len(sandbox.requests) == 3


def test_idle_poll_costs_one_request_per_ten_boards(sandbox: Sandbox, store_url: str) -> None:
    world = sandbox.world
    extra = tuple(BoardConfig(id=f"Extra{index:03d}", role="product") for index in range(10))
    lists = {}
    for board in extra:  # 12 boards in all
        lists[board.id] = world.create_list(
            world.create_board(board.id, short_link=board.id), "À faire"
        )
    runtime = runtime_for(sandbox, store_url, boards=BOARDS + extra)
    assert all(r.mode == "full" for r in runtime.mirror.sync())
    sandbox.reset_counts()
    reports = runtime.mirror.sync()
    assert [r.mode for r in reports] == ["idle"] * 12
    assert [len(routes) for routes in batch_routes(sandbox)] == [10, 2]
    assert len(sandbox.requests) == 2  # ⌈12 / 10⌉
    # each check request on the first board it served
    assert [r.requests for r in reports] == [1] + [0] * 9 + [1, 0]
    # a card created on the 12th board: the two check requests, then one card batch
    last = extra[-1].id
    world.create_card(world.board(last)["id"], lists[last], "Nouvelle carte")
    sandbox.reset_counts()
    reports = runtime.mirror.sync()
    assert [r.mode for r in reports] == ["idle"] * 11 + ["incremental"]
    assert len(sandbox.requests) == 3
    assert [r.requests for r in reports] == [1] + [0] * 9 + [1, 1]


def test_a_full_page_of_actions_reads_the_older_pages(sandbox: Sandbox, mirrored: Runtime) -> None:
    """1,004 renames of 2 cards: the check brings the newest 1,000, one page (``before=`` the
    oldest of them, ``since=`` the cursor) brings the other 4, one batch the 2 cards."""
    world = sandbox.world
    cards = world.board_cards(world.board(PRODUCT_SHORT_LINK)["id"])[:2]
    for index in range(1004):
        world.rename_card(cards[index % 2]["id"], f"Renommage n°{index}")
    cursor = (mirrored.store.sync_state(PRODUCT_SHORT_LINK) or {})["action_cursor"]
    reports = by_board(mirrored.mirror.sync())
    paths = [r.path for r in sandbox.requests]
    assert paths == ["/1/batch", f"/1/boards/{PRODUCT_SHORT_LINK}/actions", "/1/batch"]
    page = sandbox.requests[1].query
    assert page["since"] == [cursor] and page["before"] and page["limit"] == ["1000"]
    product = reports[PRODUCT_SHORT_LINK]
    assert (product.mode, product.actions, product.cards) == ("incremental", 1004, 2)
    assert product.requests == 2  # its own page, and the card batch it was first served by
    names = stored_names(mirrored)
    assert {names[cards[0]["id"]], names[cards[1]["id"]]} == {
        "Renommage n°1002",
        "Renommage n°1003",
    }
    assert mirrored.store.count(
        m.Action, m.Action.board_id == world.board(PRODUCT_SHORT_LINK)["id"]
    ) == len(  # type: ignore[arg-type]
        world.board_actions(world.board(PRODUCT_SHORT_LINK)["id"])
    )


def test_a_board_change_takes_a_snapshot_with_the_actions_already_read(
    sandbox: Sandbox, mirrored: Runtime
) -> None:
    world = sandbox.world
    world.create_list(world.board(PRODUCT_SHORT_LINK)["id"], "Nouvelle colonne")
    rename_cards(sandbox, CONSORTIUM_SHORT_LINK, 2)
    reports = by_board(mirrored.mirror.sync())
    assert reports[PRODUCT_SHORT_LINK].mode == "full"
    assert reports[CONSORTIUM_SHORT_LINK].mode == "incremental"
    # the check, the product snapshot (no second read of its actions), the consortium's cards
    assert [r.path for r in sandbox.requests] == [
        "/1/batch",
        f"/1/boards/{PRODUCT_SHORT_LINK}",
        "/1/batch",
    ]
    assert sum(r.requests for r in reports.values()) == 3


def test_a_card_refused_inside_the_shared_batch_fails_its_board_alone(
    sandbox: Sandbox, mirrored: Runtime
) -> None:
    consortium = rename_cards(sandbox, CONSORTIUM_SHORT_LINK, 5)
    product = rename_cards(sandbox, PRODUCT_SHORT_LINK, 5)
    before = mirrored.store.sync_state(PRODUCT_SHORT_LINK) or {}
    sandbox.refuse_in_batch(1, status=401, path_prefix=f"/1/cards/{product[2]}")
    reports = by_board(mirrored.mirror.sync())
    assert len(sandbox.requests) == 2
    assert reports[CONSORTIUM_SHORT_LINK].mode == "incremental"
    failed = reports[PRODUCT_SHORT_LINK]
    assert failed.mode == "failed" and f"card {product[2]} in batch: 401" in (failed.error or "")
    after = mirrored.store.sync_state(PRODUCT_SHORT_LINK) or {}
    assert after["action_cursor"] == before["action_cursor"]  # nothing of it was written
    assert "401" in (after["last_error"] or "")
    names = stored_names(mirrored)
    assert all("(renommée" in names[card] for card in consortium)
    assert not any("(renommée" in names[card] for card in product)
    # the next pass catches the product board up: the check and its cards
    sandbox.reset_counts()
    reports = by_board(mirrored.mirror.sync())
    assert reports[PRODUCT_SHORT_LINK].mode == "incremental"
    assert reports[CONSORTIUM_SHORT_LINK].mode == "idle"
    assert len(sandbox.requests) == 2
    assert all("(renommée" in stored_names(mirrored)[card] for card in product)
    assert (mirrored.store.sync_state(PRODUCT_SHORT_LINK) or {})["last_error"] is None


def test_a_board_refused_inside_the_check_fails_alone(sandbox: Sandbox, mirrored: Runtime) -> None:
    consortium = rename_cards(sandbox, CONSORTIUM_SHORT_LINK, 5)
    rename_cards(sandbox, PRODUCT_SHORT_LINK, 5)
    sandbox.refuse_in_batch(1, status=401, path_prefix=f"/1/boards/{PRODUCT_SHORT_LINK}/actions")
    reports = by_board(mirrored.mirror.sync())
    assert len(sandbox.requests) == 2  # the check, the consortium's cards
    assert [card_of(r) for r in batch_routes(sandbox)[1]] == sorted(consortium)
    assert reports[CONSORTIUM_SHORT_LINK].mode == "incremental"
    assert reports[PRODUCT_SHORT_LINK].mode == "failed"
    assert "change check of board BiT8tx09: 401" in (reports[PRODUCT_SHORT_LINK].error or "")
    assert sum(r.requests for r in reports.values()) == 2


def test_a_card_batch_failing_as_a_whole_fails_the_boards_it_served(
    sandbox: Sandbox, mirrored: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rename_cards(sandbox, CONSORTIUM_SHORT_LINK, 2)
    rename_cards(sandbox, PRODUCT_SHORT_LINK, 2)
    states = {s["board_ref"]: s["action_cursor"] for s in mirrored.store.sync_states()}

    def unreachable(card_ids: list[str]) -> None:
        raise ApiError("trello GET /batch: unreachable after retries")

    monkeypatch.setattr(mirrored.mirror.api, "card_answers", unreachable)
    reports = mirrored.mirror.sync()
    assert [r.mode for r in reports] == ["failed", "failed"]
    assert all("unreachable" in (r.error or "") for r in reports)
    assert {s["board_ref"]: s["action_cursor"] for s in mirrored.store.sync_states()} == states
