"""Links to layers inside frames: checked with ``/nodes?ids=``, one request per file, only when
the version or the linked ids changed, within the interval between Tier-1 reads; a link is
broken only when Figma answers ``null``. Over real HTTP: the sandbox's Trello and Figma."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import responses

from adapters.figma import FigmaAPI, make_figma_session
from adapters.sandbox import PRODUCT_SHORT_LINK, Sandbox, build_sample_world
from adapters.sandbox.figma_world import SAMPLE_FILE_KEY, build_sample_figma
from adapters.transport import ApiError, RetryPolicy
from state.timestamps import utc_iso
from syncd.demo import demo_settings
from syncd.report.build import build_report
from syncd.runtime import Runtime, build_runtime
from syncd.sync_pass import sync_pass

KEY = SAMPLE_FILE_KEY
DESIGN = f"https://www.figma.com/design/{KEY}/RDV-Solidarites"
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Sandbox, Runtime, Clock]]:
    with Sandbox(world=build_sample_world()) as sandbox:
        sandbox.figma = build_sample_figma(NOW)
        world = sandbox.world
        product = world.board(PRODUCT_SHORT_LINK)["id"]
        backlog = world.board_lists(product)[0]["id"]
        world.create_card(
            product,
            backlog,
            "[Usager] Bouton « Prendre RDV » trop discret sur mobile",
            f"Maquette du bouton : {DESIGN}?node-id=5-131&t=aB3dE-4\nÀ revoir avec Mathilde.",
        )
        world.create_card(
            product,
            backlog,
            "[Agent] Légende des absences dans l'agenda",
            f"Voir le calque dans la maquette agenda ({DESIGN}?node-id=148%3A201)",
        )
        clock = Clock(NOW)
        settings = demo_settings(sandbox, tmp_path / "n.db")
        # the token bucket counts real seconds; these tests move a fake clock through hours
        figma = settings.figma.model_copy(update={"max_requests_per_minute": 1000})
        settings = settings.model_copy(update={"figma": figma})
        runtime = build_runtime(settings, clock=clock)
        yield sandbox, runtime, clock


def _file(runtime: Runtime, clock: Clock) -> dict:  # type: ignore[type-arg]
    report = build_report(runtime.store, runtime.settings, now=clock())
    (file,) = report["figma"]["files"]
    return dict(file)


def _broken(file: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return sorted((b["node_id"], b["reason"]) for b in file["broken_links"])


def test_nested_layers_are_found_and_only_missing_nodes_are_broken(env) -> None:  # type: ignore[no-untyped-def]
    sandbox, runtime, clock = env
    figma = sandbox.figma
    result = sync_pass(runtime, full=True)
    (first,) = result.figma
    # meta, versions, comments, tree, and one /nodes for the ids the depth-2 tree lacks
    assert (first.requests, first.tree_read, first.nodes_checked) == (5, True, 3)
    assert figma.count("nodes") == 1
    (nodes_request,) = [r for r in sandbox.requests if r.path.endswith("/nodes")]
    assert sorted(nodes_request.query["ids"][0].split(",")) == ["148:201", "5:131", "999:1"]
    file = _file(runtime, clock)
    assert _broken(file) == [("999:1", "missing")]  # the layers inside frames are fine
    checks = {row["node_id"]: row for row in runtime.store.figma_rows()["node_checks"]}
    assert checks["5:131"]["found"] and checks["5:131"]["type"] == "INSTANCE"
    assert checks["5:95"]["found"]  # shown by the tree: recorded, not asked
    assert checks["999:1"]["found"] is False

    # nothing changed: no Tier-1 read at all
    clock.now = NOW + timedelta(hours=3)
    sandbox.reset_counts()
    (idle,) = sync_pass(runtime).figma
    assert (idle.requests, idle.tree_read, idle.nodes_checked) == (2, False, 0)

    # the designer deletes the button and saves: autosaves within the hour wait for the interval
    figma.now = NOW + timedelta(hours=4)
    figma.remove_frame("5:131")
    figma.new_version("", "")
    clock.now = NOW + timedelta(hours=4)
    figma.reset_counts()
    (read,) = sync_pass(runtime).figma
    assert (read.requests, read.tree_read, read.nodes_checked) == (5, True, 3)
    assert _broken(_file(runtime, clock)) == [("5:131", "deleted"), ("999:1", "missing")]
    for minutes in (20, 40):  # two autosaves within the interval: no Tier-1 read
        figma.new_version("", "")
        clock.now = NOW + timedelta(hours=4, minutes=minutes)
        (held,) = sync_pass(runtime).figma
        assert (held.tree_read, held.nodes_checked) == (False, 0)
        assert held.tier1_postponed_until == utc_iso(NOW + timedelta(hours=5))
    assert figma.count("tree") == 1 and figma.count("nodes") == 1
    clock.now = NOW + timedelta(hours=5, minutes=1)
    (after,) = sync_pass(runtime).figma
    assert after.tree_read and figma.count("tree") == 2


def test_a_new_link_at_the_same_version_costs_one_nodes_request(env) -> None:  # type: ignore[no-untyped-def]
    sandbox, runtime, clock = env
    sync_pass(runtime, full=True)
    world = sandbox.world
    card = world.find_card("Légende des absences", board=PRODUCT_SHORT_LINK)
    world.set_desc(card["id"], f"Le bandeau : {DESIGN}?node-id=5-120 et {DESIGN}?node-id=12-999")
    clock.now = NOW + timedelta(hours=2)
    sandbox.reset_counts()
    (figma,) = sync_pass(runtime).figma
    # the version is the mirrored one: meta, comments, and /nodes for the two new ids only
    assert (figma.requests, figma.tree_read, figma.nodes_checked) == (3, False, 2)
    (nodes_request,) = [r for r in sandbox.requests if r.path.endswith("/nodes")]
    assert sorted(nodes_request.query["ids"][0].split(",")) == ["12:999", "5:120"]
    assert _broken(_file(runtime, clock)) == [("12:999", "missing"), ("999:1", "missing")]
    # the layer in the banner is fine, and no id already answered for this version was asked


def test_a_rate_limited_nodes_check_breaks_no_link(env) -> None:  # type: ignore[no-untyped-def]
    sandbox, runtime, clock = env
    sandbox.figma.rate_limit_next(1, retry_after=3 * 86400, route="nodes")
    (figma,) = sync_pass(runtime, full=True).figma
    # the tree was read, then /nodes answered 429: no node is known missing, none is broken
    assert (figma.mode, figma.tree_read, figma.nodes_checked) == ("rate_limited", True, 0)
    file = _file(runtime, clock)
    assert file["broken_links"] == [] and file["rate_limited_until"]
    assert runtime.store.figma_rows()["node_checks"] == []


# ----------------------------------------------------------------------------- the adapter


def _api() -> FigmaAPI:
    policy = RetryPolicy(max_attempts=1, backoff_initial=0.0, backoff_max=0.0)
    session = make_figma_session(
        api_base="https://api.figma.com",
        token="t",
        max_requests_per_minute=1000,
        timeout=5,
        policy=policy,
    )
    return FigmaAPI(session)


@responses.activate
def test_adapter_reads_figmas_answer_shape_with_null_nodes() -> None:
    responses.get(
        f"https://api.figma.com/v1/files/{KEY}/nodes",
        json={
            "name": "RDV-Solidarités – Maquettes",
            "lastModified": "2026-11-28T10:00:00Z",
            "version": "4100000005",
            "nodes": {
                "5:131": {
                    "document": {"id": "5:131", "name": "Bouton", "type": "INSTANCE"},
                    "components": {},
                    "styles": {},
                },
                "999:1": None,
            },
        },
    )
    assert _api().file_nodes(KEY, ["5:131", "999:1", "7:7"]) == {
        "5:131": {"id": "5:131", "name": "Bouton", "type": "INSTANCE"},
        "999:1": None,
    }  # 7:7 absent from the answer: nothing known, not "missing"
    sent = responses.calls[0].request
    assert "ids=5%3A131%2C999%3A1%2C7%3A7" in (sent.url or "") and "depth=1" in (sent.url or "")


@responses.activate
def test_adapter_refuses_a_nodes_answer_of_another_shape() -> None:
    url = f"https://api.figma.com/v1/files/{KEY}/nodes"
    responses.get(url, json={"err": "oops"})
    responses.get(url, json={"nodes": {"1:2": "nope"}})
    for _ in range(2):
        with pytest.raises(ApiError):
            _api().file_nodes(KEY, ["1:2"])


def test_sandbox_nodes_route_answers_like_figma() -> None:
    world = build_sample_figma(NOW)
    with Sandbox(figma=world) as sandbox:
        url = f"{sandbox.figma_api_base}/v1/files/{KEY}/nodes"
        headers = {"X-Figma-Token": "t"}
        answer = requests.get(
            url, params={"ids": "5:120,999:1", "depth": "1"}, headers=headers, timeout=5
        ).json()
        assert answer["version"] == world.files[KEY]["version"]
        assert answer["nodes"]["999:1"] is None
        banner = answer["nodes"]["5:120"]["document"]
        assert banner["type"] == "GROUP"
        assert [child["id"] for child in banner["children"]] == ["5:131"]
        assert "children" not in banner["children"][0]  # depth=1: one level below the node
        missing = requests.get(url, headers=headers, timeout=5)
        assert missing.status_code == 400 and missing.json()["status"] == 400
        assert world.count("nodes") == 2
