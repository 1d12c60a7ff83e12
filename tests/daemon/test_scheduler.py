"""The daemon's scheduler and duties: timing with an injected clock (no sleeping), duties held
through leases, and the daemon's passes against the sandbox (request counts equal to the CLI's,
only the duties held are done, every write on the writer thread)."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from adapters.sandbox import CONSORTIUM_SHORT_LINK, FIGMA_FILE_KEY, PRODUCT_SHORT_LINK, Sandbox
from adapters.sandbox.figma_world import build_sample_figma
from state import models as m
from state.store import Store, StoreClosing
from syncd.daemon.leases import LocalLeases
from syncd.daemon.run import Daemon
from syncd.daemon.scheduler import (
    FLAGS,
    Scheduler,
    Task,
    board_duty,
    duties_of,
    every,
    figma_duty,
    pass_scope,
)
from syncd.demo import demo_settings
from syncd.runtime import build_runtime
from syncd.sync_pass import sync_pass
from syncd.trello.schema import parse_action

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class GrantedLeases:
    """Leases granting only the duties in `granted` (what another replica leaves us)."""

    def __init__(self, granted: Collection[str]) -> None:
        self.granted = set(granted)
        self._held: frozenset[str] = frozenset()

    def acquire(self, duties: Collection[str]) -> frozenset[str]:
        self._held = frozenset(d for d in duties if d in self.granted)
        return self._held

    def held(self) -> frozenset[str]:
        return self._held

    def release(self) -> None:
        self._held = frozenset()


def _scheduler(
    leases: Any, clock: Clock, runs: list[tuple[str, frozenset[str], datetime]]
) -> Scheduler:
    def task(name: str) -> Any:
        return lambda held: runs.append((name, frozenset(held), clock()))

    return Scheduler(
        [
            Task("poll", every(300), task("poll"), on_gain=True),
            Task("reconcile", every(24 * 3600), task("reconcile")),
        ],
        duties=["board:A", "board:B", FLAGS],
        leases=leases,
        clock=clock,
    )


# -- timing ----------------------------------------------------------------------------------


def test_first_pass_at_start_then_every_poll_and_reconcile_interval() -> None:
    clock = Clock()
    runs: list[tuple[str, frozenset[str], datetime]] = []
    scheduler = _scheduler(LocalLeases(), clock, runs)
    everything = frozenset({"board:A", "board:B", FLAGS})
    assert scheduler.tick() == pytest.approx(300)
    assert runs == [("poll", everything, START)]  # the first pass, at start
    clock.advance(299)
    scheduler.tick()
    assert len(runs) == 1
    clock.advance(1)
    scheduler.tick()
    assert runs[-1] == ("poll", everything, START + timedelta(seconds=300))
    for _ in range(24 * 12 - 1):  # one day of polls
        clock.advance(300)
        scheduler.tick()
    assert [name for name, _, _ in runs].count("poll") == 24 * 12 + 1
    assert [name for name, _, _ in runs].count("reconcile") == 1
    reconcile = next(run for run in runs if run[0] == "reconcile")
    assert reconcile[1] == everything and reconcile[2] == START + timedelta(days=1)


def test_a_failing_task_is_logged_and_runs_again_next_time() -> None:
    clock = Clock()
    calls: list[datetime] = []

    def failing(_held: frozenset[str]) -> None:
        calls.append(clock())
        raise RuntimeError("Trello down")

    scheduler = Scheduler(
        [Task("poll", every(60), failing, on_gain=True)],
        duties=["board:A"],
        leases=LocalLeases(),
        clock=clock,
    )
    scheduler.tick()
    clock.advance(60)
    scheduler.tick()
    assert calls == [START, START + timedelta(seconds=60)]


def test_a_task_stopped_by_the_shutdown_is_no_error() -> None:
    def stopped(_held: frozenset[str]) -> None:
        raise StoreClosing("the store writer is stopped (syncd is shutting down)")

    def failing(_held: frozenset[str]) -> None:
        raise RuntimeError("Trello down")

    scheduler = Scheduler(
        [Task("poll", every(60), stopped, on_gain=True), Task("x", every(60), failing, True)],
        duties=["board:A"],
        leases=LocalLeases(),
        clock=Clock(),
    )
    with structlog.testing.capture_logs() as logs:
        scheduler.tick()
    levels = {entry["event"]: entry["log_level"] for entry in logs}
    assert levels == {
        "scheduled task interrupted: syncd is stopping": "info",
        "scheduled task failed": "error",
    }


def test_the_loop_stops_when_asked() -> None:
    stop = threading.Event()
    ran = threading.Event()
    scheduler = Scheduler(
        [Task("poll", every(300), lambda _held: ran.set(), on_gain=True)],
        duties=["board:A"],
        leases=LocalLeases(),
        clock=lambda: datetime.now(UTC),
        stop=stop,
    )
    scheduler.start()
    assert ran.wait(5)
    stop.set()
    scheduler.join(5)
    assert scheduler._thread is not None and not scheduler._thread.is_alive()


# -- duties ----------------------------------------------------------------------------------


def test_only_the_duties_held_are_done_and_a_gained_duty_at_once() -> None:
    clock = Clock()
    runs: list[tuple[str, frozenset[str], datetime]] = []
    leases = GrantedLeases({"board:A"})
    scheduler = _scheduler(leases, clock, runs)
    scheduler.tick()
    assert runs == [("poll", frozenset({"board:A"}), START)]
    clock.advance(10)
    leases.granted |= {"board:B", FLAGS}  # another replica went away
    scheduler.tick()
    assert runs[-1] == ("poll", frozenset({"board:B", FLAGS}), START + timedelta(seconds=10))
    clock.advance(290)
    scheduler.tick()
    assert runs[-1] == ("poll", frozenset({"board:A", "board:B", FLAGS}), clock())
    leases.granted = {"board:B"}  # lost A and the flags
    clock.advance(300)
    scheduler.tick()
    assert runs[-1] == ("poll", frozenset({"board:B"}), clock())
    assert scheduler.held == frozenset({"board:B"})


def test_duties_and_the_pass_scope_of_a_configuration(tmp_path: Path) -> None:
    with Sandbox() as sandbox:
        settings = demo_settings(sandbox, tmp_path / "x.db")
    assert duties_of(settings) == [
        board_duty(CONSORTIUM_SHORT_LINK),
        board_duty(PRODUCT_SHORT_LINK),
        figma_duty(FIGMA_FILE_KEY),
        FLAGS,
    ]
    everything = pass_scope(settings, duties_of(settings))
    assert [b.id for b in everything.boards or []] == [CONSORTIUM_SHORT_LINK, PRODUCT_SHORT_LINK]
    assert everything.figma_files == [FIGMA_FILE_KEY] and everything.flags
    one = pass_scope(settings, {board_duty(PRODUCT_SHORT_LINK)})
    assert [b.id for b in one.boards or []] == [PRODUCT_SHORT_LINK]
    assert one.figma_files == [] and not one.flags and not one.empty
    assert pass_scope(settings, set()).empty


# -- the daemon's passes ---------------------------------------------------------------------


@contextmanager
def _daemon(tmp_path: Path, **kwargs: Any) -> Iterator[tuple[Sandbox, Daemon]]:
    with Sandbox(deliver_webhooks=False) as sandbox:
        sandbox.figma = build_sample_figma()
        daemon = Daemon(demo_settings(sandbox, tmp_path / "daemon.db"), **kwargs)
        daemon.start_workers()
        try:
            yield sandbox, daemon
        finally:
            daemon.stop()


def test_the_daemons_first_pass_costs_what_syncd_sync_costs(tmp_path: Path) -> None:
    with Sandbox(deliver_webhooks=False) as sandbox:
        sandbox.figma = build_sample_figma()
        settings = demo_settings(sandbox, tmp_path / "cli.db")
        runtime = build_runtime(settings, store=Store(settings.store.url))
        assert sync_pass(runtime).failed == []
        sync_pass(runtime)  # an idle poll
        cli = [(r.method, r.path) for r in sandbox.requests]
        runtime.store.close()
    with _daemon(tmp_path) as (sandbox, daemon):
        daemon.scheduler.tick()  # the first pass, as `syncd run` starts
        daemon.sync_pass()  # an idle poll
        assert [(r.method, r.path) for r in sandbox.requests] == cli
        assert daemon.health.readiness()[0]
        assert daemon.health.readiness()[1]["duties"] == sorted(daemon.duties)


def test_a_replica_holding_one_board_syncs_that_board_alone(tmp_path: Path) -> None:
    leases = GrantedLeases({board_duty(PRODUCT_SHORT_LINK)})
    with _daemon(tmp_path, leases=leases) as (sandbox, daemon):
        daemon.scheduler.tick()  # the first pass: a snapshot of the product board
        daemon.sync_pass()  # a poll: the change check asks for the product board alone
        product = sandbox.world.board(PRODUCT_SHORT_LINK)["id"]
        consortium = sandbox.world.board(CONSORTIUM_SHORT_LINK)["id"]
        asked = [f"{r.path}?{r.query}" for r in sandbox.requests]
        assert any("/1/batch" in a and PRODUCT_SHORT_LINK in a for a in asked), asked
        assert any(product in a or PRODUCT_SHORT_LINK in a for a in asked)
        assert not any(consortium in a or CONSORTIUM_SHORT_LINK in a for a in asked)
        assert not any(a.startswith("/v1/") for a in asked)  # no Figma duty
        assert daemon.store.count(m.Flag) == 0  # no flags duty
        assert [row["board_ref"] for row in daemon.store.sync_states()] == [PRODUCT_SHORT_LINK]
        metrics = daemon.metrics.render()[0].decode()
        assert f'syncd_duty_held{{duty="board:{PRODUCT_SHORT_LINK}"}} 1.0' in metrics
        assert 'syncd_duty_held{duty="flags"} 0.0' in metrics


def test_every_write_of_a_pass_and_a_webhook_runs_on_the_writer(tmp_path: Path) -> None:
    with _daemon(tmp_path) as (sandbox, daemon):
        threads: list[str] = []
        original = daemon.store._write

        @contextmanager
        def recording() -> Iterator[Any]:
            threads.append(threading.current_thread().name)
            with original() as connection:
                yield connection

        daemon.store._write = recording  # type: ignore[method-assign]
        daemon.sync_pass(full=True)
        by_the_pass = len(threads)
        world = sandbox.world
        card = world.find_card("Drôme", board=CONSORTIUM_SHORT_LINK)
        action = world.move_card(card["id"], world.find_list(CONSORTIUM_SHORT_LINK, "Fait"))
        board = daemon.settings.trello.boards[0]
        checked = parse_action(action)
        # (the intake's queue row is committed on its own connection, the documented exception:
        # `state.queue.DeliveryQueue`; applying the delivery is a write of the writer)
        assert daemon.worker.offer_trello(checked, board, action["data"]["board"]["id"])
        assert daemon.worker.wait_idle(10)
        assert daemon.store.known_actions([action["id"]]) == {action["id"]}
        assert by_the_pass > 3 and len(threads) > by_the_pass  # the pass wrote, the webhook too
        assert set(threads) == {"syncd-writer"}
