"""When the digest goes out: periods and scheduled moments in the digest's time zone (daylight
saving included), and the daemon's duty stepping an injected clock week after week (no sleep):
exactly once per period, whatever restarts; failures retried later, only where they failed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from state.store import Store
from syncd.config import (
    BoardConfig,
    DigestConfig,
    Secrets,
    ServerConfig,
    Settings,
    StoreConfig,
    TrelloConfig,
)
from syncd.digest.deliver import Destination, Failure
from syncd.digest.schedule import next_scheduled, period_of, scheduled_at
from syncd.digest.service import DigestDuty, send_digest


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def config(
    weekday: str = "monday", time: str = "08:00", zone: str = "Europe/Paris"
) -> DigestConfig:
    return DigestConfig(weekday=weekday, time=time, timezone=zone)


def test_periods_are_iso_weeks_in_the_digest_time_zone() -> None:
    paris = config().zone
    assert period_of(utc("2026-11-29T22:59:00"), paris) == "2026-W48"  # Sunday 23:59 in Paris
    assert period_of(utc("2026-11-29T23:00:00"), paris) == "2026-W49"  # Monday 00:00 in Paris
    assert period_of(utc("2026-11-29T23:00:00"), config(zone="UTC").zone) == "2026-W48"
    assert period_of(utc("2027-01-01T12:00:00"), paris) == "2026-W53"  # ISO year, not calendar


@pytest.mark.parametrize(
    ("period", "digest", "expected"),
    [
        ("2026-W49", config(), "2026-11-30T07:00:00"),  # winter: UTC+1
        ("2026-W27", config(), "2026-06-29T06:00:00"),  # summer: UTC+2
        ("2026-W13", config("sunday", "02:30"), "2026-03-29T01:30:00"),  # gap: 03:30 CEST
        ("2026-W43", config("sunday", "02:30"), "2026-10-25T00:30:00"),  # twice: the first
        ("2026-W43", config("sunday", "03:30"), "2026-10-25T02:30:00"),  # after the change
        ("2026-W49", config("friday", "17:45", "America/New_York"), "2026-12-04T22:45:00"),
    ],
)
def test_scheduled_moment(period: str, digest: DigestConfig, expected: str) -> None:
    assert scheduled_at(period, digest) == utc(expected)


def test_next_scheduled_moves_to_the_next_week_once_this_one_passed() -> None:
    digest = config()
    assert next_scheduled(utc("2026-11-30T06:59:00"), digest) == utc("2026-11-30T07:00:00")
    assert next_scheduled(utc("2026-11-30T07:00:00"), digest) == utc("2026-11-30T07:00:00")
    assert next_scheduled(utc("2026-11-30T07:01:00"), digest) == utc("2026-12-07T07:00:00")


class FakeSend:
    """Stands for Apprise: records who got which digest; fails the destinations it is told."""

    def __init__(self) -> None:
        self.received: list[tuple[str, int]] = []  # (title, destination index)
        self.failing: set[int] = set()

    def __call__(
        self,
        destinations: list[Destination],
        title: str,
        body: str,
        *,
        on_delivered: Callable[[Destination], None],
    ) -> list[Failure]:
        failures = []
        for destination in destinations:
            if destination.index in self.failing:
                failures.append(Failure(destination, 3))
            else:
                self.received.append((title, destination.index))
                on_delivered(destination)
        return failures


DESTINATIONS = [
    Destination(1, "mmost", "mmost://127.0.0.1:9/token-a"),
    Destination(2, "mailto", "mailto://127.0.0.1:9?to=lead@example.org"),
]


def settings_for(tmp_path: Path, digest: DigestConfig) -> Settings:
    return Settings(
        store=StoreConfig(url=f"sqlite:///{tmp_path}/digest.db"),
        trello=TrelloConfig(boards=(BoardConfig(id="oSmy09cz", role="consortium"),)),
        server=ServerConfig(public_url="https://syncd.example.org"),
        digest=digest,
        secrets=Secrets(),
    )


def simulate(
    make_duty: Callable[[], DigestDuty], start: datetime, end: datetime, step: timedelta
) -> list[tuple[datetime, str]]:
    """Tick the duty every `step`; a new duty (a restarted daemon) every 13 ticks."""
    sent: list[tuple[datetime, str]] = []
    duty = make_duty()
    now, ticks = start, 0
    while now < end:
        outcome = duty.run(now)
        if outcome is not None and outcome.status == "sent":
            sent.append((now, outcome.period))
        now += step
        ticks += 1
        if ticks % 13 == 0:
            duty = make_duty()
    return sent


@pytest.mark.parametrize(
    ("digest", "start", "end", "expected"),
    [
        (  # Monday 08:00 in Paris, across the spring change (29 March 2026)
            config(),
            "2026-03-16T00:00:00",
            "2026-04-07T00:00:00",
            [
                "2026-03-16T07:00:00",
                "2026-03-23T07:00:00",
                "2026-03-30T06:00:00",
                "2026-04-06T06:00:00",
            ],
        ),
        (  # Sunday 02:30, a time that does not exist on 29 March: sent at 03:30 CEST
            config("sunday", "02:30"),
            "2026-03-16T00:00:00",
            "2026-04-07T00:00:00",
            ["2026-03-22T01:30:00", "2026-03-29T01:30:00", "2026-04-05T00:30:00"],
        ),
        (  # Sunday 02:30, a time that exists twice on 25 October: sent once, the first time
            config("sunday", "02:30"),
            "2026-10-12T00:00:00",
            "2026-11-03T00:00:00",
            ["2026-10-18T00:30:00", "2026-10-25T00:30:00", "2026-11-01T01:30:00"],
        ),
    ],
)
def test_the_daemon_sends_once_per_period_at_the_scheduled_moment(
    tmp_path: Path, digest: DigestConfig, start: str, end: str, expected: list[str]
) -> None:
    settings = settings_for(tmp_path, digest)
    store = Store(settings.store.url)
    send = FakeSend()

    def make_duty() -> DigestDuty:
        return DigestDuty(store, settings, DESTINATIONS, send=send)

    sent = simulate(make_duty, utc(start), utc(end), timedelta(minutes=10))
    assert [moment for moment, _period in sent] == [utc(text) for text in expected]
    assert len({period for _moment, period in sent}) == len(sent)
    assert len(send.received) == 2 * len(expected)  # each destination, once a period
    store.close()


def test_a_failing_destination_is_retried_later_alone(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, config())
    store = Store(settings.store.url)
    send = FakeSend()
    send.failing = {2}
    duty = DigestDuty(store, settings, DESTINATIONS, send=send)
    due = utc("2026-11-30T07:00:00")
    first = duty.run(due)
    assert first is not None and first.status == "failed"
    assert first.line == (
        "digest 2026-W49: 1 of 2 destination(s) failed after 3 attempts: destination 2 (mailto)"
    )
    assert "127.0.0.1" not in first.line and "lead@" not in first.line
    assert send.received == [("syncd — synthèse de la semaine, du 23/11/2026 au 30/11/2026", 1)]
    assert duty.run(due + timedelta(minutes=10)) is None  # backing off (15 min)
    send.failing = set()
    again = duty.run(due + timedelta(minutes=15))
    assert again is not None and again.status == "sent"
    assert again.line == "digest 2026-W49 sent to 1 destination(s) (1 already had it)"
    assert [index for _title, index in send.received] == [1, 2]
    assert duty.run(due + timedelta(hours=3)) is None
    store.close()


def test_a_second_send_in_the_period_sends_nothing_unless_forced(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, config())
    store = Store(settings.store.url)
    send = FakeSend()
    now = utc("2026-12-02T10:00:00")
    sent = send_digest(store, settings, DESTINATIONS, now=now, send=send)
    assert sent.status == "sent" and len(send.received) == 2
    later = send_digest(store, settings, DESTINATIONS, now=now + timedelta(days=2), send=send)
    assert later.status == "already_sent" and len(send.received) == 2
    assert later.line.startswith("digest 2026-W49 already sent on 2026-12-02T10:00:00.000Z")
    forced = send_digest(
        store, settings, DESTINATIONS, now=now + timedelta(days=2), force=True, send=send
    )
    assert forced.status == "sent" and len(send.received) == 4
    next_week = send_digest(store, settings, DESTINATIONS, now=now + timedelta(days=7), send=send)
    assert next_week.status == "sent" and next_week.period == "2026-W50"
    store.close()


def test_a_live_claim_keeps_others_off_and_a_dead_one_lapses(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, config())
    store = Store(settings.store.url)
    now = "2026-11-30T07:00:00.000Z"
    state, _row = store.claim_digest("2026-W49", "replica-a", now, "2026-11-30T07:10:00.000Z")
    assert state == "claimed"  # replica-a dies here, before finishing
    state, row = store.claim_digest("2026-W49", "replica-b", now, "2026-11-30T07:10:00.000Z")
    assert (state, row["claimed_by"]) == ("busy", "replica-a")
    send = FakeSend()
    duty = DigestDuty(store, settings, DESTINATIONS, owner="replica-b", send=send)
    assert not duty.due(utc("2026-11-30T07:05:00"))
    outcome: Any = duty.run(utc("2026-11-30T07:10:00"))  # the claim lapsed: taken over
    assert outcome is not None and outcome.status == "sent" and len(send.received) == 2
    assert store.digest_run("2026-W49")["attempts"] == 2  # type: ignore[index]
    store.close()
