"""Three `syncd run` replicas (subprocesses, each on its own port) on one PostgreSQL schema,
pointed at one sandbox started in this test process.

Webhooks are delivered round-robin, some twice at once to two replicas; the holder of the
consortium board is killed with ``kill -9`` and its duty must move within 2 × ``poll_seconds``;
board changes made without webhooks are then picked up by the new holder; one replica's
PostgreSQL sessions are terminated (a network cut): it gives its duties up (503, one log line)
and recovers. At the end the store equals a fresh full sync, with one history row per real
change and no duplicate open flag."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text

from adapters.sandbox import (
    CONSORTIUM_SHORT_LINK,
    FIGMA_FILE_KEY,
    PRODUCT_SHORT_LINK,
    Sandbox,
    webhook_signature,
)
from adapters.sandbox.figma_world import build_sample_figma
from state.store import Store
from syncd.demo import demo_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
POLL_SECONDS = 5  # the smallest the configuration allows: takeover bound 10 s
PUBLIC_URL = "http://127.0.0.1:8787"  # the address behind the load balancer (signatures)
CONSORTIUM = f"board:{CONSORTIUM_SHORT_LINK}"
DUTIES = {CONSORTIUM, f"board:{PRODUCT_SHORT_LINK}", f"figma:{FIGMA_FILE_KEY}", "flags"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    stderr: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> tuple[int, dict[str, Any]]:
        response = httpx.get(self.base + "/readyz", timeout=3)
        return response.status_code, response.json()

    def duties(self) -> set[str]:
        try:
            return set(self.ready()[1].get("duties", []))
        except httpx.HTTPError:
            return set()

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")


@dataclass
class Cluster:
    sandbox: Sandbox
    url: str
    config: Path
    env: dict[str, str]
    replicas: list[Replica]
    tmp: Path

    def alive(self) -> list[Replica]:
        return [r for r in self.replicas if r.process.poll() is None]

    def wait(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for replica in self.replicas:
                code = replica.process.poll()
                if code is not None and code != -signal.SIGKILL:
                    pytest.fail(f"{replica.name} exited ({code}):\n{replica.log()[-3000:]}")
            try:
                result = check()
            except httpx.HTTPError:
                result = None
            if result:
                return result
            time.sleep(0.05)
        logs = "\n".join(f"--- {r.name}\n{r.log()[-2500:]}" for r in self.replicas)
        pytest.fail(f"timed out waiting for {what}\n{logs}")

    def post(self, replica: Replica, action: dict[str, Any]) -> int:
        body = json.dumps(
            {"action": action, "model": {"id": action["data"]["board"]["id"]}, "webhook": {}}
        ).encode()
        signature = webhook_signature(
            self.sandbox.api_secret, body, PUBLIC_URL + "/webhooks/trello"
        )
        response = httpx.post(
            replica.base + "/webhooks/trello",
            content=body,
            headers={"X-Trello-Webhook": signature, "Content-Type": "application/json"},
            timeout=10,
        )
        return response.status_code

    def sql(self, query: str) -> list[Any]:
        store = Store(self.url, migrate=False)
        try:
            with store.reader.begin() as connection:
                return list(connection.execute(text(query)))
        finally:
            store.close()


def _start(name: str, config: Path, env: dict[str, str], tmp: Path) -> Replica:
    port = _free_port()
    stderr = tmp / f"{name}.stderr"
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "syncd", "--config", str(config), "run"],
            cwd=REPO,
            env={**env, "SYNCD_SERVER_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    return Replica(name, port, process, stderr)


@pytest.fixture
def cluster(pg_store_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with Sandbox(deliver_webhooks=False) as sandbox:
        sandbox.figma = build_sample_figma()
        config = tmp_path / "syncd.toml"
        config.write_text(
            demo_config(
                sandbox,
                departments=["14", "22", "26", "55", "62", "77"],
                extra=(
                    f"\n[schedule]\npoll_seconds = {POLL_SECONDS}\nfull_sync_hours = 24\n"
                    f'\n[server]\nhost = "127.0.0.1"\npublic_url = "{PUBLIC_URL}"\n'
                ),
            ),
            encoding="utf-8",
        )
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SYNCD_", "TRELLO_", "FIGMA_"))
        }
        env.update(
            TRELLO_API_KEY=sandbox.api_key,
            TRELLO_TOKEN=sandbox.token,
            TRELLO_API_SECRET=sandbox.api_secret,
            FIGMA_TOKEN="sandbox-figma-token",
            PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
            SYNCD_LOG_FORMAT="json",
            SYNCD_STORE_URL=pg_store_url,
        )
        replicas = [_start(f"replica-{n}", config, env, tmp_path) for n in range(3)]
        try:
            yield Cluster(sandbox, pg_store_url, config, env, replicas, tmp_path)
        finally:
            for replica in replicas:
                if replica.process.poll() is None:
                    replica.process.kill()
                    replica.process.wait(10)


def _settled(cluster: Cluster) -> dict[str, str] | None:
    """duty -> replica name when every duty is held by exactly one live replica, and every
    live replica holds some (4 duties over 3 replicas: 2, 1, 1; over 2: 2, 2)."""
    holders: dict[str, str] = {}
    for replica in cluster.alive():
        status, body = replica.ready()
        if status != 200:
            return None
        for duty in body["duties"]:
            if duty in holders:
                return None
            holders[duty] = replica.name
    spread = set(holders.values()) == {replica.name for replica in cluster.alive()}
    return holders if set(holders) == DUTIES and spread else None


def _mutations(cluster: Cluster) -> list[dict[str, Any]]:
    """One change per card: product cards moved, consortium cards renamed or labelled."""
    world = cluster.sandbox.world
    actions: list[dict[str, Any]] = []
    product = world.board(PRODUCT_SHORT_LINK)["id"]
    done = world.find_list(PRODUCT_SHORT_LINK, "En revue")
    moved = [c for c in world.board_cards(product) if c["idList"] != done][:12]
    actions += [world.move_card(card["id"], done) for card in moved]
    consortium = world.board(CONSORTIUM_SHORT_LINK)["id"]
    ongoing = world.find_list(CONSORTIUM_SHORT_LINK, "Actions en cours")
    cards = [c for c in world.board_cards(consortium) if c["idList"] == ongoing][:8]
    priority = world.find_label(CONSORTIUM_SHORT_LINK, "Prioritaire")
    for number, card in enumerate(cards):
        if number % 2 or priority in card["idLabels"]:
            actions.append(world.rename_card(card["id"], card["name"] + " (relu)"))
        else:
            actions.append(world.add_label(card["id"], priority))
    return actions


def _deliver(cluster: Cluster, actions: list[dict[str, Any]]) -> int:
    """Round-robin over the live replicas; every third one also to a second replica at once."""
    alive = cluster.alive()
    twice = 0
    for number, action in enumerate(actions):
        first = alive[number % len(alive)]
        if number % 3 == 0:
            second = alive[(number + 1) % len(alive)]
            answers: list[int] = []
            threads = [
                threading.Thread(
                    target=lambda r=r, a=action, out=answers: out.append(cluster.post(r, a))
                )
                for r in (first, second)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
            assert answers == [200, 200]
            twice += 1
        else:
            assert cluster.post(first, action) == 200
    return twice


def _mirror(url: str) -> dict[str, Any]:
    """What the mirror says of the boards (live cards, their labels, members, check items)."""
    store = Store(url, migrate=False)
    try:
        rows = store.read_mirror()
        flags = sorted((f["department"], f["code"]) for f in store.flags())
    finally:
        store.close()
    live = {c["id"] for c in rows.cards if c["deleted_at"] is None}
    return {
        "cards": sorted(
            (c["id"], c["name"], c["list_id"], bool(c["closed"]), c["desc"], c["due"])
            for c in rows.cards
            if c["id"] in live
        ),
        "labels": sorted((r["card_id"], r["label_id"]) for r in rows.card_labels),
        "members": sorted((r["card_id"], r["member_id"]) for r in rows.card_members),
        "items": sorted((r["id"], r["state"]) for r in rows.check_items),
        "fields": sorted(
            (r["card_id"], r["custom_field_id"], r["value"]) for r in rows.custom_field_items
        ),
        "flags": flags,
    }


def _field(action: dict[str, Any]) -> str:
    """The history field a sandbox action changes (moves, renames, labels)."""
    if action["type"] == "addLabelToCard":
        return "labels"
    return {"idList": "list", "name": "name"}[next(iter(action["data"]["old"]))]


def _terminate(url: str, replica_id: str) -> int:
    libpq = url.split("?")[0].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"syncd {replica_id}",),
        ).fetchall()
    return len(rows)


def test_three_replicas_share_the_work_survive_a_kill_and_a_cut(cluster: Cluster) -> None:
    # -- start: every duty held once, spread (nobody holds everything) --------------------
    holders = cluster.wait("duties spread over three ready replicas", lambda: _settled(cluster), 60)
    assert sorted(Counter(holders.values()).values()) == [1, 1, 2]
    boards = {holders[CONSORTIUM], holders[f"board:{PRODUCT_SHORT_LINK}"]}
    assert len(boards) == 2, "the boards are on two replicas"

    # idle boards stay fresh for every replica, not only their holder (2 × poll_seconds later)
    time.sleep(2 * POLL_SECONDS + 1)
    assert [replica.ready()[0] for replica in cluster.replicas] == [200, 200, 200]

    # -- webhooks, round-robin and some twice at once --------------------------------------
    actions = _mutations(cluster)
    twice = _deliver(cluster, actions)
    assert twice >= 6
    ids = [action["id"] for action in actions]
    cluster.wait(
        "every delivery applied",
        lambda: (
            cluster.sql("SELECT count(*) FROM webhook_delivery WHERE outcome = 'applied'")[0][0]
            == len(ids)
        ),
        30,
    )
    # one history row per real change, whoever saw it first (a webhook, or a poll that read the
    # action before its delivery was applied), never two
    expected = {(action["data"]["card"]["id"], _field(action)) for action in actions}
    cards = ", ".join(f"'{card}'" for card, _field_name in expected)
    seen = Counter(
        (row[0], row[1])
        for row in cluster.sql(
            f"SELECT card_id, field FROM card_version WHERE card_id IN ({cards})"
        )
    )
    assert seen == Counter(expected), "one history row per delivered change"

    # -- kill -9 the consortium's holder; its duty moves within 2 × poll_seconds ------------
    victim = next(r for r in cluster.replicas if r.name == holders[CONSORTIUM])
    victim.process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    victim.process.wait(10)
    world = cluster.sandbox.world
    quiet = world.find_card("Comité de pilotage", board=CONSORTIUM_SHORT_LINK)
    world.rename_card(quiet["id"], "Comité de pilotage (sans webhook)")  # no delivery made
    new_holder = cluster.wait(
        "the consortium board's duty taken over",
        lambda: next((r for r in cluster.alive() if CONSORTIUM in r.duties()), None),
        2 * POLL_SECONDS + 5,
    )
    takeover = time.monotonic() - killed
    assert takeover <= 2 * POLL_SECONDS, f"takeover took {takeover:.1f} s"
    cluster.wait(
        "the change made without a webhook picked up by the new holder",
        lambda: (
            cluster.sql(f"SELECT name FROM card WHERE id = '{quiet['id']}'")[0][0]
            == "Comité de pilotage (sans webhook)"
        ),
        2 * POLL_SECONDS,
    )
    cluster.wait("the survivors hold every duty", lambda: _settled(cluster), 2 * POLL_SECONDS)

    # -- a network cut: one replica's sessions terminated ----------------------------------
    cut = new_holder
    replica_id = cut.ready()[1]["replica"]
    assert _terminate(cluster.url, replica_id) >= 1
    _status, body = cluster.wait(
        "the cut replica gives its duties up (503)",
        lambda: (lambda answer: answer if answer[0] == 503 else None)(cut.ready()),
        10,
    )
    assert body["duties"] == [] and "database" in body["reason"]
    cluster.wait(
        "the cut replica recovers",
        lambda: cut.ready()[0] == 200 and cut.duties(),
        15,
    )
    lost = [line for line in cut.log().splitlines() if "lost the database" in line]
    assert len(lost) == 1, lost
    cluster.wait("every duty held once again", lambda: _settled(cluster), 2 * POLL_SECONDS)

    # -- the end: the store equals a fresh full sync ---------------------------------------
    fresh = cluster.tmp / "fresh.db"
    synced = subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(cluster.config), "sync", "--full"],
        cwd=REPO,
        env={**cluster.env, "SYNCD_STORE_URL": f"sqlite:///{fresh}"},
        capture_output=True,
        timeout=60,
    )
    assert synced.returncode == 0, synced.stderr.decode()[-2000:]
    expected = _mirror(f"sqlite:///{fresh}")
    cluster.wait(
        "the replicas' store equal to a fresh full sync (flags at the next pass)",
        lambda: _mirror(cluster.url) == expected,
        2 * POLL_SECONDS,
    )
    for replica in cluster.alive():
        replica.process.send_signal(signal.SIGTERM)
    for replica in cluster.alive():
        assert replica.process.wait(15) == 0
    versions = cluster.sql("SELECT card_id, field, observed_at, old, new FROM card_version")
    assert all(row[3] != row[4] for row in versions), "a history row without a change"
    duplicates = cluster.sql(
        "SELECT department, code FROM flag WHERE resolved_at IS NULL"
        " GROUP BY department, code HAVING count(*) > 1"
    )
    assert duplicates == []
    assert cluster.sql("SELECT count(*) FROM duty_lease WHERE holder IS NOT NULL")[0][0] == 0
