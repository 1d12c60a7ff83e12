"""Trends: each département's open priority actions and open flags at the end of each of the last
12 ISO weeks (the report's ``trends`` key).

Weeks are ISO weeks in the team's time zone (``digest.timezone``): a week ends on Monday 00:00
local time. A past week's values are the store's state just before its end, drawn from two small
histories rather than 12 re-evaluations of the boards: the per-département `priority_count` rows
(one per change, written by each flag evaluation) and the flags' own lives (``since`` and
``resolved_at``). The current week's values are the report's own (the moment it describes), so
the last point always matches the table beside it. A week that ended before the store's history
began has ``null`` values.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from state.store import Store
from state.timestamps import utc_iso

WEEKS = 12


def week_label(moment: datetime, zone: ZoneInfo) -> str:
    """The ISO week of a moment in a time zone, as ``2026-W49``."""
    year, week, _day = moment.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def week_ends(end: datetime, zone: ZoneInfo, weeks: int = WEEKS) -> list[tuple[str, datetime]]:
    """The last `weeks` ISO weeks up to the one holding `end`: (label, end of the week) each,
    oldest first; the current week "ends" at `end` itself."""
    local = end.astimezone(zone)
    monday = (local - timedelta(days=local.weekday())).date()
    result: list[tuple[str, datetime]] = []
    for back in range(weeks - 1, 0, -1):
        start = monday - timedelta(weeks=back)
        closing = datetime.combine(start + timedelta(weeks=1), datetime.min.time(), zone)
        year, week, _day = start.isocalendar()
        result.append((f"{year}-W{week:02d}", closing))
    result.append((week_label(end, zone), end))
    return result


def build_trends(
    store: Store,
    departments: Sequence[Mapping[str, Any]],
    *,
    end: datetime,
    zone: ZoneInfo,
) -> dict[str, Any]:
    """The ``trends`` value for the report's `departments` (as built, at moment `end`)."""
    weeks = week_ends(end, zone)
    start_text = utc_iso(weeks[0][1] - timedelta(weeks=1))
    end_text = utc_iso(end)
    known_since = store.history_starts_at()
    past = [utc_iso(closing) for _label, closing in weeks[:-1]]

    counts: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for row in store.priority_counts(start_text, end_text):
        counts[row["department"]].append((row["at"], row["count"]))
    spans: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for row in store.flag_spans(start_text, end_text):
        spans[row["department"]].append((row["since"], row["resolved_at"]))

    result: dict[str, dict[str, list[int | None]]] = {}
    for department in departments:
        code = str(department["code"])
        priorities: list[int | None] = []
        flags: list[int | None] = []
        changes = counts.get(code, [])
        moments = [at for at, _count in changes]
        for closing in past:
            if known_since is None or closing <= known_since:
                priorities.append(None)
                flags.append(None)
                continue
            index = bisect_left(moments, closing)  # rows strictly before the week's end
            priorities.append(changes[index - 1][1] if index else 0)
            flags.append(
                sum(
                    1
                    for since, resolved in spans.get(code, [])
                    if since < closing and (resolved is None or resolved >= closing)
                )
            )
        priorities.append(len(department.get("priority_actions") or []))
        flags.append(len(department.get("flags") or []))
        result[code] = {"priority_actions": priorities, "flags": flags}
    return {"weeks": [label for label, _closing in weeks], "departments": result}
