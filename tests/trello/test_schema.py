"""The typed Trello deliveries (`syncd.trello.schema`): what Trello (the sandbox) sends is read
whole, every value syncd keeps is checked, and a refusal names the field in one line."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sandbox import CONSORTIUM_SHORT_LINK, Sandbox
from syncd.payloads import BadDelivery
from syncd.trello.schema import (
    KNOWN_ACTION_TYPES,
    TrelloAction,
    parse_action,
    parse_delivery,
    stored_action_data,
)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
BOARD, CARD, LIST = "b" * 24, "c" * 24, "d" * 24


def _action(**data: Any) -> dict[str, Any]:
    return {
        "id": "65a7d90e0000000000000001",
        "type": "updateCard",
        "date": "2026-11-30T07:59:00.000Z",
        "idMemberCreator": "a" * 24,
        "data": {"board": {"id": BOARD, "shortLink": "oSmy09cz"}, "card": {"id": CARD}, **data},
    }


@pytest.fixture(scope="module")
def sandbox_actions() -> Iterator[list[dict[str, Any]]]:
    """One action of each kind the sandbox (Trello's imitation) sends about a card."""
    with Sandbox(deliver_webhooks=False) as sandbox:
        w = sandbox.world
        card = w.find_card("Drôme", board=CONSORTIUM_SHORT_LINK)["id"]
        board_id = w.board(CONSORTIUM_SHORT_LINK)["id"]
        checklist = w.find_checklist(card, "Actions prioritaires")
        yield [
            w.move_card(card, w.find_list(CONSORTIUM_SHORT_LINK, "Fait")),
            w.rename_card(card, "Drôme <b>&</b> (26) 😀"),
            w.set_desc(card, "Référent : Nina\nhttps://www.figma.com/design/abc/x?node-id=1-2"),
            w.set_due(card, "2027-01-15T12:00:00.000Z"),
            w.set_due(card, None),
            w.add_label(card, w.find_label(CONSORTIUM_SHORT_LINK, "Prioritaire")),
            w.remove_label(card, w.find_label(CONSORTIUM_SHORT_LINK, "Prioritaire")),
            w.add_member(card, w.find_member("Léa Dubois")),
            w.remove_member(card, w.find_member("Léa Dubois")),
            w.set_check_item(card, w.find_check_item(card, "Activer la prise de RDV"), True),
            w.add_check_item(checklist, "<script>alert(1)</script> & co"),
            w.set_custom_field(
                card, w.find_custom_field(CONSORTIUM_SHORT_LINK, "Statut"), "En pause"
            ),
            w.set_custom_field(
                card, w.find_custom_field(CONSORTIUM_SHORT_LINK, "Référent territorial"), "Nina"
            ),
            w.comment(card, "Point d'étape"),
            w.add_checklist(card, "Autre", []),
            w.archive_card(card),
            w.create_card(CONSORTIUM_SHORT_LINK, w.find_list(board_id, "Fait"), "Nouvelle", "d"),
            w.delete_card(card),
        ]


def test_what_trello_sends_is_read_and_kept(sandbox_actions: list[dict[str, Any]]) -> None:
    for raw in sandbox_actions:
        action = parse_action(raw, now=datetime.now(UTC))
        assert action.understood, raw["type"]
        kept = action.as_trello()
        assert kept["id"] == raw["id"] and kept["type"] == raw["type"]
        for key in ("card", "old", "list", "listAfter", "label", "checkItem", "customFieldItem"):
            if key in raw["data"]:
                assert key in kept["data"], (raw["type"], key)
        if "card" in raw["data"]:
            for key, value in raw["data"]["card"].items():
                assert kept["data"]["card"].get(key, value) == value, (raw["type"], key)
        assert parse_action(kept) == action  # reads back as itself


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"id": "x"}, "id: "),
        ({"id": "65a7d90e000000000000000" + "\ud800"}, "id: "),
        ({"type": ["updateCard"]}, "type: "),
        ({"type": "update Card"}, "type: "),
        ({"date": "not a date"}, "date: Value error, not an ISO-8601 date"),
        ({"date": "2999-01-01T00:00:00.000Z"}, "date: Value error, a date more than a day ahead"),
        ({"date": None}, "date: "),
        ({"idMemberCreator": "nobody"}, "idMemberCreator: "),
        ({"data": []}, "data: "),
        ({"data": {"card": {"id": CARD, "due": "banana"}}}, "data.card.due: "),
        ({"data": {"card": {"id": CARD, "name": "a\x00b"}}}, "data.card.name: "),
        ({"data": {"card": {"id": CARD, "name": ["x"]}}}, "data.card.name: "),
        ({"data": {"card": {"id": CARD, "name": None}}}, "data.card.name: "),
        ({"data": {"card": {"id": CARD, "desc": "x" * 20_000}}}, "data.card.desc: "),
        ({"data": {"card": {"id": CARD, "pos": math.inf}}}, "data.card.pos: "),
        ({"data": {"card": {"id": CARD, "pos": 1e300}}}, "data.card.pos: "),
        ({"data": {"card": {"id": CARD, "pos": "bottom"}}}, "data.card.pos: "),
        ({"data": {"card": {"id": CARD, "closed": "true"}}}, "data.card.closed: "),
        ({"data": {"card": {"id": CARD, "idList": "L2"}}}, "data.card.idList: "),
        ({"data": {"card": {"id": CARD, "idShort": -1}}}, "data.card.idShort: "),
        ({"data": {"card": {"id": "c1"}}}, "data.card.id: "),
        ({"data": {"checkItem": {"id": "f" * 24, "state": "done"}}}, "data.checkItem.state: "),
        ({"data": {"label": {"id": "e" * 24, "color": "Red!"}}}, "data.label.color: "),
        (
            {"data": {"customFieldItem": {"value": {"number": "1e999"}}}},
            "data.customFieldItem.value.number: ",
        ),
        (
            {"data": {"customFieldItem": {"value": {"checked": True}}}},
            "data.customFieldItem.value.checked: ",
        ),
        ({"data": {"old": {f"k{i}": 1 for i in range(65)}}}, "data.old: "),
        ({"data": {"old": {"not a key": 1}}}, "data.old: "),
        ({"data": {"old": {"due": "banana"}}}, "data.old.due: "),
        ({"data": {"board": {"id": BOARD, "shortLink": "a/b"}}}, "data.board.shortLink: "),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(change: dict[str, Any], where: str) -> None:
    raw = {**_action(), **change}
    with pytest.raises(BadDelivery) as refused:
        parse_action(raw, now=NOW)
    reason = str(refused.value)
    assert reason.startswith(where), reason
    assert "\n" not in reason and len(reason) <= 160


