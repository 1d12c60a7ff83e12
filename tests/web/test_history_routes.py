"""`?at=` on `/api/report` and `/`, the dashboard's date picker and its trends (no script)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.sandbox import CONSORTIUM_SHORT_LINK, Sandbox, build_sample_world
from syncd.daemon.run import Daemon
from syncd.demo import demo_settings
from syncd.web.app import create_app

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Clock]]:
    with Sandbox(world=build_sample_world(now=START), deliver_webhooks=False) as sandbox:
        settings = demo_settings(sandbox, tmp_path / "store.db")
        settings = settings.model_copy(
            update={"figma": settings.figma.model_copy(update={"files": ()})}
        )
        clock = Clock()
        daemon = Daemon(settings, clock=clock)
        daemon.start_workers()
        daemon.sync_pass(full=True)
        clock.now = sandbox.world.now = START + timedelta(days=8)  # the next week
        w = sandbox.world
        calais = w.find_card("Pas-de-Calais", board=CONSORTIUM_SHORT_LINK)
        w.set_check_item(calais["id"], w.find_check_item(calais["id"], "Ouvrir les créneaux"), True)
        daemon.sync_pass()
        with TestClient(create_app(daemon.web_context())) as test_client:
            yield test_client, clock
        daemon.stop()


def test_api_report_at_a_past_moment(client) -> None:  # type: ignore[no-untyped-def]
    http, _clock = client
    now = http.get("/api/report").json()
    assert now["at"] is None
    calais = {d["code"]: d for d in now["departments"]}["62"]
    assert calais["flags"] == [] and len(calais["priority_actions"]) == 3

    then = http.get("/api/report", params={"at": "2026-11-05T12:00:00Z"}).json()
    assert then["at"] == "2026-11-05T12:00:00.000Z"
    calais = {d["code"]: d for d in then["departments"]}["62"]
    assert calais["flags"] == ["TOO_MANY_PRIORITIES"] and len(calais["priority_actions"]) == 4
    assert then["trends"]["weeks"][-1] == "2026-W45"
    assert now["trends"]["weeks"][-1] == "2026-W46"
    assert now["trends"]["departments"]["62"] == {
        "priority_actions": [None] * 10 + [4, 3],
        "flags": [None] * 10 + [1, 0],
    }

    before = http.get("/api/report", params={"at": "2026-10-01"})
    assert before.status_code == 400
    assert before.json()["detail"] == (
        "2026-10-01T00:00:00.000Z is before the store's history: it knows the boards from "
        "2026-11-02T09:00:00.000Z"
    )
    assert http.get("/api/report", params={"at": "last week"}).status_code == 400
    backwards = http.get("/api/report", params={"at": "2026-11-05", "since": "2026-11-06"})
    assert backwards.status_code == 400


def test_dashboard_has_a_date_picker_and_trends_without_script(client) -> None:  # type: ignore[no-untyped-def]
    http, _clock = client
    served = http.get("/", params={"at": "2026-11-05T12:00"})
    page = served.text
    assert "form-action 'self'" in served.headers["content-security-policy"]
    assert "État au 05/11/2026 12:00 UTC" in page
    form = re.search(r'<form class="travel" method="get" action="/">.*?</form>', page, re.S)
    assert form is not None
    assert 'type="datetime-local" id="at-input" name="at" value="2026-11-05T12:00"' in form.group()
    assert "form-action &#39;self&#39;" in page  # the page's own policy lets the picker submit
    assert page.count('<svg class="spark"') == 12  # one per département
    assert 'id="flags-over-time"' in page
    assert "<script" not in page.lower() and "http://" not in re.sub(r'href="[^"]*"', "", page)
    now = http.get("/").text
    assert 'value=""' in now and 'class="at-banner"' not in now
