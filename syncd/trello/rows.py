"""Trello JSON → the store's row records (`state.store.BoardBatch`): the one conversion.

The full snapshot, the refetch of cards by id and the webhook path all turn Trello JSON into
rows through this module, so each rule is written once:

- `CARD_FIELDS`, the card field table: every column of the card row with the Trello field it
  is read from and its converter. `card_row` reads a card through it, and the webhook path
  (`syncd.trello.actions`) applies an ``updateCard`` through the very same entries, for the
  fields the table marks `CardField.in_update` and no other (`UPDATE_FIELDS`);
- the rows of a card's children, each built by one function both paths call: label and member
  links (`label_links`, `member_links`), checklists and check items (`checklist_row`,
  `check_item_row`, `check_item_state`), custom-field values (`custom_field_item_row`, which
  resolves a dropdown to its option text), attachments, and the card's Figma links from its
  description and attachments (`figma_link_rows`);
- the batches: `snapshot_batch` (the nested board fetch), `refetched_batch` (cards fetched by
  id), `action_rows` (raw actions).

Pure functions. Tolerates what real exports contain: missing keys, ``null`` lists, ids that
are not 24-hex.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from state.store import BoardBatch, Row
from state.timestamps import utc_iso
from syncd.figma.links import find_figma_links


def object_id_time(object_id: str) -> str | None:
    """The creation time embedded in a 24-hex Trello id, or None for other ids."""
    if len(object_id) != 24:
        return None
    try:
        seconds = int(object_id[:8], 16)
    except ValueError:
        return None
    return utc_iso(datetime.fromtimestamp(seconds, UTC))


# -- converters ---------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _flag(value: Any) -> bool:
    return value is True


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _pos(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


# -- the card field table -----------------------------------------------------------------


@dataclass(frozen=True)
class CardField:
    """One column of the card row, read from one field of Trello's card JSON.

    `in_update`: an ``updateCard`` action naming this field in ``data.old`` carries the new
    value in ``data.card`` and changes nothing else of the card row, so the webhook path may
    apply it without fetching the card. Fields without it are refetched when they change.
    """

    trello: str
    column: str
    convert: Callable[[Any], Any]
    in_update: bool = False


CARD_FIELDS: tuple[CardField, ...] = (
    # A card changes board through moveCardToBoard/moveCardFromBoard: a board-level action.
    CardField("idBoard", "board_id", _text),
    CardField("idList", "list_id", _text, in_update=True),
    # Not in_update: Trello's card `url` ends with a slug of the name, and the rename action
    # does not carry the new url.
    CardField("name", "name", _text),
    CardField("desc", "desc", _text, in_update=True),  # the Figma links follow (figma_link_rows)
    CardField("closed", "closed", _flag, in_update=True),
    CardField("due", "due", _text_or_none, in_update=True),
    CardField("dueComplete", "due_complete", _flag, in_update=True),
    CardField("url", "url", _text),
    CardField("shortLink", "short_link", _text),
    CardField("idShort", "id_short", _int),
    CardField("pos", "pos", _pos, in_update=True),
    # Moved by every card action: the webhook path sets it to the action's date.
    CardField("dateLastActivity", "date_last_activity", _text_or_none),
)

# Trello field -> entry, for the fields an updateCard action carries whole.
UPDATE_FIELDS: dict[str, CardField] = {
    field.trello: field for field in CARD_FIELDS if field.in_update
}


def card_row(card: Mapping[str, Any], board_id: str) -> Row:
    """The card's own row (its children are built by the functions below)."""
    row: Row = {"id": card["id"]}
    for field in CARD_FIELDS:
        row[field.column] = field.convert(card.get(field.trello))
    row["board_id"] = row["board_id"] or board_id
    row["url"] = row["url"] or _text(card.get("shortUrl"))
    row["created_at"] = object_id_time(card["id"])
    return row


# -- a card's children --------------------------------------------------------------------


