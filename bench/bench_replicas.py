"""Benchmark of several `syncd run` replicas on one PostgreSQL, on loopback only.

For 1, 2 and 3 replicas (real subprocesses, each on its own port, one fresh schema each time,
one sandbox):

1. a burst of N signed webhook deliveries (real sandbox changes on both boards: moves, renames,
   descriptions), posted by 8 client threads round-robin over the replicas: deliveries per
   second *accepted* (every HTTP 200 answered) and *applied* (every ``webhook_delivery`` row
   marked, counted from the first POST);
2. ``kill -9`` of the replica holding the consortium board's duty: seconds until another
   replica's ``/readyz`` lists it (the bound is 2 × ``poll_seconds`` = 10 s here).

    python bench/bench_replicas.py [--deliveries 300] [--replicas 1,2,3]

PostgreSQL: ``postgresql+psycopg://root@127.0.0.1:5432/test`` (or ``SYNCD_BENCH_PG``). Loops are
bounded; nothing leaves the machine; every process started is stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psycopg

from adapters.sandbox import (
    CONSORTIUM_SHORT_LINK,
    FIGMA_FILE_KEY,
    PRODUCT_SHORT_LINK,
    Sandbox,
    webhook_signature,
)
from adapters.sandbox.figma_world import build_sample_figma

REPO = Path(__file__).resolve().parents[1]
PG_BASE = os.environ.get("SYNCD_BENCH_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")
LIBPQ = PG_BASE.replace("postgresql+psycopg://", "postgresql://")
POLL_SECONDS = 5
PUBLIC_URL = "http://127.0.0.1:8787"
CONSORTIUM = f"board:{CONSORTIUM_SHORT_LINK}"
DUTIES = {CONSORTIUM, f"board:{PRODUCT_SHORT_LINK}", f"figma:{FIGMA_FILE_KEY}", "flags"}
CLIENTS = 8


@contextmanager
def fresh_schema() -> Iterator[tuple[str, str]]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(LIBPQ, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}", schema
    finally:
        with psycopg.connect(LIBPQ, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, sandbox: Sandbox) -> None:
    path.write_text(
        f"""
[trello]
api_base = "{sandbox.trello_api_base}"
max_requests_per_10s = 100

[[trello.boards]]
id = "{CONSORTIUM_SHORT_LINK}"
role = "consortium"

[[trello.boards]]
id = "{PRODUCT_SHORT_LINK}"
role = "product"

[figma]
api_base = "{sandbox.figma_api_base}"
files = ["{FIGMA_FILE_KEY}"]

[schedule]
poll_seconds = {POLL_SECONDS}

