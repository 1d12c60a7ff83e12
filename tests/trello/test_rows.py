"""Trello JSON → rows, on the real anonymised export and on hand-built cards."""

from __future__ import annotations

import json
from pathlib import Path

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