def label_row(label: Mapping[str, Any], board_id: str) -> Row:
    return {
        "id": label["id"],
        "board_id": _text(label.get("idBoard")) or board_id,
        "name": _text(label.get("name")),
        "color": _text_or_none(label.get("color")),
    }


def label_links(card_id: str, label_ids: Iterable[str]) -> list[Row]:
    """The card↔label rows of a card with these labels (each once, in order)."""
    return [{"card_id": card_id, "label_id": lid} for lid in dict.fromkeys(label_ids) if lid]


def member_links(card_id: str, member_ids: Iterable[str]) -> list[Row]:
    """The card↔member rows of a card with these members (each once, in order)."""
    return [{"card_id": card_id, "member_id": mid} for mid in dict.fromkeys(member_ids) if mid]


def member_row(member: Mapping[str, Any]) -> Row:
    return {
        "id": member["id"],
        "full_name": _text(member.get("fullName")),
        "username": _text(member.get("username")),
        "initials": _text(member.get("initials")),
    }


def checklist_row(checklist: Mapping[str, Any], card_id: str, board_id: str) -> Row:
    return {
        "id": checklist["id"],
        "card_id": card_id,
        "board_id": _text(checklist.get("idBoard")) or board_id,
        "name": _text(checklist.get("name")),
        "pos": _pos(checklist.get("pos")),
    }


def check_item_state(state: Any) -> str:
    """``complete`` or ``incomplete`` (anything else Trello might send reads as incomplete)."""
    return "complete" if state == "complete" else "incomplete"


def check_item_row(item: Mapping[str, Any], checklist_id: str, card_id: str) -> Row:
    return {
        "id": item["id"],
        "checklist_id": checklist_id,
        "card_id": card_id,
        "name": _text(item.get("name")),
        "state": check_item_state(item.get("state")),
        "pos": _pos(item.get("pos")),
    }


