"""Stored rows read tolerantly (`syncd.rules.facts`): a value of the wrong kind degrades only its
card, named with the reason, and reads as neutral; the other cards are untouched."""

from __future__ import annotations

import math
from typing import Any

import structlog

from state.store import MirrorRows, RulesMirror
from syncd.rules.facts import Degraded, facts_from_rows, log_degraded

BOARD = "b" * 24


def _card(card_id: str, **values: Any) -> dict[str, Any]:
    return {
        "id": card_id,
        "board_id": BOARD,
        "list_id": "l1",
        "name": "Drôme",
        "desc": "",
        "url": "https://trello.com/c/x",
        "closed": False,
        "deleted_at": None,
        "pos": 1.0,
        "date_last_activity": "2026-11-01T00:00:00.000Z",
        **values,
    }


def _rows(cards: list[dict[str, Any]], **more: Any) -> RulesMirror:
    base: dict[str, Any] = {
        "boards": [{"id": BOARD, "role": "consortium", "name": "b"}],
        "lists": [{"id": "l1", "board_id": BOARD, "name": "Départements", "closed": 0, "pos": 1}],
        "labels": [],
        "members": [],
        "cards": cards,
        "card_labels": [],
        "card_members": [],
        "checklists": [],
        "check_items": [],
        "custom_fields": [],
        "custom_field_items": [],
        "attachments": [],
        "figma_links": [],
    }
    return RulesMirror.from_rows(MirrorRows(**{**base, **more}))


def test_clean_rows_degrade_nothing() -> None:
    facts = facts_from_rows(_rows([_card("c1"), _card("c2", name="Meuse", pos=2)]))
    assert facts.degraded == ()
    assert [card.name for card in facts.cards] == ["Drôme", "Meuse"]


def test_a_bad_value_degrades_its_card_only() -> None:
    poisoned = _card(
        "bad",
        name=123,  # SQLite keeps whatever it is given
        desc=None,
        pos="top",
        date_last_activity="not a date",
    )
    rows = _rows(
        [_card("good"), poisoned, _card("odd", pos=math.inf, name="a\x00b")],
        checklists=[{"id": "k1", "card_id": "good", "name": "Actions", "pos": "x"}],
        check_items=[
            {
                "id": "i1",
                "checklist_id": "k1",
                "card_id": "good",
                "name": "Ouvrir",
                "state": "maybe",
                "pos": None,
            }
        ],
        lists=[{"id": "l1", "board_id": BOARD, "name": 42, "closed": 0, "pos": "first"}],
    )
    facts = facts_from_rows(rows)
    by_id = {card.id: card for card in facts.cards}
    assert by_id["bad"].name == "" and by_id["bad"].date_last_activity is None
    assert by_id["odd"].name == "ab"
    assert by_id["good"].checklists[0].items[0].complete is False
    reasons = {(d.card_id, d.row, d.reason) for d in facts.degraded}
    assert reasons == {
        ("bad", "card", "name: not text"),
        ("bad", "card", "pos: not a finite number"),
        ("bad", "card", "date_last_activity: not a date"),
        ("odd", "card", "pos: not a finite number"),
        ("odd", "card", "name: holds a NUL character"),
        ("good", "checklist", "pos: not a finite number"),
        ("good", "check_item", "state: neither complete nor incomplete"),
        (None, "list", "name: not text"),
        (None, "list", "pos: not a finite number"),
    }
    assert facts.lists[0].name == "" and facts.lists[0].pos == 0.0


def test_a_degraded_child_row_names_its_cards_board() -> None:
    """A child row is read before the cards (they stream in that order): its card's board is
    filled in once the cards are read."""
    rows = _rows(
        [_card("c1")],
        check_items=[
            {"id": "i1", "checklist_id": "k1", "card_id": "c1", "name": 7, "state": "complete"},
        ],
    )
    degraded = {d.row_id: d for d in facts_from_rows(rows).degraded}
    assert degraded["i1"].board_id == BOARD and degraded["i1"].card_id == "c1"


