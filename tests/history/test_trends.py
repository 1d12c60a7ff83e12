"""Trend weeks: the last 12 ISO weeks in the team's time zone, each ending Monday 00:00 local
time (daylight saving included); the current one ends at the report's moment."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from syncd.history.trends import week_ends, week_label

PARIS = ZoneInfo("Europe/Paris")


def test_twelve_weeks_ending_monday_midnight_local_across_daylight_saving() -> None:
    end = datetime(2026, 11, 4, 15, 0, tzinfo=UTC)  # Wednesday of 2026-W45
    weeks = week_ends(end, PARIS)
    assert [label for label, _ in weeks] == [f"2026-W{n}" for n in range(34, 46)]
    closing = {label: moment.astimezone(UTC).isoformat() for label, moment in weeks}
    assert closing["2026-W34"] == "2026-08-23T22:00:00+00:00"  # Monday 00:00 CEST
    assert closing["2026-W43"] == "2026-10-25T23:00:00+00:00"  # Monday 00:00 CET (after the change)
    assert closing["2026-W45"] == end.isoformat()  # the current week: the report's moment
    assert all(moment.astimezone(PARIS).hour == 0 for _, moment in weeks[:-1])


def test_week_labels_follow_the_local_calendar_and_the_iso_year() -> None:
    assert week_label(datetime(2026, 11, 29, 23, 30, tzinfo=UTC), PARIS) == "2026-W49"
    assert week_label(datetime(2026, 11, 29, 23, 30, tzinfo=UTC), ZoneInfo("UTC")) == "2026-W48"
    weeks = week_ends(datetime(2027, 1, 6, tzinfo=UTC), PARIS)
    assert [label for label, _ in weeks][-3:] == ["2026-W52", "2026-W53", "2027-W01"]