def custom_field_row(field: Mapping[str, Any], board_id: str) -> Row:
    options = {
        option["id"]: _text((option.get("value") or {}).get("text"))
        for option in field.get("options") or []
        if isinstance(option, Mapping) and "id" in option
    }
    return {
        "id": field["id"],
        "board_id": _text(field.get("idModel")) or board_id,
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
    if not isinstance(value, Mapping):
        return ""
    for kind in ("text", "number", "date", "checked"):
        if kind in value and value[kind] is not None:
            return str(value[kind])
    return ""


def custom_field_item_row(
    card_id: str, item: Mapping[str, Any], options: Mapping[str, Mapping[str, str]]
) -> Row | None:
    """The card's value of one custom field, or None when the field is unset (no value).

    Trello keeps no item for an unset field; an item with an empty value means the same.
    """
    field_id = item.get("idCustomField")
    if not field_id:
        return None
    value = custom_field_value(item, options)
    if not value:
        return None
    return {"card_id": card_id, "custom_field_id": field_id, "value": value}


def attachment_row(attachment: Mapping[str, Any], card_id: str) -> Row:
    return {
        "id": attachment["id"],
        "card_id": card_id,
        "name": _text(attachment.get("name")),
        "url": _text(attachment.get("url")),
        "date": _text_or_none(attachment.get("date")),
    }


def figma_link_rows(card_id: str, desc: str, attachment_urls: Iterable[str]) -> list[Row]:
    """The card's Figma links: its description's first, then its attachments' (each once)."""
    links = {(link.file_key, link.node_id): (link.url, "desc") for link in find_figma_links(desc)}
    for url in attachment_urls:
        for link in find_figma_links(url):
            links.setdefault((link.file_key, link.node_id), (link.url, "attachment"))
    return [
        {"card_id": card_id, "file_key": key, "node_id": node, "url": url, "source": source}
        for (key, node), (url, source) in links.items()
    ]


def add_card(
    batch: BoardBatch,
    card: Mapping[str, Any],
    checklists: Iterable[Mapping[str, Any]],
    *,
    board_id: str,
    options: Mapping[str, Mapping[str, str]],
) -> None:
    """Append one fetched card and all its children to `batch`."""
    card_id = card["id"]
    batch.cards.append(card_row(card, board_id))
    label_ids = list(card.get("idLabels") or [])
    for label in card.get("labels") or []:
        if isinstance(label, Mapping) and label.get("id"):
            batch.labels.append(label_row(label, board_id))
            label_ids.append(label["id"])
    batch.card_labels.extend(label_links(card_id, label_ids))
    batch.card_members.extend(member_links(card_id, card.get("idMembers") or []))
    for member in card.get("members") or []:
        if isinstance(member, Mapping) and member.get("id"):
            batch.members.append(member_row(member))
    for checklist in checklists:
        batch.checklists.append(checklist_row(checklist, card_id, board_id))
        batch.check_items.extend(
            check_item_row(item, checklist["id"], card_id)
            for item in checklist.get("checkItems") or []
        )
    seen_fields: set[str] = set()
    for item in card.get("customFieldItems") or []:
        row = custom_field_item_row(card_id, item, options)
        if row is not None and row["custom_field_id"] not in seen_fields:
            seen_fields.add(row["custom_field_id"])
            batch.custom_field_items.append(row)
    attachments = [
        attachment
        for attachment in card.get("attachments") or []
        if isinstance(attachment, Mapping) and attachment.get("id")
    ]
    batch.attachments.extend(attachment_row(attachment, card_id) for attachment in attachments)
    batch.figma_links.extend(
        figma_link_rows(
            card_id, _text(card.get("desc")), (_text(a.get("url")) for a in attachments)
        )
    )


# -- batches ------------------------------------------------------------------------------


def board_row(board: Mapping[str, Any], role: str) -> Row:
    return {
        "id": board["id"],
        "short_link": _text(board.get("shortLink")),
        "name": _text(board.get("name")),
        "desc": _text(board.get("desc")),
        "url": _text(board.get("url")) or _text(board.get("shortUrl")),
        "closed": _flag(board.get("closed")),
        "role": role,
        "date_last_activity": _text_or_none(board.get("dateLastActivity")),
    }


def list_row(item: Mapping[str, Any], board_id: str) -> Row:
    return {
        "id": item["id"],
        "board_id": _text(item.get("idBoard")) or board_id,
        "name": _text(item.get("name")),
        "closed": _flag(item.get("closed")),
        "pos": _pos(item.get("pos")),
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
    batch.lists = [list_row(item, board_id) for item in snapshot.get("lists") or []]
    batch.labels = [label_row(label, board_id) for label in snapshot.get("labels") or []]
    batch.members = [member_row(member) for member in snapshot.get("members") or []]
    batch.custom_fields = [
        custom_field_row(field, board_id) for field in snapshot.get("customFields") or []
    ]
    options = {row["id"]: row["options"] for row in batch.custom_fields}
    checklists_by_card: dict[str, list[Mapping[str, Any]]] = {}
    for checklist in snapshot.get("checklists") or []:
        checklists_by_card.setdefault(checklist.get("idCard", ""), []).append(checklist)
    for card in cards if cards is not None else snapshot.get("cards") or []:
        own = card.get("checklists")
        add_card(
            batch,
            card,
            own if own else checklists_by_card.get(card["id"], []),
            board_id=board_id,
            options=options,
        )
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
    for card_id, card in fetched.items():
        if card is None or card.get("idBoard", board_id) != board_id:
            gone.add(card_id)
        else:
            add_card(batch, card, card.get("checklists") or [], board_id=board_id, options=options)
    batch.gone_card_ids = sorted(gone)
    _dedupe(batch)
    return batch


def action_rows(actions: Iterable[Mapping[str, Any]], board_id: str, source: str) -> list[Row]:
    # the delivery models, imported when there are actions: an idle sync stores none
    from syncd.trello.schema import stored_action_data

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
