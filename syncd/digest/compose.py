"""The digest's text: the period's story, told from a drift report with ``since`` = its start.

Pure: takes the report (`syncd.report.build.build_report` over the period, in ``digest.lang``)
and returns a title and a Markdown body: flags opened and resolved during the period (with why,
in the digest's language), flags still open with since when, priority actions added and
completed, referents changed, and the dashboard link. Every sentence comes from the report's
string table (`syncd.report.strings`); every user text is escaped for Markdown; dates are shown
in the digest's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from state.timestamps import parse_iso
from syncd.report.model import Report
from syncd.report.render import md_escape
from syncd.report.strings import flag_label, localised_flag_message, strings_for

_DATE = {"fr": "%d/%m/%Y %H:%M", "en": "%Y-%m-%d %H:%M"}
_DAY = {"fr": "%d/%m/%Y", "en": "%Y-%m-%d"}


@dataclass(frozen=True)
class Digest:
    period: str
    title: str
    body: str  # Markdown

    @property
    def markdown(self) -> str:
        """Title and body as one Markdown document (what ``--dry-run`` prints)."""
        return f"# {self.title}\n\n{self.body}"


def compose_digest(
    report: Report,
    *,
    period: str,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    lang: str,
    dashboard_url: str,
) -> Digest:
    """The digest of [start, end] from a report built at `end` with ``since=start``."""
    t = strings_for(lang)

    def when(value: Any) -> str:
        moment = parse_iso(value) if isinstance(value, str) else value
        return moment.astimezone(zone).strftime(_DATE[lang]) if moment else str(t["none"])

    names = {d["code"]: d["name"] for d in report["departments"]}

    def department(code: str) -> str:
        return md_escape(f"{code} {names.get(code, '')}".strip())

    def flag_text(flag: Mapping[str, Any], *, why: bool) -> str:
        """``**77 Seine-et-Marne** — Trop d'actions prioritaires[ : 4 actions … (max 3)]``."""
        label = flag_label(flag["code"], lang)
        message = localised_flag_message(flag["code"], flag["message"], lang) if why else ""
        detail = f"{t['colon']}{md_escape(message)}" if message and message != label else ""
        return f"**{department(flag['department'])}** — {md_escape(label)}{detail}"

    start_iso = report["since"] or ""
    flags = report["flags"]
    opened = [
        f"- {flag_text(f, why=True)} ({when(f['since'])})" for f in flags if f["since"] >= start_iso
    ]
    resolved = [
        f"- {flag_text(f, why=False)} ({when(f['resolved_at'])})"
        for f in flags
        if f["resolved_at"] is not None
    ]
    events: dict[str, list[str]] = {}
    for change in report["changes"]:
        if change["kind"] in ("priority_added", "priority_completed", "referents_changed"):
            detail = change.get("detail") or change["summary"]
            events.setdefault(change["kind"], []).append(
                f"- **{department(change.get('department', ''))}**{t['colon']}{md_escape(detail)}"
            )
    sections = [
        (t["digest_opened"], opened),
        (t["digest_resolved"], resolved),
        (t["digest_added"], events.get("priority_added", [])),
        (t["digest_completed"], events.get("priority_completed", [])),
        (t["digest_referents"], events.get("referents_changed", [])),
    ]
    still_open = [
        f"- {flag_text(f, why=True)} — " + t["digest_open_since"].format(since=when(f["since"]))
        for f in sorted(
            (f for f in flags if f["resolved_at"] is None),
            key=lambda f: (f["since"], f["department"], f["code"]),
        )
    ]
    place = zone.key.rsplit("/", 1)[-1].replace("_", " ")
    lines = [t["digest_period"].format(start=when(start), end=when(end), zone=place), ""]
    happened = [(title, items) for title, items in sections if items]
    if not happened:
        lines += [t["digest_nothing"], ""]
    for title, items in happened:
        lines += [f"## {title} ({len(items)})", "", *items, ""]
    lines += [f"## {t['digest_still_open']} ({len(still_open)})", ""]
    lines += still_open or [f"_{t['digest_none']}_"]
    lines += ["", t["digest_link"].format(url=dashboard_url)]

    def day(moment: datetime) -> str:
        return moment.astimezone(zone).strftime(_DAY[lang])

    title = t["digest_title"].format(start=day(start), end=day(end))
    return Digest(period, title, "\n".join(lines) + "\n")
