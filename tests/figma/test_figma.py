"""Tests of the Figma side: the adapter's edge cases (`responses`), the sandbox Figma served over
real HTTP, the mirror's request budget per sync, rate limiting, and the report section."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
import responses
import structlog
import structlog.testing

from adapters.figma import FigmaAPI, make_figma_session
from adapters.sandbox import Sandbox
from adapters.sandbox.figma_world import (
    SAMPLE_FILE_KEY,
    FigmaWorld,
    build_sample_figma,
)
from adapters.transport import ApiError, HttpStatusError, RateLimited, RetryPolicy
from state.store import MirrorRows, RulesMirror, Store
from state.timestamps import parse_iso, utc_iso
from syncd.figma.engine import FigmaMirror, comment_rows, node_rows
from syncd.report.figma import build_figma_section
from syncd.rules.facts import MirrorFacts
from syncd.rules.governance import CardFacts

KEY = SAMPLE_FILE_KEY
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
TOKEN = "figd_test-token-123"
FAST = RetryPolicy(max_attempts=3, backoff_initial=0.0, backoff_max=0.0, window_seconds=60.0)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _plain_structlog() -> Iterator[None]:
    """Log through structlog's defaults: another test may have bound the logger to a closed
    capture stream (`syncd.logs.configure_logging` binds the `sys.stderr` of its call)."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


@pytest.fixture
def world() -> Iterator[FigmaWorld]:
    yield build_sample_figma(NOW)


@pytest.fixture
def served(world: FigmaWorld) -> Iterator[str]:
    with Sandbox(figma=world) as sandbox:  # the one loopback server, its Figma hook
        yield sandbox.figma_api_base


@pytest.fixture
def api(served: str) -> FigmaAPI:
    session = make_figma_session(
        api_base=served, token=TOKEN, max_requests_per_minute=1000, timeout=5, policy=FAST
    )
    return FigmaAPI(session)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path}/t.db")
    yield store
    store.close()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _counts(world: FigmaWorld) -> dict[str, int]:
    """Requests per route; /nodes only when a request went there (no card links here)."""
    routes = ("meta", "versions", "comments", "tree") + (("nodes",) if world.count("nodes") else ())
    return {route: world.count(route) for route in routes}


# ----------------------------------------------------------------------------- adapter


def _responses_api(max_attempts: int = 3) -> FigmaAPI:
    policy = RetryPolicy(max_attempts=max_attempts, backoff_initial=0.0, backoff_max=0.0)
    session = make_figma_session(
        api_base="https://api.figma.com",
        token=TOKEN,
        max_requests_per_minute=1000,
        timeout=5,
        policy=policy,
    )
    return FigmaAPI(session)


@responses.activate
def test_adapter_sends_token_header_and_parses_meta() -> None:
    responses.get(
        f"https://api.figma.com/v1/files/{KEY}/meta",
        json={
            "file": {
                "name": "Maquettes",
                "version": "42",
                "last_touched_at": "2026-11-28T10:00:00Z",
            }
        },
    )
    meta = _responses_api().file_meta(KEY)
    assert meta["name"] == "Maquettes"
    sent = responses.calls[0].request
    assert sent.headers["X-Figma-Token"] == TOKEN
    assert TOKEN not in sent.url


@responses.activate
def test_adapter_garbage_json_is_one_line_api_error() -> None:
    responses.get(f"https://api.figma.com/v1/files/{KEY}/meta", body="<html>oops</html>")
    responses.get(f"https://api.figma.com/v1/files/{KEY}/versions", json={"versions": "nope"})
    responses.get(f"https://api.figma.com/v1/files/{KEY}/comments", json=[1, 2])
    responses.get(f"https://api.figma.com/v1/files/{KEY}", json={"name": "x"})
    figma = _responses_api()
    for call in (figma.file_meta, figma.versions, figma.comments, figma.file_tree):
        with pytest.raises(ApiError) as caught:
            call(KEY)
        assert "\n" not in str(caught.value)
        assert str(caught.value).startswith("figma GET /v1/files/")
    assert len(responses.calls) == 4  # none retried


