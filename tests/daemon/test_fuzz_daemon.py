"""The fuzz suite of issue 9 over a whole daemon core: hostile requests
(`tests/support/hostile.py`) sent in process to `create_app(Daemon.web_context())`, with the
real delivery intake (the webhook worker, the applier, the writer) over a store synced from the
sandbox, and real sandbox changes delivered (signed) between them.

Checked: never a 5xx; a refused delivery leaves the store exactly as it was (the whole mirror,
the actions, the deliveries, the card history) and its action id nowhere; every tenth example a
real change is delivered and applied; afterwards the report builds with nothing degraded,
``/readyz`` is 200, every card history row a webhook wrote belongs to an accepted delivery, and
a full snapshot finds the mirror equal to the sandbox but for the valid hostile deliveries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from anyio.from_thread import start_blocking_portal
from hostile import (
    FIGMA_PATH,
    TRELLO_PATH,
    AsgiClient,
    HostileRequest,
    Target,
    hostile_requests,
    problems,
    traceback_events,
    trello_signature,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from adapters.sandbox import CONSORTIUM_SHORT_LINK, FIGMA_FILE_KEY, Sandbox
from adapters.sandbox.figma_world import build_sample_figma
from state import models as m
from state.timestamps import utc_iso
from syncd.config import Secrets
from syncd.daemon.run import Daemon
from syncd.demo import demo_settings
from syncd.trello.webhooks import trello_callback_url
from syncd.web.app import create_app

PASSCODE = "figma-passcode"
ADMIN = "admin-token-xyz"


@dataclass
class Fuzzed:
    sandbox: Sandbox = field(repr=False)
    daemon: Daemon = field(repr=False)
    client: AsgiClient = field(repr=False)
    target: Target = field(repr=False)
    accepted: set[str] = field(default_factory=set)  # action ids answered 200
    sent: int = 0
    valid: int = 0

    def fingerprint(self) -> str:
        store = self.daemon.store
        rows = store.read_mirror()
        counts = [store.count(model) for model in (m.Action, m.WebhookDelivery, m.CardVersion)]
        return json.dumps(
            [counts, rows.cards, rows.check_items, rows.card_labels, rows.custom_field_items],
            default=str,
        )

    def traces(self, action_id: str) -> list[str]:
        store = self.daemon.store
        if not _storable(action_id):  # no database holds it: nothing to look up (nor to find)
            return []
        found = []
        if store.known_actions([action_id]):
            found.append("action")
        if store.count(m.WebhookDelivery, m.WebhookDelivery.action_id == action_id):
            found.append("webhook_delivery")
        if store.count(m.CardVersion, m.CardVersion.action_id == action_id):
            found.append("card_version")
        return found

    def post_real_change(self) -> None:
        """A real change in the sandbox, delivered signed: answered 200 and applied."""
        w = self.sandbox.world
        card = w.find_card("Drôme", board=CONSORTIUM_SHORT_LINK)
        target = "Fait" if self.valid % 2 == 0 else "Départements"
        list_id = w.find_list(CONSORTIUM_SHORT_LINK, target)
        action = w.move_card(card["id"], list_id)
        body = json.dumps({"action": action, "model": {"id": action["data"]["board"]["id"]}})
        signature = trello_signature(
            self.target.trello_secret, body.encode(), self.target.callback_url
        )
        answer = self.client.send(
            HostileRequest(
                "valid",
                "POST",
                TRELLO_PATH,
                headers=((b"x-trello-webhook", signature.encode()),),
                body=body.encode(),
            )
        )
        assert answer is not None and answer.status == 200, answer
        assert self.daemon.worker.wait_idle(20)
        stored = self.daemon.store.card_batch(
            CONSORTIUM_SHORT_LINK, "consortium", [card["id"]], observed_at="x"
        )
        assert stored.cards[0]["list_id"] == list_id, "a valid delivery was not applied"
        self.accepted.add(action["id"])
        self.valid += 1


@pytest.fixture
def fuzzed(tmp_path: Path, store_url: str) -> Iterator[Fuzzed]:
    """A daemon core over the sandbox, on SQLite and on PostgreSQL (which refuses NUL and lone
    surrogates at write time: the models must keep them out)."""
    with Sandbox(deliver_webhooks=False) as sandbox:
        sandbox.figma = build_sample_figma()
        base = demo_settings(sandbox, tmp_path / "store.db")
        settings_ = base.model_copy(
            update={
                "store": base.store.model_copy(update={"url": store_url}),
                "secrets": Secrets(
                    TRELLO_API_KEY=sandbox.api_key,
                    TRELLO_TOKEN=sandbox.token,
                    TRELLO_API_SECRET=sandbox.api_secret,
                    FIGMA_TOKEN="sandbox-figma-token",
                    FIGMA_WEBHOOK_PASSCODE=PASSCODE,
                    SYNCD_ADMIN_TOKEN=ADMIN,
                ),
            }
        )
        daemon = Daemon(settings_)
        daemon.start_workers()
        daemon.sync_pass(full=True)
        w = sandbox.world
        board = w.board(CONSORTIUM_SHORT_LINK)
        target = Target(
            callback_url=trello_callback_url(settings_),
            trello_secret=sandbox.api_secret,
            figma_passcode=PASSCODE,
            admin_token=ADMIN,
            board_id=board["id"],
            short_link=CONSORTIUM_SHORT_LINK,
            card_ids=tuple(
                w.find_card(name, board=CONSORTIUM_SHORT_LINK)["id"] for name in ("Meuse", "Somme")
            ),
            list_ids=tuple(
                w.find_list(CONSORTIUM_SHORT_LINK, name) for name in ("Fait", "Actions en cours")
            ),
            figma_key=FIGMA_FILE_KEY,
            date=utc_iso(datetime.now(UTC) - timedelta(seconds=1)),
        )
        try:
            with start_blocking_portal() as portal:
                client = AsgiClient(create_app(daemon.web_context()), portal)
                fuzzed = Fuzzed(sandbox, daemon, client, target)
                yield fuzzed
                _healthy_afterwards(fuzzed)
        finally:
            daemon.stop()


def _healthy_afterwards(fuzzed: Fuzzed) -> None:
    bearer = ((b"authorization", f"Bearer {ADMIN}".encode()),)
    report = fuzzed.client.send(HostileRequest("check", "GET", "/api/report", headers=bearer))
    assert report is not None and report.status == 200
    assert json.loads(report.body)["degraded"] == []
    ready = fuzzed.client.send(HostileRequest("check", "GET", "/readyz"))
    assert ready is not None and ready.status == 200, ready.body
    table = m.CardVersion.__table__
    with fuzzed.daemon.store.reader.begin() as connection:
        written = set(
            connection.execute(
                select(table.c.action_id).where(table.c.source == "webhook")
            ).scalars()
        )
    assert written <= fuzzed.accepted | {None}, "a card history row of a refused delivery"
    assert fuzzed.valid >= 1


@settings(
    max_examples=max(200, settings.default.max_examples // 3),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(data=st.data())
def test_hostile_requests_against_a_daemon(fuzzed: Fuzzed, data: st.DataObject) -> None:
    request = data.draw(hostile_requests(fuzzed.target), label="request")
    daemon = fuzzed.daemon
    assert daemon.worker.wait_idle(20)
    before = fuzzed.fingerprint()
    with structlog.testing.capture_logs() as events:
        answer = fuzzed.client.send(request)
        assert daemon.worker.wait_idle(20)
    assert not problems(request, answer), (problems(request, answer), request.describe())
    assert not traceback_events(events), (traceback_events(events), request.describe())
    webhook = request.method == "POST" and request.path in (TRELLO_PATH, FIGMA_PATH)
    if webhook and (answer is None or answer.status >= 400):
        assert fuzzed.fingerprint() == before, ("a refused delivery changed the store", request)
        if request.action_id and request.action_id not in fuzzed.accepted:
            assert not fuzzed.traces(request.action_id), request.describe()
    elif webhook and request.path == TRELLO_PATH and answer.status == 200 and request.action_id:
        fuzzed.accepted.add(request.action_id)
    fuzzed.sent += 1
    if fuzzed.sent % 10 == 0:
        fuzzed.post_real_change()


def _storable(text: str) -> bool:
    """Whether a database can hold this text at all (UTF-8 without lone surrogates, no NUL):
    a query with any other raises in the driver before reaching the store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text
