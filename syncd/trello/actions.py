"""Trello actions: which card an action is about, and what an action that carries its whole
change does to the stored rows of that card. Pure functions.

`plan` sorts every action:

- ``board``: it changes the board itself (a list, a label, a custom field, a member): the
  board is synced (`BOARD_LEVEL_ACTIONS`);
- ``direct``: it carries the whole change (`DIRECT_ACTIONS`): `apply_action` applies it to the
  card's stored rows, through the one conversion of `syncd.trello.rows`;
- ``refetch``: anything else about a card (created, copied, commented on, a checklist or an
  attachment added, an ``updateCard`` of a field the card table does not mark `in_update`, an
  action type this module does not know): the card is fetched again;
- ``store``: nothing mirrored is named: only the raw action is kept.

What a direct action changes, each through `syncd.trello.rows`:

- ``updateCard``: every field named in ``old``, through `UPDATE_FIELDS` (the card field
  table); after ``desc``, the card's Figma links (`figma_link_rows`);
- ``addLabelToCard`` / ``removeLabelFromCard``: the card's labels (`label_links`);
- ``addMemberToCard`` / ``removeMemberFromCard``: the card's members (`member_links`);
- ``updateCheckItemStateOnCard``: a check item's state (`check_item_row`);
- ``updateCheckItem`` with ``old`` naming only name and state: the same (`check_item_row`);
- ``deleteCheckItem`` / ``removeChecklistFromCard``: the item, or the checklist and its items,
  are gone;
- ``updateChecklist`` with ``old`` naming only its name (the action names no card: the card is
  the stored checklist's): the checklist's name (`checklist_row`);
- ``updateCustomFieldItem``: a custom-field value, a dropdown as its option text
  (`custom_field_item_row`);
- ``commentCard``: nothing mirrored but the activity date;
- ``deleteCard``: the card is gone (the caller marks it).

Every direct action also moves the card's ``date_last_activity`` to the action's date (Trello
moves it for every card action). An action is applied directly only onto a live stored card
whose ``date_last_activity`` is strictly older than the action; otherwise the stored rows may
already hold it or a later change, and `apply_action` refuses (the caller refetches). It also
refuses when the action lacks a value it needs. Labels and members themselves (names, colours)
are board rows written by snapshots: a direct action only links them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from state.store import BoardBatch, Row
from syncd.trello.rows import (
    UPDATE_FIELDS,
    check_item_row,
    checklist_row,
    custom_field_item_row,
    figma_link_rows,
    label_links,
    member_links,
)

# Action types that change the board itself (lists, labels, fields, members): a snapshot is due.
BOARD_LEVEL_ACTIONS = frozenset(
    {
        "createList",
        "updateList",
        "moveListToBoard",
        "moveListFromBoard",
        "createLabel",
        "updateLabel",
        "deleteLabel",
        "createCustomField",
        "updateCustomField",
        "deleteCustomField",
        "addMemberToBoard",
        "removeMemberFromBoard",
        "makeNormalMemberOfBoard",
        "makeAdminOfBoard",
        "updateBoard",
        "moveCardFromBoard",
        "moveCardToBoard",
        "copyBoard",
        "convertToCardFromCheckItem",
    }
)

Options = Mapping[str, Mapping[str, str]]  # custom-field id -> option id -> option text
_Apply = Callable[[BoardBatch, Row, Mapping[str, Any], Mapping[str, Any], Options | None], bool]

_CHECK_ITEM_UPDATES = frozenset({"name", "state"})
_CHECKLIST_UPDATES = frozenset({"name"})


# -- which card ---------------------------------------------------------------------------


def action_card_id(action: Mapping[str, Any]) -> str | None:
    """The id of the card the action names in ``data.card``, if any."""
    card = (action.get("data") or {}).get("card")
    if isinstance(card, Mapping) and isinstance(card.get("id"), str) and card["id"]:
        return card["id"]
    return None


def action_checklist_id(action: Mapping[str, Any]) -> str | None:
    """The checklist of an action that names a checklist but no card (``updateChecklist``)."""
    if action_card_id(action) is not None:
        return None
    checklist = (action.get("data") or {}).get("checklist")
    if isinstance(checklist, Mapping) and isinstance(checklist.get("id"), str):
        return checklist["id"] or None
    return None


def changed_cards(
    actions: Iterable[Mapping[str, Any]], checklist_cards: Mapping[str, str] | None = None
) -> tuple[set[str], set[str]]:
    """(deleted card ids, other touched card ids) named by these actions.

    `checklist_cards` (checklist id -> card id, from the store) finds the card of an action
    that names only a checklist.
    """
    deleted: set[str] = set()
    touched: set[str] = set()
    for action in actions:
        card_id = action_card_id(action)
        if card_id is None:
            checklist_id = action_checklist_id(action)
            card_id = (checklist_cards or {}).get(checklist_id or "")
        if card_id is None:
            continue
        if action.get("type") == "deleteCard":
            deleted.add(card_id)
        else:
            touched.add(card_id)
    return deleted, touched - deleted


# -- direct application -------------------------------------------------------------------


def _old(data: Mapping[str, Any]) -> Mapping[str, Any]:
    old = data.get("old")
    return old if isinstance(old, Mapping) else {}


def _update_card(
    batch: BoardBatch, card: Row, data: Mapping[str, Any], _action: Any, _options: Any
) -> bool:
    old = _old(data)
    new = data.get("card") or {}
    if not old or not set(old) <= set(UPDATE_FIELDS):
        return False
    values: dict[str, Any] = {}
    for key in old:
        if key in new:
            values[key] = new[key]
        elif key == "idList" and (data.get("listAfter") or {}).get("id"):
            values[key] = data["listAfter"]["id"]
        else:
            return False  # the action lacks the new value
    for key, value in values.items():
        field = UPDATE_FIELDS[key]
        card[field.column] = field.convert(value)
    if "desc" in old:
        card_id = card["id"]
        urls = [row["url"] for row in batch.attachments if row["card_id"] == card_id]
        batch.figma_links = [row for row in batch.figma_links if row["card_id"] != card_id]
        batch.figma_links.extend(figma_link_rows(card_id, card["desc"], urls))
    return True


def _relink(rows: list[Row], card_id: str, key: str, value: str, present: bool) -> list[Row]:
    """A card's link rows (labels or members) with `value` present or absent."""
    mine = [row[key] for row in rows if row["card_id"] == card_id and row[key] != value]
    others = [row for row in rows if row["card_id"] != card_id]
    links = label_links if key == "label_id" else member_links
    return [*others, *links(card_id, [*mine, value] if present else mine)]


