"""Every route of the web layer over a store filled by hand: no daemon, no sandbox, no network.

The app is `create_app(WebContext(...))` in an in-process TestClient; the delivery intake is a
recorder (what the web layer must do is hand a verified delivery over and answer at once), the
readiness provider the daemon's `SyncHealth` over the same store, the clock a fixed one.
The same routes over a whole daemon and the sandbox: `tests/daemon/test_http.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from state.store import Store
from state.timestamps import utc_iso
from syncd.config import (
    BoardConfig,
    FigmaConfig,
    Secrets,
    Settings,
    StoreConfig,
    TrelloConfig,
)
from syncd.daemon.health import SyncHealth
from syncd.metrics import Metrics
from syncd.payloads import MAX_BODY_BYTES
from syncd.rules.flags import recompute
from syncd.rules.governance import Rules
from syncd.trello.rows import snapshot_batch
from syncd.trello.schema import TrelloAction
from syncd.trello.webhooks import trello_callback_url, trello_signature
from syncd.web.app import create_app
from syncd.web.context import IntakeClosed, WebContext

REPO = Path(__file__).resolve().parents[2]
SECRET = "trello-app-secret"
PASSCODE = "figma-passcode"
ADMIN = "admin-token-xyz"
FIGMA_KEY = "JhZCwwrmaw2NYrITCj8QAK"
CONSORTIUM, PRODUCT = "oSmy09cz", "BiT8tx09"
BOARD_ID = "b" * 23 + "1"
PRODUCT_ID = "b" * 23 + "2"
DROME, MEUSE = "c" * 23 + "1", "c" * 23 + "2"
LIST_TODO, LIST_DONE = "d" * 23 + "1", "d" * 23 + "2"
START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RecordingIntake:
    """The delivery intake: records what it is offered; a replay is an action id seen before."""

    trello: list[tuple[str, str, str]] = field(default_factory=list)
    figma: list[tuple[str, str]] = field(default_factory=list)
    closed: bool = False

    def offer_trello(self, action: TrelloAction, board: BoardConfig, board_id: str) -> bool:
        if self.closed:
            raise IntakeClosed("stopping")
        fresh = all(seen != action.id for seen, _, _ in self.trello)
        self.trello.append((action.id, board.id, board_id))
        return fresh

    def queue_trello(self, action: TrelloAction, board: BoardConfig, board_id: str) -> Future[bool]:
        queued: Future[bool] = Future()
        queued.set_result(self.offer_trello(action, board, board_id))
        return queued

    def offer_figma(self, key: str, event: str) -> None:
        if self.closed:
            raise IntakeClosed("stopping")
        self.figma.append((key, event))


def _settings(db: Path, *, admin: str | None, boards: tuple[BoardConfig, ...]) -> Settings:
    return Settings(
        store=StoreConfig(url=f"sqlite:///{db}"),
        trello=TrelloConfig(boards=boards),
        figma=FigmaConfig(files=(FIGMA_KEY,)),
        governance=Rules(departments=("26", "55")),
        secrets=Secrets(
            TRELLO_API_SECRET=SECRET,
            FIGMA_WEBHOOK_PASSCODE=PASSCODE,
            SYNCD_ADMIN_TOKEN=admin,
        ),
    )


def _card(card_id: str, name: str, list_id: str = LIST_TODO, **extra: Any) -> dict[str, Any]:
    return {
        "id": card_id,
        "idBoard": BOARD_ID,
        "idList": list_id,
        "name": name,
        "desc": "",
        "idLabels": [],
        "idMembers": [],
        "closed": False,
        "pos": 1,
        "dateLastActivity": "2026-11-01T00:00:00.000Z",
        **extra,
    }


def _snapshot(cards: list[dict[str, Any]], item: str = "Ouvrir les RDV") -> dict[str, Any]:
    return {
        "id": BOARD_ID,
        "shortLink": CONSORTIUM,
        "name": "lapins-consortium-départements",
        "url": f"https://trello.com/b/{CONSORTIUM}",
        "dateLastActivity": "2026-11-01T00:00:00.000Z",
        "lists": [
            {"id": LIST_TODO, "name": "Départements", "pos": 1},
            {"id": LIST_DONE, "name": "Fait", "pos": 2},
        ],
        "labels": [],
        "members": [{"id": "m1", "fullName": "Camille Martin", "username": "cm"}],
        "customFields": [],
        "cards": cards,
        "checklists": [
            {
                "id": "k1",
                "idCard": DROME,
                "name": "Actions prioritaires",
                "checkItems": [{"id": "i1", "name": item, "state": "incomplete"}],
            }
        ],
    }


def _write(store: Store, clock: Clock, cards: list[dict[str, Any]], **kw: Any) -> None:
    batch = snapshot_batch(
        _snapshot(cards, **kw),
        board_ref=CONSORTIUM,
        role="consortium",
        observed_at=utc_iso(clock()),
    )
    store.write_board(batch)


BASE_CARDS = [_card(DROME, "Drôme", idMembers=["m1"]), _card(MEUSE, "Meuse")]


@dataclass
class Web:
    client: TestClient
    store: Store
    settings: Settings
    intake: RecordingIntake
    metrics: Metrics
    clock: Clock

    def post(self, action: dict[str, Any], *, signed: bool = True, model: Any = None) -> Any:
        model = model if model is not None else {"id": BOARD_ID}
        body = json.dumps({"action": action, "model": model, "webhook": {}}).encode()
        return self.client.post("/webhooks/trello", content=body, headers=self.sign(body, signed))

    def sign(self, body: bytes, signed: bool = True) -> dict[str, str]:
        if not signed:
            return {"Content-Type": "application/json"}
        signature = trello_signature(SECRET, body, trello_callback_url(self.settings))
        return {"X-Trello-Webhook": signature, "Content-Type": "application/json"}


def _action(action_id: str = "a" * 24, **board: str) -> dict[str, Any]:
    return {
        "id": action_id,
        "type": "updateCard",
        "date": "2026-11-30T08:00:00.000Z",
        "data": {
            "board": board or {"id": BOARD_ID, "shortLink": CONSORTIUM},
            "card": {"id": DROME, "idList": LIST_DONE},
            "old": {"idList": LIST_TODO},
        },
    }


@contextmanager
def _web(
    tmp_path: Path, *, admin: str | None = None, boards: tuple[BoardConfig, ...] | None = None
) -> Iterator[Web]:
    boards = boards or (
        BoardConfig(id=CONSORTIUM, role="consortium"),
        BoardConfig(id=PRODUCT_ID, role="product"),
    )
    settings = _settings(tmp_path / "store.db", admin=admin, boards=boards)
    store = Store(settings.store.url)
    clock = Clock()
    _write(store, clock, BASE_CARDS)
    recompute(store, settings.governance, clock())
    metrics = Metrics()
    intake = RecordingIntake()
    health = SyncHealth(settings, store, clock=clock)
    context = WebContext(
        settings=settings,
        store=store,
        metrics=metrics,
        health=health,
        intake=intake,
        clock=clock,
    )
    with TestClient(create_app(context)) as client:
        yield Web(client, store, settings, intake, metrics, clock)
    store.close()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with _web(tmp_path) as web:
        yield web


# -- the layering ---------------------------------------------------------------------------


def test_the_web_layer_imports_no_daemon() -> None:
    code = (
        "import sys, syncd.web.app; "
        "print(sorted(m for m in sys.modules if m.startswith('syncd.daemon')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# -- Trello webhook ------------------------------------------------------------------------


def test_head_is_200_for_trellos_check(web: Web) -> None:
    assert web.client.head("/webhooks/trello").status_code == 200


def test_signed_delivery_is_handed_over_and_answered_at_once(web: Web) -> None:
    response = web.post(_action())
    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "action": "a" * 24}
    assert web.intake.trello == [("a" * 24, CONSORTIUM, BOARD_ID)]
    replay = web.post(_action())
    assert replay.status_code == 200 and replay.json()["status"] == "replay"
    assert web.metrics.delivery_count("accepted") == 1
    assert web.metrics.delivery_count("replay") == 1


@pytest.mark.parametrize("signature", [None, "", "AAAA", "wrong-signature=="])
def test_bad_or_missing_signature_is_401_and_nothing_handed_over(
    web: Web, signature: str | None
) -> None:
    body = json.dumps({"action": _action()}).encode()
    headers = {} if signature is None else {"X-Trello-Webhook": signature}
    assert web.client.post("/webhooks/trello", content=body, headers=headers).status_code == 401
    assert web.intake.trello == []
    assert web.metrics.delivery_count("bad_signature") == 1


def test_reencoded_body_is_401(web: Web) -> None:
    body = json.dumps({"action": _action()}).encode()
    reencoded = json.dumps(json.loads(body), indent=1).encode()
    response = web.client.post("/webhooks/trello", content=reencoded, headers=web.sign(body))
    assert response.status_code == 401 and web.intake.trello == []


@pytest.mark.parametrize(
    "body", [b"not json at all", b"[]", b'{"action": {"type": "x"}}', b'{"action": {"id": "x"}}']
)
def test_signed_but_not_a_delivery_is_400(web: Web, body: bytes) -> None:
    response = web.client.post("/webhooks/trello", content=body, headers=web.sign(body))
    assert response.status_code == 400
    assert response.json()["status"] == "rejected"
    assert web.intake.trello == []


def test_body_over_one_mib_is_413(web: Web) -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    assert (
        web.client.post("/webhooks/trello", content=big, headers=web.sign(big)).status_code == 413
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bytes read are counted
        for _ in range(17):
            yield b" " * 65536

    assert web.client.post("/webhooks/trello", content=chunks()).status_code == 413
    exact = b" " * MAX_BODY_BYTES  # exactly 1 MiB is allowed (then rejected for what it is)
    assert web.client.post("/webhooks/trello", content=exact).status_code == 401
    assert web.client.post("/webhooks/figma", content=big).status_code == 413
    assert web.metrics.delivery_count("too_large") == 2
    assert web.metrics.delivery_count("too_large", "figma") == 1


def test_unknown_board_is_410_once_every_board_is_resolved(web: Web) -> None:
    other = _action(id="5f0000000000000000000bad", shortLink="ZZZZZZZZ")
    response = web.post(other, model={"id": "5f0000000000000000000bad"})
    assert response.status_code == 410
    assert web.intake.trello == []
    assert web.metrics.delivery_count("unknown_board") == 1


def test_unknown_board_is_202_while_a_configured_board_is_unresolved(tmp_path: Path) -> None:
    boards = (
        BoardConfig(id=CONSORTIUM, role="consortium"),
        BoardConfig(id=PRODUCT, role="product"),
    )
    with _web(tmp_path, boards=boards) as web:  # PRODUCT was never synced: its id is unknown
        other = _action(id="5f0000000000000000000bad", shortLink="ZZZZZZZZ")
        assert web.post(other, model={"id": "5f0000000000000000000bad"}).status_code == 202
        assert web.intake.trello == []


def test_board_known_by_short_link_only_is_ours(web: Web) -> None:
    response = web.post(_action(shortLink=CONSORTIUM), model={"x": 1})
    assert response.status_code == 200
    assert web.intake.trello == [("a" * 24, CONSORTIUM, BOARD_ID)]


def test_no_board_in_the_action_is_400(web: Web) -> None:
    action = _action()
    action["data"]["board"] = {}
    assert web.post(action, model={"x": 1}).status_code == 400


def test_an_action_type_not_modelled_is_accepted_and_counted(web: Web) -> None:
    action = {**_action(), "type": "someFutureType"}
    assert web.post(action).status_code == 200
    assert (
        web.metrics.registry.get_sample_value(
            "syncd_webhook_unknown_shapes_total", {"source": "trello"}
        )
        == 1
    )
    event = {"event_type": "LIBRARY_PUBLISH", "file_key": FIGMA_KEY, "passcode": PASSCODE}
    assert web.client.post("/webhooks/figma", json=event).json() == {"status": "ignored"}
    assert (
        web.metrics.registry.get_sample_value(
            "syncd_webhook_unknown_shapes_total", {"source": "figma"}
        )
        == 1
    )


def test_a_stopping_intake_is_503(web: Web) -> None:
    web.intake.closed = True
    assert web.post(_action()).status_code == 503
    event = {"event_type": "FILE_UPDATE", "file_key": FIGMA_KEY, "passcode": PASSCODE}
    assert web.client.post("/webhooks/figma", json=event).status_code == 503


# -- Figma webhook -------------------------------------------------------------------------


def test_figma_passcode_and_events(web: Web) -> None:
    event = {"event_type": "FILE_VERSION_UPDATE", "file_key": FIGMA_KEY, "passcode": "nope"}
    assert web.client.post("/webhooks/figma", json=event).status_code == 401
    assert web.client.post("/webhooks/figma", json={"event_type": "PING"}).status_code == 401
    assert web.client.post("/webhooks/figma", content=b"nope").status_code == 401  # no passcode
    broken = b'{"passcode": "%s", "event_type": ' % PASSCODE.encode()
    assert web.client.post("/webhooks/figma", content=broken).status_code == 400
    assert web.intake.figma == []
    event["passcode"] = PASSCODE
    response = web.client.post("/webhooks/figma", json=event)
    assert response.status_code == 200 and response.json() == {"status": "accepted"}
    assert web.intake.figma == [(FIGMA_KEY, "FILE_VERSION_UPDATE")]
    ping = {"event_type": "PING", "passcode": PASSCODE}
    assert web.client.post("/webhooks/figma", json=ping).json() == {"status": "pong"}
    other = {"event_type": "FILE_UPDATE", "file_key": "NotOurFile123", "passcode": PASSCODE}
    assert web.client.post("/webhooks/figma", json=other).json() == {
        "status": "ignored",
        "reason": "file not configured",
    }
    odd = {"event_type": "LIBRARY_PUBLISH", "file_key": FIGMA_KEY, "passcode": PASSCODE}
    assert web.client.post("/webhooks/figma", json=odd).json() == {"status": "ignored"}
    assert web.intake.figma == [(FIGMA_KEY, "FILE_VERSION_UPDATE")]


# -- health ----------------------------------------------------------------------------------


def test_healthz(web: Web) -> None:
    response = web.client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_fresh_then_stale_then_the_last_error(web: Web) -> None:
    response = web.client.get("/readyz")
    assert response.status_code == 503  # the product board was never synced
    assert response.json()["stale"] == [PRODUCT_ID]
    web.store.write_board(
        snapshot_batch(
            {
                **_snapshot([]),
                "id": PRODUCT_ID,
                "shortLink": PRODUCT,
                "lists": [],
                "checklists": [],
            },
            board_ref=PRODUCT_ID,
            role="product",
            observed_at=utc_iso(web.clock()),
        )
    )
    response = web.client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and body["figma_rate_limited"] == []
    assert [b["board"] for b in body["boards"]] == [CONSORTIUM, PRODUCT_ID]
    assert all(b["fresh"] for b in body["boards"])
    web.clock.now += timedelta(seconds=2 * web.settings.schedule.poll_seconds + 1)
    web.store.record_error(CONSORTIUM, "Trello answered 500", utc_iso(web.clock()))
    response = web.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["stale"] == [CONSORTIUM, PRODUCT_ID]
    assert CONSORTIUM in body["reason"] and "not synced within 600 s" in body["reason"]
    boards = {b["board"]: b for b in body["boards"]}
    assert boards[CONSORTIUM]["last_error"] == "Trello answered 500"


def test_readyz_is_503_with_one_line_when_the_store_fails(web: Web) -> None:
    class Broken:
        def readiness(self) -> tuple[bool, dict[str, Any]]:
            raise RuntimeError("database\nunreachable")

        def last_success(self) -> dict[str, datetime | None]:
            return {}

    web.client.app.state.context.health = Broken()  # type: ignore[attr-defined]
    response = web.client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "reason": "database unreachable"}


# -- metrics ---------------------------------------------------------------------------------


def test_metrics(web: Web) -> None:
    web.post(_action())
    web.post(_action("b" * 24), signed=False)
    response = web.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    deliveries = "syncd_webhook_deliveries_total"
    assert value(deliveries, source="trello", outcome="accepted") == 1
    assert value(deliveries, source="trello", outcome="bad_signature") == 1
    assert value("syncd_cards_mirrored", board=CONSORTIUM) == 2
    assert value("syncd_cards_mirrored", board=PRODUCT_ID) == 0
    last_sync = "syncd_last_successful_sync_timestamp_seconds"
    assert value(last_sync, board=CONSORTIUM) == START.timestamp()
    assert value("syncd_flags_open", code="NO_REFERENT") == 1  # Meuse
    assert value("syncd_figma_rate_limited_until_timestamp_seconds", file=FIGMA_KEY) is None
    assert SECRET not in response.text and PASSCODE not in response.text


# -- report and dashboard --------------------------------------------------------------------


def test_api_report_shape_and_changes_since(web: Web) -> None:
    response = web.client.get("/api/report")
    assert response.status_code == 200
    report = response.json()
    assert {"generated_at", "boards", "departments", "flags", "changes", "figma"} <= set(report)
    assert report["generated_at"] == "2026-11-30T08:00:00Z"
    assert [b["id"] for b in report["boards"]] == [BOARD_ID]
    by_code = {d["code"]: d for d in report["departments"]}
    assert by_code["26"]["referents"] == ["Camille Martin"]
    assert [a["title"] for a in by_code["26"]["priority_actions"]] == ["Ouvrir les RDV"]
    assert by_code["55"]["flags"] == ["NO_REFERENT"]
    assert report["changes"] == []
    since = utc_iso(web.clock())
    web.clock.now += timedelta(hours=1)
    _write(
        web.store, web.clock, [_card(DROME, "Drôme", LIST_DONE, idMembers=["m1"]), BASE_CARDS[1]]
    )
    changes = web.client.get("/api/report", params={"since": since, "lang": "en"}).json()
    card_changes = [(c["kind"], c["card_id"]) for c in changes["changes"] if c["card_id"]]
    assert card_changes == [("moved", DROME)]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"since": "yesterday"}, "since: 'yesterday' is not an ISO date"),
        ({"lang": "de"}, "lang must be fr or en"),
    ],
)
def test_bad_report_query_is_400_with_one_line(
    web: Web, params: dict[str, str], detail: str
) -> None:
    for path in ("/api/report", "/"):
        response = web.client.get(path, params=params)
        assert response.status_code == 400
        assert response.json() == {"detail": detail}


@pytest.mark.parametrize("edge", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_report_since_the_ends_of_time_is_clamped_not_a_500(web: Web, edge: str) -> None:
    response = web.client.get("/api/report", params={"since": edge})
    assert response.status_code == 200
    assert response.json()["since"] in ("0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z")


def test_dashboard_escapes_titles(web: Web) -> None:
    _write(web.store, web.clock, BASE_CARDS, item="<script>alert(1)</script> & co")
    response = web.client.get("/", params={"lang": "en"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in response.text
    assert "<script>alert(1)" not in response.text


# -- who may read ----------------------------------------------------------------------------


def test_admin_token(tmp_path: Path) -> None:
    with _web(tmp_path, admin=ADMIN) as web:
        client = web.client
        assert client.get("/metrics").status_code == 200  # open, as the contract says
        for path in ("/api/report", "/"):
            assert client.get(path).status_code == 401, path
            bad = {"Authorization": "Bearer nope"}
            assert client.get(path, headers=bad).status_code == 401, path
            good = {"Authorization": f"Bearer {ADMIN}"}
            assert client.get(path, headers=good).status_code == 200, path
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code in (200, 503)  # open; fresh or not
        assert client.head("/webhooks/trello").status_code == 200
        assert web.post(_action()).status_code == 200  # webhooks carry their own proof
        event = {"event_type": "PING", "passcode": PASSCODE}
        assert client.post("/webhooks/figma", json=event).status_code == 200


def test_without_a_token_pages_are_open(web: Web) -> None:
    for path in ("/api/report", "/metrics", "/"):
        assert web.client.get(path).status_code == 200, path
