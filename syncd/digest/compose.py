"""The digest's text: the period's story, told from a drift report with ``since`` = its start.

Pure: takes the report dict (`syncd.report.build.build_report` over the period, in
``digest.lang``) and returns a title and a Markdown body: flags opened and resolved during the
period, flags still open with since when, priority actions added and completed, referents
changed, and the dashboard link. Every user text is escaped for Markdown; dates are shown in the
digest's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from syncd.history.texts import texts_for
from syncd.report.render import STRINGS, md_escape, parse_date

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
    report: Mapping[str, Any],
    *,
    period: str,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    lang: str,
    dashboard_url: str,
) -> Digest:
    """The digest of [start, end] from a report built at `end` with ``since=start``."""
    t = {**STRINGS.get(lang, STRINGS["fr"]), **texts_for(lang)}
    pattern = _DATE.get(lang, _DATE["fr"])

    def when(value: Any) -> str:
        moment = parse_date(value) if isinstance(value, str) else value
        return moment.astimezone(zone).strftime(pattern) if moment else t["none"]

    names = {str(d["code"]): str(d.get("name") or "") for d in report.get("departments") or []}

    def department(code: Any) -> str:
        return md_escape(f"{code} {names.get(str(code), '')}".strip())

    def flag(code: Any) -> str:
        return md_escape(t["flag_labels"].get(str(code), str(code)))

    changes = [c for c in report.get("changes") or [] if isinstance(c, Mapping)]
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for change in changes:
        by_kind.setdefault(str(change.get("kind")), []).append(change)

    sections: list[tuple[str, list[str]]] = [
        (
            t["digest_opened"],
            [
                f"- **{department(c.get('department'))}** — {flag(c.get('code'))} ({when(c['at'])})"
                for c in by_kind.get("flag_opened", [])
            ],
        ),
        (
            t["digest_resolved"],
            [
                f"- **{department(c.get('department'))}** — {flag(c.get('code'))} ({when(c['at'])})"
                for c in by_kind.get("flag_resolved", [])
            ],
        ),
        (
            t["digest_added"],
            [_event(c, department, t) for c in by_kind.get("priority_added", [])],
        ),
        (
            t["digest_completed"],
            [_event(c, department, t) for c in by_kind.get("priority_completed", [])],
        ),
        (
            t["digest_referents"],
            [_event(c, department, t) for c in by_kind.get("referents_changed", [])],
        ),
    ]
    still_open = [
        f"- **{department(f.get('department'))}** — {flag(f.get('code'))}, "
        + t["digest_open_since"].format(since=when(f.get("since")))
        for f in sorted(
            (f for f in report.get("flags") or [] if not f.get("resolved_at")),
            key=lambda f: (str(f.get("since")), str(f.get("department")), str(f.get("code"))),
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
    day = _DAY.get(lang, _DAY["fr"])
    title = t["digest_title"].format(
        start=start.astimezone(zone).strftime(day), end=end.astimezone(zone).strftime(day)
    )
    return Digest(period, title, "\n".join(lines) + "\n")


def _event(change: Mapping[str, Any], department: Any, t: Mapping[str, Any]) -> str:
    """One governance event: the département, then what changed (a title, or old → new)."""
    detail = str(change.get("detail") or change.get("summary") or "")
    return f"- **{department(change.get('department'))}**{t['colon']}{md_escape(detail)}"