[server]
host = "127.0.0.1"
public_url = "{PUBLIC_URL}"
""",
        encoding="utf-8",
    )


class Replicas:
    """n `syncd run` subprocesses over one store and one sandbox."""

    def __init__(self, count: int, config: Path, env: dict[str, str], logs: Path) -> None:
        self.ports = [free_port() for _ in range(count)]
        self.processes = []
        for number, port in enumerate(self.ports):
            with (logs / f"replica-{count}-{number}.log").open("wb") as err:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "syncd", "--config", str(config), "run"],
                        cwd=REPO,
                        env={**env, "SYNCD_SERVER_PORT": str(port)},
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                    )
                )

    def bases(self, alive_only: bool = True) -> list[str]:
        return [
            f"http://127.0.0.1:{port}"
            for port, process in zip(self.ports, self.processes, strict=True)
            if not alive_only or process.poll() is None
        ]

    def duties(self) -> dict[str, set[str]] | None:
        """base -> duties held, when every live replica is ready and every duty held once."""
        held: dict[str, set[str]] = {}
        for base in self.bases():
            try:
                response = httpx.get(base + "/readyz", timeout=2)
            except httpx.HTTPError:
                return None
            if response.status_code != 200:
                return None
            held[base] = set(response.json()["duties"])
        every = [duty for duties in held.values() for duty in duties]
        if sorted(every) != sorted(DUTIES) or not all(held.values()):
            return None
        return held

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def wait(what: str, check: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(step)
    raise SystemExit(f"timed out waiting for {what}")


def burst_actions(sandbox: Sandbox, count: int) -> list[dict[str, Any]]:
    """`count` real changes over every open card of both boards (moves, renames, texts)."""
    world = sandbox.world
    cards: list[tuple[str, list[str]]] = []
    for ref in (CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK):
        board = world.board(ref)["id"]
        lists = [x["id"] for x in world.lists.values() if x["idBoard"] == board]
        cards += [(card["id"], lists) for card in world.board_cards(board) if not card["closed"]]
    actions = []
    for number in range(count):
        card, lists = cards[number % len(cards)]
        round_ = number // len(cards)
        match round_ % 3:
            case 0:
                actions.append(world.move_card(card, lists[(round_ + number) % len(lists)]))
            case 1:
                actions.append(world.rename_card(card, f"{world.cards[card]['name']} ·"))
            case _:
                actions.append(world.set_desc(card, f"Relu ({number})"))
    return actions


def signed(sandbox: Sandbox, action: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"action": action, "model": {"id": action["data"]["board"]["id"]}, "webhook": {}}
    ).encode()
    signature = webhook_signature(sandbox.api_secret, body, PUBLIC_URL + "/webhooks/trello")
    return body, {"X-Trello-Webhook": signature, "Content-Type": "application/json"}


def applied(schema: str) -> int:
    with psycopg.connect(LIBPQ, autocommit=True) as connection:
        row = connection.execute(
            f'SELECT count(*) FROM "{schema}".webhook_delivery WHERE applied_at IS NOT NULL'
        ).fetchone()
    return int(row[0]) if row else 0


def run_one(count: int, deliveries: int, logs: Path) -> dict[str, Any]:
    with (
        Sandbox(deliver_webhooks=False, rate_limit_per_10s=None) as sandbox,
        fresh_schema() as (url, schema),
    ):
        sandbox.figma = build_sample_figma()
        config = logs / f"syncd-{count}.toml"
        write_config(config, sandbox)
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
            SYNCD_STORE_URL=url,
        )
        replicas = Replicas(count, config, env, logs)
        try:
            wait("every duty held, every replica ready", replicas.duties, 90, 0.2)
            bodies = [signed(sandbox, action) for action in burst_actions(sandbox, deliveries)]
            bases = replicas.bases()
            client = httpx.Client(timeout=30)

            def post(number: int) -> int:
                body, headers = bodies[number]
                url = bases[number % len(bases)] + "/webhooks/trello"
                return client.post(url, content=body, headers=headers).status_code

            started = time.perf_counter()
            with ThreadPoolExecutor(CLIENTS) as pool:
                statuses = list(pool.map(post, range(len(bodies))))
            accepted_seconds = time.perf_counter() - started
            client.close()
            assert statuses.count(200) == len(bodies), statuses
            wait("every delivery applied", lambda: applied(schema) == len(bodies), 300, 0.02)
            applied_seconds = time.perf_counter() - started
            takeover: float | None = None
            if count > 1:
                held = wait("every duty held after the burst", replicas.duties, 60, 0.1)
                holder = next(base for base, duties in held.items() if CONSORTIUM in duties)
                victim = replicas.processes[replicas.bases(alive_only=False).index(holder)]
                victim.send_signal(signal.SIGKILL)
                killed = time.perf_counter()
                victim.wait(10)

                def moved() -> bool:
                    return any(
                        CONSORTIUM in (held or {}).get(base, set())
                        for held in [replicas.duties()]
                        for base in replicas.bases()
                    )

                wait("the consortium board taken over", moved, 4 * POLL_SECONDS, 0.02)
                takeover = time.perf_counter() - killed
        finally:
            replicas.stop()
    return {
        "replicas": count,
        "deliveries": deliveries,
        "accepted_per_s": deliveries / accepted_seconds,
        "applied_per_s": deliveries / applied_seconds,
        "takeover_s": takeover,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=300)
    parser.add_argument("--replicas", default="1,2,3")
    args = parser.parse_args()
    counts = [int(part) for part in args.replicas.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_one(count, args.deliveries, Path(tmp)) for count in counts]
    print(f"{args.deliveries} deliveries, {CLIENTS} client threads, poll_seconds={POLL_SECONDS}")
    print(f"{'replicas':>8}  {'accepted/s':>10}  {'applied/s':>9}  {'takeover after kill -9':>22}")
    for result in results:
        takeover = "—" if result["takeover_s"] is None else f"{result['takeover_s']:.2f} s"
        print(
            f"{result['replicas']:>8}  {result['accepted_per_s']:>10.0f}"
            f"  {result['applied_per_s']:>9.0f}  {takeover:>22}"
        )


if __name__ == "__main__":
    main()
