"""Renderings of the drift report: terminal table, JSON, Markdown and a self-contained HTML page.

This module owns how a `Report` (`syncd.report.model`, the contract's "Report JSON") is shown to
people, in one language (French by default, English on request; the words are in
`syncd.report.strings`): readable dates, the plain-text table, and the Jinja2 environments
behind ``templates/report.md.j2`` (Markdown, with every user text escaped by :func:`md_escape`)
and ``templates/report.html.j2`` (HTML, autoescaped).
It never reads the store nor changes the report; codes and JSON keys stay English.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from state.timestamps import parse_iso
from syncd.report.model import Report
from syncd.report.sparklines import flag_bars, scale_top, sparkline, weekly_totals
from syncd.report.strings import DEFAULT_LANG, localised_flag_message, strings_for
from syncd.rules.governance import FlagCode

if TYPE_CHECKING:  # imported by `_environment`: table and JSON renderings need no Jinja2
    import jinja2

FORMATS = ("table", "json", "markdown", "html")
DEFAULT_MAX_PRIORITY_ACTIONS = 3
DEFAULT_WIDTH = 100

# --------------------------------------------------------------------------- helpers


def resolve_lang(report: Mapping[str, Any], lang: str | None) -> str:
    """The language to render in: the explicit one, else the report's ``lang``, else French."""
    chosen = str(lang or report.get("lang") or DEFAULT_LANG)
    strings_for(chosen)  # ValueError for a language syncd does not speak
    return chosen


def format_date(value: Any, lang: str = DEFAULT_LANG) -> str:
    """A readable UTC date: ``30/11/2026 08:00 UTC`` in French; the raw text when unparseable."""
    strings = strings_for(lang)
    if not value:
        return str(strings["none"])
    parsed = parse_iso(value)
    if parsed is None:
        return str(value)
    return str(strings["date_format"]).format(d=parsed)


