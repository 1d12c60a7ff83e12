"""Benchmark of the webhook path of `syncd run`, on loopback only.

For SQLite and PostgreSQL, serves the real app (uvicorn on 127.0.0.1) over a synced sandbox,
then:

1. posts N signed deliveries (real sandbox changes: moves, check items, labels, members) from
   C concurrent clients (``--clients``; 1 = one after the other) and reports deliveries per
   second *accepted* (HTTP 200 answered: durably queued since issue 15) and *applied* (from the
   first POST until every delivery is written to the store by the one writer);
2. a *burst*: N more deliveries posted while the worker is held (their boards' lock taken, as
   a sync would), then released: deliveries per second applied from the queued backlog (the
   worker's own rate, whatever the HTTP side costs);
3. for M single changes, measures the delay from the POST to the change being visible in
   ``GET /api/report?since=…`` (median and p99, the nearest-rank 99th percentile), broken down
   into POST → 200 (durably queued) and 200 → visible in the report. The first W changes after
   the daemon starts (``--warmup``) are timed but kept out of the median and p99: the very
   first pays one-time costs (modules the HTTP stack imports on its first request, SQLAlchemy
   compiling each statement of the webhook path once); it is printed apart ("first").
   Before 2026-12-02 the bench took 40 samples, no warm-up: its "p99" was the slowest of 40,
   most often the first delivery (``--samples 40 --warmup 0`` measures that way again).

    python bench/bench_webhooks.py [--deliveries 500] [--clients 8] [--samples 200]
                                   [--warmup 5] [--backends sqlite,postgresql]

PostgreSQL: ``postgresql+psycopg://root@127.0.0.1:5432/test`` (or ``SYNCD_BENCH_PG``), in a
fresh schema dropped afterwards. Loops are bounded; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import structlog
import uvicorn

from adapters.sandbox import CONSORTIUM_SHORT_LINK, Sandbox, webhook_signature
from syncd.config import StoreConfig
from syncd.daemon.run import Daemon
from syncd.demo import demo_settings
from syncd.trello.webhooks import trello_callback_url
from syncd.web.app import create_app

PG_BASE = os.environ.get("SYNCD_BENCH_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")


@contextmanager
def store_url(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    import psycopg

    libpq = PG_BASE.replace("postgresql+psycopg://", "postgresql://")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        joiner = "&" if "?" in PG_BASE else "?"  # a base may name its socket: ?host=/run/…
        yield f"{PG_BASE}{joiner}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(libpq, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(url: str) -> Iterator[tuple[Sandbox, Daemon, str]]:
    with Sandbox(deliver_webhooks=False, rate_limit_per_10s=None) as sandbox:
        port = _free_port()
        settings = demo_settings(sandbox, Path("unused.db"))
        settings = settings.model_copy(
            update={
                "store": StoreConfig(url=url),
                "server": settings.server.model_copy(
                    update={"port": port, "public_url": f"http://127.0.0.1:{port}"}
                ),
            }
        )
        daemon = Daemon(settings)
        daemon.runtime.trello.session.bucket = None  # loopback: no client-side budget
        daemon.runtime.figma = None
        daemon.start_workers()
        daemon.sync_pass(full=True)
        config = uvicorn.Config(
            create_app(daemon.web_context()),
            host="127.0.0.1",
            port=port,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            yield sandbox, daemon, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(5)
            daemon.stop()


def mutations(sandbox: Sandbox, count: int) -> list[Callable[[], dict[str, Any]]]:
    w = sandbox.world
    board = CONSORTIUM_SHORT_LINK
    cards = [w.find_card(name, board=board)["id"] for name in ("Drôme", "Meuse", "Calvados")]
    lists = [w.find_list(board, name) for name in ("Actions en cours", "Fait", "Départements")]
    label = w.find_label(board, "Transverse")
    member = w.find_member("Léa Dubois")
    with w.lock:
        items = [
            (card, item["id"])
            for card in cards
            for checklist in w.cards[card]["idChecklists"]
            for item in w.checklists[checklist]["checkItems"]
        ]
    steps: list[Callable[[], dict[str, Any]]] = []
    for i in range(count):
        card = cards[i % len(cards)]
        on = i % 8 < 4
        match i % 4:
            case 0:
                steps.append(lambda c=card, n=i: w.move_card(c, lists[n % len(lists)]))
            case 1:
                cid, item = items[i % len(items)]
                steps.append(lambda c=cid, it=item, o=on: w.set_check_item(c, it, o))
            case 2:
                steps.append(lambda c=card, o=on: (w.add_label if o else w.remove_label)(c, label))
            case _:
                steps.append(
                    lambda c=card, o=on: (w.add_member if o else w.remove_member)(c, member)
                )
    return steps


def post(client: httpx.Client, sandbox: Sandbox, daemon: Daemon, action: dict[str, Any]) -> int:
    body = json.dumps({"action": action, "model": {"id": action["data"]["board"]["id"]}}).encode()
    signature = webhook_signature(sandbox.api_secret, body, trello_callback_url(daemon.settings))
    response = client.post(
        "/webhooks/trello",
        content=body,
        headers={"X-Trello-Webhook": signature, "Content-Type": "application/json"},
    )
    return response.status_code


def post_all(
    base: str, sandbox: Sandbox, daemon: Daemon, actions: list[dict[str, Any]], clients: int
) -> list[int]:
    """Post every action, `clients` at a time (each client its own connection)."""
    local = threading.local()

    def one(action: dict[str, Any]) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, timeout=30)
        return post(local.client, sandbox, daemon, action)

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, actions))


def throughput(backend: str, deliveries: int, clients: int) -> dict[str, float]:
    with store_url(backend) as url, serving(url) as (sandbox, daemon, base):
        actions = [step() for step in mutations(sandbox, 2 * deliveries)]
        started = time.perf_counter()
        statuses = post_all(base, sandbox, daemon, actions[:deliveries], clients)
        accepted = time.perf_counter() - started
        if not daemon.worker.wait_idle(600):
            raise SystemExit(f"{backend}: deliveries not applied within 600 s")
        applied = time.perf_counter() - started
        assert statuses.count(200) == deliveries, statuses
        done = daemon.metrics.delivery_count("applied")
        # the burst: queued while the worker waits for the boards' lock, then applied
        boards = [board.id for board in daemon.settings.trello.boards]
        with daemon.sync_lock.hold(boards):
            statuses = post_all(base, sandbox, daemon, actions[deliveries:], clients)
            time.sleep(0.2)  # the worker has taken its first run and waits for the lock
            released = time.perf_counter()
        if not daemon.worker.wait_idle(600):
            raise SystemExit(f"{backend}: the burst was not applied within 600 s")
        drained = time.perf_counter() - released
        assert statuses.count(200) == deliveries, statuses
        burst = daemon.metrics.delivery_count("applied") - done
        failed = daemon.metrics.delivery_count("failed")
        return {
            "accepted_per_s": deliveries / accepted,
            "applied_per_s": done / applied,
            "burst_per_s": burst / drained,
            "failed": failed,
        }


def latency(backend: str, samples: int, warmup: int = 0) -> dict[str, float]:
    with store_url(backend) as url, serving(url) as (sandbox, daemon, base):
        w = sandbox.world
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        card = w.find_card("Drôme", board=CONSORTIUM_SHORT_LINK)["id"]
        lists = [w.find_list(CONSORTIUM_SHORT_LINK, n) for n in ("Actions en cours", "Fait")]
        delays: list[float] = []
        acks: list[float] = []  # the breakdown: POST → 200 (durably queued)
        with httpx.Client(base_url=base, timeout=30) as client:
            for i in range(warmup + samples):
                action = w.move_card(card, lists[i % 2])
                started = time.perf_counter()
                assert post(client, sandbox, daemon, action) == 200
                acks.append(time.perf_counter() - started)
                deadline = started + 10
                while time.perf_counter() < deadline:
                    report = client.get("/api/report", params={"since": since}).json()
                    seen = sum(
                        1
                        for c in report["changes"]
                        if c["kind"] == "moved" and c["card_id"] == card
                    )
                    if seen > i:
                        break
                else:
                    raise SystemExit(f"{backend}: change {i} not visible within 10 s")
                delays.append(time.perf_counter() - started)
        first = delays[0]
        delays, acks = delays[warmup:], acks[warmup:]
        after = sorted(delay - ack for delay, ack in zip(delays, acks, strict=True))
        return {
            "first_ms": first * 1000,
            "median_ms": statistics.median(delays) * 1000,
            "p99_ms": _p99(sorted(delays)) * 1000,
            "max_ms": max(delays) * 1000,
            "ack_median_ms": statistics.median(acks) * 1000,
            "ack_p99_ms": _p99(sorted(acks)) * 1000,
            "after_median_ms": statistics.median(after) * 1000,
            "after_p99_ms": _p99(after) * 1000,
        }


def _p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5, help="first changes kept out of p99")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    print(
        f"webhook bench: {args.deliveries} deliveries from {args.clients} clients, then a burst "
        f"of {args.deliveries} queued; {args.samples} latency samples after {args.warmup} "
        "warm-up changes"
    )
    print(
        f"{'backend':<11} {'accepted/s':>11} {'applied/s':>10} {'burst applied/s':>16} "
        f"{'failed':>7} {'POST→report median':>19} {'p99':>9}"
    )
    for backend in args.backends.split(","):
        rate = throughput(backend, args.deliveries, args.clients)
        delay = latency(backend, args.samples, args.warmup)
        print(
            f"{backend:<11} {rate['accepted_per_s']:>11.0f} {rate['applied_per_s']:>10.0f} "
            f"{rate['burst_per_s']:>16.0f} {rate['failed']:>7.0f} "
            f"{delay['median_ms']:>16.1f} ms {delay['p99_ms']:>6.1f} ms",
            flush=True,
        )
        print(
            f"{'':<11} breakdown: POST→200 median {delay['ack_median_ms']:.1f} ms, "
            f"p99 {delay['ack_p99_ms']:.1f} ms; 200→report median "
            f"{delay['after_median_ms']:.1f} ms, p99 {delay['after_p99_ms']:.1f} ms; "
            f"slowest {delay['max_ms']:.1f} ms; first change after start "
            f"{delay['first_ms']:.1f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
