"""Trello JSON → rows: the real anonymised export, hand-built cards, and one fixture per
resource (board, list, label, member, custom field, card, checklist and check item,
custom-field item, attachment, action) in ``tests/fixtures/trello/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from state import models as m
from state.store import BoardBatch
from syncd.trello.rows import action_rows, object_id_time, refetched_batch, snapshot_batch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE = FIXTURES / "board-export-anonymised.nextcloud-deck.json"


def test_real_export_parses_into_rows() -> None:
    export = json.loads(FIXTURE.read_text(encoding="utf-8"))
    batch = snapshot_batch(
        export, board_ref="fakeshortlink", role="product", observed_at="2026-01-01T00:00:00.000Z"
    )
    assert batch.board is not None and batch.board["id"] == "fakeboardidhash"
    assert [row["name"] for row in batch.lists] == ["TODO"]
    assert len(batch.cards) == 1
    card = batch.cards[0]
    assert card["id"] == "hashcard7" and card["name"] == "Name Card 7"
    assert card["list_id"] == "hashlisttodo" and card["id_short"] == 7
    assert card["created_at"] is None  # not a 24-hex id: no embedded time
    assert len(batch.labels) == 1 and len(batch.members) == 1
    actions = action_rows(export["actions"], "fakeboardidhash", "poll")
    assert {row["type"] for row in actions} >= {"createCard", "createList", "createBoard"}
    assert all(row["board_id"] for row in actions)


def test_card_children_custom_fields_and_figma_links() -> None:
    card = {
        "id": "5f0000000000000000000001",
        "idBoard": "b" * 24,
        "idList": "l1",
        "name": "[Agent] Planning",
        "desc": "Maquette : https://www.figma.com/design/JhZCwwrmaw2NYrITCj8QAK/RDV?node-id=5-95.",
        "idLabels": ["lab1"],
        "labels": [{"id": "lab1", "name": "Agent", "color": "blue"}],
        "idMembers": ["m1"],
        "checklists": [
            {
                "id": "c1",
                "name": "Actions prioritaires",
                "checkItems": [
                    {"id": "i1", "name": "A", "state": "complete", "pos": 1},
                    {"id": "i2", "name": "B", "state": "incomplete", "pos": 2},
                ],
            }
        ],
        "customFieldItems": [
            {"idCustomField": "f1", "value": {"text": "Camille Martin"}},
            {"idCustomField": "f2", "idValue": "o2"},
            {"idCustomField": "f3", "value": {"checked": "true"}},
        ],
        "attachments": [
            {
                "id": "a1",
                "name": "proto",
                "url": "https://www.figma.com/proto/JhZCwwrmaw2NYrITCj8QAK/x?node-id=148%3A129",
            }
        ],
    }
    batch = refetched_batch(
        {card["id"]: card, "gone" + "0" * 20: None},
        board_ref="BiT8tx09",
        role="product",
        board_id="b" * 24,
        observed_at="2026-01-01T00:00:00.000Z",
        options={"f2": {"o1": "Nouveau", "o2": "En cours"}},
    )
    assert batch.gone_card_ids == ["gone" + "0" * 20]
    assert object_id_time(card["id"]) == "2020-07-04T04:05:20.000Z"  # 0x5f000000 s
    assert batch.card_labels == [{"card_id": card["id"], "label_id": "lab1"}]
    assert [i["state"] for i in batch.check_items] == ["complete", "incomplete"]
    values = {row["custom_field_id"]: row["value"] for row in batch.custom_field_items}
    assert values == {"f1": "Camille Martin", "f2": "En cours", "f3": "true"}
    links = {(row["node_id"], row["source"]) for row in batch.figma_links}
    assert links == {("5:95", "desc"), ("148:129", "attachment")}


# -- one fixture per resource (tests/fixtures/trello/) --------------------------------------

TRELLO = FIXTURES / "trello"
BOARD_ID = "6560a1f0c3d2b1a0f0e0d0b0"
CARD_ID = "6560a1f0c3d2b1a0f0e0d0c1"


def _fixture(name: str) -> Any:
    return json.loads((TRELLO / name).read_text(encoding="utf-8"))


def _board() -> BoardBatch:
    return snapshot_batch(
        _fixture("board.json"), board_ref="oSmy09cz", role="consortium", observed_at=OBSERVED
    )


def _card() -> BoardBatch:
    options = {row["id"]: row["options"] for row in _board().custom_fields}
    return refetched_batch(
        {CARD_ID: _fixture("card.json")},
        board_ref="oSmy09cz",
        role="consortium",
        board_id=BOARD_ID,
        observed_at=OBSERVED,
        options=options,
    )


OBSERVED = "2026-11-30T08:00:00.000Z"


def test_board_resource() -> None:
    assert _board().board == {
        "id": BOARD_ID,
        "short_link": "oSmy09cz",
        "name": "lapins-consortium-départements",
        "desc": "Suivi du déploiement par département",
        "url": "https://trello.com/b/oSmy09cz/lapins-consortium-departements",
        "closed": False,
        "role": "consortium",
        "date_last_activity": "2026-11-28T16:20:11.402Z",
    }
    assert _board().board_activity == "2026-11-28T16:20:11.402Z"


def test_list_resource() -> None:
    assert _board().lists == [
        {
            "id": "6560a1f0c3d2b1a0f0e0d0f1",
            "board_id": BOARD_ID,
            "name": "Départements",
            "closed": False,
            "pos": 16384.0,
        },
        {
            "id": "6560a1f0c3d2b1a0f0e0d0f2",
            "board_id": BOARD_ID,
            "name": "Archives 2024",
            "closed": True,
            "pos": 149503.0625,
        },
    ]


def test_label_and_member_resources() -> None:
    batch = _board()
    assert batch.labels == [
        {
            "id": "6560a1f0c3d2b1a0f0e0d0a1",
            "board_id": BOARD_ID,
            "name": "Prioritaire",
            "color": "red",
        },
        {"id": "6560a1f0c3d2b1a0f0e0d0a2", "board_id": BOARD_ID, "name": "", "color": None},
    ]
    assert batch.members == [
        {
            "id": "6560a1f0c3d2b1a0f0e0d091",
            "full_name": "Camille Martin",
            "username": "camillemartin",
            "initials": "CM",
        },
        {
            "id": "6560a1f0c3d2b1a0f0e0d092",
            "full_name": "Léa Dubois",
            "username": "leadubois",
            "initials": "LD",
        },
    ]


def test_custom_field_resource_every_type() -> None:
    fields = {row["name"]: row for row in _board().custom_fields}
    assert {name: row["type"] for name, row in fields.items()} == {
        "Référent territorial": "text",
        "Statut": "list",
        "Convention signée": "checkbox",
        "Agents formés": "number",
        "Mise en service": "date",
    }
    assert fields["Statut"]["options"] == {
        "6560a1f0c3d2b1a0f0e0d061": "Nouveau",
        "6560a1f0c3d2b1a0f0e0d062": "En cours",
    }
    assert all(row["board_id"] == BOARD_ID for row in fields.values())


def test_card_resource_every_column() -> None:
    (card,) = _card().cards
    assert card == {
        "id": CARD_ID,
        "board_id": BOARD_ID,
        "list_id": "6560a1f0c3d2b1a0f0e0d0f1",
        "name": "Drôme (26) – tableau de bord",
        "desc": _fixture("card.json")["desc"],
        "closed": False,
        "due": "2027-01-15T12:00:00.000Z",
        "due_complete": False,
        "url": "https://trello.com/c/mw7EodHa/26-drome-26-tableau-de-bord",
        "short_link": "mw7EodHa",
        "id_short": 26,
        "pos": 229375.5,
        "date_last_activity": "2026-11-28T16:20:11.402Z",
        "created_at": "2023-11-24T13:15:28.000Z",  # 0x6560a1f0 seconds
    }
    bookkeeping = {"first_seen_at", "updated_at", "deleted_at"}
    assert set(card) == set(m.Card.__table__.columns.keys()) - bookkeeping  # type: ignore[attr-defined]


def test_card_labels_and_members_once_each() -> None:
    batch = _card()
    assert [row["label_id"] for row in batch.card_labels] == [
        "6560a1f0c3d2b1a0f0e0d0a1",
        "6560a1f0c3d2b1a0f0e0d0a2",
    ]
    assert [row["member_id"] for row in batch.card_members] == [
        "6560a1f0c3d2b1a0f0e0d091",
        "6560a1f0c3d2b1a0f0e0d092",
    ]
    assert [row["full_name"] for row in batch.members] == ["Camille Martin", "Léa Dubois"]


def test_checklist_and_check_item_resources() -> None:
    batch = _card()
    assert [(row["name"], row["pos"], row["card_id"]) for row in batch.checklists] == [
        ("Actions prioritaires", 16384.0, CARD_ID),
        ("Suivi", 32768.0, CARD_ID),
    ]
    assert [(row["name"], row["state"], row["pos"]) for row in batch.check_items] == [
        ("Activer la prise de RDV en ligne", "complete", 16384.0),
        ("Former les secrétariats des MDS", "incomplete", 32768.25),
        ("Bilan trimestriel", "incomplete", 16384.0),
    ]


def test_custom_field_item_resource_every_type() -> None:
    values = {row["custom_field_id"][-2:]: row["value"] for row in _card().custom_field_items}
    assert values == {
        "71": "Camille Martin",
        "72": "En cours",  # the dropdown's option text, not its id
        "73": "true",
        "74": "1233",
        "75": "2018-03-12T12:00:00.000Z",
    }


def test_attachment_resource_and_figma_links() -> None:
    batch = _card()
    assert [(row["name"], row["date"]) for row in batch.attachments] == [
        ("Parcours usager", "2026-11-20T10:00:00.000Z"),
        ("Compte rendu COPIL.pdf", "2026-11-21T10:00:00.000Z"),
    ]
    assert [(row["node_id"], row["source"]) for row in batch.figma_links] == [
        ("5:95", "desc"),
        ("148:129", "attachment"),
    ]


def test_board_checklists_join_their_cards() -> None:
    batch = _board()
    (card,) = batch.cards
    assert card["closed"] is True and card["url"] == "https://trello.com/c/sYY1WR7M/55-meuse-55"
    assert [row["card_id"] for row in batch.checklists] == [card["id"]]
    assert [row["name"] for row in batch.check_items] == ["Convention"]


def test_action_resource() -> None:
    rows = action_rows(_fixture("actions.json"), BOARD_ID, "poll")
    assert [(row["type"], row["card_id"], row["board_id"]) for row in rows] == [
        ("updateCard", CARD_ID, BOARD_ID),
        ("updateChecklist", None, BOARD_ID),
        ("createList", None, BOARD_ID),  # no board in the data: the board being read
    ]
    assert rows[0]["member_creator_id"] == "6560a1f0c3d2b1a0f0e0d091"
    assert rows[1]["data"]["old"] == {"name": "Suivi"}


def test_snapshot_and_refetch_convert_a_card_alike() -> None:
    """The same card read nested in a board snapshot or by id gives the same rows."""
    card = _fixture("card.json")
    board = _fixture("board.json")
    nested = {k: v for k, v in card.items() if k not in ("checklists", "members")}
    board["cards"] = [nested]
    board["checklists"] = card["checklists"]
    snapshot = snapshot_batch(board, board_ref="oSmy09cz", role="consortium", observed_at=OBSERVED)
    refetched = _card()
    for name in ("cards", "card_labels", "card_members", "checklists", "check_items"):
        assert getattr(snapshot, name) == getattr(refetched, name), name
    for name in ("custom_field_items", "attachments", "figma_links"):
        assert getattr(snapshot, name) == getattr(refetched, name), name


def test_malformed_values_read_as_empty() -> None:
    card = {
        "id": "x",
        "name": None,
        "desc": 3,
        "closed": "true",
        "due": "",
        "idShort": "abc",
        "pos": "top",
        "idLabels": None,
        "labels": [None, {"name": "no id"}],
        "customFieldItems": [{"value": {"text": "no field"}}, {"idCustomField": "f", "value": "?"}],
        "attachments": [None, {"name": "no id"}],
    }
    batch = refetched_batch(
        {"x": card},
        board_ref="b",
        role="product",
        board_id="B",
        observed_at=OBSERVED,
        options={},
    )
    (row,) = batch.cards
    assert (row["name"], row["desc"], row["closed"], row["due"]) == ("", "", False, None)
    assert (row["id_short"], row["pos"], row["board_id"], row["url"]) == (0, 0.0, "B", "")
    assert batch.card_labels == batch.custom_field_items == batch.attachments == []
