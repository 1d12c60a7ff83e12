"""When the weekly digest is due: periods and scheduled moments in ``digest.timezone``.

Pure functions over an injected "now" (tests step a fake clock across weeks and daylight-saving
changes; nothing here sleeps or reads the clock). A **period** is an ISO week in the digest's
time zone (``2026-W49``). Its digest is scheduled on ``digest.weekday`` at ``digest.time`` local
time; a local time that does not exist that day (the spring-forward gap) is taken after the gap
(02:30 → 03:30), one that exists twice (autumn) at its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from syncd.config import WEEKDAYS, DigestConfig


def period_of(moment: datetime, zone: ZoneInfo) -> str:
    """The ISO week holding `moment` in `zone`, as ``2026-W49``."""
    year, week, _day = moment.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def scheduled_at(period: str, config: DigestConfig) -> datetime:
    """The UTC moment `period`'s digest is due (``digest.weekday`` ``digest.time`` local)."""
    year, week = period.split("-W")
    day = date.fromisocalendar(int(year), int(week), WEEKDAYS.index(config.weekday) + 1)
    hour, minute = (int(part) for part in config.time.split(":"))
    # fold=0 (PEP 495): in a gap, the offset before it (02:30 CET = 03:30 CEST); twice, the first
    return datetime.combine(day, time(hour, minute), config.zone).astimezone(UTC)


def next_scheduled(now: datetime, config: DigestConfig) -> datetime:
    """The next scheduled moment at or after `now` (this period's, else the next one's)."""
    this = scheduled_at(period_of(now, config.zone), config)
    if this >= now:
        return this
    return scheduled_at(period_of(this + timedelta(days=7), config.zone), config)