def _label(added: bool) -> _Apply:
    def apply(batch: BoardBatch, card: Row, data: Mapping[str, Any], *_: Any) -> bool:
        label_id = (data.get("label") or {}).get("id") or data.get("idLabel")
        if not isinstance(label_id, str) or not label_id:
            return False
        batch.card_labels = _relink(batch.card_labels, card["id"], "label_id", label_id, added)
        return True

    return apply


def _member(added: bool) -> _Apply:
    def apply(
        batch: BoardBatch, card: Row, data: Mapping[str, Any], action: Mapping[str, Any], _: Any
    ) -> bool:
        member_id = (
            data.get("idMember")
            or (data.get("member") or {}).get("id")
            or (action.get("member") or {}).get("id")
        )
        if not isinstance(member_id, str) or not member_id:
            return False
        batch.card_members = _relink(batch.card_members, card["id"], "member_id", member_id, added)
        return True

    return apply


def _stored_item(batch: BoardBatch, card: Row, data: Mapping[str, Any]) -> Row | None:
    item_id = (data.get("checkItem") or {}).get("id")
    return next(
        (r for r in batch.check_items if r["id"] == item_id and r["card_id"] == card["id"]),
        None,
    )


def _check_item(fields: frozenset[str], *, named_in_old: bool) -> _Apply:
    """A check item's `fields` set from ``data.checkItem`` (only those ``old`` names, if
    `named_in_old`)."""

    def apply(batch: BoardBatch, card: Row, data: Mapping[str, Any], *_: Any) -> bool:
        item = data.get("checkItem") or {}
        changed = set(_old(data)) if named_in_old else set(fields)
        if not changed or not changed <= fields or not changed <= set(item):
            return False
        row = _stored_item(batch, card, data)
        checklist_id = (data.get("checklist") or {}).get("id")
        if row is None or (checklist_id and checklist_id != row["checklist_id"]):
            return False
        new = check_item_row(
            {**row, **{key: item[key] for key in changed}}, row["checklist_id"], card["id"]
        )
        row.update(new)
        return True

    return apply


def _delete_check_item(batch: BoardBatch, card: Row, data: Mapping[str, Any], *_: Any) -> bool:
    item_id = (data.get("checkItem") or {}).get("id")
    if not item_id:
        return False
    batch.check_items = [
        r for r in batch.check_items if not (r["id"] == item_id and r["card_id"] == card["id"])
    ]
    return True


