"""The fuzz suite of issue 9, in process: hostile bodies, headers and query strings
(`tests/support/hostile.py`) sent as raw ASGI messages to the real app over a store filled by hand,
every route, with and without credentials (valid Trello signatures over hostile bodies, the
right Figma passcode with hostile events, the admin bearer).

Every answer is checked: never a 5xx; a delivery that must be refused is a 4xx with one line;
nothing refused reaches the delivery intake; what reaches it holds only checked values (it
reads back identically through the model); no captured log event carries a traceback or sits
above WARNING, and each refused delivery is one INFO line; the store is never written; a client
gone mid-body is one INFO line. Afterwards the report still builds with nothing degraded and
``/readyz`` answers 200. CI runs a few hundred examples per test; ``--hypothesis-profile=fuzz``
thousands (`bench/fuzz_http.py` runs them against ``syncd run``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest
import structlog
from anyio.from_thread import start_blocking_portal
from hostile import (
    FIGMA_PATH,
    MARKER,
    TRELLO_PATH,
    Answer,
    AsgiClient,
    HostileRequest,
    Target,
    figma_deliveries,
    hostile_requests,
    problems,
    reader_requests,
    send_http,
    traceback_events,
    trello_deliveries,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from state import models as m
from state.store import Store
from state.timestamps import utc_iso
from syncd.config import (
    BoardConfig,
    FigmaConfig,
    Secrets,
    ServerConfig,
    Settings,
    StoreConfig,
    TrelloConfig,
)
from syncd.daemon.health import SyncHealth
from syncd.metrics import Metrics
from syncd.rules.flags import recompute
from syncd.rules.governance import Rules
from syncd.trello.rows import snapshot_batch
from syncd.trello.schema import TrelloAction, parse_action
from syncd.trello.webhooks import trello_signature
from syncd.web.app import create_app
from syncd.web.context import WebContext

SECRET = "trello-app-secret"
PASSCODE = "figma-passcode"
ADMIN = "admin-token-xyz"
FIGMA_KEY = "JhZCwwrmaw2NYrITCj8QAK"
CONSORTIUM = "oSmy09cz"
BOARD_ID = "b" * 23 + "1"
DROME, MEUSE = "c" * 23 + "1", "c" * 23 + "2"
LISTS = ("d" * 23 + "1", "d" * 23 + "2")
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
PUBLIC_URL = "https://syncd.example.org"


def examples(ci: int) -> int:
    """`ci` examples in CI, the profile's (thousands) under ``--hypothesis-profile=fuzz``."""
    return max(ci, settings.default.max_examples)


def fuzz(ci: int) -> settings:
    """The settings of one fuzz test: `examples(ci)`, no deadline, the app built once."""
    return settings(
        max_examples=examples(ci),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


def _snapshot() -> dict[str, Any]:
    card = {
        "idBoard": BOARD_ID,
        "idList": LISTS[0],
        "desc": "",
        "idLabels": [],
        "closed": False,
        "pos": 1,
        "dateLastActivity": "2026-11-01T00:00:00.000Z",
    }
    return {
        "id": BOARD_ID,
        "shortLink": CONSORTIUM,
        "name": "lapins-consortium-départements",
        "url": f"https://trello.com/b/{CONSORTIUM}",
        "dateLastActivity": "2026-11-01T00:00:00.000Z",
        "lists": [
            {"id": LISTS[0], "name": "Départements", "pos": 1},
            {"id": LISTS[1], "name": "Fait", "pos": 2},
        ],
        "labels": [],
        "members": [{"id": "a0" * 12, "fullName": "Camille Martin", "username": "cm"}],
        "customFields": [],
        "cards": [
            {**card, "id": DROME, "name": "Drôme", "idMembers": ["a0" * 12]},
            {**card, "id": MEUSE, "name": "Meuse", "idMembers": []},
        ],
        "checklists": [
            {
                "id": "e" * 24,
                "idCard": DROME,
                "name": "Actions prioritaires",
                "checkItems": [{"id": "f" * 24, "name": "Ouvrir les RDV", "state": "incomplete"}],
            }
        ],
    }


@dataclass
class CheckingIntake:
    """The delivery intake: records what it is offered, and that it reads back identically."""

    trello: list[TrelloAction] = field(default_factory=list)
    figma: list[tuple[str, str]] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)

    def offer_trello(self, action: TrelloAction, board: BoardConfig, board_id: str) -> bool:
        again = parse_action(action.as_trello())  # a checked action reads back as itself
        if again != action or not isinstance(action, TrelloAction):
            self.not_checked.append(action.id)
        fresh = all(seen.id != action.id for seen in self.trello)
        self.trello.append(action)
        return fresh

    def queue_trello(self, action: TrelloAction, board: BoardConfig, board_id: str) -> Future[bool]:
        queued: Future[bool] = Future()
        queued.set_result(self.offer_trello(action, board, board_id))
        return queued

    def offer_figma(self, key: str, event: str) -> None:
        self.figma.append((key, event))


