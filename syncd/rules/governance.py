"""Governance rules of the consortium board: links, priority actions, referents, topics, findings.

Pure functions over plain facts (:class:`CardFacts`, :class:`ListFacts`) built by the caller
from the store; nothing here does I/O. The semantics follow the contract section "How the
consortium board encodes governance":

* the dashboard list is ``Rules.department_list`` (names compared with :func:`normalise_name`,
  open lists only) on the consortium board, or when empty that board's open list with the
  lowest ``pos``;
* a department's dashboard card is the open, non-deleted card of that list whose title names
  it (:func:`~syncd.rules.departments.match_title_exact`, else a title naming exactly one
  department); of two such cards the most recently active wins;
* a card links to a department through its dashboard role, a label, its list's name or its own
  name, on every board; deleted cards never link, archived cards still link;
* priority actions are the incomplete items of the priority checklist of the dashboard card
  plus the open linked cards carrying the priority label (the dashboard card itself excluded);
* findings: one per department and :class:`FlagCode` (a priority card without a known last
  activity is not reported as stale). A finding carries its message as a template key and
  parameters; the words are in `syncd.report.strings`, in every language.

Also owns :class:`Rules`, the ``[governance]`` settings, declared once: `syncd.config` uses
this class as that section, with its validation (one-line errors naming the key).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from syncd.report.strings import flag_message
from syncd.rules.departments import by_code, departments_named, match_title_exact

__all__ = [
    "CardFacts",
    "CheckItemFacts",
    "ChecklistFacts",
    "DepartmentStatus",
    "Evaluation",
    "Finding",
    "FlagCode",
    "Link",
    "ListFacts",
    "PriorityAction",
    "Rules",
    "departments_in_text",
    "evaluate",
    "normalise_name",
    "parse_referents",
]

CONSORTIUM = "consortium"


class FlagCode(StrEnum):
    """The governance flags (the contract's codes); the one list every module uses."""

    TOO_MANY_PRIORITIES = "TOO_MANY_PRIORITIES"
    NO_REFERENT = "NO_REFERENT"
    NO_DASHBOARD = "NO_DASHBOARD"
    STALE_PRIORITY = "STALE_PRIORITY"


class Rules(BaseModel):
    """The ``[governance]`` config section (defaults as in the contract)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    departments: tuple[str, ...] = ()  # INSEE codes expected, canonical ("7" -> "07", "2a" -> "2A")
    department_list: str = ""  # "" = the consortium board's first open list (lowest pos)
    priority_checklist: str = "Actions prioritaires"
    priority_label: str = "Prioritaire"
    topics_checklist: str = "Sujets importants"
    referent_field: str = "Référent territorial"
    max_priority_actions: int = Field(default=3, ge=0)
    stale_after_days: int = Field(default=30, ge=1)

    @field_validator("departments", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            codes = []
            for code in value:
                department = by_code(str(code))
                if department is None:
                    raise ValueError(f"{code!r} is not a département INSEE code")
                codes.append(department.code)
            return tuple(codes)
        return value


# --------------------------------------------------------------------------- inputs


# The inputs are named tuples: immutable, compact and made in C (a 100,000-card mirror makes
# 300,000 of them for each report and flag computation).


class CheckItemFacts(NamedTuple):
    id: str
    name: str
    complete: bool


class ChecklistFacts(NamedTuple):
    id: str
    name: str
    items: tuple[CheckItemFacts, ...]


class ListFacts(NamedTuple):
    id: str
    board_id: str
    name: str
    closed: bool
    pos: float


class CardFacts(NamedTuple):
    id: str
    board_id: str
    board_role: str  # "consortium" | "product" | other
    name: str
    desc: str
    url: str
    list_id: str
    labels: tuple[str, ...]  # label names
    members: tuple[str, ...]  # member full names (or username when no full name)
    checklists: tuple[ChecklistFacts, ...]
    custom_fields: Mapping[str, str]  # custom field name -> display value ("" when unset)
    closed: bool  # archived
    deleted: bool  # gone from Trello (kept in the store); never counts
    date_last_activity: datetime | None  # tz-aware UTC


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Link:
    """``card_id`` links to ``department`` for ``reason`` (dashboard, label, list, name)."""

    card_id: str
    board_role: str
    department: str
    reason: str
    detail: str  # the card title, label name or list name that carried the link


@dataclass(frozen=True, slots=True)
class PriorityAction:
    title: str
    source: str  # "checklist" | "card"
    card_id: str
    url: str


@dataclass(frozen=True, slots=True)
class Finding:
    """A flag found on one département: its code and its message (template and parameters)."""

    department: str
    code: FlagCode
    template: str  # a key of the ``flag_messages`` string tables
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def message(self) -> str:
        """The English message: the flag's JSON ``message``, kept in the store."""
        return flag_message(self.template, self.params, "en")

    def message_in(self, lang: str) -> str:
        return flag_message(self.template, self.params, lang)


@dataclass
class DepartmentStatus:
    code: str
    name: str
    dashboard_card_id: str | None = None
    dashboard_card_url: str | None = None
    referents: list[str] = field(default_factory=list)
    priority_actions: list[PriorityAction] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    linked_cards: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    stale_priorities: list[tuple[str, int]] = field(default_factory=list)  # (title, idle days)


@dataclass
class Evaluation:
    departments: list[DepartmentStatus]
    links: list[Link]  # as found, card by card: the rules count them by département, unordered
    findings: list[Finding]


# --------------------------------------------------------------------------- helpers


@lru_cache(maxsize=4096)
def normalise_name(text: str) -> str:
    """Case-, accent- and spacing-insensitive form of a name, for comparing configured names.

    Remembered for the few thousand texts compared most (labels, checklist and list names)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


@lru_cache(maxsize=4096)
def _codes_in_tag(text: str) -> tuple[str, ...]:
    exact = match_title_exact(text)
    if exact is not None:
        return (exact,)
    return tuple(m.code for m in departments_named(text))


def departments_in_text(text: str) -> list[str]:
    """Codes named by a short tag (label, list name): the whole text first, else any mention."""
    return list(_codes_in_tag(text))


_NAME_SPLIT = re.compile(r"\s*(?:[,;/\n]|\bet\b|&)\s*", re.IGNORECASE)
_REFERENT_LINE = re.compile(
    r"^[\s>*•\-]*(?:\*\*|__)?r[eéè]f[eéè]rent(?:e)?s?"
    r"(?:\s+territoria(?:l|le|ux|les))?(?:\*\*|__)?\s*:\s*(?:\*\*|__)?(?P<names>.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)


def _split_names(value: str) -> list[str]:
    names = (part.strip(" \t*_.-–—") for part in _NAME_SPLIT.split(value))
    return [name for name in names if name]


def parse_referents(desc: str) -> list[str]:
    """Names on ``Référent : NAME`` lines of a card description (any case, accents optional)."""
    names: list[str] = []
    for line in _REFERENT_LINE.finditer(desc):
        names.extend(_split_names(line.group("names")))
    return names


def _dedupe(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        key = normalise_name(name)
        if key and key not in seen:
            seen.add(key)
            out.append(name.strip())
    return out


def _field_value(fields: Mapping[str, str], wanted: str) -> str:
    key = normalise_name(wanted)
    for name, value in fields.items():
        if normalise_name(name) == key:
            return value or ""
    return ""


def _checklists_named(card: CardFacts, wanted: str) -> list[ChecklistFacts]:
    key = normalise_name(wanted)
    return [cl for cl in card.checklists if normalise_name(cl.name) == key]


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _activity_key(card: CardFacts) -> tuple[datetime, str]:
    moment = card.date_last_activity
    return (_as_utc(moment) if moment else datetime.min.replace(tzinfo=UTC), card.id)


# --------------------------------------------------------------------------- dashboard


def _dashboard_lists(
    cards: Sequence[CardFacts], lists: Sequence[ListFacts], rules: Rules
) -> tuple[set[str], str]:
    """Ids of the dashboard list(s) and their name for NO_DASHBOARD messages ("" when none)."""
    consortium_boards = {c.board_id for c in cards if c.board_role == CONSORTIUM}
    candidates = [lst for lst in lists if lst.board_id in consortium_boards and not lst.closed]
    if rules.department_list.strip():
        wanted = normalise_name(rules.department_list)
        chosen = [lst for lst in candidates if normalise_name(lst.name) == wanted]
        return {lst.id for lst in chosen}, rules.department_list
    by_board: dict[str, ListFacts] = {}
    for lst in sorted(candidates, key=lambda x: (x.pos, x.id)):
        by_board.setdefault(lst.board_id, lst)
    chosen = list(by_board.values())
    label = ", ".join(sorted({lst.name for lst in chosen}))  # "": the board has no open list
    return {lst.id for lst in chosen}, label


def _dashboard_cards(cards: Sequence[CardFacts], list_ids: set[str]) -> dict[str, CardFacts]:
    found: dict[str, CardFacts] = {}
    for card in cards:
        if card.list_id not in list_ids or card.closed or card.deleted:
            continue
        code = match_title_exact(card.name)
        if code is None:
            codes = {m.code for m in departments_named(card.name)}
            if len(codes) != 1:
                continue
            code = codes.pop()
        current = found.get(code)
        if current is None or _activity_key(card) > _activity_key(current):
            found[code] = card
    return found


# --------------------------------------------------------------------------- links


def _links(
    cards: Sequence[CardFacts], lists: Sequence[ListFacts], dashboards: Mapping[str, CardFacts]
) -> tuple[list[Link], dict[str, CardFacts]]:
    """Every link of every card (not deleted), and the linked cards by id."""
    list_names = {lst.id: lst.name for lst in lists}
    dashboard_of = {card.id: code for code, card in dashboards.items()}
    list_codes = {lst.id: _codes_in_tag(lst.name) if lst.name else () for lst in lists}
    links: list[Link] = []
    linked: dict[str, CardFacts] = {}
    for card in cards:
        if card.deleted:
            continue
        named = departments_named(card.name)
        by_list = list_codes.get(card.list_id, ())
        if not (named or by_list or card.labels or card.id in dashboard_of):
            continue  # most cards: nothing links them
        found: dict[tuple[str, str], str] = {}  # (department, reason) -> detail; first one wins
        if card.id in dashboard_of:
            found[(dashboard_of[card.id], "dashboard")] = card.name
        for label in card.labels:
            for code in _codes_in_tag(label):
                found.setdefault((code, "label"), label)
        for code in by_list:
            found.setdefault((code, "list"), list_names[card.list_id])
        for match in named:
            found.setdefault((match.code, "name"), card.name)
        if found:
            linked[card.id] = card
            links.extend(
                Link(card.id, card.board_role, code, reason, detail)
                for (code, reason), detail in found.items()
            )
    return links, linked


# --------------------------------------------------------------------------- evaluation


def _referents(card: CardFacts, rules: Rules) -> list[str]:
    names: list[str] = list(card.members)
    names.extend(_split_names(_field_value(card.custom_fields, rules.referent_field)))
    names.extend(parse_referents(card.desc))
    return _dedupe(names)


def _stale_finding(code: str, stale: list[tuple[str, int]], rules: Rules) -> Finding:
    if len(stale) == 1:
        title, days = stale[0]
        return Finding(
            code, FlagCode.STALE_PRIORITY, "STALE_PRIORITY", {"title": title, "days": days}
        )
    params = {"count": len(stale), "days": rules.stale_after_days, "cards": tuple(stale)}
    return Finding(code, FlagCode.STALE_PRIORITY, "STALE_PRIORITY_MANY", params)


def evaluate(
    cards: Sequence[CardFacts], lists: Sequence[ListFacts], rules: Rules, now: datetime
) -> Evaluation:
    """Apply the governance rules to one snapshot of the boards."""
    now = _as_utc(now)
    list_ids, list_label = _dashboard_lists(cards, lists, rules)
    dashboards = _dashboard_cards(cards, list_ids)
    links, cards_by_id = _links(cards, lists, dashboards)
    priority_label = normalise_name(rules.priority_label)
    labelled = {  # open linked cards carrying the priority label, decided once per card
        card.id
        for card in cards_by_id.values()
        if card.labels and _is_priority_card(card, None, priority_label)
    }
    roles = sorted({card.board_role for card in cards})
    stale_after = timedelta(days=rules.stale_after_days)

    linked: dict[str, dict[str, set[str]]] = {}
    for link in links:
        linked.setdefault(link.department, {}).setdefault(link.board_role, set()).add(link.card_id)

    wanted = list(rules.departments)
    codes = sorted(set(dashboards) | set(wanted))  # string order: 01…29, 2A, 2B, 30…95, 971…
    statuses: list[DepartmentStatus] = []
    findings: list[Finding] = []
    for code in codes:
        dep = by_code(code)
        status = DepartmentStatus(code=code, name=dep.name if dep else "")
        dashboard = dashboards.get(code)
        by_role = linked.get(code, {})
        status.linked_cards = {role: len(by_role.get(role, ())) for role in roles}

        if dashboard is not None:
            status.dashboard_card_id = dashboard.id
            status.dashboard_card_url = dashboard.url
            status.referents = _referents(dashboard, rules)
            for checklist in _checklists_named(dashboard, rules.priority_checklist):
                status.priority_actions.extend(
                    PriorityAction(item.name, "checklist", dashboard.id, dashboard.url)
                    for item in checklist.items
                    if not item.complete
                )
            for checklist in _checklists_named(dashboard, rules.topics_checklist):
                status.topics.extend(item.name for item in checklist.items)

        linked_ids = {card_id for ids in by_role.values() for card_id in ids}
        priority_cards = sorted(
            (
                cards_by_id[card_id]
                for card_id in linked_ids
                if card_id in labelled and (dashboard is None or card_id != dashboard.id)
            ),
            key=lambda c: (normalise_name(c.name), c.id),
        )
        stale: list[tuple[str, int]] = []
        for card in priority_cards:
            status.priority_actions.append(PriorityAction(card.name, "card", card.id, card.url))
            if card.date_last_activity is not None:
                idle = now - _as_utc(card.date_last_activity)
                if idle > stale_after:
                    stale.append((card.name, idle.days))

        count = len(status.priority_actions)
        if count > rules.max_priority_actions:
            params = {"count": count, "max": rules.max_priority_actions}
            status.findings.append(
                Finding(code, FlagCode.TOO_MANY_PRIORITIES, "TOO_MANY_PRIORITIES", params)
            )
        if dashboard is not None and not status.referents:
            status.findings.append(Finding(code, FlagCode.NO_REFERENT, "NO_REFERENT"))
        if dashboard is None and code in wanted:
            status.findings.append(
                Finding(code, FlagCode.NO_DASHBOARD, "NO_DASHBOARD", {"list": list_label})
                if list_label
                else Finding(code, FlagCode.NO_DASHBOARD, "NO_DASHBOARD_NO_LIST")
            )
        if stale:
            status.stale_priorities = stale
            status.findings.append(_stale_finding(code, stale, rules))
        findings.extend(status.findings)
        statuses.append(status)

    return Evaluation(departments=statuses, links=links, findings=findings)


def _is_priority_card(card: CardFacts, dashboard: CardFacts | None, label: str) -> bool:
    """An open linked card carrying the priority label; the dashboard card itself never is."""
    if card.closed or card.deleted or (dashboard is not None and card.id == dashboard.id):
        return False
    return any(normalise_name(name) == label for name in card.labels)