def _remove_checklist(batch: BoardBatch, card: Row, data: Mapping[str, Any], *_: Any) -> bool:
    checklist_id = (data.get("checklist") or {}).get("id")
    if not checklist_id:
        return False
    batch.check_items = [r for r in batch.check_items if r["checklist_id"] != checklist_id]
    batch.checklists = [r for r in batch.checklists if r["id"] != checklist_id]
    return True


def _update_checklist(batch: BoardBatch, card: Row, data: Mapping[str, Any], *_: Any) -> bool:
    checklist = data.get("checklist") or {}
    changed = set(_old(data))
    if not changed or not changed <= _CHECKLIST_UPDATES or not changed <= set(checklist):
        return False
    row = next(
        (
            r
            for r in batch.checklists
            if r["id"] == checklist.get("id") and r["card_id"] == card["id"]
        ),
        None,
    )
    if row is None:
        return False
    stored = {"id": row["id"], "idBoard": row["board_id"], "name": row["name"], "pos": row["pos"]}
    new = {**stored, **{key: checklist[key] for key in changed}}
    row.update(checklist_row(new, card["id"], row["board_id"]))
    return True


def _custom_field(
    batch: BoardBatch, card: Row, data: Mapping[str, Any], _action: Any, options: Options | None
) -> bool:
    item = dict(data.get("customFieldItem") or {})
    field_id = item.get("idCustomField") or (data.get("customField") or {}).get("id")
    if not field_id or options is None or field_id not in options:
        return False  # a field defined after the last snapshot: its options are unknown
    item["idCustomField"] = field_id
    batch.custom_field_items = [
        row
        for row in batch.custom_field_items
        if not (row["card_id"] == card["id"] and row["custom_field_id"] == field_id)
    ]
    row = custom_field_item_row(card["id"], item, options)
    if row is not None:
        batch.custom_field_items.append(row)
    return True


def _activity_only(*_: Any) -> bool:
    return True


DIRECT_ACTIONS: dict[str, _Apply] = {
    "updateCard": _update_card,
    "addLabelToCard": _label(True),
    "removeLabelFromCard": _label(False),
    "addMemberToCard": _member(True),
    "removeMemberFromCard": _member(False),
    "updateCheckItemStateOnCard": _check_item(frozenset({"state"}), named_in_old=False),
    "updateCheckItem": _check_item(_CHECK_ITEM_UPDATES, named_in_old=True),
    "deleteCheckItem": _delete_check_item,
    "removeChecklistFromCard": _remove_checklist,
    "updateChecklist": _update_checklist,
    "updateCustomFieldItem": _custom_field,
    "commentCard": _activity_only,
    "deleteCard": _activity_only,  # the caller marks the card gone
}
# Action types whose `old` must name only fields the direct application knows.
_OLD_FIELDS: dict[str, frozenset[str]] = {
    "updateCard": frozenset(UPDATE_FIELDS),
    "updateCheckItem": _CHECK_ITEM_UPDATES,
    "updateChecklist": _CHECKLIST_UPDATES,
}


def plan(action: Mapping[str, Any]) -> str:
    """``board``, ``direct``, ``refetch`` or ``store`` (see the module docstring)."""
    type_ = action.get("type") or ""
    if type_ in BOARD_LEVEL_ACTIONS:
        return "board"
    if action_card_id(action) is None and action_checklist_id(action) is None:
        return "store"
    if type_ in DIRECT_ACTIONS:
        known = _OLD_FIELDS.get(type_)
        old = _old(action.get("data") or {})
        if known is None or (old and set(old) <= known):
            return "direct"
    return "refetch"


def apply_action(
    batch: BoardBatch,
    action: Mapping[str, Any],
    *,
    card_id: str,
    board_id: str,
    options: Options | None = None,
) -> bool:
    """Change the stored rows of card `card_id` in `batch` as the direct `action` did.

    Returns False (nothing reliable changed; the caller refetches) when the action is not
    direct, lacks what it needs, the card is not live in the batch or belongs to another
    board, or the stored card is not older than the action.
    """
    apply = DIRECT_ACTIONS.get(action.get("type") or "")
    card = next((row for row in batch.cards if row["id"] == card_id), None)
    if apply is None or plan(action) != "direct" or card is None:
        return False
    if card.get("board_id") != board_id:
        return False
    date = action.get("date")
    if not isinstance(date, str) or not date or (card.get("date_last_activity") or "") >= date:
        return False
    if not apply(batch, card, action.get("data") or {}, action, options):
        return False
    card["date_last_activity"] = date
    return True
