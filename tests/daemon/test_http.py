"""The HTTP app (`create_app`) over a real daemon core (`Daemon.web_context()`): a SQLite store in
tmp_path and the sandbox on 127.0.0.1:0. Webhook verification and limits, health, metrics,
report, dashboard, admin token, and a burst of signed deliveries while full syncs run.

The same routes over a store filled by hand, with no daemon and no sandbox: `tests/web/`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from adapters.sandbox import (
    CONSORTIUM_SHORT_LINK,
    FIGMA_FILE_KEY,
    PRODUCT_SHORT_LINK,
    Sandbox,
    webhook_signature,
)
from adapters.sandbox.figma_world import build_sample_figma
from state import models as m
from syncd.config import Secrets, Settings
from syncd.daemon.run import Daemon
from syncd.demo import demo_settings
from syncd.payloads import MAX_BODY_BYTES
from syncd.trello.webhooks import trello_callback_url
from syncd.web.app import create_app

PASSCODE = "figma-passcode"
ADMIN = "admin-token-xyz"


class Clock:
    def __init__(self) -> None:
        self.shift = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


class Env:
    def __init__(self, sandbox: Sandbox, daemon: Daemon, client: TestClient, clock: Clock):
        self.sandbox = sandbox
        self.w = sandbox.world
        self.daemon = daemon
        self.client = client
        self.clock = clock

    def sign(self, body: bytes) -> dict[str, str]:
        callback = trello_callback_url(self.daemon.settings)
        signature = webhook_signature(self.sandbox.api_secret, body, callback)
        return {"X-Trello-Webhook": signature, "Content-Type": "application/json"}

    def post(self, action: dict[str, Any], *, signed: bool = True, model: Any = None) -> Any:
        model = model or {"id": action["data"]["board"]["id"]}
        body = json.dumps({"action": action, "model": model, "webhook": {}}).encode()
        headers = self.sign(body) if signed else {}
        return self.client.post("/webhooks/trello", content=body, headers=headers)

    def versions(self, action_id: str) -> list[dict[str, Any]]:
        table = m.CardVersion.__table__
        with self.daemon.store.reader.begin() as connection:
            rows = connection.execute(select(table).where(table.c.action_id == action_id))
            return [dict(row) for row in rows.mappings()]

    def stored_anywhere(self, action_id: str) -> bool:
        store = self.daemon.store
        return (
            bool(store.known_actions([action_id]))
            or store.count(m.WebhookDelivery, m.WebhookDelivery.action_id == action_id) > 0
            or bool(self.versions(action_id))
        )


def _settings(sandbox: Sandbox, db: Path, admin: str | None) -> Settings:
    base = demo_settings(sandbox, db)
    secrets = Secrets(
        TRELLO_API_KEY=sandbox.api_key,
        TRELLO_TOKEN=sandbox.token,
        TRELLO_API_SECRET=sandbox.api_secret,
        FIGMA_TOKEN="sandbox-figma-token",
        FIGMA_WEBHOOK_PASSCODE=PASSCODE,
        SYNCD_ADMIN_TOKEN=admin,
    )
    return base.model_copy(update={"secrets": secrets})


@contextmanager
def _env(tmp_path: Path, *, admin: str | None = None, **sandbox_kw: Any) -> Iterator[Env]:
    with Sandbox(deliver_webhooks=False, **sandbox_kw) as sandbox:
        sandbox.figma = build_sample_figma()
        clock = Clock()
        daemon = Daemon(_settings(sandbox, tmp_path / "store.db", admin), clock=clock)
        daemon.start_workers()
        daemon.sync_pass(full=True)
        with TestClient(create_app(daemon.web_context())) as client:
            yield Env(sandbox, daemon, client, clock)
        daemon.stop()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with _env(tmp_path) as env:
        yield env


def _move(env: Env, name: str = "Drôme", to: str = "Fait") -> dict[str, Any]:
    card = env.w.find_card(name, board=CONSORTIUM_SHORT_LINK)
    return env.w.move_card(card["id"], env.w.find_list(CONSORTIUM_SHORT_LINK, to))


# -- Trello webhook ------------------------------------------------------------------------


def test_head_is_200_for_trellos_check(env: Env) -> None:
    assert env.client.head("/webhooks/trello").status_code == 200


def test_signed_delivery_is_accepted_and_applied(env: Env) -> None:
    action = _move(env)
    response = env.post(action)
    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "action": action["id"]}
    assert env.daemon.worker.wait_idle(10)
    versions = env.versions(action["id"])
    assert [(v["field"], v["source"]) for v in versions] == [("list", "webhook")]


@pytest.mark.parametrize("signature", [None, "", "AAAA", "wrong-signature=="])
def test_bad_or_missing_signature_is_401_and_nothing_stored(env: Env, signature: Any) -> None:
    action = _move(env)
    body = json.dumps({"action": action}).encode()
    headers = {} if signature is None else {"X-Trello-Webhook": signature}
    response = env.client.post("/webhooks/trello", content=body, headers=headers)
    assert response.status_code == 401
    env.daemon.worker.wait_idle(5)
    assert not env.stored_anywhere(action["id"])


def test_reencoded_body_is_401(env: Env) -> None:
    action = _move(env)
    body = json.dumps({"action": action}).encode()
    headers = env.sign(body)
    reencoded = json.dumps(json.loads(body), indent=1).encode()
    response = env.client.post("/webhooks/trello", content=reencoded, headers=headers)
    assert response.status_code == 401
    assert not env.stored_anywhere(action["id"])


@pytest.mark.parametrize("body", [b"not json at all", b"[]", b'{"action": {"type": "x"}}'])
def test_signed_but_not_a_delivery_is_400(env: Env, body: bytes) -> None:
    response = env.client.post("/webhooks/trello", content=body, headers=env.sign(body))
    assert response.status_code == 400


def test_body_over_one_mib_is_413(env: Env) -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    response = env.client.post("/webhooks/trello", content=big, headers=env.sign(big))
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bytes read are counted
        for _ in range(17):
            yield b" " * 65536

    response = env.client.post("/webhooks/trello", content=chunks())
    assert response.status_code == 413
    exact = b" " * MAX_BODY_BYTES  # exactly 1 MiB is allowed (then rejected for what it is)
    assert env.client.post("/webhooks/trello", content=exact).status_code == 401
    assert env.daemon.metrics.delivery_count("too_large") == 2


def test_replayed_delivery_is_200_and_applied_once(env: Env) -> None:
    action = _move(env)
    first = env.post(action)
    second = env.post(action)
    assert first.status_code == second.status_code == 200
    assert env.daemon.worker.wait_idle(10)
    third = env.post(action)  # after it was applied
    assert third.status_code == 200 and third.json()["status"] == "replay"
    assert env.daemon.worker.wait_idle(10)
    assert len(env.versions(action["id"])) == 1
    assert env.daemon.store.count(m.WebhookDelivery) == 1
    assert env.daemon.metrics.delivery_count("applied") == 1
    assert env.daemon.metrics.delivery_count("replay") == 2


def test_unknown_board_is_410_and_stored_nowhere(env: Env) -> None:
    action = _move(env)
    action["data"]["board"] = {"id": "5f0000000000000000000bad", "shortLink": "ZZZZZZZZ"}
    response = env.post(action, model={"id": "5f0000000000000000000bad"})
    assert response.status_code == 410
    env.daemon.worker.wait_idle(5)
    assert not env.stored_anywhere(action["id"])
    assert env.daemon.metrics.delivery_count("unknown_board") == 1


def test_board_known_by_short_link_only_is_ours(env: Env) -> None:
    action = _move(env)
    action["data"]["board"] = {"shortLink": CONSORTIUM_SHORT_LINK}
    assert env.post(action, model={"x": 1}).status_code == 200
    assert env.daemon.worker.wait_idle(10)
    assert len(env.versions(action["id"])) == 1


# -- Figma webhook -------------------------------------------------------------------------


def test_figma_passcode(env: Env) -> None:
    event = {"event_type": "FILE_VERSION_UPDATE", "file_key": FIGMA_FILE_KEY, "passcode": "nope"}
    before = env.sandbox.count("/v1/")
    assert env.client.post("/webhooks/figma", json=event).status_code == 401
    assert env.client.post("/webhooks/figma", json={"event_type": "PING"}).status_code == 401
    assert env.client.post("/webhooks/figma", content=b"nope").status_code == 401  # no passcode
    env.daemon.worker.wait_idle(5)
    assert env.sandbox.count("/v1/") == before
    event["passcode"] = PASSCODE
    response = env.client.post("/webhooks/figma", json=event)
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert env.daemon.worker.wait_idle(10)
    assert env.sandbox.count("/v1/") > before  # the file was refreshed
    ping = {"event_type": "PING", "passcode": PASSCODE}
    assert env.client.post("/webhooks/figma", json=ping).json()["status"] == "pong"
    other = {"event_type": "FILE_UPDATE", "file_key": "NotOurFile123", "passcode": PASSCODE}
    assert env.client.post("/webhooks/figma", json=other).json()["status"] == "ignored"


# -- health, metrics, report ---------------------------------------------------------------


def test_healthz(env: Env) -> None:
    response = env.client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_after_sync_then_stale(env: Env) -> None:
    response = env.client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    poll = env.daemon.settings.schedule.poll_seconds
    env.clock.shift = timedelta(seconds=3 * poll)
    consortium = next(b for b in env.daemon.settings.trello.boards if b.role == "consortium")
    assert env.daemon.runtime.mirror.sync_board(consortium).error is None  # fresh again
    response = env.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["stale"] == [PRODUCT_SHORT_LINK]
    assert PRODUCT_SHORT_LINK in body["reason"]
    assert CONSORTIUM_SHORT_LINK not in body["reason"]


def test_readyz_reports_the_last_error(env: Env) -> None:
    env.clock.shift = timedelta(seconds=3 * env.daemon.settings.schedule.poll_seconds)
    env.sandbox.fail_next(50, status=500, path_prefix="/1/")
    env.daemon.runtime.trello.session.policy = type(env.daemon.runtime.trello.session.policy)(
        max_attempts=1
    )
    env.daemon.sync_pass()
    env.sandbox.clear_faults()
    response = env.client.get("/readyz")
    assert response.status_code == 503
    boards = {b["board"]: b for b in response.json()["boards"]}
    assert "500" in boards[CONSORTIUM_SHORT_LINK]["last_error"]


def test_metrics(env: Env) -> None:
    env.post(_move(env))
    env.post(_move(env, "Meuse"), signed=False)
    assert env.daemon.worker.wait_idle(10)
    response = env.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'syncd_webhook_deliveries_total{outcome="accepted",source="trello"} 1.0' in text
    assert 'syncd_webhook_deliveries_total{outcome="applied",source="trello"} 1.0' in text
    assert 'syncd_webhook_deliveries_total{outcome="bad_signature",source="trello"} 1.0' in text
    assert (
        'syncd_api_requests_total{endpoint="/1/boards/{id}",method="GET",service="trello"' in text
    )
    assert "syncd_api_retries_total" in text and "syncd_api_rate_limited_total" in text
    assert 'syncd_sync_duration_seconds_count{kind="full"} 1.0' in text
    for board in (CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK):
        assert f'syncd_cards_mirrored{{board="{board}"}}' in text
        assert f'syncd_last_successful_sync_timestamp_seconds{{board="{board}"}}' in text
    cards = env.daemon.store.live_card_counts()
    assert f'syncd_cards_mirrored{{board="{CONSORTIUM_SHORT_LINK}"}} ' in text
    assert sum(cards.values()) > 0
    assert 'syncd_flags_open{code="TOO_MANY_PRIORITIES"}' in text
    assert (
        f'syncd_figma_rate_limited_until_timestamp_seconds{{file="{FIGMA_FILE_KEY}"}} 0.0' in text
    )
    assert env.sandbox.token not in text and env.sandbox.api_secret not in text


def test_api_report_shape(env: Env) -> None:
    response = env.client.get("/api/report")
    assert response.status_code == 200
    report = response.json()
    assert {"generated_at", "boards", "departments", "flags", "changes", "figma"} <= set(report)
    assert {b["role"] for b in report["boards"]} == {"consortium", "product"}
    assert set(report["boards"][0]) >= {"id", "name", "role", "last_synced_at", "cards"}
    department = report["departments"][0]
    assert set(department) >= {
        "code",
        "name",
        "dashboard_card",
        "referents",
        "priority_actions",
        "topics",
        "linked_cards",
        "flags",
    }
    assert report["changes"] == []
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    env.post(_move(env))
    assert env.daemon.worker.wait_idle(10)
    changes = env.client.get("/api/report", params={"since": since, "lang": "en"}).json()
    assert any(change["kind"] == "moved" for change in changes["changes"])
    assert env.client.get("/api/report", params={"since": "yesterday"}).status_code == 400
    assert env.client.get("/api/report", params={"lang": "de"}).status_code == 400


def test_dashboard_escapes_titles(env: Env) -> None:
    card = env.w.find_card("Drôme", board=CONSORTIUM_SHORT_LINK)
    checklist = env.w.find_checklist(card["id"], "Actions prioritaires")
    action = env.w.add_check_item(checklist, "<script>alert(1)</script> & co")
    assert env.post(action).status_code == 200
    assert env.daemon.worker.wait_idle(10)
    response = env.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "<script>alert(1)" not in html


def test_admin_token(tmp_path: Path) -> None:
    with _env(tmp_path, admin=ADMIN) as env:
        client = env.client
        assert client.get("/metrics").status_code == 200  # open, as the contract says
        for path in ("/api/report", "/"):
            assert client.get(path).status_code == 401, path
            bad = {"Authorization": "Bearer nope"}
            assert client.get(path, headers=bad).status_code == 401, path
            good = {"Authorization": f"Bearer {ADMIN}"}
            assert client.get(path, headers=good).status_code == 200, path
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.head("/webhooks/trello").status_code == 200
        assert env.post(_move(env)).status_code == 200  # webhooks carry their own proof
        event = {"event_type": "PING", "passcode": PASSCODE}
        assert client.post("/webhooks/figma", json=event).status_code == 200


# -- a burst while full syncs run ------------------------------------------------------------


def _mutations(env: Env) -> list[Callable[[], dict[str, Any]]]:
    w = env.w
    board = CONSORTIUM_SHORT_LINK
    cards = [w.find_card(name, board=board) for name in ("Drôme", "Meuse", "Calvados")]
    lists = [w.find_list(board, n) for n in ("Actions en cours", "Fait", "Départements")]
    label = w.find_label(board, "Transverse")
    member = w.find_member("Léa Dubois")
    with w.lock:
        items = [
            (c["id"], item["id"])
            for c in cards
            for checklist_id in w.cards[c["id"]]["idChecklists"]
            for item in w.checklists[checklist_id]["checkItems"]
        ]
    steps: list[Callable[[], dict[str, Any]]] = []
    for i in range(1000):
        card = cards[i % len(cards)]["id"]
        kind = i % 4
        if kind == 0:
            steps.append(lambda c=card, n=i: w.move_card(c, lists[n % len(lists)]))
        elif kind == 1:
            cid, item = items[i % len(items)]
            steps.append(lambda c=cid, it=item, n=i: w.set_check_item(c, it, n % 8 < 4))
        elif kind == 2:
            steps.append(
                lambda c=card, n=i: (w.add_label if n % 8 < 4 else w.remove_label)(c, label)
            )
        else:
            steps.append(
                lambda c=card, n=i: (w.add_member if n % 8 < 4 else w.remove_member)(c, member)
            )
    return steps


def test_burst_of_1000_deliveries_during_full_syncs(tmp_path: Path) -> None:
    with _env(tmp_path, rate_limit_per_10s=None) as env:
        env.daemon.runtime.trello.session.bucket = None  # loopback: no client-side budget
        env.daemon.runtime.figma = None  # Trello only (Figma's budget is 10 requests/min)
        steps = _mutations(env)
        stop = threading.Event()
        passes = []

        def full_syncs() -> None:  # back to back, with a breath between two
            while not stop.is_set():
                env.daemon.sync_pass(full=True)
                passes.append(1)
                stop.wait(0.1)

        syncer = threading.Thread(target=full_syncs)
        syncer.start()
        ids = []
        try:
            for step in steps:
                action = step()
                ids.append(action["id"])
                response = env.post(action)
                assert response.status_code == 200, response.text
            assert env.daemon.worker.wait_idle(120), "deliveries not applied in time"
        finally:
            stop.set()
            syncer.join(60)
        assert len(passes) >= 2, "full syncs did not run during the burst"
        store = env.daemon.store
        table = m.WebhookDelivery.__table__
        with store.reader.begin() as connection:
            outcomes = dict(connection.execute(select(table.c.action_id, table.c.outcome)).all())
        assert set(ids) <= set(outcomes)
        assert {outcomes[i] for i in ids} == {"applied"}
        assert store.known_actions(ids) == set(ids)
        assert env.daemon.metrics.delivery_count("applied") == 1000
        assert env.daemon.metrics.delivery_count("failed") == 0
        # Nothing lost: a fresh snapshot finds the mirror already equal to Trello.
        consortium = next(b for b in env.daemon.settings.trello.boards if b.role == "consortium")
        report = env.daemon.runtime.mirror.sync_board(consortium, full=True)
        assert report.error is None and report.changes == 0
