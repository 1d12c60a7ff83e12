"""Trello JSON → the store's row records (`state.store.BoardBatch`). Pure functions.

Accepts the nested board snapshot (``GET /1/boards/{id}`` with cards, checklists, custom fields
…), single cards (``GET /1/cards/{id}`` with checklists and custom-field items) and actions.
Tolerates what real exports contain: missing keys, ``null`` lists, ids that are not 24-hex.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from state.store import BoardBatch, Row
from state.timestamps import utc_iso
from syncd.figma.links import find_figma_links
from syncd.trello.schema import stored_action_data

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


def object_id_time(object_id: str) -> str | None:
    """The creation time embedded in a 24-hex Trello id, or None for other ids."""
    if len(object_id) != 24:
        return None
    try:
        seconds = int(object_id[:8], 16)
    except ValueError:
        return None
    return utc_iso(datetime.fromtimestamp(seconds, UTC))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _pos(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def custom_field_row(field: Mapping[str, Any], board_id: str) -> Row:
    options = {
        option["id"]: _text((option.get("value") or {}).get("text"))
        for option in field.get("options") or []
        if isinstance(option, Mapping) and "id" in option
    }
    return {
        "id": field["id"],
        "board_id": field.get("idModel") or board_id,
        "name": _text(field.get("name")),
        "type": _text(field.get("type")) or "text",
        "options": options,
    }


def custom_field_value(item: Mapping[str, Any], options: Mapping[str, Mapping[str, str]]) -> str:
    """The display value of a card's custom-field item (dropdowns resolved to their text)."""
    if item.get("idValue"):
        field_options = options.get(item.get("idCustomField", ""), {})
        return field_options.get(item["idValue"], item["idValue"])
    value = item.get("value") or {}
    for kind in ("text", "number", "date", "checked"):
        if kind in value and value[kind] is not None:
            return str(value[kind])
    return ""


class _Rows:
    """Accumulates the rows of cards into a batch."""

    def __init__(self, batch: BoardBatch, board_id: str, options: Mapping[str, Mapping[str, str]]):
        self.batch = batch
        self.board_id = board_id
        self.options = options

    def card(self, card: Mapping[str, Any], checklists: Iterable[Mapping[str, Any]]) -> None:
        card_id = card["id"]
        batch = self.batch
        batch.cards.append(
            {
                "id": card_id,
                "board_id": card.get("idBoard") or self.board_id,
                "list_id": _text(card.get("idList")),
                "name": _text(card.get("name")),
                "desc": _text(card.get("desc")),
                "closed": bool(card.get("closed")),
                "due": card.get("due") or None,
                "due_complete": bool(card.get("dueComplete")),
                "url": _text(card.get("url")) or _text(card.get("shortUrl")),
                "short_link": _text(card.get("shortLink")),
                "id_short": int(card.get("idShort") or 0),
                "pos": _pos(card.get("pos")),
                "date_last_activity": card.get("dateLastActivity") or None,
                "created_at": object_id_time(card_id),
            }
        )
        label_ids = list(dict.fromkeys(card.get("idLabels") or []))
        for label in card.get("labels") or []:
            if isinstance(label, Mapping) and label.get("id"):
                batch.labels.append(
                    {
                        "id": label["id"],
                        "board_id": label.get("idBoard") or self.board_id,
                        "name": _text(label.get("name")),
                        "color": label.get("color"),
                    }
                )
                if label["id"] not in label_ids:
                    label_ids.append(label["id"])
        batch.card_labels.extend({"card_id": card_id, "label_id": lid} for lid in label_ids)
        for member_id in dict.fromkeys(card.get("idMembers") or []):
            batch.card_members.append({"card_id": card_id, "member_id": member_id})
        for member in card.get("members") or []:
            if isinstance(member, Mapping) and member.get("id"):
                batch.members.append(member_row(member))
        for checklist in checklists:
            batch.checklists.append(
                {
                    "id": checklist["id"],
                    "card_id": card_id,
                    "board_id": checklist.get("idBoard") or self.board_id,
                    "name": _text(checklist.get("name")),
                    "pos": _pos(checklist.get("pos")),
                }
            )
            for item in checklist.get("checkItems") or []:
                batch.check_items.append(
                    {
                        "id": item["id"],
                        "checklist_id": checklist["id"],
                        "card_id": card_id,
                        "name": _text(item.get("name")),
                        "state": "complete" if item.get("state") == "complete" else "incomplete",
                        "pos": _pos(item.get("pos")),
                    }
                )
        seen_fields: set[str] = set()
        for item in card.get("customFieldItems") or []:
            field_id = item.get("idCustomField")
            if not field_id or field_id in seen_fields:
                continue
            seen_fields.add(field_id)
            batch.custom_field_items.append(
                {
                    "card_id": card_id,
                    "custom_field_id": field_id,
                    "value": custom_field_value(item, self.options),
                }
            )
        links = {
            (link.file_key, link.node_id): (link.url, "desc")
            for link in find_figma_links(_text(card.get("desc")))
        }
        for attachment in card.get("attachments") or []:
            if not isinstance(attachment, Mapping) or not attachment.get("id"):
                continue
            batch.attachments.append(
                {
                    "id": attachment["id"],
                    "card_id": card_id,
                    "name": _text(attachment.get("name")),
                    "url": _text(attachment.get("url")),
                    "date": attachment.get("date"),
                }
            )
            for link in find_figma_links(_text(attachment.get("url"))):
                links.setdefault((link.file_key, link.node_id), (link.url, "attachment"))
        batch.figma_links.extend(
            {"card_id": card_id, "file_key": key, "node_id": node, "url": url, "source": source}
            for (key, node), (url, source) in links.items()
        )


