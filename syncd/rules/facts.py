"""Stored mirror rows → the governance rules' input (`CardFacts`, `ListFacts`), read tolerantly.

The one bridge between `state` (rows) and the pure rules of `syncd.rules.governance`. A stored
value of the wrong kind (a name that is not text, a position that is not a finite number, a
date that is not a date, a check-item state that is neither state) never breaks the whole
reading: that value reads as neutral (empty text, position 0, no date, incomplete) and its card
is *degraded*, named in `MirrorFacts.degraded` with the reason, so the report, the flags and
`/readyz` say so (`log_degraded` names it in the logs once per process). A card's activity
leaves syncd's own comments out (`syncd.rules.activity`).
"""

from __future__ import annotations

import gc
import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import structlog

from state.store import MirrorRows
from state.timestamps import parse_iso
from syncd.rules.activity import (
    OwnComment,
    activity_without_own_comments,
    own_comments_from_rows,
)
from syncd.rules.governance import CardFacts, CheckItemFacts, ChecklistFacts, ListFacts

log = structlog.get_logger("syncd.rules")
_fromisoformat = datetime.fromisoformat
_isfinite = math.isfinite


@dataclass(frozen=True)
class Degraded:
    """A stored row read with a neutral value instead of an unreadable one."""

    card_id: str | None  # the card it degrades (None: a board-level row, e.g. a list)
    board_id: str | None
    row: str  # which row: "card", "list", "checklist", "check_item", …
    row_id: str
    reason: str  # "<column>: <why>", one line


@dataclass(frozen=True)
class MirrorFacts:
    cards: list[CardFacts]
    lists: list[ListFacts]
    degraded: tuple[Degraded, ...] = ()


@dataclass
class _Reader:
    """Reads columns of stored rows, noting every unreadable value."""

    degraded: list[Degraded] = field(default_factory=list)

    def note(self, row: str, data: Mapping[str, Any], column: str, why: str, **where: Any) -> None:
        self.degraded.append(
            Degraded(
                card_id=where.get("card_id"),
                board_id=where.get("board_id"),
                row=row,
                row_id=_id(data.get("id")),
                reason=f"{column}: {why}",
            )
        )

    def text(self, row: str, data: Mapping[str, Any], column: str, **where: Any) -> str:
        value = data.get(column)
        if value is None or isinstance(value, str):
            if isinstance(value, str) and "\x00" in value:
                self.note(row, data, column, "holds a NUL character", **where)
                return value.replace("\x00", "")
            return value or ""
        self.note(row, data, column, "not text", **where)
        return ""

    def number(self, row: str, data: Mapping[str, Any], column: str, **where: Any) -> float:
        value = data.get(column)
        if value is None:
            return 0.0
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        self.note(row, data, column, "not a finite number", **where)
        return 0.0

    def moment(self, row: str, data: Mapping[str, Any], column: str, **where: Any) -> Any:
        value = data.get(column)
        if value is None or value == "":
            return None
        moment = parse_iso(value)
        if moment is None:
            self.note(row, data, column, "not a date", **where)
        return moment


def _id(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)[:40]


