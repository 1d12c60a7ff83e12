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
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import structlog

from state.store import RULES_COLUMNS, RulesMirror, Store
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
    """The facts of a mirror. ``cards`` come in the order the store gives them (no order: every
    reader maps them by id or sorts what it shows); ``lists`` by id."""

    cards: list[CardFacts]
    lists: list[ListFacts]
    degraded: tuple[Degraded, ...] = ()


_PENDING: Any = object()  # a child row's board: its card's, known once the cards are read


@dataclass
class _Reader:
    """Reads columns of stored rows, noting every unreadable value."""

    degraded: list[Degraded] = field(default_factory=list)
    pending: set[Any] = field(default_factory=set)  # cards of noted child rows
    boards_of: dict[Any, Any] = field(default_factory=dict)  # their boards, as read

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

    def of_row(
        self, row: str, values: tuple[Any, ...], columns: tuple[str, ...]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A per-card table's row as a dict, and where it is: its card and that card's board
        (a card row's own; a child row's once the cards are read, see `notes`)."""
        data = dict(zip(columns, values, strict=True))
        if row == "card":
            return data, {"card_id": data["id"], "board_id": data["board_id"]}
        self.pending.add(data["card_id"])
        return data, {"card_id": data["card_id"], "board_id": _PENDING}

    def notes(self) -> tuple[Degraded, ...]:
        """Every note, in the order noted, each child row's with its card's board."""
        return tuple(
            replace(entry, board_id=self.boards_of.get(entry.card_id))
            if entry.board_id is _PENDING
            else entry
            for entry in self.degraded
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

    def row_text(
        self, row: str, values: tuple[Any, ...], columns: tuple[str, ...], column: str
    ) -> str:
        data, where = self.of_row(row, values, columns)
        return self.text(row, data, column, **where)

    def row_number(
        self, row: str, values: tuple[Any, ...], columns: tuple[str, ...], column: str
    ) -> float:
        data, where = self.of_row(row, values, columns)
        return self.number(row, data, column, **where)


def _id(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)[:40]


def facts_from_rows(rows: RulesMirror) -> MirrorFacts:
    """Build the facts of every card (deleted ones included, marked) and list.

    One pass per table; each per-card table is read once, row by row, as `RulesMirror` streams
    it (tuples in `RULES_COLUMNS` order, unpacked below in that order): only the facts are
    kept. A value of the expected kind is taken as it is (the common case, kept cheap: a
    report reads every card); anything else goes through `_Reader`, which notes it. The values
    and the order of the notes are those of reading every value through `_Reader`.
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

    # Every order below is total (ties broken by id): the same rows give the same facts whatever
    # order the database returns them in, so a report rebuilt from history equals the original.
    # A card's labels and members in (name, id) order: each known one gets its rank in that
    # order once, a card keeps the ranks (small ints) and sorts its own few.
    label_names, label_rank = _ranked(labels)
    card_labels = _ranks_by_card(rows.card_labels, label_rank)
    member_names, member_rank = _ranked(members)
    card_members = _ranks_by_card(rows.card_members, member_rank)
    items: dict[str, list[tuple[float, CheckItemFacts]]] = defaultdict(list)
    for row in rows.check_items:
        item_id, checklist_id, card_id, name, state, pos = row
        if state not in ("complete", "incomplete"):
            data, where = read.of_row("check_item", row, _CHECK_ITEM)
            read.note("check_item", data, "state", "neither complete nor incomplete", **where)
        if pos.__class__ is not float or not _isfinite(pos):
            pos = read.row_number("check_item", row, _CHECK_ITEM, "pos")
        if name.__class__ is not str or "\x00" in name:
            name = read.row_text("check_item", row, _CHECK_ITEM, "name")
        items[checklist_id].append((pos, CheckItemFacts(item_id, name, state == "complete")))
    checklists: dict[str, list[tuple[float, ChecklistFacts]]] = defaultdict(list)
    for row in rows.checklists:
        checklist_id, card_id, name, pos = row
        if pos.__class__ is not float or not _isfinite(pos):
            pos = read.row_number("checklist", row, _CHECKLIST, "pos")
        if name.__class__ is not str or "\x00" in name:
            name = read.row_text("checklist", row, _CHECKLIST, "name")
        ordered = items.pop(checklist_id, None)
        if ordered and len(ordered) > 1:
            ordered.sort(key=lambda pair: (pair[0], pair[1].id))
        checklists[card_id].append(
            (
                pos,
                ChecklistFacts(
                    id=checklist_id,
                    name=name,
                    items=tuple(item for _, item in ordered) if ordered else (),
                ),
            )
        )
    del items
    own_by_card: dict[str, list[OwnComment]] = defaultdict(list)
    for comment in own_comments_from_rows(rows.own_comments):
        own_by_card[comment.card_id].append(comment)
    actions_by_card: dict[str, list[dict]] = defaultdict(list)
    for action in rows.own_comment_card_actions:
        actions_by_card[action["card_id"]].append(action)
    # A card's value per field name; of two fields of the same name, the one of the greater id.
    shared_names = {name for name, count in Counter(fields.values()).items() if count > 1}
    winners: dict[tuple[str, str], str] = {}  # (card, shared name) -> the field id kept
    values: dict[str, dict[str, str]] = {}
    for row in rows.custom_field_items:
        card_id, field_id, value = row
        name = fields.get(field_id)
        if name is None:
            continue
        if value.__class__ is not str or "\x00" in value:
            value = read.row_text("custom_field_item", row, _CUSTOM_FIELD_ITEM, "value")
        if name in shared_names:
            kept = winners.get((card_id, name))
            if kept is not None and kept > field_id:
                continue
            winners[(card_id, name)] = field_id
        card_values = values.get(card_id)
        if card_values is None:
            values[card_id] = {name: value}
        else:
            card_values[name] = value
    del winners
    cards: list[CardFacts] = []
    pending = read.pending
    same: dict[Any, Any] = {}  # one object per board and list id (not one per card)
    for row in rows.cards:
        card_id, board_id, list_id, name, desc, url, closed, pos, activity, deleted_at = row
        board_id = same.setdefault(board_id, board_id)
        list_id = same.setdefault(list_id, list_id)
        if pending and card_id in pending:
            read.boards_of[card_id] = board_id
        if pos.__class__ is not float or not _isfinite(pos):  # read for its note only:
            read.row_number("card", row, _CARD, "pos")  # nothing orders the facts by it
        if name.__class__ is not str or "\x00" in name:
            name = read.row_text("card", row, _CARD, "name")
        if desc is None:  # a product card's (`RulesMirror`), or none
            desc = ""
        elif desc.__class__ is not str or "\x00" in desc:
            desc = read.row_text("card", row, _CARD, "desc")
        if url.__class__ is not str or "\x00" in url:
            url = read.row_text("card", row, _CARD, "url")
        if list_id.__class__ is not str or "\x00" in list_id:
            list_id = read.row_text("card", row, _CARD, "list_id")
        moment = _moment(activity)
        if moment is _UNREAD:
            data, where = read.of_row("card", row, _CARD)
            moment = read.moment("card", data, "date_last_activity", **where)
        own = own_by_card.get(card_id) if own_by_card else None
        if own:
            moment = activity_without_own_comments(moment, own, actions_by_card.get(card_id, ()))
        # labels, then members, in rank order (inline, not a helper: a call per card cost ~7 %
        # of a 10,000-card report, measured)
        labelled = card_labels.pop(card_id, None)
        if labelled:
            if len(labelled) > 1:
                labelled.sort()
            labelled = tuple([label_names[rank] for rank in labelled])
        # a card's members, checklists and values are popped: those of the consortium board's
        # cards only (`RulesMirror`), so once they are taken the other cards skip the lookup
        membered = card_members.pop(card_id, None) if card_members else None
        if membered:
            if len(membered) > 1:
                membered.sort()
            membered = tuple([member_names[rank] for rank in membered])
        listed = checklists.pop(card_id, None) if checklists else None
        if listed and len(listed) > 1:
            listed.sort(key=lambda pair: (pair[0], pair[1].id))
        facts = CardFacts(  # positional, in the field order: a third cheaper than by keyword
            card_id,
            board_id,
            roles.get(board_id, ""),
            name,
            desc,
            url,
            list_id,
            labelled or (),  # labels
            membered or (),  # members
            tuple(checklist for _, checklist in listed) if listed else (),  # checklists
            (values.pop(card_id, None) if values else None) or _NO_VALUES,  # custom_fields
            bool(closed),  # closed
            deleted_at is not None,  # deleted
            moment,  # date_last_activity
        )
        cards.append(facts)
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
    return MirrorFacts(cards, lists, read.notes())


# The per-card tables' columns, as `RulesMirror` gives them (the tolerant reader's view of a row).
_CARD = RULES_COLUMNS["cards"][1]
_CHECKLIST = RULES_COLUMNS["checklists"][1]
_CHECK_ITEM = RULES_COLUMNS["check_items"][1]
_CUSTOM_FIELD_ITEM = RULES_COLUMNS["custom_field_items"][1]
_NO_VALUES: Mapping[str, str] = MappingProxyType({})  # a card without custom-field values


def _ranked(names: Mapping[Any, str]) -> tuple[list[str], dict[Any, int]]:
    """The names in (name, id) order, and each id's rank in it."""
    order = sorted(names, key=lambda key: (names[key], key))
    return [names[key] for key in order], {key: rank for rank, key in enumerate(order)}


def _ranks_by_card(
    links: Iterable[tuple[Any, Any]], rank: Mapping[Any, int]
) -> dict[Any, list[int]]:
    """(card id, label or member id) rows → each card's ranks of the ids known (others left out)."""
    by_card: dict[Any, list[int]] = defaultdict(list)
    for card_id, linked_id in links:
        position = rank.get(linked_id)
        if position is not None:
            by_card[card_id].append(position)
    return by_card


def stored_facts(store: Store) -> MirrorFacts:
    """The facts of the store's mirror now, built as its rows stream (`Store.rules_mirror`)."""
    with store.rules_mirror() as rows:
        return facts_from_rows(rows)


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