@responses.activate
def test_adapter_long_retry_after_raises_at_once_without_sleeping() -> None:
    responses.get(
        f"https://api.figma.com/v1/files/{KEY}/meta",
        status=429,
        headers={"Retry-After": "86400"},
        json={"status": 429, "err": "Rate limit exceeded"},
    )
    figma = _responses_api()
    slept: list[float] = []
    figma.session._sleep = slept.append  # type: ignore[attr-defined]
    with pytest.raises(RateLimited) as caught:
        figma.file_meta(KEY)
    assert caught.value.retry_after == pytest.approx(86400)
    assert len(responses.calls) == 1
    assert slept == []


@responses.activate
def test_adapter_retries_5xx_then_succeeds_and_not_4xx() -> None:
    url = f"https://api.figma.com/v1/files/{KEY}/versions"
    responses.get(url, status=502, body="bad gateway")
    responses.get(url, status=500, body="boom")
    responses.get(url, json={"versions": [{"id": "1", "created_at": "2026-01-01T00:00:00Z"}]})
    figma = _responses_api(max_attempts=4)
    assert [v["id"] for v in figma.versions(KEY)] == ["1"]
    assert len(responses.calls) == 3
    assert responses.calls[0].request.url.endswith("page_size=50")

    responses.get(
        f"https://api.figma.com/v1/files/{KEY}/comments",
        status=404,
        json={"status": 404, "err": "Not found"},
    )
    with pytest.raises(HttpStatusError) as caught:
        figma.comments(KEY)
    assert caught.value.status == 404
    assert len(responses.calls) == 4


# ----------------------------------------------------------------------------- sandbox world


def test_world_routes_auth_and_faults(world: FigmaWorld, served: str) -> None:
    headers = {"X-Figma-Token": TOKEN}
    meta = requests.get(f"{served}/v1/files/{KEY}/meta", headers=headers, timeout=5)
    assert meta.status_code == 200
    assert meta.json()["file"]["name"] == "RDV-Solidarités – Maquettes"
    assert meta.json()["file"]["editorType"] == "figma"

    denied = requests.get(f"{served}/v1/files/{KEY}/meta", timeout=5)
    assert (denied.status_code, denied.json()) == (403, {"status": 403, "err": "Invalid token"})
    unknown = requests.get(f"{served}/v1/files/NoSuchFile1234/meta", headers=headers, timeout=5)
    assert (unknown.status_code, unknown.json()) == (404, {"status": 404, "err": "Not found"})

    tree = requests.get(f"{served}/v1/files/{KEY}", params={"depth": 2}, headers=headers, timeout=5)
    pages = tree.json()["document"]["children"]
    assert all(page["type"] == "CANVAS" for page in pages) and 2 <= len(pages) <= 3
    frames = {child["id"]: child for page in pages for child in page["children"]}
    assert frames["5:95"]["name"] == "Prise de RDV – Accueil usager"
    assert frames["148:129"]["name"] == "Prototype agent – Agenda"
    assert "999:1" not in frames
    assert all("children" not in frame for frame in frames.values())  # depth=2 stops there

    versions = requests.get(f"{served}/v1/files/{KEY}/versions", headers=headers, timeout=5)
    listed = versions.json()["versions"]
    assert len(listed) == 5
    assert parse_iso(listed[0]["created_at"]) == NOW - timedelta(days=2)
    comments = requests.get(f"{served}/v1/files/{KEY}/comments", headers=headers, timeout=5)
    rows = comments.json()["comments"]
    assert len(rows) == 4
    assert sum(1 for c in rows if c["resolved_at"]) == 1
    assert {c["client_meta"].get("node_id") for c in rows} >= {"5:95", "148:129"}

    world.rate_limit_next(1, retry_after=86400)
    limited = requests.get(f"{served}/v1/files/{KEY}/meta", headers=headers, timeout=5)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "86400"
    assert limited.json() == {"status": 429, "err": "Rate limit exceeded"}
    assert world.count("meta") == 4 and world.count("tree") == 1


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_world_webhook_create_and_deliver(world: FigmaWorld, served: str) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(
        target=receiver.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}/webhooks/figma"
    try:
        api = FigmaAPI(
            make_figma_session(
                api_base=served, token=TOKEN, max_requests_per_minute=100, timeout=5, policy=FAST
            )
        )
        hook = api.create_webhook(
            event_type="FILE_VERSION_UPDATE",
            context="file",
            context_id=KEY,
            endpoint=endpoint,
            passcode="s3cret",
        )
        assert hook["status"] == "ACTIVE" and hook["endpoint"] == endpoint
        world.new_version("Accueil usager v4")
        assert world.deliver("FILE_VERSION_UPDATE", KEY, None) == [(hook["id"], 200)]
        world.deliver("FILE_VERSION_UPDATE", KEY, "wrong")
        first, second = _Receiver.received[-2:]
        assert first["passcode"] == "s3cret" and second["passcode"] == "wrong"
        assert first["event_type"] == "FILE_VERSION_UPDATE"
        assert first["file_key"] == KEY and first["webhook_id"] == hook["id"]
        assert first["label"] == "Accueil usager v4"
        assert {"file_name", "timestamp", "version_id"} <= set(first)
        with pytest.raises(LookupError):
            world.deliver("FILE_COMMENT", KEY, None)
    finally:
        receiver.shutdown()
        receiver.server_close()