@dataclass
class Fuzzed:
    client: AsgiClient = field(repr=False)
    store: Store = field(repr=False)
    intake: CheckingIntake = field(repr=False)
    target: Target = field(repr=False)
    stdlib: list[logging.LogRecord] = field(repr=False)
    answers: dict[str, int] = field(default_factory=dict)  # "<path> <status>" -> count
    events: list[dict[str, Any]] = field(default_factory=list)  # the last request's log events

    def send(self, request: HostileRequest) -> Answer | None:
        """Send one hostile request and check the answer, the intake and the logs."""
        offered = len(self.intake.trello), len(self.intake.figma)
        with structlog.testing.capture_logs() as events:
            answer = self.client.send(request)
        self.events = events
        assert not problems(request, answer), (problems(request, answer), request.describe())
        bad_logs = traceback_events(events)
        assert not bad_logs, (bad_logs, request.describe())
        assert not self.stdlib, ([r.getMessage() for r in self.stdlib], request.describe())
        status = answer.status if answer is not None else 0
        key = f"{request.path} {status}"
        self.answers[key] = self.answers.get(key, 0) + 1
        webhook = request.method == "POST" and request.path in (TRELLO_PATH, FIGMA_PATH)
        if not webhook:
            if status == 400:  # a bad query parameter: one INFO line with the reason
                refused = [e for e in events if e.get("event") == "request refused"]
                assert len(refused) == 1 and refused[0]["log_level"] == "info", events
            return answer
        refused = answer is None or answer.status >= 400
        if refused or request.must_refuse:
            assert (len(self.intake.trello), len(self.intake.figma)) == offered, (
                "a refused delivery reached the intake",
                request.describe(),
            )
        if answer is None or (400 <= answer.status < 500 and answer.status not in (404, 405)):
            rejected = [e for e in events if e.get("event") == "webhook rejected"]
            assert len(rejected) == 1 and rejected[0]["log_level"] == "info", (
                events,
                request.describe(),
            )
        assert not self.intake.not_checked, request.describe()
        return answer


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _fuzzed(tmp_path: Path, *, admin: str | None) -> Iterator[Fuzzed]:
    settings_ = Settings(
        store=StoreConfig(url=f"sqlite:///{tmp_path / 'store.db'}"),
        trello=TrelloConfig(boards=(BoardConfig(id=CONSORTIUM, role="consortium"),)),
        figma=FigmaConfig(files=(FIGMA_KEY,)),
        governance=Rules(departments=("26", "55")),
        server=ServerConfig(public_url=PUBLIC_URL),
        secrets=Secrets(
            TRELLO_API_SECRET=SECRET, FIGMA_WEBHOOK_PASSCODE=PASSCODE, SYNCD_ADMIN_TOKEN=admin
        ),
    )
    store = Store(settings_.store.url)
    store.write_board(
        snapshot_batch(
            _snapshot(), board_ref=CONSORTIUM, role="consortium", observed_at=utc_iso(NOW)
        )
    )
    recompute(store, settings_.governance, NOW)
    intake = CheckingIntake()
    context = WebContext(
        settings=settings_,
        store=store,
        metrics=Metrics(),
        health=SyncHealth(settings_, store, clock=lambda: NOW),
        intake=intake,
        clock=lambda: NOW,
    )
    target = Target(
        callback_url=PUBLIC_URL + TRELLO_PATH,
        trello_secret=SECRET,
        figma_passcode=PASSCODE,
        admin_token=admin,
        board_id=BOARD_ID,
        short_link=CONSORTIUM,
        card_ids=(DROME, MEUSE),
        list_ids=LISTS,
        figma_key=FIGMA_KEY,
    )
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    logging.getLogger().addHandler(handler)
    before = _store_fingerprint(store)
    try:
        with start_blocking_portal() as portal:
            yield Fuzzed(AsgiClient(create_app(context), portal), store, intake, target, records)
        assert _store_fingerprint(store) == before, "the web layer wrote to the store"
    finally:
        logging.getLogger().removeHandler(handler)
        store.close()


