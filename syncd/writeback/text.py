"""The comments write-back posts, in French: a flag opened (what, why, since when, the dashboard
link) and a flag resolved. Pure.

The sentences are the ``writeback`` section of the string table (`syncd.report.strings`), with
its flag labels and date format: a referent reads on the card what the team lead reads in the
report. Trello renders comments as Markdown: every text from the boards (titles, names) goes
through the report's `md_escape`. Each comment ends with its marker (`syncd.writeback.marker`),
which is how syncd finds its own comment on the card after a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from syncd.report.render import format_date, md_escape, truncate
from syncd.report.strings import flag_label, strings_for
from syncd.rules.departments import by_code
from syncd.rules.governance import DepartmentStatus, FlagCode, Rules
from syncd.writeback.marker import marker

LANG = "fr"  # referents read French on their cards
MAX_ITEMS = 20  # listed in a comment (Trello refuses comments over 16,384 characters)
MAX_TITLE = 200


def _t() -> Mapping[str, str]:
    return strings_for(LANG)["writeback"]  # type: ignore[no-any-return]


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
    t = _t()
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
    t = _t()
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
    return flag_label(code, LANG)


def _why(code: str, status: DepartmentStatus, rules: Rules) -> list[str]:
    t = _t()
    if code == FlagCode.TOO_MANY_PRIORITIES:
        titles = [_title(action.title) for action in status.priority_actions]
        head = t["too_many"].format(count=len(titles), max=rules.max_priority_actions)
        return [head, *_bullets(titles)]
    if code == FlagCode.NO_REFERENT:
        return [t["no_referent"].format(field=md_escape(rules.referent_field))]
    if code == FlagCode.STALE_PRIORITY:
        items = [
            t["stale_item"].format(title=_title(title), idle=idle)
            for title, idle in status.stale_priorities
        ]
        return [t["stale"].format(days=rules.stale_after_days), *_bullets(items)]
    return []


def _state_now(code: str, status: DepartmentStatus | None, rules: Rules) -> str:
    t = _t()
    if status is None:
        return ""
    if code == FlagCode.TOO_MANY_PRIORITIES:
        return t["too_many_now"].format(
            count=len(status.priority_actions), max=rules.max_priority_actions
        )
    if code == FlagCode.NO_REFERENT and status.referents:
        return t["referents_now"].format(names=", ".join(md_escape(n) for n in status.referents))
    if code == FlagCode.STALE_PRIORITY:
        return t["stale_now"].format(days=rules.stale_after_days)
    return ""


def _title(title: str) -> str:
    return md_escape(truncate(title, MAX_TITLE))


def _bullets(items: Sequence[str]) -> list[str]:
    """Markdown bullets of already escaped items, the first `MAX_ITEMS` of them."""
    bullets = [f"- {item}" for item in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        bullets.append("- " + _t()["more"].format(count=len(items) - MAX_ITEMS))
    return bullets


def _finish(lines: list[str], public_url: str, intent_id: str) -> str:
    t = _t()
    lines.extend(
        [
            "",
            t["dashboard"].format(url=public_url.rstrip("/") + "/"),
            t["footer"].format(marker=marker(intent_id)),
        ]
    )
    return "\n".join(lines)