# ----------------------------------------------------------------------------- the mirror


def test_mirror_request_budget_and_tree_only_on_new_version(
    world: FigmaWorld, api: FigmaAPI, store: Store
) -> None:
    clock = Clock(NOW)
    mirror = FigmaMirror(api, store, [KEY], clock=clock)

    (first,) = mirror.sync()
    assert (first.mode, first.requests, first.tree_read) == ("synced", 4, True)
    assert _counts(world) == {"meta": 1, "versions": 1, "comments": 1, "tree": 1}
    rows = store.figma_rows()
    (file,) = rows["files"]
    assert file["name"] == "RDV-Solidarités – Maquettes"
    assert file["tree_version"] == file["version"] and file["last_error"] is None
    assert file["last_modified"] == utc_iso(NOW - timedelta(days=2))
    nodes = {node["node_id"]: node for node in rows["nodes"]}
    assert nodes["0:1"]["type"] == "CANVAS" and nodes["0:1"]["page_id"] is None
    assert nodes["5:95"]["page_id"] == "0:1" and nodes["148:129"]["page_id"] == "1:2"
    assert len(rows["versions"]) == 5 and len(rows["comments"]) == 4
    pinned = {c["node_id"] for c in rows["comments"] if c["resolved_at"] is None}
    assert {"5:95", "148:129"} <= pinned

    clock.now = NOW + timedelta(minutes=5)
    (second,) = mirror.sync()
    # /meta shows the version whose tree is held: no /versions call, no tree
    assert (second.mode, second.requests, second.tree_read) == ("synced", 2, False)
    assert _counts(world) == {"meta": 2, "versions": 1, "comments": 2, "tree": 1}

    world.now = NOW + timedelta(hours=1)
    world.remove_frame("5:180")
    frame = world.add_frame(KEY, "Prise de RDV – Annulation", page="0:1")
    world.new_version("Annulation")
    clock.now = NOW + timedelta(hours=2)
    (third,) = mirror.sync()
    assert (third.requests, third.tree_read) == (4, True)
    (fourth,) = mirror.sync()
    assert (fourth.requests, fourth.tree_read) == (2, False)
    assert _counts(world) == {"meta": 4, "versions": 2, "comments": 4, "tree": 2}

    nodes = {node["node_id"]: node for node in store.figma_rows()["nodes"]}
    assert nodes["5:180"]["deleted_at"] == utc_iso(NOW + timedelta(hours=2))  # kept, marked
    assert nodes[frame]["deleted_at"] is None
    assert nodes[frame]["first_seen_at"] == utc_iso(NOW + timedelta(hours=2))
    assert nodes["5:95"]["first_seen_at"] == utc_iso(NOW)
    assert len(store.figma_rows()["versions"]) == 6

    (forced,) = mirror.sync(force_tree=True)
    assert (forced.requests, forced.tree_read) == (4, True)


def test_mirror_rate_limited_file_is_left_alone_until_retry_after(
    world: FigmaWorld, api: FigmaAPI, store: Store
) -> None:
    clock = Clock(NOW)
    mirror = FigmaMirror(api, store, [KEY], clock=clock)
    world.rate_limit_next(1, retry_after=86400, route="meta")
    started = time.monotonic()
    (report,) = mirror.sync()
    assert time.monotonic() - started < 2.0  # not slept through
    assert (report.mode, report.requests, report.tree_read) == ("rate_limited", 1, False)
    (file,) = store.figma_rows()["files"]
    until = parse_iso(file["rate_limited_until"])
    assert until is not None and abs(until - (NOW + timedelta(days=1))) < timedelta(seconds=5)
    assert file["last_error"].startswith("rate limited until ")
    assert file["last_synced_at"] is None

    before = world.count()
    clock.now = NOW + timedelta(hours=23)
    (skipped,) = mirror.sync()
    assert (skipped.mode, skipped.requests) == ("rate_limited", 0)
    assert mirror.refresh(KEY, "FILE_VERSION_UPDATE").requests == 0
    assert world.count() == before

    clock.now = NOW + timedelta(days=1, minutes=1)
    (back,) = mirror.sync()
    assert (back.mode, back.requests, back.tree_read) == ("synced", 4, True)
    (file,) = store.figma_rows()["files"]
    assert file["rate_limited_until"] is None and file["last_error"] is None


