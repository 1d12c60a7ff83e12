"""A Trello delivery answered 200 is never lost: ``syncd run`` (a subprocess) receives a burst
from several clients, is killed with SIGKILL in the middle of it, and is started again on the
same store. Right after the kill, every acknowledged delivery is applied or still queued
(``webhook_delivery`` / ``webhook_queue``); after the restart every one of them is applied.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hostile import TRELLO_PATH, HostileRequest, send_http, trello_signature
from hostile_run import RunningSyncd, start_syncd, stop_syncd

from adapters.sandbox import CONSORTIUM_SHORT_LINK, Sandbox
from adapters.sandbox.figma_world import build_sample_figma
from syncd.daemon.worker import HOLD

BURST = 400
RELEASE_AFTER = 100  # acknowledged deliveries queued before the worker may apply
KILL_AFTER = 108  # … and the SIGKILL soon after: most likely in the middle of applying them
CLIENTS = 8


def _changes(sandbox: Sandbox, count: int) -> list[dict[str, Any]]:
    """`count` real changes on the consortium board (moves, check items, labels)."""
    w = sandbox.world
    board = CONSORTIUM_SHORT_LINK
    cards = [w.find_card(name, board=board)["id"] for name in ("Drôme", "Meuse", "Calvados")]
    lists = [w.find_list(board, name) for name in ("Actions en cours", "Fait", "Départements")]
    label = w.find_label(board, "Transverse")
    actions = []
    for i in range(count):
        card = cards[i % len(cards)]
        if i % 2 == 0:
            actions.append(w.move_card(card, lists[i % len(lists)]))
        elif i % 4 == 1:
            actions.append(w.add_label(card, label))
        else:
            actions.append(w.remove_label(card, label))
    return actions


def _post(run: RunningSyncd, action: dict[str, Any]) -> int | None:
    body = json.dumps({"action": action, "model": {"id": action["data"]["board"]["id"]}}).encode()
    signature = trello_signature(run.sandbox.api_secret, body, run.url + TRELLO_PATH)
    request = HostileRequest(
        "valid",
        "POST",
        TRELLO_PATH,
        headers=((b"x-trello-webhook", signature.encode()),),
        body=body,
    )
    try:
        answer = send_http("127.0.0.1", run.port, request, timeout=10)
    except OSError:  # the daemon is gone
        return None
    return None if answer is None else answer.status


def _where(run: RunningSyncd, ids: set[str]) -> tuple[dict[str, str], set[str]]:
    """(outcome of each delivery recorded, action ids still queued) among `ids`."""
    with run.store() as store:
        outcomes = dict(store.execute("SELECT action_id, outcome FROM webhook_delivery"))
        queued = {row[0] for row in store.execute("SELECT action_id FROM webhook_queue")}
    return {i: outcomes[i] for i in ids if i in outcomes}, queued & ids


@pytest.mark.slow
def test_kill_9_mid_burst_loses_no_acknowledged_delivery(tmp_path: Path) -> None:
    with Sandbox(deliver_webhooks=False) as sandbox:
        sandbox.figma = build_sample_figma()
        hold = tmp_path / "hold"  # while it exists, the worker applies nothing (queue builds)
        hold.touch()
        run = start_syncd(sandbox, tmp_path, env={HOLD: str(hold)})
        actions = _changes(sandbox, BURST)
        acked: set[str] = set()
        lock = threading.Lock()
        killed = threading.Event()

        def deliver(action: dict[str, Any]) -> None:
            if killed.is_set():
                return
            status = _post(run, action)
            with lock:
                if status == 200:
                    acked.add(action["id"])
                if len(acked) >= RELEASE_AFTER:
                    hold.unlink(missing_ok=True)  # the worker applies while the burst goes on
                if len(acked) >= KILL_AFTER and not killed.is_set():
                    os.kill(run.process.pid, signal.SIGKILL)  # mid-burst, mid-commit maybe
                    killed.set()

        try:
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(deliver, actions))
            assert killed.is_set(), "the burst ended before the kill"
            run.process.wait(10)
            assert run.process.returncode == -signal.SIGKILL
            applied, queued = _where(run, acked)
            assert queued, "nothing was left queued: the restart had nothing to apply"
            # the guarantee itself: each 200 is applied or durably queued at the kill
            assert not acked - set(applied) - queued, sorted(acked - set(applied) - queued)[:5]
            again = start_syncd(sandbox, tmp_path)
            try:
                deadline = _deadline(60)
                while True:
                    applied, queued = _where(again, acked)
                    if set(applied) == acked and not queued:
                        break
                    assert _deadline(0) < deadline, (
                        f"{len(acked) - len(applied)} acknowledged deliveries not applied "
                        f"after the restart ({len(queued)} still queued)"
                    )
                    threading.Event().wait(0.1)
                assert set(applied.values()) == {"applied"}
                with again.store() as store:
                    stored = {row[0] for row in store.execute("SELECT id FROM action")}
                assert acked <= stored
            finally:
                stop_syncd(again)
        finally:
            stop_syncd(run)


def _deadline(seconds: float) -> float:
    import time

    return time.monotonic() + seconds
