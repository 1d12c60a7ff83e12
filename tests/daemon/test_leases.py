"""Duties across replicas: the fair share (pure), then `PgLeases` on the real PostgreSQL, several
in this process over one schema: spread, exclusive, taken over when a replica dies (no release,
as after ``kill -9``) or leaves, given up when the database connection is lost, and recovered."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
import structlog

from state.coordination import LeaseView, Notifications, SessionLocks
from state.store import Store
from syncd.daemon.leases import (
    PgLeases,
    fair_shares,
    lease_seconds,
    plan_duties,
)

DUTIES = ["board:A", "board:B", "board:C", "figma:K", "flags", "digest", "writeback"]


# -- the fair share -------------------------------------------------------------------------


@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 9])
def test_shares_add_up_per_kind_and_stay_even(replicas: int) -> None:
    members = [f"r{i}" for i in range(replicas)]
    shares = fair_shares(DUTIES, members)
    for kind, count in {"board": 3, "figma": 1, "other": 3}.items():
        assert sum(share.get(kind, 0) for share in shares.values()) == count
    totals = [sum(share.values()) for share in shares.values()]
    assert max(totals) - min(totals) <= 1


def test_a_lone_replica_takes_everything_free() -> None:
    plan = plan_duties(DUTIES, LeaseView(("me",), {}), "me")
    assert plan.take == set(DUTIES) and not plan.give


def test_a_replica_joining_gets_boards_and_the_first_one_hands_over() -> None:
    everything = dict.fromkeys(DUTIES, "a")
    view = LeaseView(("a", "b"), everything)
    assert plan_duties(DUTIES, view, "b").take == set()  # nothing free yet
    give = plan_duties(DUTIES, view, "a").give
    assert give and any(duty.startswith("board:") for duty in give)
    after = LeaseView(("a", "b"), {d: h for d, h in everything.items() if d not in give})
    assert plan_duties(DUTIES, after, "b").take == give  # b takes exactly what a handed over
    final = {**after.holders, **dict.fromkeys(give, "b")}
    steady = LeaseView(("a", "b"), final)
    assert not plan_duties(DUTIES, steady, "a").give and not plan_duties(DUTIES, steady, "b").take
    boards = {holder for duty, holder in final.items() if duty.startswith("board:")}
    assert boards == {"a", "b"}


def test_a_dead_replicas_duties_go_to_the_survivors() -> None:
    holders = {"board:A": "a", "board:B": "b", "board:C": "c", "figma:K": "c", "flags": "a"}
    survivors = ("a", "b")  # c expired: its rows are no longer live holders
    view = LeaseView(survivors, {d: h for d, h in holders.items() if h in survivors})
    duties = list(holders)
    taken = plan_duties(duties, view, "a").take | plan_duties(duties, view, "b").take
    assert taken == {"board:C", "figma:K"}


def test_long_free_duties_are_taken_whatever_the_share() -> None:
    view = LeaseView(("a", "b"), {"board:A": "a", "flags": "a"})  # b sees a view lagging behind
    plan = plan_duties(["board:A", "flags", "digest"], view, "a", long_free=["digest"])
    assert "digest" in plan.take


def test_lease_duration_follows_the_poll_interval() -> None:
    assert lease_seconds(5) == 3.0
    assert lease_seconds(20) == 10.0
    assert lease_seconds(300) == 30.0
    # takeover ≤ ttl + ttl/4 (the others' heartbeat) stays within 2 × poll_seconds
    assert all(lease_seconds(p) * 1.25 < 2 * p for p in (5, 10, 60, 300, 3600))


# -- PgLeases on PostgreSQL -----------------------------------------------------------------

TTL = 1.2


@pytest.fixture
def pg_url(pg_store_url: str) -> Iterator[str]:
    Store(pg_store_url).close()  # migrated
    yield pg_store_url


@pytest.fixture
def replicas(pg_url: str) -> Iterator[Callable[..., PgLeases]]:
    made: list[PgLeases] = []
    names = itertools.count()

    def make(duties: list[str] = DUTIES, start: bool = True) -> PgLeases:
        leases = PgLeases(pg_url, duties, ttl_seconds=TTL, replica=f"r{next(names)}-test")
        made.append(leases)
        if start:
            leases.start()
        return leases

    yield make
    for leases in made:
        leases._stop.set()
        leases.table.close()


def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _settled(group: list[PgLeases], duties: list[str] = DUTIES) -> bool:
    held = [leases.acquire(duties) for leases in group]  # acquire: hand the excess over
    union = set().union(*held)
    return union == set(duties) and sum(len(h) for h in held) == len(duties)


def test_replicas_spread_the_duties_and_each_is_held_once(
    replicas: Callable[..., PgLeases],
) -> None:
    group = [replicas() for _ in range(3)]
    _until(lambda: _settled(group) and all(len(r.held()) <= 3 for r in group))
    held = [r.held() for r in group]
    assert all(held), "every replica holds something"
    boards = [sum(1 for d in h if d.startswith("board:")) for h in held]
    assert sorted(boards) == [1, 1, 1]


def test_a_replica_that_dies_is_taken_over_within_the_lease(
    replicas: Callable[..., PgLeases],
) -> None:
    group = [replicas() for _ in range(2)]
    _until(lambda: _settled(group) and all(r.held() for r in group))
    dead, alive = group
    lost = dead.held()
    dead._stop.set()  # no release: as after kill -9, its rows simply stop being renewed
    dead._thread.join(2)  # type: ignore[union-attr]
    dead.table.close()
    died = time.monotonic()
    _until(lambda: alive.acquire(DUTIES) >= lost, timeout=5 * TTL)
    assert time.monotonic() - died <= TTL * 1.25 + 0.5
    assert alive.held() == set(DUTIES)


def test_a_replica_that_stops_hands_over_at_once(replicas: Callable[..., PgLeases]) -> None:
    group = [replicas() for _ in range(2)]
    _until(lambda: _settled(group) and all(r.held() for r in group))
    leaving, staying = group
    leaving.release()
    started = time.monotonic()
    _until(lambda: staying.acquire(DUTIES) == set(DUTIES), timeout=5 * TTL)
    assert time.monotonic() - started < TTL  # no wait for the expiry


def _terminate(url: str, replica: str) -> int:
    libpq = url.split("?")[0].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"syncd {replica}",),
        ).fetchall()
    return len(rows)


def test_a_lost_connection_gives_every_duty_up_then_recovers(
    replicas: Callable[..., PgLeases], pg_url: str
) -> None:
    leases = replicas()
    _until(lambda: leases.acquire(DUTIES) == set(DUTIES))
    assert leases.problem() is None
    with structlog.testing.capture_logs() as logs:
        assert _terminate(pg_url, leases.replica) >= 1
        _until(lambda: leases.problem() is not None, timeout=3 * TTL)
        assert leases.held() == set()
        assert "database unreachable" in (leases.problem() or "")
        _until(lambda: leases.problem() is None and leases.acquire(DUTIES) == set(DUTIES))
    events = [entry["event"] for entry in logs]
    assert events.count("lost the database: gave up every duty") == 1
    assert "database reachable again: taking duties" in events


def test_no_renewal_for_the_lease_duration_means_nothing_held(
    replicas: Callable[..., PgLeases],
) -> None:
    now = [0.0]
    leases = replicas(start=False)
    leases.clock = lambda: now[0]
    leases.acquire(DUTIES)  # one synchronous heartbeat
    assert leases.held() == set(DUTIES)
    leases._thread = object()  # type: ignore[assignment]  # as if the heartbeat thread hung
    now[0] += TTL  # past the local deadline (0.9 ttl): the rows may lapse any moment
    assert leases.held() == set()
    assert "no lease renewal" in (leases.problem() or "")
    leases._thread = None


# -- board locks across replicas ------------------------------------------------------------


def test_a_board_lock_waits_for_the_other_replica_and_survives_a_terminated_session(
    pg_url: str,
) -> None:
    first = SessionLocks(pg_url, application_name="syncd r-first-test")
    second = SessionLocks(pg_url, application_name="syncd r-second-test")
    order: list[str] = []
    try:
        with first.hold(["board:A", "board:B"]):
            waiter = threading.Thread(target=lambda: _hold_and_note(second, "board:B", order))
            waiter.start()
            time.sleep(0.3)
            order.append("first done")
        waiter.join(5)
        assert order == ["first done", "second held"]
        assert _terminate(pg_url, "r-first-test") == 1  # a network cut, seen at the next use
        with first.hold(["board:A"]):  # a fresh session, at once
            order.append("first again")
        assert order[-1] == "first again"
    finally:
        first.close()
        second.close()


def _hold_and_note(locks: SessionLocks, name: str, order: list[str]) -> None:
    with locks.hold([name]):
        order.append("second held")


def test_a_duty_request_reaches_the_listening_replica(
    replicas: Callable[..., PgLeases], pg_url: str
) -> None:
    sender = replicas(start=False)
    listener = Notifications(pg_url, "syncd_duties", application_name="syncd r-listen-test")
    try:
        assert listener.wait(0.05) == set()  # LISTEN is on from the first wait
        sender.notify("syncd_duties", "flags")
        sender.notify("syncd_duties", "writeback")
        # Two commits, two notifications: a wait may return before the second has come (the
        # daemon waits again at once), so the test gathers until both came or 5 s passed.
        came: set[str] = set()
        deadline = time.monotonic() + 5.0
        while came != {"flags", "writeback"} and time.monotonic() < deadline:
            came |= listener.wait(deadline - time.monotonic())
        assert came == {"flags", "writeback"}
        assert listener.wait(0.05) == set()  # each notification wakes once
    finally:
        listener.close()
