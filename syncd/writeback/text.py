"""The comments write-back posts, in French: a flag opened (what, why, since when, the dashboard
link) and a flag resolved. Pure.

Trello renders comments as Markdown: every text from the boards (titles, names) goes through the
report's `md_escape`. Each comment ends with its marker (`syncd.writeback.marker`), which is how
syncd finds its own comment on the card after a crash. Dates and flag names come from the
report's strings, so a referent reads on the card what the team lead reads in the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from syncd.report.render import STRINGS, format_date, md_escape, truncate
from syncd.rules.departments import by_code
from syncd.rules.governance import (
    NO_REFERENT,
    STALE_PRIORITY,
    TOO_MANY_PRIORITIES,
    DepartmentStatus,
    Rules,
)
from syncd.writeback.marker import marker

LANG = "fr"
MAX_ITEMS = 20  # listed in a comment (Trello refuses comments over 16,384 characters)
MAX_TITLE = 200
COMMENT_STRINGS: dict[str, dict[str, str]] = {
    "fr": {
        "opened_title": "⚠️ **Signalement syncd : {label}**",
        "resolved_title": "✅ **Signalement syncd levé : {label}**",
        "where_opened": "{department} · depuis le {since}",
        "where_resolved": "{department} · ouvert le {since}, levé le {resolved}",
        "too_many": "{count} actions prioritaires ouvertes (maximum {max}) :",
        "too_many_now": "Actions prioritaires ouvertes : {count} (maximum {max}).",
        "no_referent": (
            "Cette carte n'indique aucun référent : ni membre de la carte, ni champ « {field} », "
            "ni ligne « Référent : NOM » dans la description."
        ),
        "referents_now": "Référent(s) : {names}.",
        "stale": "Carte(s) prioritaire(s) sans activité depuis plus de {days} jours :",
        "stale_item": "{title} ({idle} jours)",
        "more": "… et {count} autre(s)",
        "stale_now": "Plus aucune carte prioritaire inactive depuis plus de {days} jours.",
        "gone": "Ce signalement s'est ouvert puis levé avant que syncd puisse le publier.",
        "dashboard": "Tableau de bord : {url}",
        "footer": "_Commentaire automatique de syncd, une seule fois par signalement ({marker})._",
    }
}


def department_label(code: str) -> str:
    """``Seine-et-Marne (77)``, or the code alone for an unknown one."""
    department = by_code(code)
    return f"{department.name} ({code})" if department else code


def opened_comment(
    flag: Mapping[str, Any],
    status: DepartmentStatus | None,
    *,
    rules: Rules,
    public_url: str,
    intent_id: str,
) -> str:
    """The comment of a flag that opened (`status`: the département now, for the why)."""
    t = COMMENT_STRINGS[LANG]
    code = flag["code"]
    lines = [
        t["opened_title"].format(label=_flag_label(code)),
        t["where_opened"].format(
            department=md_escape(department_label(flag["department"])),
            since=format_date(flag["since"], LANG),
        ),
        "",
    ]
    if flag.get("resolved_at") is not None or status is None:
        lines.append(t["gone"])
    else:
        lines.extend(_why(code, status, rules))
    return _finish(lines, public_url, intent_id)


def resolved_comment(
    flag: Mapping[str, Any],
    status: DepartmentStatus | None,
    *,
    rules: Rules,
    public_url: str,
    intent_id: str,
) -> str:
    """The comment of a flag that resolved (`status`: the département now, if known)."""
    t = COMMENT_STRINGS[LANG]
    code = flag["code"]
    lines = [
        t["resolved_title"].format(label=_flag_label(code)),
        t["where_resolved"].format(
            department=md_escape(department_label(flag["department"])),
            since=format_date(flag["since"], LANG),
            resolved=format_date(flag["resolved_at"], LANG),
        ),
    ]
    now = _state_now(code, status, rules)
    if now:
        lines.extend(["", now])
    return _finish(lines, public_url, intent_id)


def _flag_label(code: str) -> str:
    labels: Mapping[str, str] = STRINGS[LANG]["flag_labels"]
    return labels.get(code, code)


def _why(code: str, status: DepartmentStatus, rules: Rules) -> list[str]:
    t = COMMENT_STRINGS[LANG]
    if code == TOO_MANY_PRIORITIES:
        titles = [_title(action.title) for action in status.priority_actions]
        head = t["too_many"].format(count=len(titles), max=rules.max_priority_actions)
        return [head, *_bullets(titles)]
    if code == NO_REFERENT:
        return [t["no_referent"].format(field=md_escape(rules.referent_field))]
    if code == STALE_PRIORITY:
        items = [
            t["stale_item"].format(title=_title(title), idle=idle)
            for title, idle in status.stale_priorities
        ]
        return [t["stale"].format(days=rules.stale_after_days), *_bullets(items)]
    return []


def _state_now(code: str, status: DepartmentStatus | None, rules: Rules) -> str:
    t = COMMENT_STRINGS[LANG]
    if status is None:
        return ""
    if code == TOO_MANY_PRIORITIES:
        return t["too_many_now"].format(
            count=len(status.priority_actions), max=rules.max_priority_actions
        )
    if code == NO_REFERENT and status.referents:
        return t["referents_now"].format(names=", ".join(md_escape(n) for n in status.referents))
    if code == STALE_PRIORITY:
        return t["stale_now"].format(days=rules.stale_after_days)
    return ""


def _title(title: str) -> str:
    return md_escape(truncate(title, MAX_TITLE))


def _bullets(items: Sequence[str]) -> list[str]:
    """Markdown bullets of already escaped items, the first `MAX_ITEMS` of them."""
    bullets = [f"- {item}" for item in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        bullets.append("- " + COMMENT_STRINGS[LANG]["more"].format(count=len(items) - MAX_ITEMS))
    return bullets


def _finish(lines: list[str], public_url: str, intent_id: str) -> str:
    t = COMMENT_STRINGS[LANG]
    lines.extend(
        [
            "",
            t["dashboard"].format(url=public_url.rstrip("/") + "/"),
            t["footer"].format(marker=marker(intent_id)),
        ]
    )
    return "\n".join(lines)