def _store_fingerprint(store: Store) -> str:
    rows = store.read_mirror()
    counts = [store.count(model) for model in (m.Action, m.WebhookDelivery, m.CardVersion)]
    return json.dumps([counts, rows.cards, rows.check_items, rows.lists], default=str)


def _healthy_afterwards(fuzzed: Fuzzed) -> None:
    """The report builds, nothing degraded, /readyz 200; nothing hostile in the store."""
    headers = ((b"authorization", f"Bearer {fuzzed.target.admin_token}".encode()),)
    if fuzzed.target.admin_token is None:
        headers = ()
    report = fuzzed.client.send(HostileRequest("check", "GET", "/api/report", headers=headers))
    assert report is not None and report.status == 200, report
    assert json.loads(report.body)["degraded"] == []
    ready = fuzzed.client.send(HostileRequest("check", "GET", "/readyz"))
    assert ready is not None and ready.status == 200, ready.body
    with fuzzed.store.reader.begin() as connection:
        names = connection.execute(select(m.Card.__table__.c.name)).scalars().all()
    assert not any(MARKER in name for name in names)


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Fuzzed]:
    """The app with the admin bearer configured (pages need it)."""
    with _fuzzed(tmp_path, admin=ADMIN) as fuzzed:
        yield fuzzed
        _healthy_afterwards(fuzzed)


@pytest.fixture
def open_loopback(tmp_path: Path) -> Iterator[Fuzzed]:
    """The app with neither login nor bearer on a loopback host (pages open)."""
    with _fuzzed(tmp_path, admin=None) as fuzzed:
        yield fuzzed
        _healthy_afterwards(fuzzed)


def _target() -> Target:
    return Target(
        callback_url=PUBLIC_URL + TRELLO_PATH,
        trello_secret=SECRET,
        figma_passcode=PASSCODE,
        admin_token=ADMIN,
        board_id=BOARD_ID,
        short_link=CONSORTIUM,
        card_ids=(DROME, MEUSE),
        list_ids=LISTS,
        figma_key=FIGMA_KEY,
    )


@fuzz(600)
@given(request=trello_deliveries(_target()))
def test_trello_deliveries(guarded: Fuzzed, request: HostileRequest) -> None:
    guarded.send(request)


@fuzz(400)
@given(request=figma_deliveries(_target()))
def test_figma_deliveries(guarded: Fuzzed, request: HostileRequest) -> None:
    guarded.send(request)


@fuzz(400)
@given(request=reader_requests(_target()))
def test_every_route_with_and_without_the_bearer(guarded: Fuzzed, request: HostileRequest) -> None:
    guarded.send(request)


@fuzz(300)
@given(request=hostile_requests(_target()))
def test_every_route_open_on_loopback(open_loopback: Fuzzed, request: HostileRequest) -> None:
    open_loopback.send(request)


# -- the issue's cases, as regression tests -------------------------------------------------


def _signed(body: bytes) -> tuple[tuple[bytes, bytes], ...]:
    signature = trello_signature(SECRET, body, PUBLIC_URL + TRELLO_PATH).encode()
    return ((b"x-trello-webhook", signature), (b"content-type", b"application/json"))


def _update_card(**change: Any) -> dict[str, Any]:
    action = {
        "id": "65a7d90e0000000000000001",
        "type": "updateCard",
        "date": "2026-11-30T07:00:00.000Z",
        "data": {
            "board": {"id": BOARD_ID, "shortLink": CONSORTIUM},
            "card": {"id": DROME, "idList": LISTS[1]},
            "old": {"idList": LISTS[0]},
        },
    }
    return {"action": {**action, **change}, "model": {"id": BOARD_ID}}


