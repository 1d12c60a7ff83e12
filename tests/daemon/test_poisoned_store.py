"""Issue 9's headline case: nothing a delivery says can poison the store, and a store holding a
bad row anyway (written by an older version, by hand, by a bug) degrades that card only.

Over the sandbox: a signed ``updateCard`` whose ``date`` is not a date is refused (400) and
stored nowhere; then rows are poisoned directly in SQLite (which keeps values of any kind):
``/api/report``, ``/``, ``/readyz``, ``syncd report`` and ``syncd sync`` all still work, the
card is named in the report's ``degraded``, in ``/readyz`` and in one WARNING line, and a full
sync repairs it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.sandbox import CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK, Sandbox, webhook_signature
from adapters.sandbox.figma_world import build_sample_figma
from state import models as m
from syncd.daemon.run import Daemon
from syncd.demo import demo_settings
from syncd.trello.webhooks import trello_callback_url
from syncd.web.app import create_app

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Poisoned:
    sandbox: Sandbox
    daemon: Daemon
    client: TestClient
    db: Path
    config: Path
    env: dict[str, str]

    def syncd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "syncd", "--config", str(self.config), *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def poisoned(tmp_path: Path) -> Iterator[Poisoned]:
    with Sandbox(deliver_webhooks=False) as sandbox:
        sandbox.figma = build_sample_figma()
        db = tmp_path / "store.db"
        settings = demo_settings(sandbox, db)
        daemon = Daemon(settings)
        daemon.start_workers()
        daemon.sync_pass(full=True)
        config = tmp_path / "syncd.toml"
        config.write_text(
            f'[store]\nurl = "sqlite:///{db}"\n[trello]\napi_base = "{sandbox.trello_api_base}"\n'
            f'[[trello.boards]]\nid = "{CONSORTIUM_SHORT_LINK}"\nrole = "consortium"\n'
            f'[[trello.boards]]\nid = "{PRODUCT_SHORT_LINK}"\nrole = "product"\n'
            '[governance]\ndepartments = ["26", "55"]\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRELLO_", "FIGMA_"))}
        env.update(
            TRELLO_API_KEY=sandbox.api_key,
            TRELLO_TOKEN=sandbox.token,
            PYTHONPATH=str(REPO),
            SYNCD_LOG_FORMAT="json",
        )
        with TestClient(create_app(daemon.web_context())) as client:
            yield Poisoned(sandbox, daemon, client, db, config, env)
        daemon.stop()


def test_a_signed_delivery_with_a_date_that_is_not_a_date_is_stored_nowhere(
    poisoned: Poisoned,
) -> None:
    w = poisoned.sandbox.world
    card = w.find_card("Drôme", board=CONSORTIUM_SHORT_LINK)
    action = w.move_card(card["id"], w.find_list(CONSORTIUM_SHORT_LINK, "Fait"))
    action["date"] = "not a date"
    body = json.dumps({"action": action, "model": {"id": action["data"]["board"]["id"]}}).encode()
    callback = trello_callback_url(poisoned.daemon.settings)
    headers = {"X-Trello-Webhook": webhook_signature(poisoned.sandbox.api_secret, body, callback)}
    response = poisoned.client.post("/webhooks/trello", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["reason"] == "action.date: Value error, not an ISO-8601 date"
    assert poisoned.daemon.worker.wait_idle(10)
    store = poisoned.daemon.store
    assert not store.known_actions([action["id"]])
    assert store.count(m.WebhookDelivery) == 0
    assert action["id"] not in _version_actions(poisoned.db)
    assert poisoned.client.get("/api/report").status_code == 200
    assert poisoned.client.get("/readyz").status_code == 200
    done = poisoned.syncd("report", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["degraded"] == []


def _version_actions(db: Path) -> list[str]:
    with sqlite3.connect(db) as connection:
        return [row[0] for row in connection.execute("SELECT action_id FROM card_version")]


def test_a_poisoned_row_degrades_its_card_only(poisoned: Poisoned) -> None:
    w = poisoned.sandbox.world
    drome = w.find_card("Drôme", board=CONSORTIUM_SHORT_LINK)["id"]
    meuse = w.find_card("Meuse", board=CONSORTIUM_SHORT_LINK)["id"]
    with sqlite3.connect(poisoned.db) as connection:
        connection.execute(
            "UPDATE card SET name = X'ff00', pos = 'top', date_last_activity = 'not a date' "
            "WHERE id = ?",
            (drome,),
        )
        connection.execute("UPDATE check_item SET state = 'maybe' WHERE card_id = ?", (meuse,))
    poisoned.daemon.health.report_every = 0  # /readyz checks the report at once

    response = poisoned.client.get("/api/report", params={"since": "2000-01-01"})
    assert response.status_code == 200, response.text
    report = response.json()
    degraded = {(d["card_id"], d["reason"]) for d in report["degraded"]}
    assert degraded == {
        (drome, "name: not text"),
        (drome, "pos: not a finite number"),
        (drome, "date_last_activity: not a date"),
        (meuse, "state: neither complete nor incomplete"),
    }
    assert len(report["departments"]) > 2  # the rest of the report is whole
    page = poisoned.client.get("/")
    assert page.status_code == 200
    assert "Lecture partielle : 2 carte(s) ont une valeur enregistrée illisible" in page.text
    ready = poisoned.client.get("/readyz")
    assert ready.status_code == 200  # readable: degraded, not broken
    assert ready.json()["report"]["degraded_rows"] == len(report["degraded"])  # one per row
    assert {d["card_id"] for d in ready.json()["report"]["degraded"]} == {drome, meuse}

    done = poisoned.syncd("report", "--format", "json", "--since", "2000-01-01")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert {d["card_id"] for d in json.loads(done.stdout)["degraded"]} == {drome, meuse}
    warnings = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    named = [line for line in warnings if line["event"].startswith("stored row unreadable")]
    assert {line["card"] for line in named} == {drome, meuse}
    assert all(line["level"] == "warning" for line in named)

    synced = poisoned.syncd("sync")  # incremental: nothing changed remotely, nothing repaired
    assert synced.returncode == 0 and "Traceback" not in synced.stderr, synced.stderr
    repaired = poisoned.syncd("sync", "--full")  # the snapshot writes Trello's values back
    assert repaired.returncode == 0, repaired.stderr
    done = poisoned.syncd("report", "--format", "json")
    assert json.loads(done.stdout)["degraded"] == []