def test_keys_not_modelled_are_dropped_but_old_keys_are_kept() -> None:
    raw = _action(
        card={"id": CARD, "name": "x", "cover": {"color": "red"}, "badges": {"votes": 1}},
        old={"name": "y", "start": None, "cover": {"deep": [1, 2, 3]}},
        display={"entities": {"x": 1}},
    )
    action = parse_action(raw, now=NOW)
    kept = action.as_trello()
    assert kept["data"]["card"] == {"id": CARD, "name": "x"}
    assert kept["data"]["old"] == {"name": "y", "start": None, "cover": None}
    assert "display" not in kept["data"]
    kept["data"]["card"]["name"] = "changed"  # a copy: the checked action is immutable
    assert action.as_trello()["data"]["card"]["name"] == "x"


def test_an_action_type_not_modelled_is_not_understood() -> None:
    action = parse_action({**_action(), "type": "someFutureType"}, now=NOW)
    assert not action.understood and action.card_id == CARD
    assert {"updateCard", "deleteCard", "commentCard", "updateCustomFieldItem"} <= (
        KNOWN_ACTION_TYPES
    )


def test_dates_are_kept_in_the_store_shape() -> None:
    raw = _action(card={"id": CARD, "due": "2027-01-15T13:00:00+01:00"}, old={"due": None})
    raw["date"] = "2026-11-30T08:59:00+01:00"
    kept = parse_action(raw, now=NOW).as_trello()
    assert kept["date"] == "2026-11-30T07:59:00.000Z"
    assert kept["data"]["card"]["due"] == "2027-01-15T12:00:00.000Z"
    assert kept["data"]["old"]["due"] is None


def test_the_delivery_and_its_board() -> None:
    body = json.dumps({"action": _action(), "model": {"id": BOARD}, "webhook": {}}).encode()
    delivery = parse_delivery(body, now=NOW)
    assert delivery.board() == (BOARD, "oSmy09cz")
    for bad in (b"[]", b'{"model": {}}', b'{"action": {"id": "' + b"a" * 24 + b'"}}'):
        with pytest.raises(BadDelivery):
            parse_delivery(bad, now=NOW)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([CARD, LIST, "2026-11-30T08:00:00Z", "complete", "green"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["id", "name", "due", "pos", "idList", "state", "old", "card", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from(
        ["card", "old", "list", "listAfter", "label", "checkItem", "customFieldItem", "member"]
    ),
    value=json_values,
)
def test_anything_is_either_refused_or_kept_checked(key: str, value: Any) -> None:
    try:
        action = parse_action(_action(**{key: value}), now=NOW)
    except BadDelivery as refused:
        assert "\n" not in str(refused)
        return
    assert isinstance(action, TrelloAction)
    kept = action.as_trello()
    assert parse_action(kept, now=NOW) == action
    _only_checked(kept)


def _only_checked(value: Any) -> None:
    if isinstance(value, str):
        assert "\x00" not in value and len(value) <= 16_384
        value.encode("utf-8")
    elif isinstance(value, float):
        assert math.isfinite(value) and abs(value) <= 2**53
    elif isinstance(value, int) and not isinstance(value, bool):
        assert 0 <= value < 2**31
    elif isinstance(value, dict):
        for item in value.values():
            _only_checked(item)
    elif isinstance(value, list):
        for item in value:
            _only_checked(item)


def test_the_store_keeps_the_same_checked_data_of_a_poll_or_a_webhook(
    sandbox_actions: list[dict[str, Any]],
) -> None:
    for raw in sandbox_actions:
        checked = parse_action(raw).as_trello()
        assert stored_action_data(raw["data"]) == checked["data"]  # a poll's row, a webhook's
        assert stored_action_data(checked["data"]) == checked["data"]
    odd = {"board": {"id": BOARD}, "card": {"id": CARD, "name": "x" * 20_000}, "list": "?"}
    assert stored_action_data(odd) == {"board": {"id": BOARD}, "card": {"id": CARD}}
    assert stored_action_data(None) == {} and stored_action_data({"card": {"id": "c1"}}) == {}