def test_mirror_tier1_limit_on_tree_keeps_the_cheap_reads(
    world: FigmaWorld, api: FigmaAPI, store: Store
) -> None:
    mirror = FigmaMirror(api, store, [KEY], clock=Clock(NOW))
    world.rate_limit_next(1, retry_after=5 * 86400, route="tree")
    (report,) = mirror.sync()
    assert (report.mode, report.requests, report.tree_read) == ("rate_limited", 4, False)
    rows = store.figma_rows()
    (file,) = rows["files"]
    assert file["name"] and file["tree_version"] is None and file["rate_limited_until"]
    assert len(rows["versions"]) == 5 and rows["nodes"] == []


def test_mirror_failures_are_recorded_and_the_pass_carries_on(api: FigmaAPI, store: Store) -> None:
    mirror = FigmaMirror(api, store, ["NoSuchFile1234", KEY], clock=Clock(NOW))
    with structlog.testing.capture_logs() as logs:
        missing, ok = mirror.sync()
    assert [(line["file"], line["mode"]) for line in logs] == [
        ("NoSuchFile1234", "failed"),
        (KEY, "synced"),
    ]
    assert TOKEN not in repr(logs)
    assert missing.mode == "failed" and "404" in (missing.error or "")
    assert missing.requests == 1  # a 404 is not retried
    assert ok.mode == "synced"
    errors = {row["key"]: row["last_error"] for row in store.figma_rows()["files"]}
    assert "404" in errors["NoSuchFile1234"] and errors[KEY] is None
    assert TOKEN not in errors["NoSuchFile1234"]


def test_refresh_by_webhook_event(world: FigmaWorld, api: FigmaAPI, store: Store) -> None:
    clock = Clock(NOW)
    mirror = FigmaMirror(api, store, [KEY], clock=clock)
    mirror.sync()
    world.reset_counts()

    assert mirror.refresh(KEY, "PING").requests == 0
    assert mirror.refresh("OtherFile12345", "FILE_UPDATE").mode == "skipped"
    assert world.count() == 0

    world.add_comment("148:129", "Et le mode sombre ?", "Léa Dubois")
    comment = mirror.refresh(KEY, "FILE_COMMENT")
    assert (comment.mode, comment.requests) == ("synced", 1)
    assert world.count("comments") == 1
    assert len(store.figma_rows()["comments"]) == 5

    update = mirror.refresh(KEY, "FILE_UPDATE")
    assert (update.requests, update.tree_read) == (1, False)  # /meta: same version
    world.new_version("v4")
    # within the interval after the first tree read: the new version waits (meta + versions)
    held = mirror.refresh(KEY, "FILE_VERSION_UPDATE")
    assert (held.requests, held.tree_read) == (2, False)
    assert held.tier1_postponed_until == utc_iso(NOW + timedelta(minutes=60))
    clock.now = NOW + timedelta(minutes=61)
    world.new_version("v5")
    version = mirror.refresh(KEY, "FILE_VERSION_UPDATE")
    assert (version.requests, version.tree_read) == (3, True)
    assert _counts(world) == {"meta": 3, "versions": 2, "comments": 1, "tree": 1}


