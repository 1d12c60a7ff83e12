"""The report JSON, typed: the contract's "Report JSON" shape as TypedDicts.

`build_report` returns a `Report`; the renderers, ``syncd report --format json`` and
``GET /api/report`` all carry this one shape. The contract's keys are never renamed; keys added
beyond it are marked "added" below. `REPORT_ADAPTER` validates a report against the model with
no undeclared key anywhere (``extra="forbid"``), which the tests use to keep the model and
`build_report` in step.
"""

from __future__ import annotations

from typing import Literal, NotRequired

from pydantic import ConfigDict, TypeAdapter, with_config
from typing_extensions import TypedDict  # pydantic reads TypedDicts from here on Python 3.11

__all__ = [
    "REPORT_ADAPTER",
    "BoardEntry",
    "BrokenLink",
    "ChangeEntry",
    "DashboardCard",
    "DegradedEntry",
    "DepartmentEntry",
    "DepartmentTrend",
    "FigmaFileEntry",
    "FigmaSection",
    "FlagEntry",
    "LinkedCards",
    "NewerDesign",
    "OpenComment",
    "PriorityActionEntry",
    "Report",
    "Trends",
]

_STRICT = ConfigDict(extra="forbid")


@with_config(_STRICT)
class BoardEntry(TypedDict):
    id: str
    short_link: str  # added
    name: str
    role: str  # "consortium" | "product"
    url: str  # added
    last_synced_at: str | None
    cards: int


@with_config(_STRICT)
class DashboardCard(TypedDict):
    id: str
    url: str


@with_config(_STRICT)
class PriorityActionEntry(TypedDict):
    title: str
    source: Literal["checklist", "card"]
    card_id: str
    url: str


@with_config(_STRICT)
class LinkedCards(TypedDict):
    consortium: int
    product: int


@with_config(_STRICT)
class DepartmentEntry(TypedDict):
    code: str
    name: str
    dashboard_card: DashboardCard | None
    referents: list[str]
    priority_actions: list[PriorityActionEntry]
    topics: list[str]
    linked_cards: LinkedCards
    flags: list[str]  # FlagCode values, sorted


@with_config(_STRICT)
class FlagEntry(TypedDict):
    department: str
    code: str  # a FlagCode value
    message: str  # English, for scripts
    message_fr: str  # added: the same in French, as the French renderings show it
    since: str
    resolved_at: str | None


@with_config(_STRICT)
class ChangeEntry(TypedDict):
    at: str
    board: str  # the board's name
    board_id: str | None  # added
    card_id: str | None
    kind: str
    summary: str  # in the report's language
    department: NotRequired[str]  # added: flag and governance changes
    code: NotRequired[str]  # added: flag changes
    detail: NotRequired[str]  # added: governance changes' own text (a title, "old → new")


@with_config(_STRICT)
class BrokenLink(TypedDict):
    card_id: str
    card_title: str
    card_url: str
    node_id: str
    reason: Literal["missing", "deleted"]


@with_config(_STRICT)
class NewerDesign(TypedDict):
    card_id: str
    card_title: str
    card_url: str
    version_created_at: str
    card_last_activity: str


@with_config(_STRICT)
class OpenComment(TypedDict):
    id: str
    node_id: str
    node_name: str | None
    author: str
    message: str
    created_at: str | None
    card_ids: list[str]


@with_config(_STRICT)
class FigmaFileEntry(TypedDict):
    key: str
    name: str
    url: str  # added
    last_modified: str | None
    version: str | None
    last_synced_at: str | None  # added
    last_error: str | None  # added
    rate_limited_until: str | None  # added
    tree_read: bool  # added
    frames: int  # added
    linked_cards: int
    broken_links: list[BrokenLink]
    newer_designs: list[NewerDesign]  # added
    open_comments: list[OpenComment]  # added


@with_config(_STRICT)
class FigmaSection(TypedDict):
    files: list[FigmaFileEntry]


@with_config(_STRICT)
class DepartmentTrend(TypedDict):
    # one value per week of `Trends.weeks`; None for a week that ended before the store's
    # history began (nothing is known of it)
    priority_actions: list[int | None]
    flags: list[int | None]


@with_config(_STRICT)
class Trends(TypedDict):
    weeks: list[str]  # ISO weeks, "2026-W38", the current one last
    departments: dict[str, DepartmentTrend]


@with_config(_STRICT)
class DegradedEntry(TypedDict):
    """Added: a stored row the report could not read, so its card is shown with neutral values
    (empty text, no date) in its place (`syncd.rules.facts`)."""

    card_id: str | None  # None: a board-level row (a list, a label)
    board_id: str | None
    row: str  # "card", "list", "checklist", "check_item", "card_version", …
    row_id: str
    reason: str  # "<column>: <why>"


@with_config(_STRICT)
class Report(TypedDict):
    generated_at: str
    lang: str  # added: the language of every sentence in it ("fr" or "en")
    since: str | None  # added
    max_priority_actions: int  # added
    boards: list[BoardEntry]
    departments: list[DepartmentEntry]
    flags: list[FlagEntry]
    changes: list[ChangeEntry]
    figma: FigmaSection
    at: str | None  # the moment described (`--at`, ``?at=``); None: now
    trends: Trends
    degraded: list[DegradedEntry]  # added: rows read with neutral values, each naming its card


REPORT_ADAPTER: TypeAdapter[Report] = TypeAdapter(Report)