def _status(fuzzed: Fuzzed, request: HostileRequest) -> tuple[int, dict[str, Any]]:
    answer = fuzzed.send(request)
    assert answer is not None
    json_body = (answer.header(b"content-type") or b"").startswith(b"application/json")
    return answer.status, json.loads(answer.body) if json_body else {}


DEEP = b"[" * 10_000 + b"]" * 10_000
LONG_INT = b'{"n": ' + b"1" * 5_000 + b"}"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (DEEP, 401),  # was RecursionError: the body was parsed before the passcode
        (LONG_INT, 401),  # was the int-string limit
        (b'{"passcode": "figma-passcode\\ud800", "event_type": "PING"}', 401),  # was 500
        (b'{"passcode": "\xed\xa0\x80", "event_type": "PING"}', 401),
        (b'{"passcode": "figma-passcode", "event_type": ["FILE_UPDATE"]}', 400),  # unhashable
        (b'{"passcode": "figma-passcode", "deep": ' + DEEP + b"}", 400),
        (b'{"passcode": "figma-passcode", "n": ' + b"1" * 5_000 + b"}", 400),
    ],
)
def test_figma_hostile_bodies_of_the_issue(guarded: Fuzzed, body: bytes, status: int) -> None:
    request = HostileRequest("issue", "POST", FIGMA_PATH, body=body, must_refuse=True)
    assert _status(guarded, request)[0] == status
    assert guarded.intake.figma == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (DEEP, "body is not JSON (recursion limit exceeded"),
        (LONG_INT, "body is not JSON (number out of range"),
        (json.dumps(_update_card(id="65a7d90e000000000000000\ud800")).encode(), "not JSON"),
        (
            json.dumps(_update_card(id="65a7d90e000000000000000\ud800"), ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            ),
            "body is not JSON",
        ),
        (json.dumps(_update_card(date="not a date")).encode(), "action.date: "),
    ],
)
def test_signed_trello_hostile_bodies_of_the_issue(
    guarded: Fuzzed, body: bytes, reason: str
) -> None:
    request = HostileRequest("issue", "POST", TRELLO_PATH, headers=_signed(body), body=body)
    status, answer = _status(guarded, request)
    assert status == 400 and reason in answer["reason"]
    assert guarded.intake.trello == []


def test_the_200_answer_echoes_only_the_checked_id(guarded: Fuzzed) -> None:
    body = json.dumps(_update_card()).encode()
    unsigned = HostileRequest("unsigned", "POST", TRELLO_PATH, body=body, must_refuse=True)
    assert _status(guarded, unsigned)[0] == 401
    status, answer = _status(
        guarded, HostileRequest("ok", "POST", TRELLO_PATH, headers=_signed(body), body=body)
    )
    assert status == 200 and answer == {"status": "accepted", "action": "65a7d90e0000000000000001"}
    assert [action.id for action in guarded.intake.trello] == ["65a7d90e0000000000000001"]


@pytest.mark.parametrize("path", ["/api/report", "/"])
@pytest.mark.parametrize(
    ("query", "status"),
    [
        (b"since=0001-01-01T00:00:00%2B01:00", 200),  # was OverflowError
        (b"since=9999-12-31T23:59:59-01:00", 200),
        (b"since=yesterday", 400),
        (b"since=%ff%fe", 400),
        (b"since=2026-11-30%00", 400),
        (b"lang=de", 400),
        (b"lang=%00", 400),
    ],
)
def test_query_parameters_of_the_issue(
    guarded: Fuzzed, path: str, query: bytes, status: int
) -> None:
    bearer = ((b"authorization", f"Bearer {ADMIN}".encode()),)
    request = HostileRequest("issue", "GET", path, query=query, headers=bearer)
    assert _status(guarded, request)[0] == status