def test_only_the_consortium_cards_child_rows_are_read() -> None:
    """No rule reads a product card's description, members, checklists or custom fields: those
    (and the rows of a card the store does not hold) are not read, so they degrade nothing; its
    labels are read."""
    product = "p" * 24
    rows = _rows(
        [_card("c1"), _card("p1", board_id=product, desc="Référent : Léa")],
        boards=[
            {"id": BOARD, "role": "consortium", "name": "b"},
            {"id": product, "role": "product", "name": "p"},
        ],
        labels=[{"id": "lp", "board_id": product, "name": "Prioritaire"}],
        members=[{"id": "m1", "full_name": "Léa", "username": "lea"}],
        custom_fields=[{"id": "f1", "board_id": product, "name": "Référent territorial"}],
        card_labels=[{"card_id": "p1", "label_id": "lp"}],
        card_members=[{"card_id": c, "member_id": "m1"} for c in ("c1", "p1")],
        checklists=[
            {"id": f"k{c}", "card_id": c, "name": "Actions", "pos": 1.0} for c in ("c1", "p1")
        ],
        check_items=[
            {"id": f"i{c}", "checklist_id": f"k{c}", "card_id": c, "name": 7, "state": "x"}
            for c in ("c1", "p1", "gone")
        ],
        custom_field_items=[
            {"card_id": c, "custom_field_id": "f1", "value": "Paul"} for c in ("c1", "p1")
        ],
    )
    facts = facts_from_rows(rows)
    by_id = {card.id: card for card in facts.cards}
    assert by_id["c1"].members == ("Léa",) and by_id["c1"].checklists[0].items
    assert by_id["c1"].custom_fields == {"Référent territorial": "Paul"}
    assert by_id["p1"].labels == ("Prioritaire",) and by_id["p1"].desc == ""
    assert (by_id["p1"].members, by_id["p1"].checklists, dict(by_id["p1"].custom_fields)) == (
        (),
        (),
        {},
    )
    assert {(d.card_id, d.row_id) for d in facts.degraded} == {("c1", "ic1")}


def test_labels_members_and_fields_in_a_total_order_whatever_the_row_order() -> None:
    """Labels and members by (name, id); of two custom fields of one name, the greater id's
    value; the same facts for the rows in any order."""
    labels = [
        {"id": "lb", "board_id": BOARD, "name": "Prioritaire"},
        {"id": "la", "board_id": BOARD, "name": "Prioritaire"},
        {"id": "lc", "board_id": BOARD, "name": "Calvados"},
    ]
    members = [
        {"id": "m2", "full_name": "Zoé", "username": "z"},
        {"id": "m1", "full_name": "", "username": "anne"},
    ]
    fields = [
        {"id": "f2", "board_id": BOARD, "name": "Référent territorial"},
        {"id": "f1", "board_id": BOARD, "name": "Référent territorial"},
    ]
    card_labels = [{"card_id": "c1", "label_id": i} for i in ("lb", "lc", "la", "unknown")]
    card_members = [{"card_id": "c1", "member_id": i} for i in ("m2", "m1")]
    items = [
        {"card_id": "c1", "custom_field_id": "f2", "value": "Léa"},
        {"card_id": "c1", "custom_field_id": "f1", "value": "Paul"},
        {"card_id": "c2", "custom_field_id": "f1", "value": "Marc"},
    ]
    seen = []
    for flip in (False, True):
        order = reversed if flip else list
        facts = facts_from_rows(
            _rows(
                [_card("c1"), _card("c2")],
                labels=list(order(labels)),
                members=list(order(members)),
                custom_fields=list(order(fields)),
                card_labels=list(order(card_labels)),
                card_members=list(order(card_members)),
                custom_field_items=list(order(items)),
            )
        )
        c1, c2 = facts.cards
        assert c1.labels == ("Calvados", "Prioritaire", "Prioritaire")
        assert c1.members == ("Zoé", "anne")  # code point order, as before
        assert dict(c1.custom_fields) == {"Référent territorial": "Léa"}
        assert dict(c2.custom_fields) == {"Référent territorial": "Marc"}
        seen.append(facts)
    assert seen[0] == seen[1]


def test_each_degraded_row_is_logged_once() -> None:
    entry = Degraded("c1", BOARD, "card", "c1", "name: not text")
    with structlog.testing.capture_logs() as events:
        log_degraded([entry, entry])
        log_degraded([entry])
    assert len(events) == 1
    assert events[0]["log_level"] == "warning" and events[0]["card"] == "c1"
    assert events[0]["reason"] == "name: not text"