def member_row(member: Mapping[str, Any]) -> Row:
    return {
        "id": member["id"],
        "full_name": _text(member.get("fullName")),
        "username": _text(member.get("username")),
        "initials": _text(member.get("initials")),
    }


def board_row(board: Mapping[str, Any], role: str) -> Row:
    return {
        "id": board["id"],
        "short_link": _text(board.get("shortLink")),
        "name": _text(board.get("name")),
        "desc": _text(board.get("desc")),
        "url": _text(board.get("url")) or _text(board.get("shortUrl")),
        "closed": bool(board.get("closed")),
        "role": role,
        "date_last_activity": board.get("dateLastActivity") or None,
    }


def snapshot_batch(
    snapshot: Mapping[str, Any],
    *,
    board_ref: str,
    role: str,
    observed_at: str,
    cards: Iterable[Mapping[str, Any]] | None = None,
) -> BoardBatch:
    """A full-snapshot batch from a nested board fetch (`cards` given for the paged fallback)."""
    board_id = snapshot["id"]
    batch = BoardBatch(
        board_ref=board_ref,
        role=role,
        observed_at=observed_at,
        source="snapshot",
        full=True,
        board=board_row(snapshot, role),
        board_activity=snapshot.get("dateLastActivity"),
    )
    batch.lists = [
        {
            "id": item["id"],
            "board_id": item.get("idBoard") or board_id,
            "name": _text(item.get("name")),
            "closed": bool(item.get("closed")),
            "pos": _pos(item.get("pos")),
        }
        for item in snapshot.get("lists") or []
    ]
    batch.labels = [
        {
            "id": label["id"],
            "board_id": label.get("idBoard") or board_id,
            "name": _text(label.get("name")),
            "color": label.get("color"),
        }
        for label in snapshot.get("labels") or []
    ]
    batch.members = [member_row(member) for member in snapshot.get("members") or []]
    batch.custom_fields = [
        custom_field_row(field, board_id) for field in snapshot.get("customFields") or []
    ]
    options = {row["id"]: row["options"] for row in batch.custom_fields}
    checklists_by_card: dict[str, list[Mapping[str, Any]]] = {}
    for checklist in snapshot.get("checklists") or []:
        checklists_by_card.setdefault(checklist.get("idCard", ""), []).append(checklist)
    rows = _Rows(batch, board_id, options)
    for card in cards if cards is not None else snapshot.get("cards") or []:
        own = card.get("checklists")
        rows.card(card, own if own else checklists_by_card.get(card["id"], []))
    _dedupe(batch)
    return batch


def refetched_batch(
    fetched: Mapping[str, Mapping[str, Any] | None],
    *,
    board_ref: str,
    role: str,
    board_id: str,
    observed_at: str,
    options: Mapping[str, Mapping[str, str]],
    deleted: Iterable[str] = (),
    source: str = "incremental",
) -> BoardBatch:
    """An incremental batch from cards fetched by id (``GET /cards/{id}`` with checklists).

    A card Trello no longer has (None) or that moved to another board is gone from this one,
    like the `deleted` ids.
    """
    gone = set(deleted)
    batch = BoardBatch(board_ref=board_ref, role=role, observed_at=observed_at, source=source)
    rows = _Rows(batch, board_id, options)
    for card_id, card in fetched.items():
        if card is None or card.get("idBoard", board_id) != board_id:
            gone.add(card_id)
        else:
            rows.card(card, card.get("checklists") or [])
    batch.gone_card_ids = sorted(gone)
    _dedupe(batch)
    return batch


def action_rows(actions: Iterable[Mapping[str, Any]], board_id: str, source: str) -> list[Row]:
    rows = []
    for action in actions:
        data = action.get("data") or {}
        card = data.get("card") or {}
        rows.append(
            {
                "id": action["id"],
                "board_id": (data.get("board") or {}).get("id") or board_id,
                "type": _text(action.get("type")),
                "date": _text(action.get("date")),
                "card_id": card.get("id"),
                "member_creator_id": action.get("idMemberCreator"),
                "data": stored_action_data(data),  # the checked objects alone
                "source": source,
            }
        )
    return rows


def _dedupe(batch: BoardBatch) -> None:
    """Labels and members embedded in several cards appear once."""
    batch.labels = list({row["id"]: row for row in batch.labels}.values())
    batch.members = list({row["id"]: row for row in batch.members}.values())