def facts_from_rows(rows: MirrorRows) -> MirrorFacts:
    """Build the facts of every card (deleted ones included, marked) and list.

    One pass per table. A value of the expected kind is taken as it is (the common case, kept
    cheap: a report reads every card); anything else goes through `_Reader`, which notes it.
    The values and the order of the notes are those of reading every value through `_Reader`.
    """
    read = _Reader()
    roles = {board["id"]: board["role"] for board in sorted(rows.boards, key=lambda b: b["id"])}
    labels = {label["id"]: read.text("label", label, "name") for label in rows.labels}
    members = {
        member["id"]: read.text("member", member, "full_name")
        or read.text("member", member, "username")
        for member in rows.members
    }
    fields = {field["id"]: read.text("custom_field", field, "name") for field in rows.custom_fields}
    card_boards: dict[Any, Any] = {}  # made at the first unreadable value (rare)

    def of_card(card_id: Any) -> dict[str, Any]:
        if not card_boards:
            card_boards.update((card["id"], card.get("board_id")) for card in rows.cards)
        return {"card_id": card_id, "board_id": card_boards.get(card_id)}

    # Every order below is total (ties broken by id): the same rows give the same facts whatever
    # order the database returns them in, so a report rebuilt from history equals the original.
    card_labels: dict[str, list[str]] = defaultdict(list)
    for row in sorted(
        rows.card_labels, key=lambda row: (labels.get(row["label_id"], ""), row["label_id"])
    ):
        if row["label_id"] in labels:
            card_labels[row["card_id"]].append(labels[row["label_id"]])
    card_members: dict[str, list[str]] = defaultdict(list)
    for row in sorted(
        rows.card_members, key=lambda row: (members.get(row["member_id"], ""), row["member_id"])
    ):
        if row["member_id"] in members:
            card_members[row["card_id"]].append(members[row["member_id"]])
    items: dict[str, list[tuple[float, CheckItemFacts]]] = defaultdict(list)
    for item in rows.check_items:
        state = item.get("state")
        if state not in ("complete", "incomplete"):
            read.note(
                "check_item", item, "state", "neither complete nor incomplete",
                **of_card(item.get("card_id")),
            )  # fmt: skip
        pos = item.get("pos")
        if pos.__class__ is not float or not _isfinite(pos):
            pos = read.number("check_item", item, "pos", **of_card(item.get("card_id")))
        name = item.get("name")
        if name.__class__ is not str or "\x00" in name:
            name = read.text("check_item", item, "name", **of_card(item.get("card_id")))
        items[item["checklist_id"]].append(
            (pos, CheckItemFacts(item["id"], name, state == "complete"))
        )
    checklists: dict[str, list[tuple[float, ChecklistFacts]]] = defaultdict(list)
    for checklist in rows.checklists:
        pos = checklist.get("pos")
        if pos.__class__ is not float or not _isfinite(pos):
            pos = read.number("checklist", checklist, "pos", **of_card(checklist.get("card_id")))
        name = checklist.get("name")
        if name.__class__ is not str or "\x00" in name:
            name = read.text("checklist", checklist, "name", **of_card(checklist.get("card_id")))
        ordered = items.get(checklist["id"])
        if ordered and len(ordered) > 1:
            ordered.sort(key=lambda pair: (pair[0], pair[1].id))
        checklists[checklist["card_id"]].append(
            (
                pos,
                ChecklistFacts(
                    id=checklist["id"],
                    name=name,
                    items=tuple(item for _, item in ordered) if ordered else (),
                ),
            )
        )
    own_by_card: dict[str, list[OwnComment]] = defaultdict(list)
    for comment in own_comments_from_rows(rows.own_comments):
        own_by_card[comment.card_id].append(comment)
    actions_by_card: dict[str, list[dict]] = defaultdict(list)
    for action in rows.own_comment_card_actions:
        actions_by_card[action["card_id"]].append(action)
    values: dict[str, dict[str, str]] = defaultdict(dict)
    for row in sorted(rows.custom_field_items, key=lambda row: row["custom_field_id"]):
        if row["custom_field_id"] in fields:
            value = row.get("value")
            if value.__class__ is not str or "\x00" in value:
                value = read.text("custom_field_item", row, "value", **of_card(row.get("card_id")))
            values[row["card_id"]][fields[row["custom_field_id"]]] = value
    cards: list[tuple[tuple[str, float, str], CardFacts]] = []
    for card in rows.cards:
        card_id = card["id"]
        pos = card.get("pos")
        if pos.__class__ is not float or not _isfinite(pos):
            pos = read.number("card", card, "pos", **of_card(card_id))
        name, desc, url, list_id = (
            card.get("name"),
            card.get("desc"),
            card.get("url"),
            card.get("list_id"),
        )
        if name.__class__ is not str or "\x00" in name:
            name = read.text("card", card, "name", **of_card(card_id))
        if desc.__class__ is not str or "\x00" in desc:
            desc = read.text("card", card, "desc", **of_card(card_id))
        if url.__class__ is not str or "\x00" in url:
            url = read.text("card", card, "url", **of_card(card_id))
        if list_id.__class__ is not str or "\x00" in list_id:
            list_id = read.text("card", card, "list_id", **of_card(card_id))
        activity = _moment(card.get("date_last_activity"))
        if activity is _UNREAD:
            activity = read.moment("card", card, "date_last_activity", **of_card(card_id))
        own = own_by_card.get(card_id)
        if own:
            activity = activity_without_own_comments(
                activity, own, actions_by_card.get(card_id, ())
            )
        labelled = card_labels.get(card_id)
        membered = card_members.get(card_id)
        listed = checklists.get(card_id)
        if listed and len(listed) > 1:
            listed.sort(key=lambda pair: (pair[0], pair[1].id))
        board_id = card["board_id"]
        facts = CardFacts(  # positional, in the field order: a third cheaper than by keyword
            card_id,
            board_id,
            roles.get(board_id, ""),
            name,
            desc,
            url,
            list_id,
            tuple(labelled) if labelled else (),  # labels
            tuple(membered) if membered else (),  # members
            tuple(checklist for _, checklist in listed) if listed else (),  # checklists
            values.get(card_id) or {},  # custom_fields
            bool(card["closed"]),  # closed
            card["deleted_at"] is not None,  # deleted
            activity,  # date_last_activity
        )
        cards.append(((str(board_id), pos, str(card_id)), facts))
    cards.sort(key=itemgetter(0))
    lists = []
    for row in sorted(rows.lists, key=lambda row: row["id"]):
        where = {"card_id": None, "board_id": row.get("board_id")}
        lists.append(
            ListFacts(
                row["id"],
                row["board_id"],
                read.text("list", row, "name", **where),
                bool(row["closed"]),
                read.number("list", row, "pos", **where),
            )
        )
    return MirrorFacts([facts for _, facts in cards], lists, tuple(read.degraded))