def test_row_translation_edge_cases() -> None:
    rows = comment_rows(
        KEY,
        [
            {
                "id": 1,
                "user": {"handle": "A"},
                "message": "m",
                "created_at": "2026-01-01T00:00:00Z",
                "client_meta": {"x": 1, "y": 2},
            },
            {
                "id": "2",
                "parent_id": "1",
                "user": {"handle": "B"},
                "message": "reply",
                "created_at": "2026-01-02T00:00:00Z",
                "client_meta": {"node_id": "5:95"},
            },
            {
                "id": "3",
                "user": None,
                "message": "pinned",
                "created_at": "bad date",
                "resolved_at": "2026-01-03T00:00:00Z",
                "client_meta": {"node_id": "5:95"},
            },
        ],
    )
    assert [row["node_id"] for row in rows] == [None, None, "5:95"]
    assert rows[0]["id"] == "1" and rows[0]["created_at"] == "2026-01-01T00:00:00.000Z"
    assert rows[2]["created_at"] == "" and rows[2]["resolved_at"] == "2026-01-03T00:00:00.000Z"
    with pytest.raises(ApiError):
        node_rows(KEY, {"document": {"id": "0:0", "children": []}})


# ----------------------------------------------------------------------------- the report


def _card(card_id: str, name: str, activity: datetime | None, **flags: bool) -> CardFacts:
    return CardFacts(
        id=card_id,
        board_id="b-prod",
        board_role="product",
        name=name,
        desc="",
        url=f"https://trello.com/c/{card_id}",
        list_id="l1",
        labels=(),
        members=(),
        checklists=(),
        custom_fields={},
        closed=flags.get("closed", False),
        deleted=flags.get("deleted", False),
        date_last_activity=activity,
    )


def _mirror_rows(links: list[dict[str, Any]]) -> RulesMirror:
    empty: list[dict[str, Any]] = []
    rows = MirrorRows(
        boards=empty,
        lists=empty,
        labels=empty,
        members=empty,
        cards=empty,
        card_labels=empty,
        card_members=empty,
        checklists=empty,
        check_items=empty,
        custom_fields=empty,
        custom_field_items=empty,
        attachments=empty,
        figma_links=links,
    )
    return RulesMirror.from_rows(rows)


def _link(card_id: str, node_id: str = "") -> dict[str, Any]:
    return {"card_id": card_id, "file_key": KEY, "node_id": node_id, "url": "u", "source": "desc"}


def _figma_rows(now: datetime) -> dict[str, list[dict[str, Any]]]:
    def at(days: float) -> str:
        return utc_iso(now - timedelta(days=days))

    def node(node_id: str, page: str | None, kind: str = "FRAME", deleted: str | None = None):
        return {
            "file_key": KEY,
            "node_id": node_id,
            "page_id": page,
            "name": f"n{node_id}",
            "type": kind,
            "first_seen_at": at(30),
            "deleted_at": deleted,
        }

    def check(node_id: str, found: bool, seen: str | None = None):
        return {
            "file_key": KEY,
            "node_id": node_id,
            "found": found,
            "name": f"n{node_id}" if found else "",
            "type": "FRAME",
            "version": "v5",
            "checked_at": at(0),
            "seen_at": at(0) if found else seen,
        }

    def comment(cid: str, node_id: str | None, days: float, resolved: str | None = None):
        return {
            "file_key": KEY,
            "id": cid,
            "author": "Léa",
            "message": f"c{cid}",
            "created_at": at(days),
            "resolved_at": resolved,
            "node_id": node_id,
        }

    return {
        "files": [
            {
                "key": KEY,
                "name": "Maquettes",
                "last_modified": at(2),
                "version": "v5",
                "editor_type": "figma",
                "thumbnail_url": None,
                "tree_version": "v5",
                "last_synced_at": at(0),
                "rate_limited_until": utc_iso(now + timedelta(hours=5)),
                "last_error": None,
            }
        ],
        "nodes": [
            node("0:1", None, "CANVAS"),
            node("5:95", "0:1"),
            node("148:129", "0:1"),
            node("7:7", "0:1", deleted=at(1)),
            node("8:8", "0:1", "TEXT"),
        ],
        "versions": [
            {
                "file_key": KEY,
                "id": f"v{i}",
                "created_at": at(days),
                "label": None,
                "description": None,
                "user_name": "M",
            }
            for i, days in ((1, 40), (5, 2), (3, 10))
        ],
        "node_checks": [
            check("5:95", True),
            check("148:129", True),
            check("7:7", False, seen=at(3)),  # a frame removed from the file
            check("999:1", False),  # never existed
            check("5:131", True),  # a button inside 5:95: not in the tree, found by /nodes
        ],
        "comments": [
            comment("c1", "5:95", 3),
            comment("c2", "5:95", 1),
            comment("c3", "5:95", 5, resolved=at(4)),
            comment("c4", "148:129", 2),
            comment("c5", None, 1),
        ],
    }


