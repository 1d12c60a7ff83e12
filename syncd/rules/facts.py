"""Stored mirror rows → the governance rules' input (`CardFacts`, `ListFacts`).

The one bridge between `state` (rows) and the pure rules of `syncd.rules.governance`. A card's
activity leaves syncd's own comments out (`syncd.rules.activity`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from state.store import MirrorRows
from state.timestamps import parse_iso
from syncd.rules.activity import (
    OwnComment,
    activity_without_own_comments,
    own_comments_from_rows,
)
from syncd.rules.governance import CardFacts, CheckItemFacts, ChecklistFacts, ListFacts


@dataclass(frozen=True)
class MirrorFacts:
    cards: list[CardFacts]
    lists: list[ListFacts]


def facts_from_rows(rows: MirrorRows) -> MirrorFacts:
    """Build the facts of every card (deleted ones included, marked) and list."""
    roles = {board["id"]: board["role"] for board in sorted(rows.boards, key=lambda b: b["id"])}
    labels = {label["id"]: label["name"] for label in rows.labels}
    members = {member["id"]: member["full_name"] or member["username"] for member in rows.members}
    fields = {field["id"]: field["name"] for field in rows.custom_fields}
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
    items: dict[str, list[dict]] = defaultdict(list)
    for item in rows.check_items:
        items[item["checklist_id"]].append(item)
    checklists: dict[str, list[ChecklistFacts]] = defaultdict(list)
    for checklist in sorted(rows.checklists, key=lambda row: (row["pos"], row["id"])):
        checklists[checklist["card_id"]].append(
            ChecklistFacts(
                id=checklist["id"],
                name=checklist["name"],
                items=tuple(
                    CheckItemFacts(item["id"], item["name"], item["state"] == "complete")
                    for item in sorted(
                        items[checklist["id"]], key=lambda row: (row["pos"], row["id"])
                    )
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
            values[row["card_id"]][fields[row["custom_field_id"]]] = row["value"]
    cards = [
        CardFacts(
            id=card["id"],
            board_id=card["board_id"],
            board_role=roles.get(card["board_id"], ""),
            name=card["name"],
            desc=card["desc"],
            url=card["url"],
            list_id=card["list_id"],
            labels=tuple(card_labels[card["id"]]),
            members=tuple(card_members[card["id"]]),
            checklists=tuple(checklists[card["id"]]),
            custom_fields=values[card["id"]],
            closed=bool(card["closed"]),
            deleted=card["deleted_at"] is not None,
            date_last_activity=activity_without_own_comments(
                parse_iso(card["date_last_activity"]),
                own_by_card.get(card["id"], ()),
                actions_by_card.get(card["id"], ()),
            ),
        )
        for card in sorted(rows.cards, key=lambda row: (row["board_id"], row["pos"], row["id"]))
    ]
    lists = [
        ListFacts(row["id"], row["board_id"], row["name"], bool(row["closed"]), row["pos"])
        for row in sorted(rows.lists, key=lambda row: row["id"])
    ]
    return MirrorFacts(cards, lists)