_UNREAD: Any = object()  # `_moment`: not the store's own shape, read it through `_Reader`


def _moment(value: Any) -> Any:
    """A stored timestamp of the store's own shape (``2026-11-30T08:00:00.000Z``) as an aware
    UTC datetime, as `parse_iso` reads it; None for none; `_UNREAD` for anything else."""
    if value is None or value == "":
        return None
    if value.__class__ is str and len(value) == 24 and value[23] == "Z" and value[10] == "T":
        try:
            moment = _fromisoformat(value)
        except ValueError:
            return _UNREAD
        if moment.tzinfo is UTC:
            return moment
    return _UNREAD


# -- many objects at once ------------------------------------------------------------------

_paused = 0
_was_enabled = True
_pause_lock = threading.Lock()


@contextmanager
def collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while the facts of a whole mirror are built
    and evaluated (a report, a flag computation). Those are tens of thousands of acyclic rows
    and facts that live until the step ends and are then freed by reference counting; the
    collector would scan them again and again as they are made (a quarter of a 10,000-card
    report's time) and find nothing. Nested and concurrent steps share one pause: the
    collector runs again, as it was, once the last one ends."""
    global _paused, _was_enabled
    with _pause_lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _pause_lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()


# -- telling it once ----------------------------------------------------------------------

_TOLD_LIMIT = 10_000
_told: set[Degraded] = set()
_told_lock = threading.Lock()


def log_degraded(degraded: Iterable[Degraded]) -> None:
    """Name each degraded row in the logs (WARNING, one line), once per process."""
    for entry in degraded:
        with _told_lock:
            if entry in _told:
                continue
            if len(_told) >= _TOLD_LIMIT:
                _told.clear()
            _told.add(entry)
        log.warning(
            "stored row unreadable: its card is degraded",
            card=entry.card_id,
            board=entry.board_id,
            row=entry.row,
            row_id=entry.row_id,
            reason=entry.reason,
        )