@pytest.mark.parametrize("path", [TRELLO_PATH, FIGMA_PATH])
def test_a_client_gone_mid_body_is_one_info_line(guarded: Fuzzed, path: str) -> None:
    body = json.dumps(_update_card()).encode()
    request = HostileRequest("gone", "POST", path, body=body, disconnect_after=len(body) // 2)
    guarded.send(request)  # checks: no traceback, one INFO "webhook rejected" line
    (line,) = [e for e in guarded.events if e["event"] == "webhook rejected"]
    assert line["reason"] == "disconnected" and line["log_level"] == "info"
    assert guarded.intake.trello == []


# -- the login routes, with a provider -----------------------------------------------------

callback_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "x" * 5000, "%ff", "\x00", "\ud800", "access_denied", "http://evil"]),
)


@settings(
    max_examples=examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_login_routes_with_a_provider(mini_syncd: Any, data: st.DataObject) -> None:
    """/login, /auth/callback, /logout over HTTP with a real (hand-made) provider: a real login
    started or not, the provider's code or not, hostile state, code, iss and error, real,
    tampered or garbage cookies. Never a 5xx, never a traceback, a refusal is one line."""
    server = _mini_server(mini_syncd)
    port = int(server.url.rsplit(":", 1)[1])
    params: list[tuple[str, str]] = []
    cookie = b""
    with httpx.Client(follow_redirects=False, timeout=20) as http:
        if data.draw(st.booleans(), label="login started"):
            started = http.get(server.url + "/login")
            cookie = f"syncd_session={started.cookies.get('syncd_session', '')}".encode()
            at_provider = http.get(started.headers["location"])
            real = dict(parse_qsl(urlsplit(at_provider.headers.get("location", "")).query))
            params += [(k, v) for k, v in real.items() if data.draw(st.booleans(), label=k)]
    for name in data.draw(st.lists(st.sampled_from(["state", "code", "iss", "error"]), max_size=3)):
        params.append((name, data.draw(callback_values, label=name)))
    cookie = data.draw(
        st.sampled_from([cookie, cookie + b"x", b"syncd_session=" + b"A" * 300, b""]),
        label="cookie",
    )
    query = "&".join(
        f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in params
    ).encode()
    method, path = data.draw(
        st.sampled_from([("GET", "/auth/callback"), ("GET", "/login"), ("POST", "/logout")])
    )
    headers = ((b"cookie", cookie),) if cookie else ()
    request = HostileRequest(f"login {path}", method, path, query=query, headers=headers)
    with structlog.testing.capture_logs() as events:
        answer = send_http("127.0.0.1", port, request)
    assert not problems(request, answer), (problems(request, answer), request.describe())
    assert not traceback_events(events), (traceback_events(events), request.describe())
    refused = [e for e in events if e["event"] == "login refused"]
    assert all(len(str(e.get("reason", ""))) <= 400 for e in refused), refused


_MINI: dict[int, Any] = {}


def _mini_server(mini_syncd: Any) -> Any:
    """One syncd with the hand-made provider per test run (the fixture gives a factory)."""
    key = id(mini_syncd)
    if key not in _MINI:
        _MINI.clear()
        _MINI[key] = mini_syncd()
    return _MINI[key]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"state": "REAL"}, 400),  # no code: was a 500 (authlib's MissingCodeException)
        ({"state": "REAL", "code": "\x80"}, 400),  # not ASCII: was a 503 "provider unavailable"
        ({"state": "REAL", "code": "x", "iss": "y" * 5000}, 400),  # named in one short line
    ],
)
def test_login_callback_cases_found_by_the_fuzz(
    mini_syncd: Any, params: dict[str, str], status: int
) -> None:
    server = mini_syncd()
    with httpx.Client(follow_redirects=False, timeout=20) as http:
        started = http.get(server.url + "/login")
        at_provider = http.get(started.headers["location"])
        real = dict(parse_qsl(urlsplit(at_provider.headers["location"]).query))
        query = {k: real["state"] if v == "REAL" else v for k, v in params.items()}
        with structlog.testing.capture_logs() as events:
            response = http.get(server.url + "/auth/callback", params=query)
    assert response.status_code == status
    (refused,) = [e for e in events if e["event"] == "login refused"]
    assert len(refused["reason"]) <= 300 and not traceback_events(events)
