"""What an action does to a card's stored rows, without HTTP or a database: every branch of the
direct application, its refusals, and the plan of each action type."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from state.store import BoardBatch
from state.timestamps import utc_iso
from syncd.trello.actions import (
    BOARD_LEVEL_ACTIONS,
    DIRECT_ACTIONS,
    action_checklist_id,
    apply_action,
    changed_cards,
    plan,
)
from syncd.trello.rows import CARD_FIELDS, UPDATE_FIELDS, add_card

BOARD = "5f00000000000000000000b0"
CARD = "5f00000000000000000000c1"
OTHER = "5f00000000000000000000c2"
STORED_AT = "2026-11-30T08:00:00.000Z"
FIGMA = "https://www.figma.com/design/JhZCwwrmaw2NYrITCj8QAK/RDV"
OPTIONS = {"fText": {}, "fList": {"o1": "Nouveau", "o2": "En cours"}}


def stored(**changes: Any) -> BoardBatch:
    """The stored rows of two cards, as `Store.card_batch` returns them."""
    batch = BoardBatch(board_ref="oSmy09cz", role="consortium", observed_at=STORED_AT)
    card = {
        "id": CARD,
        "idBoard": BOARD,
        "idList": "l1",
        "name": "Drôme (26)",
        "desc": f"Maquette : {FIGMA}?node-id=5-95",
        "closed": False,
        "due": None,
        "dueComplete": False,
        "url": "https://trello.com/c/AbCd1234/1-drome-26",
        "shortLink": "AbCd1234",
        "idShort": 1,
        "pos": 16384,
        "dateLastActivity": STORED_AT,
        "idLabels": ["lab1"],
        "idMembers": ["m1"],
        "checklists": [
            {
                "id": "cl1",
                "name": "Actions prioritaires",
                "pos": 16384,
                "checkItems": [
                    {"id": "i1", "name": "Activer la prise de RDV", "state": "incomplete"},
                    {"id": "i2", "name": "Former", "state": "complete", "pos": 2},
                ],
            },
            {"id": "cl2", "name": "Suivi", "checkItems": [{"id": "i3", "name": "Bilan"}]},
        ],
        "customFieldItems": [
            {"idCustomField": "fText", "value": {"text": "Nina Petit"}},
            {"idCustomField": "fList", "idValue": "o1"},
        ],
        "attachments": [{"id": "a1", "name": "proto", "url": f"{FIGMA}?node-id=148-129"}],
        **changes,
    }
    other = {**copy.deepcopy(card), "id": OTHER, "shortLink": "OthEr123", "checklists": []}
    for each in (card, other):
        add_card(batch, each, each["checklists"], board_id=BOARD, options=OPTIONS)
    return batch


_SECONDS = itertools.count(1)


def action(type_: str, date: str | None = None, **data: Any) -> dict[str, Any]:
    """An action of `type_`; by default each one a second after the previous one."""
    if date is None:
        date = utc_iso(datetime(2026, 11, 30, 9, tzinfo=UTC) + timedelta(seconds=next(_SECONDS)))
    data.setdefault("card", {"id": CARD, "name": "Drôme (26)", "idShort": 1})
    data["board"] = {"id": BOARD, "shortLink": "oSmy09cz"}
    return {"id": "a" * 24, "type": type_, "date": date, "data": data}


def card_of(batch: BoardBatch, card_id: str = CARD) -> dict[str, Any]:
    return next(row for row in batch.cards if row["id"] == card_id)


def rows_of(batch: BoardBatch, name: str, card_id: str = CARD) -> list[dict[str, Any]]:
    return [row for row in getattr(batch, name) if row["card_id"] == card_id]


def applied(batch: BoardBatch, act: dict[str, Any]) -> bool:
    return apply_action(batch, act, card_id=CARD, board_id=BOARD, options=OPTIONS)


# -- updateCard: one entry of the card field table at a time ---------------------------------

NEW_VALUES = {
    "idList": "l2",
    "desc": "Plus de maquette",
    "closed": True,
    "due": "2027-01-15T12:00:00.000Z",
    "dueComplete": True,
    "pos": 99999.5,
}


def test_every_update_field_has_a_new_value_here() -> None:
    assert set(NEW_VALUES) == set(UPDATE_FIELDS)


@pytest.mark.parametrize("key", sorted(UPDATE_FIELDS))
def test_update_card_sets_exactly_its_column(key: str) -> None:
    batch = stored()
    before = dict(card_of(batch))
    field = UPDATE_FIELDS[key]
    old = {key: before[field.column]}
    act = action("updateCard", card={"id": CARD, key: NEW_VALUES[key]}, old=old)
    assert applied(batch, act)
    after = card_of(batch)
    assert after[field.column] == field.convert(NEW_VALUES[key])
    assert after[field.column] != before[field.column]
    changed = {column for column in after if after[column] != before[column]}
    assert changed == {field.column, "date_last_activity"}
    assert after["date_last_activity"] == act["date"]
    assert card_of(batch, OTHER)["date_last_activity"] == STORED_AT  # the other card untouched


def test_update_card_of_several_fields_and_a_move_from_list_after() -> None:
    batch = stored()
    move = action(
        "updateCard",
        card={"id": CARD, "pos": 5.5},
        old={"idList": "l1", "pos": 16384},
        listBefore={"id": "l1"},
        listAfter={"id": "l3"},
    )
    assert applied(batch, move)
    assert (card_of(batch)["list_id"], card_of(batch)["pos"]) == ("l3", 5.5)


def test_new_description_relinks_figma_from_description_and_attachments() -> None:
    batch = stored()
    desc = f"Nouvelle maquette {FIGMA}?node-id=7-1"
    assert applied(batch, action("updateCard", card={"id": CARD, "desc": desc}, old={"desc": ""}))
    links = {(row["node_id"], row["source"]) for row in rows_of(batch, "figma_links")}
    assert links == {("7:1", "desc"), ("148:129", "attachment")}
    assert {row["node_id"] for row in rows_of(batch, "figma_links", OTHER)} == {"5:95", "148:129"}


@pytest.mark.parametrize("key", sorted(f.trello for f in CARD_FIELDS if not f.in_update))
def test_update_of_a_field_not_in_update_is_refetched(key: str) -> None:
    act = action("updateCard", card={"id": CARD, key: "x"}, old={key: "y"})
    assert plan(act) == "refetch"
    assert not applied(stored(), act)


@pytest.mark.parametrize(
    "old",
    [{}, {"start": None}, {"idList": "l1", "cover": {}}, {"idAttachmentCover": None}],
)
def test_update_naming_an_unknown_or_no_field_is_refetched(old: dict[str, Any]) -> None:
    act = action("updateCard", card={"id": CARD, "idList": "l2"}, old=old)
    assert plan(act) == "refetch"
    assert not applied(stored(), act)


def test_update_without_the_new_value_is_refused_and_changes_nothing() -> None:
    batch = stored()
    before = copy.deepcopy(batch)
    act = action(
        "updateCard", card={"id": CARD, "closed": True}, old={"closed": False, "due": None}
    )
    assert not applied(batch, act)
    assert batch == before


# -- the other direct actions -----------------------------------------------------------------


def test_labels_added_once_and_removed() -> None:
    batch = stored()
    for _ in range(2):
        assert applied(batch, action("addLabelToCard", label={"id": "lab2", "name": "Transverse"}))
    assert [row["label_id"] for row in rows_of(batch, "card_labels")] == ["lab1", "lab2"]
    assert applied(batch, action("removeLabelFromCard", label={"id": "lab1"}))
    assert applied(batch, action("removeLabelFromCard", label={"id": "gone"}))
    assert [row["label_id"] for row in rows_of(batch, "card_labels")] == ["lab2"]
    assert [row["label_id"] for row in rows_of(batch, "card_labels", OTHER)] == ["lab1"]
    assert batch.labels == [row for row in stored().labels]  # label rows are the snapshot's


@pytest.mark.parametrize(
    "where",
    [
        {"idMember": "m2"},
        {"member": {"id": "m2", "name": "Léa Dubois"}},
    ],
)
def test_members_added_and_removed(where: dict[str, Any]) -> None:
    batch = stored()
    assert applied(batch, action("addMemberToCard", **where))
    assert [row["member_id"] for row in rows_of(batch, "card_members")] == ["m1", "m2"]
    assert applied(batch, action("removeMemberFromCard", **where))
    assert [row["member_id"] for row in rows_of(batch, "card_members")] == ["m1"]


def test_member_from_the_top_level_member_of_the_action() -> None:
    batch = stored()
    act = action("addMemberToCard")
    act["member"] = {"id": "m3", "fullName": "Karim Benali"}
    assert applied(batch, act)
    assert [row["member_id"] for row in rows_of(batch, "card_members")] == ["m1", "m3"]


def test_check_item_state() -> None:
    batch = stored()
    item = {"id": "i1", "name": "Activer la prise de RDV", "state": "complete"}
    assert applied(
        batch, action("updateCheckItemStateOnCard", checklist={"id": "cl1"}, checkItem=item)
    )
    states = {row["id"]: row["state"] for row in rows_of(batch, "check_items")}
    assert states == {"i1": "complete", "i2": "complete", "i3": "incomplete"}


def test_check_item_renamed_keeps_its_state_and_position() -> None:
    batch = stored()
    item = {"id": "i2", "name": "Former les agents", "state": "complete"}
    act = action("updateCheckItem", checklist={"id": "cl1"}, checkItem=item, old={"name": "x"})
    assert plan(act) == "direct"
    assert applied(batch, act)
    row = next(r for r in rows_of(batch, "check_items") if r["id"] == "i2")
    assert (row["name"], row["state"], row["pos"], row["checklist_id"]) == (
        "Former les agents",
        "complete",
        2.0,
        "cl1",
    )


@pytest.mark.parametrize(
    "change",
    [
        {"old": {"pos": 1}},  # moved within the checklist: the new position is not carried
        {"old": {"name": "x"}, "checklist": {"id": "cl2"}},  # moved to another checklist
        {"old": {"name": "x"}, "checkItem": {"id": "unknown", "name": "?"}},
        {"old": {"name": "x"}, "checkItem": {"id": "i1"}},  # the new name is missing
    ],
)
def test_check_item_updates_it_cannot_apply_are_refused(change: dict[str, Any]) -> None:
    data = {"checklist": {"id": "cl1"}, "checkItem": {"id": "i1", "name": "A", "state": ""}}
    data.update(change)
    assert not applied(stored(), action("updateCheckItem", **data))


def test_check_item_and_checklist_deleted() -> None:
    batch = stored()
    assert applied(batch, action("deleteCheckItem", checkItem={"id": "i1"}))
    assert [row["id"] for row in rows_of(batch, "check_items")] == ["i2", "i3"]
    assert applied(batch, action("removeChecklistFromCard", checklist={"id": "cl1"}))
    assert [row["id"] for row in rows_of(batch, "checklists")] == ["cl2"]
    assert [row["id"] for row in rows_of(batch, "check_items")] == ["i3"]
    assert not applied(stored(), action("deleteCheckItem", checkItem={}))


def test_checklist_renamed_by_an_action_naming_no_card() -> None:
    batch = stored()
    act = action(
        "updateChecklist", checklist={"id": "cl2", "name": "Bilan 2026"}, old={"name": "x"}
    )
    del act["data"]["card"]
    assert plan(act) == "direct" and action_checklist_id(act) == "cl2"
    assert applied(batch, act)
    row = next(r for r in rows_of(batch, "checklists") if r["id"] == "cl2")
    assert row["name"] == "Bilan 2026" and row["card_id"] == CARD
    moved = copy.deepcopy(act)
    moved["data"]["old"] = {"pos": 3}
    assert plan(moved) == "refetch"


@pytest.mark.parametrize(
    "item, expected",
    [
        ({"idCustomField": "fText", "value": {"text": "Camille Martin"}}, "Camille Martin"),
        ({"idCustomField": "fList", "idValue": "o2"}, "En cours"),
        ({"idCustomField": "fText", "value": None}, None),  # cleared
        ({"idCustomField": "fList", "idValue": None, "value": None}, None),
    ],
)
def test_custom_field_value_as_the_snapshot_shows_it(
    item: dict[str, Any], expected: str | None
) -> None:
    batch = stored()
    field = {"id": item["idCustomField"], "name": "x", "type": "text"}
    assert applied(batch, action("updateCustomFieldItem", customField=field, customFieldItem=item))
    values = {r["custom_field_id"]: r["value"] for r in rows_of(batch, "custom_field_items")}
    assert values.get(item["idCustomField"]) == expected


def test_custom_field_defined_after_the_snapshot_is_refetched() -> None:
    item = {"idCustomField": "fNew", "value": {"text": "x"}}
    assert not applied(stored(), action("updateCustomFieldItem", customFieldItem=item))


def test_comment_and_delete_only_move_the_activity_date() -> None:
    for type_ in ("commentCard", "deleteCard"):
        batch = stored()
        before = copy.deepcopy(batch)
        act = action(type_, text="Point d'étape")
        assert applied(batch, act)
        card_of(before)["date_last_activity"] = act["date"]
        assert batch == before


# -- refusals common to every direct action ---------------------------------------------------

EXAMPLES: dict[str, dict[str, Any]] = {
    "updateCard": {"card": {"id": CARD, "closed": True}, "old": {"closed": False}},
    "addLabelToCard": {"label": {"id": "lab2"}},
    "removeLabelFromCard": {"label": {"id": "lab1"}},
    "addMemberToCard": {"idMember": "m2"},
    "removeMemberFromCard": {"idMember": "m1"},
    "updateCheckItemStateOnCard": {"checkItem": {"id": "i1", "state": "complete"}},
    "updateCheckItem": {"checkItem": {"id": "i1", "name": "B"}, "old": {"name": "A"}},
    "deleteCheckItem": {"checkItem": {"id": "i1"}},
    "removeChecklistFromCard": {"checklist": {"id": "cl1"}},
    "updateChecklist": {"checklist": {"id": "cl1", "name": "B"}, "old": {"name": "A"}},
    "updateCustomFieldItem": {"customFieldItem": {"idCustomField": "fText", "value": None}},
    "commentCard": {"text": "Point"},
    "deleteCard": {},
}


def test_every_direct_action_is_exercised() -> None:
    assert set(EXAMPLES) == set(DIRECT_ACTIONS)


@pytest.mark.parametrize("type_", sorted(EXAMPLES))
def test_direct_action_applies_only_onto_an_older_live_card_of_its_board(type_: str) -> None:
    assert plan(action(type_, **copy.deepcopy(EXAMPLES[type_]))) == "direct"
    assert applied(stored(), action(type_, **copy.deepcopy(EXAMPLES[type_])))
    for date in (STORED_AT, "2020-01-01T00:00:00.000Z", ""):  # the stored card may hold it
        assert not applied(stored(), action(type_, date, **copy.deepcopy(EXAMPLES[type_])))
    act = action(type_, **copy.deepcopy(EXAMPLES[type_]))
    assert not apply_action(stored(), act, card_id=CARD, board_id="another board", options={})
    empty = BoardBatch(board_ref="oSmy09cz", role="consortium", observed_at=STORED_AT)
    assert not apply_action(empty, act, card_id=CARD, board_id=BOARD, options=OPTIONS)


# -- plan ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "act, expected",
    [
        ({"type": "createCard", "data": {"card": {"id": "c"}}}, "refetch"),
        ({"type": "copyCard", "data": {"card": {"id": "c"}}}, "refetch"),
        ({"type": "addChecklistToCard", "data": {"card": {"id": "c"}}}, "refetch"),
        ({"type": "createCheckItem", "data": {"card": {"id": "c"}}}, "refetch"),
        ({"type": "addAttachmentToCard", "data": {"card": {"id": "c"}}}, "refetch"),
        ({"type": "updateComment", "data": {"card": {"id": "c"}}}, "refetch"),
        ({"type": "someFutureCardAction", "data": {"card": {"id": "c"}}}, "refetch"),
        ({"type": "createList", "data": {"list": {"id": "l"}}}, "board"),
        ({"type": "moveCardToBoard", "data": {"card": {"id": "c"}}}, "board"),
        ({"type": "updateLabel", "data": {"label": {"id": "l"}}}, "board"),
        ({"type": "updateChecklist", "data": {"checklist": {"id": "x"}}}, "refetch"),
        ({"type": "updateChecklist", "data": {"checklist": {}}}, "store"),
        ({"type": "someFutureBoardAction", "data": {}}, "store"),
        ({"type": "addLabelToCard", "data": {"card": "not an object"}}, "store"),
    ],
)
def test_plan(act: dict[str, Any], expected: str) -> None:
    assert plan(act) == expected


def test_board_level_actions_are_never_direct() -> None:
    assert not BOARD_LEVEL_ACTIONS & set(DIRECT_ACTIONS)


def test_changed_cards_finds_a_checklist_card_and_deletions() -> None:
    actions = [
        {"type": "updateCard", "data": {"card": {"id": "c1"}}},
        {"type": "deleteCard", "data": {"card": {"id": "c2"}}},
        {"type": "commentCard", "data": {"card": {"id": "c2"}}},
        {"type": "updateChecklist", "data": {"checklist": {"id": "cl9"}}},
        {"type": "updateChecklist", "data": {"checklist": {"id": "unknown"}}},
        {"type": "createList", "data": {"list": {"id": "l"}}},
    ]
    assert changed_cards(actions, {"cl9": "c3"}) == ({"c2"}, {"c1", "c3"})
    assert changed_cards(actions) == ({"c2"}, {"c1"})
