"""Geometry of the trends' inline SVG charts: a sparkline per département, a bar chart of open
flags per week. Numbers only (coordinates, point lists); the HTML template draws and escapes.

A week whose value is unknown (``null``, before the store's history) leaves a gap in the line and
no bar. Every sparkline of a report shares one vertical scale, so rows compare at a glance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD = 168, 54, 5
BARS_WIDTH, BARS_HEIGHT, BARS_TOP, BARS_BOTTOM, BARS_LEFT = 720, 200, 24, 30, 36

Series = Sequence[int | None]


def _points(series: Series, top: int) -> list[list[tuple[float, float]]]:
    """Runs of consecutive known values as (x, y) points, y growing downwards."""
    step = (SPARK_WIDTH - 2 * SPARK_PAD) / max(1, len(series) - 1)
    usable = SPARK_HEIGHT - 2 * SPARK_PAD
    runs: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for index, value in enumerate(series):
        if value is None:
            if current:
                runs.append(current)
            current = []
            continue
        x = SPARK_PAD + index * step
        y = SPARK_HEIGHT - SPARK_PAD - (min(value, top) / top) * usable
        current.append((round(x, 1), round(y, 1)))
    if current:
        runs.append(current)
    return runs


def _line(series: Series, top: int) -> dict[str, Any]:
    runs = _points(series, top)
    last = runs[-1][-1] if runs else None
    return {
        "paths": [" ".join(f"{x},{y}" for x, y in run) for run in runs if len(run) > 1],
        "dots": [run[0] for run in runs if len(run) == 1],
        "last": last,
    }


def scale_top(trends: Mapping[str, Mapping[str, Series]], max_priority: int) -> int:
    """The shared top of every sparkline: the largest value shown, at least max + 1."""
    values = [
        value
        for series in trends.values()
        for key in ("priority_actions", "flags")
        for value in series.get(key) or []
        if value is not None
    ]
    return max([max_priority + 1, 1, *values])


def sparkline(priorities: Series, flags: Series, *, top: int, max_priority: int) -> dict[str, Any]:
    """One département's sparkline: its priority actions and its flags over the weeks."""
    usable = SPARK_HEIGHT - 2 * SPARK_PAD
    return {
        "width": SPARK_WIDTH,
        "height": SPARK_HEIGHT,
        "priorities": _line(priorities, top),
        "flags": _line(flags, top),
        "max_y": round(SPARK_HEIGHT - SPARK_PAD - (max_priority / top) * usable, 1),
        "x0": SPARK_PAD,
        "x1": SPARK_WIDTH - SPARK_PAD,
    }


def flag_bars(weeks: Sequence[str], totals: Series) -> dict[str, Any]:
    """The open-flags-per-week bar chart (one bar a week, labels ``W38`` …)."""
    top = max([1, *(value for value in totals if value is not None)])
    plot_w = BARS_WIDTH - BARS_LEFT - 8
    plot_h = BARS_HEIGHT - BARS_TOP - BARS_BOTTOM
    slot = plot_w / max(1, len(weeks))
    bars = []
    for index, (week, value) in enumerate(zip(weeks, totals, strict=True)):
        height = 0.0 if value is None else round(value / top * plot_h, 1)
        x = round(BARS_LEFT + index * slot + slot * 0.15, 1)
        bars.append(
            {
                "week": week,
                "label": week.split("-")[-1],
                "value": value,
                "x": x,
                "w": round(slot * 0.7, 1),
                "y": round(BARS_TOP + plot_h - height, 1),
                "h": height,
                "cx": round(x + slot * 0.35, 1),
                "current": index == len(weeks) - 1,
            }
        )
    ticks = sorted({0, top, top // 2})
    return {
        "width": BARS_WIDTH,
        "height": BARS_HEIGHT,
        "left": BARS_LEFT,
        "right": BARS_WIDTH - 8,
        "base": BARS_TOP + plot_h,
        "label_y": BARS_HEIGHT - 10,
        "bars": bars,
        "ticks": [{"value": t, "y": round(BARS_TOP + plot_h - t / top * plot_h, 1)} for t in ticks],
    }


def weekly_totals(trends: Mapping[str, Mapping[str, Series]], weeks: int) -> list[int | None]:
    """Open flags of every département together, per week (None: unknown that week)."""
    totals: list[int | None] = []
    for index in range(weeks):
        known = [
            series["flags"][index]
            for series in trends.values()
            if len(series.get("flags") or []) > index and series["flags"][index] is not None
        ]
        totals.append(sum(known) if known else None)  # type: ignore[arg-type]
    return totals