def safe_url(value: Any) -> str | None:
    """``value`` when it is an absolute http(s) URL with a host, else None (``javascript:``…)."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or any(ord(ch) < 0x20 or ch in "\x7f \"'<>`\\" for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def figma_file_url(key: Any) -> str | None:
    """The Figma web address of a file key, or None when there is no usable key."""
    if not isinstance(key, str) or not key.strip():
        return None
    return "https://www.figma.com/file/" + quote(key.strip(), safe="")


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MD_BLOCK_START = re.compile(r"^(?:([#+=-])|(\d+)([.)]))")


def md_escape(value: Any) -> str:
    """User text made inert in Markdown (tables included): no markup, link, HTML or line break.

    ``&``, ``<`` and ``>`` become entities; ``\\ ` * _ [ ] | ~`` get a backslash (so a title can
    neither open a link nor add a table cell), as does a leading ``#``, ``-``, ``+``, ``=`` or
    ``1.``; line breaks and control characters become spaces.
    """
    if value is None:
        return ""
    text = clean_text(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _MD_BLOCK_START.sub(_escape_block_start, text)


def _escape_block_start(match: re.Match[str]) -> str:
    if match.group(1):
        return "\\" + match.group(1)
    return f"{match.group(2)}\\{match.group(3)}"


def md_code(value: Any) -> str:
    """A flag code as inline code (``TOO_MANY_PRIORITIES``); anything unexpected is escaped."""
    text = clean_text(value)
    if re.fullmatch(r"[A-Za-z0-9_]+", text):
        return f"`{text}`"
    return md_escape(text)


def md_link(text: Any, url: Any) -> str:
    """A Markdown link ``[text](url)`` when url is http(s), else just the escaped text."""
    label = md_escape(text) or md_escape(url)
    href = safe_url(url)
    if href is None:
        return label
    href = href.replace("(", "%28").replace(")", "%29").replace(" ", "%20")
    return f"[{label}]({href})"


def clean_text(value: Any) -> str:
    """One line of text: control characters (ANSI escapes, line breaks, tabs) become spaces."""
    text = "" if value is None else str(value)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        out.append(" " if cat in ("Cc", "Zl", "Zp") else ch)
    return " ".join("".join(out).split())


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending with "…" when cut."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


# --------------------------------------------------------------------------- view model


def _as_dict(item: Any, key: str) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    return {key: item}


def _max_priority(report: Mapping[str, Any]) -> int:
    value = report.get("max_priority_actions")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return DEFAULT_MAX_PRIORITY_ACTIONS


def _code_key(code: Any) -> tuple[int, str]:
    """Sort key for INSEE codes: numeric order, ``2A``/``2B`` between 19 and 21."""
    text = str(code or "")
    if text.upper() in ("2A", "2B"):
        return (20, text.upper())
    digits = re.match(r"\d+", text)
    return (int(digits.group()) if digits else 10_000, text)


def ordered_departments(departments: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flagged départements first, then the others; each group ordered by code."""
    items = [dict(d) for d in departments]
    return sorted(items, key=lambda d: (not d.get("flags"), _code_key(d.get("code"))))


def _board_names(report: Mapping[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for board in report.get("boards") or []:
        if isinstance(board, Mapping) and board.get("id"):
            names[str(board["id"])] = str(board.get("name") or board["id"])
    return names


def build_view(report: Mapping[str, Any], lang: str, *, dashboard: bool = False) -> dict[str, Any]:
    """Everything the templates and the table need, computed once from the report."""
    strings = strings_for(lang)
    max_prio = _max_priority(report)
    departments = ordered_departments(report.get("departments") or [])
    dept_names = {str(d.get("code")): str(d.get("name") or "") for d in departments}
    for dept in departments:
        dept["flags"] = list(dept.get("flags") or [])
        dept["referents"] = [r for r in (dept.get("referents") or []) if r]
        dept["priority_actions"] = [
            _as_dict(a, "title") for a in (dept.get("priority_actions") or [])
        ]
        dept["topics"] = list(dept.get("topics") or [])
        dept["linked_cards"] = dict(dept.get("linked_cards") or {})
        dept["open_count"] = len(dept["priority_actions"])
        dept["over"] = dept["open_count"] > max_prio
        dept["flagged"] = bool(dept["flags"])
        card = dept.get("dashboard_card")
        dept["dashboard_url"] = safe_url(card.get("url")) if isinstance(card, Mapping) else None
        dept["has_dashboard"] = isinstance(card, Mapping)

    flags = [_as_dict(f, "code") for f in (report.get("flags") or [])]
    flags.sort(
        key=lambda f: (
            f.get("resolved_at") is not None,
            _code_key(f.get("department")),
            str(f.get("code") or ""),
        )
    )
    for flag in flags:
        flag["department_name"] = dept_names.get(str(flag.get("department")), "")
        code = str(flag.get("code") or "")
        flag["label"] = strings["flag_labels"].get(code, "")
        flag["explanation"] = strings["flag_explanations"].get(code, "")
        flag["text"] = flag.get(f"message_{lang}") or localised_flag_message(
            code, str(flag.get("message") or ""), lang
        )
    open_flags = [f for f in flags if not f.get("resolved_at")]
    if report.get("flags") is None:  # tolerate reports without the top-level list
        counts = Counter(code for d in departments for code in d["flags"])
    else:
        counts = Counter(str(f.get("code")) for f in open_flags)
    known = [code.value for code in FlagCode]
    flag_counts = [(code, counts[code]) for code in known if counts.get(code)]
    flag_counts += sorted((c, n) for c, n in counts.items() if c not in known)

    boards = _board_names(report)
    changes = [_as_dict(c, "summary") for c in (report.get("changes") or [])]
    for change in changes:
        board = str(change.get("board") or "")
        change["board_name"] = boards.get(board, board)
        kind = str(change.get("kind") or "")
        change["kind_label"] = strings["kinds"].get(kind, kind)

    figma = report.get("figma") or {}
    files = []
    for raw in (figma.get("files") if isinstance(figma, Mapping) else None) or []:
        file = _as_dict(raw, "key")
        file["url"] = figma_file_url(file.get("key"))
        file["broken_links"] = [_as_dict(b, "reason") for b in file.get("broken_links") or []]
        for broken in file["broken_links"]:
            reason = str(broken.get("reason") or "")
            broken["reason"] = strings["reasons"].get(reason, reason)
        file["newer_designs"] = [_as_dict(n, "card_title") for n in file.get("newer_designs") or []]
        file["open_comments"] = [_as_dict(c, "message") for c in file.get("open_comments") or []]
        files.append(file)

    since = report.get("since")
    trends = _trends(report, departments, max_prio, strings)
    return {
        "t": strings,
        "lang": lang,
        "dashboard": dashboard,
        "at": report.get("at"),
        "at_value": _datetime_local(report.get("at")),
        "trends": trends,
        "generated_at": report.get("generated_at"),
        "since": since,
        "max_priority": max_prio,
        "boards": [
            {**b, "role_label": strings["roles"].get(b.get("role"), b.get("role"))}
            for b in report.get("boards") or []
            if isinstance(b, Mapping)
        ],
        "departments": departments,
        "flagged_count": sum(1 for d in departments if d["flagged"]),
        "flags": flags,
        "open_flags": open_flags,
        "open_flag_count": sum(n for _, n in flag_counts),
        "flag_counts": flag_counts,
        "changes": changes,
        "show_changes": bool(since) or bool(changes),
        "figma_files": files,
        "chart": _chart(departments, max_prio),
        "degraded_cards": len(
            {d.get("card_id") for d in report.get("degraded") or [] if isinstance(d, Mapping)}
            - {None}
        ),
    }


def _trends(
    report: Mapping[str, Any],
    departments: list[dict[str, Any]],
    max_prio: int,
    strings: Mapping[str, Any],
) -> dict[str, Any] | None:
    """Sparkline geometry on each département (``dept["trend"]``) and the flags-per-week bars."""
    trends = report.get("trends")
    if not isinstance(trends, Mapping) or not trends.get("weeks"):
        return None
    weeks = [str(week) for week in trends["weeks"]]
    series = {
        str(code): values
        for code, values in (trends.get("departments") or {}).items()
        if isinstance(values, Mapping)
    }
    top = scale_top(series, max_prio)

    def shown(values: list[Any]) -> str:
        return ", ".join(strings["unknown"] if v is None else str(v) for v in values)

    for dept in departments:
        values = series.get(str(dept.get("code")))
        if values is None:
            continue
        priorities = list(values.get("priority_actions") or [])
        flags = list(values.get("flags") or [])
        dept["trend"] = sparkline(priorities, flags, top=top, max_priority=max_prio)
        dept["trend"]["title"] = strings["trend_title"].format(
            code=clean_text(dept.get("code")),
            name=clean_text(dept.get("name")),
            priorities=shown(priorities),
            flags=shown(flags),
        )
    return {"weeks": weeks, "bars": flag_bars(weeks, weekly_totals(series, len(weeks)))}


def _datetime_local(value: Any) -> str:
    """An ISO moment as an ``<input type="datetime-local">`` value (UTC, minutes)."""
    parsed = parse_iso(value)
    return parsed.strftime("%Y-%m-%dT%H:%M") if parsed else ""


def _chart(departments: list[dict[str, Any]], max_prio: int) -> dict[str, Any]:
    """Geometry of the horizontal bar chart (numbers only; the template escapes the labels)."""
    rows = sorted(departments, key=lambda d: _code_key(d.get("code")))
    label_w, plot_w, right_w, row_h, top, bottom = 230, 560, 50, 24, 30, 30
    scale = max([max_prio + 1, 1] + [d["open_count"] for d in rows])
    unit = plot_w / scale
    bars = []
    for index, dept in enumerate(rows):
        bars.append(
            {
                "y": top + index * row_h,
                "width": round(dept["open_count"] * unit, 1),
                "count": dept["open_count"],
                "over": dept["over"],
                "flagged": dept["flagged"],
                "code": str(dept.get("code") or ""),
                "label": truncate(
                    clean_text(f"{dept.get('code') or ''} {dept.get('name') or ''}"), 30
                ),
            }
        )
    ticks = [{"x": round(label_w + i * unit, 1), "value": i} for i in range(scale + 1)]
    return {
        "bars": bars,
        "label_w": label_w,
        "plot_w": plot_w,
        "row_h": row_h,
        "bar_h": 16,
        "top": top,
        "width": label_w + plot_w + right_w,
        "height": top + len(rows) * row_h + bottom,
        "max_x": round(label_w + max_prio * unit, 1),
        "ticks": ticks,
    }


# --------------------------------------------------------------------------- Jinja


@cache
def _environment(kind: str) -> jinja2.Environment:
    import jinja2

    loader = jinja2.PackageLoader("syncd.report", "templates")
    if kind == "html":
        env = jinja2.Environment(
            loader=loader,
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    else:
        env = jinja2.Environment(
            loader=loader,
            autoescape=False,  # Markdown: every user text goes through the ``md`` filter
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
    env.filters["md"] = md_escape
    env.filters["md_link"] = md_link
    env.filters["md_code"] = md_code
    env.filters["safe_url"] = safe_url
    env.filters["clean"] = clean_text
    return env


def _render_template(name: str, kind: str, view: dict[str, Any]) -> str:
    lang = view["lang"]
    template = _environment(kind).get_template(name)
    return template.render(**view, date=lambda v: format_date(v, lang))


# --------------------------------------------------------------------------- public API


def render(
    report: Report,
    fmt: str,
    *,
    lang: str | None = None,
    color: bool = False,
    width: int | None = None,
    viewer: Viewer | None = None,
    dashboard_csp: str | None = None,
) -> str:
    """The report in ``fmt`` (one of :data:`FORMATS`); French unless ``lang="en"``.

    ``lang`` defaults to the report's own ``lang`` key, then French; ``viewer`` (HTML only) is
    the logged-in reader of the served dashboard; ``dashboard_csp`` (HTML only) marks the page
    served by `syncd run` (its policy lets the date picker for ``?at=`` submit to syncd).
    """
    if fmt == "table":
        return render_table(report, lang=lang, color=color, width=width)
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report, lang=lang)
    if fmt == "html":
        return render_html(report, lang=lang, viewer=viewer, dashboard_csp=dashboard_csp)
    raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")


def render_json(report: Report) -> str:
    """The report as indented UTF-8 JSON, newline-terminated."""
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"


def render_markdown(report: Report, lang: str | None = None) -> str:
    """The report as Markdown for the referents' meeting notes."""
    view = build_view(report, resolve_lang(report, lang))
    text = _render_template("report.md.j2", "markdown", view)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


@dataclass(frozen=True)
class Viewer:
    """Who reads the served dashboard (shown with a logout button); none for report files.

    ``csp`` is the page's policy (the served page posts its logout form, a file posts nothing).
    """

    email: str
    csp: str
    logout_path: str = "/logout"


def render_html(
    report: Report,
    lang: str | None = None,
    *,
    viewer: Viewer | None = None,
    dashboard_csp: str | None = None,
) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no script)."""
    dashboard = viewer is not None or dashboard_csp is not None
    view = build_view(report, resolve_lang(report, lang), dashboard=dashboard)
    view["viewer"] = viewer
    view["page_csp"] = viewer.csp if viewer else dashboard_csp
    return _render_template("report.html.j2", "html", view).strip() + "\n"


def render_notice(
    title: str,
    message: str,
    *,
    lang: str = "fr",
    detail: str | None = None,
    link: tuple[str, str] | None = None,
) -> str:
    """A one-message HTML page (login refused, signed out, …); `link` is (href, text)."""
    view = {"t": strings_for(lang), "lang": lang, "title": title, "message": message}
    view |= {"detail": detail, "link": link}
    return _environment("html").get_template("notice.html.j2").render(**view).strip() + "\n"


_ANSI = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


class _Style:
    """ANSI styling for the terminal table; a no-op without colour."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *styles: str) -> str:
        codes = ";".join(_ANSI[s] for s in styles if s)
        if not self.enabled or not codes or not text:
            return text
        return f"\x1b[{codes}m{text}\x1b[0m"


def _fit_widths(natural: list[int], minimum: list[int], total: int, gap: int) -> list[int]:
    """Column widths fitting in ``total``, shrinking the widest column above its minimum first."""
    widths = list(natural)
    budget = total - gap * (len(widths) - 1)
    for floors in (minimum, [1] * len(widths)):  # the minimums first, then whatever it takes
        while sum(widths) > budget:
            candidates = [i for i, w in enumerate(widths) if w > floors[i]]
            if not candidates:
                break
            widest = max(candidates, key=lambda i: widths[i])
            widths[widest] -= 1
    return widths


def _grid(
    rows: list[list[str]],
    *,
    total: int,
    minimum: list[int],
    headers: list[str] | None = None,
    indent: int = 0,
    cell_styles: list[list[tuple[str, ...]]] | None = None,
    style: _Style | None = None,
) -> list[str]:
    """Aligned columns (two spaces apart) fitting in ``total``; long cells end with "…"."""
    style = style or _Style(False)
    gap = 2
    table = ([headers] if headers else []) + rows
    natural = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    floors = [min(n, m) for n, m in zip(natural, minimum, strict=True)]
    widths = _fit_widths(natural, floors, total - indent, gap)
    pad, sep = " " * indent, " " * gap
    out: list[str] = []
    if headers:
        out.append(
            pad
            + style(
                sep.join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(), "bold"
            )
        )
        out.append(pad + sep.join("─" * w for w in widths))
    for index, row in enumerate(rows):
        styles = cell_styles[index] if cell_styles else [()] * len(row)
        cells = [truncate(c, w).ljust(w) for c, w in zip(row, widths, strict=True)]
        last = len(cells) - 1
        cells[last] = cells[last].rstrip()
        out.append(pad + sep.join(style(c, *st) for c, st in zip(cells, styles, strict=True)))
    return [line.rstrip() for line in out]


def _wrap_parts(parts: list[str], total: int, sep: str = " · ") -> list[str]:
    """Parts joined by ``sep`` on as few lines of at most ``total`` characters as possible."""
    lines: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current}{sep}{part}" if current else part
        if current and len(candidate) > total:
            lines.append(current)
            current = part
        else:
            current = candidate
    if current:
        lines.append(current)
    return [truncate(line, total) for line in lines]


def render_table(
    report: Report,
    lang: str | None = None,
    color: bool = False,
    width: int | None = None,
) -> str:
    """The report as a plain-text terminal table (no line longer than ``width``, default 100)."""
    lang = resolve_lang(report, lang)
    view = build_view(report, lang)
    t = view["t"]
    total = max(40, width or DEFAULT_WIDTH)
    style = _Style(color)
    max_prio = view["max_priority"]
    lines: list[str] = []

    def line(text: str, *styles: str) -> None:
        lines.append(style(truncate(text, total), *styles))

    def when(value: Any) -> str:
        return format_date(value, lang)

    line(f"{t['title']} — {when(view['generated_at'])}", "bold")
    if view["at"]:
        line(t["at_banner"].format(at=when(view["at"])), "yellow")
    parts = [
        f"{t['departments']}{t['colon']}{len(view['departments'])}",
        f"{t['flagged_departments']}{t['colon']}{view['flagged_count']}",
        f"{t['open_flags']}{t['colon']}{view['open_flag_count']}",
        t["max_priority"].format(max=max_prio),
    ]
    lines.extend(_wrap_parts(parts, total))
    lines.append("")

    if view["departments"]:
        headers = [t["code"], t["name"], t["priority_actions_short"], t["referents"], t["flags"]]
        rows: list[list[str]] = []
        styles: list[list[tuple[str, ...]]] = []
        for dept in view["departments"]:
            rows.append(
                [
                    clean_text(dept.get("code")),
                    clean_text(dept.get("name")),
                    f"{dept['open_count']}/{max_prio}",
                    clean_text(", ".join(str(x) for x in dept["referents"])) or t["none"],
                    ", ".join(clean_text(f) for f in dept["flags"]) or t["none"],
                ]
            )
            flagged = ("bold", "red") if dept["flagged"] else ()
            styles.append(
                [
                    flagged,
                    (),
                    ("bold", "red") if dept["over"] else (),
                    () if dept["referents"] else ("dim",),
                    ("red",) if flagged else (),
                ]
            )
        lines.extend(
            _grid(
                rows,
                total=total,
                minimum=[4, 12, len(headers[2]), 10, 12],
                headers=headers,
                cell_styles=styles,
                style=style,
            )
        )
    else:
        line(t["no_departments"], "dim")
    lines.append("")

    line(t["flags"], "bold")
    if view["flags"]:
        rows, styles, details = [], [], []
        for flag in view["flags"]:
            code = clean_text(flag.get("code"))
            rows.append(
                [
                    clean_text(flag.get("department")),
                    clean_text(flag.get("department_name")),
                    code,
                    f"{t['since']} {when(flag.get('since'))}",
                ]
            )
            tone = ("dim",) if flag.get("resolved_at") else ("red",)
            styles.append([tone, (), tone, ()])
            detail = " — ".join(x for x in (flag["label"], clean_text(flag["text"])) if x)
            if flag.get("resolved_at"):
                resolved = f"{t['resolved_at'].lower()} {when(flag.get('resolved_at'))}"
                detail = f"{resolved} · {detail}" if detail else resolved
            details.append(detail)
        grid = _grid(
            rows, total=total, minimum=[2, 8, 12, 30], indent=2, cell_styles=styles, style=style
        )
        offset = 2 + len(rows[0][0]) + 2 if all(len(r[0]) == len(rows[0][0]) for r in rows) else 4
        for row_line, detail in zip(grid, details, strict=True):
            lines.append(row_line)
            if detail:
                line(" " * offset + detail, "dim")
    else:
        line(f"  {t['no_flags']}", "green")
    lines.append("")

    with_actions = [d for d in view["departments"] if d["priority_actions"]]
    if with_actions:
        line(t["priority_actions"], "bold")
        for dept in with_actions:
            count = f"{dept['open_count']}/{max_prio}"
            head = f"  {clean_text(dept.get('code'))} {clean_text(dept.get('name'))} ({count})"
            line(head, "red" if dept["over"] else "")
            for action in dept["priority_actions"]:
                line(f"    - {clean_text(action.get('title'))}")
        lines.append("")

    if view["show_changes"]:
        title = (
            t["changes_since"].format(since=when(view["since"])) if view["since"] else t["changes"]
        )
        line(title, "bold")
        if view["changes"]:
            rows = [
                [
                    when(c.get("at")),
                    clean_text(c["board_name"]),
                    clean_text(c["kind_label"]),
                    clean_text(c.get("summary")),
                ]
                for c in view["changes"]
            ]
            lines.extend(_grid(rows, total=total, minimum=[999, 8, 10, 10], indent=2))
        else:
            line(f"  {t['no_changes']}", "dim")
        lines.append("")

    line(t["figma"], "bold")
    if not view["figma_files"]:
        line(f"  {t['no_figma']}", "dim")
    for file in view["figma_files"]:
        line(f"  {clean_text(file.get('name') or file.get('key'))}")
        details = [
            f"{t['version']} {clean_text(file.get('version')) or t['none']}",
            f"{t['last_modified']} {when(file.get('last_modified'))}",
            f"{t['linked_cards']}{t['colon']}{file.get('linked_cards') or 0}",
            f"{t['broken_links']}{t['colon']}{len(file['broken_links'])}",
            f"{t['newer_designs']}{t['colon']}{len(file['newer_designs'])}",
            f"{t['open_comments']}{t['colon']}{len(file['open_comments'])}",
        ]
        lines.extend("    " + part for part in _wrap_parts(details, total - 4))
        for broken in file["broken_links"]:
            card = clean_text(broken.get("card_title") or broken.get("card_id"))
            reason = clean_text(broken.get("reason"))
            line(
                f"    ✗ {card} ({t['node'].lower()} {clean_text(broken.get('node_id'))})"
                + (f"{t['colon']}{reason}" if reason else ""),
                "yellow",
            )
        for newer in file["newer_designs"]:
            card = clean_text(newer.get("card_title") or newer.get("card_id"))
            line(
                f"    ↻ {card} ({t['version_created_at'].lower()} "
                f"{when(newer.get('version_created_at'))})"
            )
        if file.get("rate_limited_until"):
            until = when(file["rate_limited_until"])
            line("    " + t["rate_limited_until"].format(until=until), "yellow")
    return "\n".join(lines).rstrip() + "\n"