def test_figma_section_links_newer_designs_and_open_comments() -> None:
    cards = [
        _card("p1", "Accueil usager", NOW - timedelta(days=20)),  # older than the newest version
        _card("p2", "Agenda agent", NOW - timedelta(days=1)),
        _card("p3", "Statistiques", NOW - timedelta(days=1)),
        _card("p4", "Ancien écran", NOW - timedelta(days=50), closed=True),
        _card("p5", "Supprimée", NOW - timedelta(days=50), deleted=True),
        _card("p6", "Écran supprimé", NOW - timedelta(hours=1)),
        _card("p7", "Bouton « Prendre RDV »", NOW - timedelta(hours=1)),
        _card("p8", "Pas encore vérifiée", NOW - timedelta(hours=1)),
    ]
    links = [
        _link("p1", "5:95"),
        _link("p1"),
        _link("p2", "148:129"),
        _link("p3", "999:1"),
        _link("p4", "999:1"),
        _link("p5", "5:95"),
        _link("p6", "7:7"),
        _link("p7", "5:131"),  # nested layer, found by /nodes: not broken
        _link("p8", "42:42"),  # never checked yet: not broken on a guess
        {**_link("p9", "5:95")},
    ]  # p9: a link whose card is unknown
    section = build_figma_section(
        _figma_rows(NOW),
        _mirror_rows(links),
        MirrorFacts(cards, []),
        {"p1", "p5"},
        [KEY, "NeverSynced0001"],
        NOW,
    )
    synced, never = section["files"]
    assert synced["linked_cards"] == 7  # p1-p4, p6-p8; deleted p5 and unknown p9 don't count
    assert synced["version"] == "v5" and synced["name"] == "Maquettes"
    assert synced["frames"] == 2  # 5:95, 148:129 (7:7 deleted, 8:8 a TEXT, 0:1 a page)
    assert synced["rate_limited_until"] == utc_iso(NOW + timedelta(hours=5))
    assert [(b["card_id"], b["node_id"], b["reason"]) for b in synced["broken_links"]] == [
        ("p6", "7:7", "deleted"),
        ("p3", "999:1", "missing"),
    ]
    assert synced["broken_links"][1]["card_url"] == "https://trello.com/c/p3"
    assert [n["card_id"] for n in synced["newer_designs"]] == ["p1"]
    assert synced["newer_designs"][0]["version_created_at"] == utc_iso(NOW - timedelta(days=2))
    assert [c["id"] for c in synced["open_comments"]] == ["c2", "c1"]  # p1's frame, newest first
    assert synced["open_comments"][0]["author"] == "Léa"
    assert never == {
        **never,
        "key": "NeverSynced0001",
        "name": "",
        "version": None,
        "linked_cards": 0,
        "broken_links": [],
        "newer_designs": [],
        "open_comments": [],
        "frames": 0,
    }

    later = build_figma_section(
        _figma_rows(NOW),
        _mirror_rows(links),
        MirrorFacts(cards, []),
        set(),
        [KEY],
        NOW + timedelta(hours=6),
    )["files"][0]
    assert later["rate_limited_until"] is None and later["open_comments"] == []


def test_figma_section_reports_no_broken_link_before_figma_answered() -> None:
    rows = _figma_rows(NOW)
    rows["files"][0]["tree_version"] = None
    rows["nodes"] = []
    rows["node_checks"] = []
    section = build_figma_section(
        rows,
        _mirror_rows([_link("p3", "999:1")]),
        MirrorFacts([_card("p3", "Stats", NOW)], []),
        set(),
        [KEY],
        NOW,
    )
    assert section["files"][0]["broken_links"] == []
    assert section["files"][0]["linked_cards"] == 1


def test_figma_section_over_10000_cards() -> None:
    cards = [_card(f"c{i}", f"Carte {i}", NOW - timedelta(days=i % 60)) for i in range(10_000)]
    links = [_link(f"c{i}", ("5:95", "148:129", "999:1", "")[i % 4]) for i in range(10_000)]
    section = build_figma_section(
        _figma_rows(NOW),
        _mirror_rows(links),
        MirrorFacts(cards, []),
        {f"c{i}" for i in range(0, 10_000, 7)},
        [KEY],
        NOW,
    )
    file = section["files"][0]
    assert file["linked_cards"] == 10_000
    assert len(file["broken_links"]) == 2_500
