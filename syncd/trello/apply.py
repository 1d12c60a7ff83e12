"""Applying one accepted Trello action to the store (direct, refetch or board sync).

Owns the pure parts of the receiver (the ``X-Trello-Webhook`` signature, the body cap, payload
parsing, matching an action's board against the configured boards, classifying an action), the
direct application of a full-change action onto the stored rows of its card
(`apply_to_batch`), `TrelloApplier` (one delivery: record it, apply it, mark it) and
`WebhookWorker`, the one thread that applies accepted deliveries in arrival order.

How an action is applied (`plan`):

- **direct**: the action carries the whole change (``updateCard`` of list/name/closed/desc/due/
  pos, label and member add/remove, check-item state, custom-field value, ``deleteCard``): the
  card's stored rows are loaded (`Store.card_batch`), changed, and written back through the
  one writer path with the raw action, so the card history gets a ``webhook`` row;
- **refetch**: anything else about a card (``createCard``, comments, checklists, attachments, a
  card not in the store yet, an action older than the stored card): the card is fetched again;
- **board**: an action that changes the board itself: the board is synced (`Mirror.sync_board`).

A webhook batch never moves the poll cursor: a lost or failed delivery is caught by the next
poll, which reads every action since the cursor. A failed delivery stores no action row, so the
poll does not mistake it for applied.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog

from state.store import BoardBatch, Row, Store
from state.timestamps import utc_iso
from syncd.config import BoardConfig
from syncd.figma.links import find_figma_links
from syncd.trello.rows import (
    BOARD_LEVEL_ACTIONS,
    action_rows,
    custom_field_value,
    member_row,
    refetched_batch,
)
from syncd.writeback.marker import own_comment_ids

log = structlog.get_logger("syncd.webhooks")


T = TypeVar("T")

# updateCard changes whose new value is in the action itself.
DIRECT_UPDATE_FIELDS = frozenset({"idList", "name", "closed", "desc", "due", "pos", "dueComplete"})
DIRECT_TYPES = frozenset(
    {
        "updateCard",
        "addLabelToCard",
        "removeLabelFromCard",
        "addMemberToCard",
        "removeMemberFromCard",
        "updateCheckItemStateOnCard",
        "updateCustomFieldItem",
        "deleteCard",
    }
)
_HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")


# -- what to do with an action ------------------------------------------------------------


def plan(action: Mapping[str, Any]) -> str:
    """``direct``, ``refetch``, ``board`` or ``store`` (keep the raw action only)."""
    type_ = action.get("type") or ""
    if type_ in BOARD_LEVEL_ACTIONS:
        return "board"
    data = action.get("data") or {}
    card = data.get("card") or {}
    if not isinstance(card, dict) or not card.get("id"):
        return "store"
    if type_ == "updateCard":
        old = data.get("old")
        if isinstance(old, dict) and old and set(old) <= DIRECT_UPDATE_FIELDS:
            return "direct"
        return "refetch"
    if type_ in DIRECT_TYPES:
        return "direct"
    return "refetch"


def apply_to_batch(
    batch: BoardBatch,
    action: Mapping[str, Any],
    *,
    board_id: str,
    options: Mapping[str, Mapping[str, str]] | None = None,
) -> bool:
    """Change the stored rows of the action's card in `batch` as the action did.

    Returns False (nothing reliable changed) when the action lacks what it needs, the card is
    not in the batch, or the stored card is newer than the action: the caller refetches.
    ``deleteCard`` is handled by the caller (no rows are needed).
    """
    data = action.get("data") or {}
    card_data = data.get("card") or {}
    card_id = card_data.get("id")
    card = next((row for row in batch.cards if row["id"] == card_id), None)
    if card is None or card.get("board_id") != board_id:
        return False
    date = action.get("date") or ""
    stored_activity = card.get("date_last_activity") or ""
    if date and stored_activity > date:
        return False  # the stored card already holds something later: refetch
    type_ = action.get("type")
    if type_ == "updateCard":
        if not _apply_update(batch, card, data):
            return False
    elif type_ in ("addLabelToCard", "removeLabelFromCard"):
        label = data.get("label") or {}
        label_id = label.get("id") or data.get("idLabel")
        if not label_id:
            return False
        added = type_ == "addLabelToCard"
        batch.card_labels = _set_link(batch.card_labels, card_id, "label_id", label_id, added)
        if added and "name" in label:
            batch.labels.append(
                {
                    "id": label_id,
                    "board_id": board_id,
                    "name": label.get("name") or "",
                    "color": label.get("color"),
                }
            )
    elif type_ in ("addMemberToCard", "removeMemberFromCard"):
        member = action.get("member") or {}
        member_id = data.get("idMember") or (data.get("member") or {}).get("id") or member.get("id")
        if not member_id:
            return False
        added = type_ == "addMemberToCard"
        batch.card_members = _set_link(batch.card_members, card_id, "member_id", member_id, added)
        if added and member.get("id") == member_id and member.get("fullName"):
            batch.members.append(member_row(member))
    elif type_ == "updateCheckItemStateOnCard":
        item = data.get("checkItem") or {}
        row = next(
            (r for r in batch.check_items if r["id"] == item.get("id") and r["card_id"] == card_id),
            None,
        )
        if row is None or "state" not in item:
            return False
        row["state"] = "complete" if item["state"] == "complete" else "incomplete"
    elif type_ == "updateCustomFieldItem":
        item = dict(data.get("customFieldItem") or {})
        field_id = item.get("idCustomField") or (data.get("customField") or {}).get("id")
        if not field_id or options is None or field_id not in options:
            return False
        item["idCustomField"] = field_id
        value = custom_field_value(item, options)
        batch.custom_field_items = [
            row
            for row in batch.custom_field_items
            if not (row["card_id"] == card_id and row["custom_field_id"] == field_id)
        ]
        if value:
            batch.custom_field_items.append(
                {"card_id": card_id, "custom_field_id": field_id, "value": value}
            )
    else:
        return False
    if date and date > stored_activity:
        card["date_last_activity"] = date
    return True


def _set_link(rows: list[Row], card_id: str, key: str, value: str, present: bool) -> list[Row]:
    """A card↔label or card↔member link list with (card_id, value) present or absent."""
    kept = [row for row in rows if not (row["card_id"] == card_id and row[key] == value)]
    return [*kept, {"card_id": card_id, key: value}] if present else kept


def _apply_update(batch: BoardBatch, card: Row, data: Mapping[str, Any]) -> bool:
    card_data = data.get("card") or {}
    for key in data.get("old") or {}:
        if key == "idList":
            new_list = card_data.get("idList") or (data.get("listAfter") or {}).get("id")
            if not new_list:
                return False
            card["list_id"] = new_list
            continue
        if key not in card_data:
            return False
        value = card_data[key]
        if key == "name":
            card["name"] = value if isinstance(value, str) else ""
        elif key == "closed":
            card["closed"] = bool(value)
        elif key == "desc":
            card["desc"] = value if isinstance(value, str) else ""
            _relink(batch, card)
        elif key == "due":
            card["due"] = value or None
        elif key == "dueComplete":
            card["due_complete"] = bool(value)
        elif key == "pos":
            try:
                card["pos"] = float(value)
            except (TypeError, ValueError):
                return False
    return True


def _relink(batch: BoardBatch, card: Row) -> None:
    """Recompute a card's Figma links after its description changed."""
    card_id = card["id"]
    links = {
        (link.file_key, link.node_id): (link.url, "desc") for link in find_figma_links(card["desc"])
    }
    for attachment in batch.attachments:
        if attachment["card_id"] == card_id:
            for link in find_figma_links(attachment.get("url") or ""):
                links.setdefault((link.file_key, link.node_id), (link.url, "attachment"))
    batch.figma_links = [row for row in batch.figma_links if row["card_id"] != card_id]
    batch.figma_links.extend(
        {"card_id": card_id, "file_key": key, "node_id": node, "url": url, "source": source}
        for (key, node), (url, source) in links.items()
    )


# -- applying -----------------------------------------------------------------------------


class ApplyError(Exception):
    """A delivery could not be applied (the next poll will catch it up)."""


def _inline(step: Callable[[], T]) -> T:
    return step()


class TrelloApplier:
    """Applies one Trello action to the store (see the module docstring).

    `run_write` runs a read-modify-write step where every store write happens (the daemon's
    writer thread); by default inline. Remote calls (refetch, board sync) run in the caller.
    """

    def __init__(
        self,
        *,
        store: Store,
        trello: Any,
        mirror: Any,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        run_write: Callable[[Callable[[], Any]], Any] = _inline,
    ) -> None:
        self.store = store
        self.trello = trello
        self.mirror = mirror
        self.clock = clock
        self.run_write = run_write
        # card id -> dateLastActivity of its last fetch from Trello (snapshot or refetch): that
        # fetched state holds every action on the card dated strictly before it.
        self._fetched: dict[str, str] = {}
        self._fetched_lock = threading.Lock()

    def note_fetched(self, batch: BoardBatch) -> None:
        """Remember what a written batch of cards read from Trello holds (snapshot, refetch)."""
        with self._fetched_lock:
            for card in batch.cards:
                activity = card.get("date_last_activity")
                if activity and activity > self._fetched.get(card["id"], ""):
                    self._fetched[card["id"]] = activity

    def _included(self, card_id: str | None, date: str | None) -> bool:
        """Whether a fetched state already holds this action (it is strictly older)."""
        if not card_id or not date:
            return False
        with self._fetched_lock:
            return date < self._fetched.get(card_id, "")

    def deliver(self, action: Mapping[str, Any], board: BoardConfig, board_id: str) -> str:
        """Record, apply and mark one delivery: ``applied``, ``replay`` or ``failed``."""
        action_id = action["id"]
        at = utc_iso(self.clock())
        if not self.run_write(lambda: self.store.record_delivery(action_id, board_id, at)):
            return "replay"
        try:
            how = self.apply(action, board, board_id)
        except Exception as exc:  # a failed apply must never stop the worker
            log.warning(
                "webhook apply failed",
                action=action_id,
                type=action.get("type"),
                board=board.id,
                error=" ".join(str(exc).split())[:300] or type(exc).__name__,
            )
            self._mark(action_id, "failed")
            return "failed"
        self._mark(action_id, "applied")
        log.debug("webhook applied", action=action_id, type=action.get("type"), how=how)
        return "applied"

    def _mark(self, action_id: str, outcome: str) -> None:
        at = utc_iso(self.clock())
        try:
            self.run_write(lambda: self.store.mark_delivery(action_id, outcome, at))
        except Exception as exc:
            log.warning("cannot mark webhook delivery", action=action_id, error=str(exc)[:300])

    def apply(self, action: Mapping[str, Any], board: BoardConfig, board_id: str) -> str:
        """Apply one action; returns how (``direct``, ``refetch``, ``board``, ``store``)."""
        how = plan(action)
        if own_comment_ids([action], self.store.writeback_intents):
            how = "store"  # syncd's own comment (write-back): kept, its card is unchanged
        card_id = ((action.get("data") or {}).get("card") or {}).get("id")
        if how in ("direct", "refetch") and self._included(card_id, action.get("date")):
            how = "included"  # the stored card was fetched after this action: keep the row only
        if how == "direct":
            if self.run_write(lambda: self._direct(action, board, board_id)):
                return "direct"
            how = "refetch"
        if how == "refetch":
            self._refetch(action, board, board_id)
            return "refetch"
        if how == "board":
            report = self.mirror.sync_board(board)
            if report.error:
                raise ApplyError(f"board {board.id}: {report.error}")
        rows = action_rows([action], board_id, "webhook")
        self.run_write(lambda: self.store.insert_actions(rows))
        return how

    def _direct(self, action: Mapping[str, Any], board: BoardConfig, board_id: str) -> bool:
        """On the writer: load the card's rows, change them, write them back. False: refetch."""
        card_id = ((action.get("data") or {}).get("card") or {}).get("id")
        observed = utc_iso(self.clock())
        batch = self.store.card_batch(board.id, board.role, [card_id], observed_at=observed)
        if action.get("type") == "deleteCard":
            if not batch.cards:
                self.store.insert_actions(action_rows([action], board_id, "webhook"))
                return True
            batch = BoardBatch(
                board_ref=board.id,
                role=board.role,
                observed_at=observed,
                source="webhook",
                gone_card_ids=[card_id],
            )
        else:
            options = None
            if action.get("type") == "updateCustomFieldItem":
                options = self.store.custom_field_options(board_id)
            if not apply_to_batch(batch, action, board_id=board_id, options=options):
                return False
        self._write(batch, action, board_id)
        return True

    def _refetch(self, action: Mapping[str, Any], board: BoardConfig, board_id: str) -> None:
        card_id = ((action.get("data") or {}).get("card") or {}).get("id")
        fetched = self.trello.cards([card_id])  # remote call, off the writer

        def write() -> None:
            batch = refetched_batch(
                fetched,
                board_ref=board.id,
                role=board.role,
                board_id=board_id,
                observed_at=utc_iso(self.clock()),
                options=self.store.custom_field_options(board_id),
                source="webhook",
            )
            self._write(batch, action, board_id)
            self.note_fetched(batch)

        self.run_write(write)

    def _write(self, batch: BoardBatch, action: Mapping[str, Any], board_id: str) -> None:
        batch.source = "webhook"
        batch.action_id = action["id"]
        batch.cursor = None  # never: the poll resumes from its own cursor
        batch.actions = action_rows([action], board_id, "webhook")
        self.store.write_board(batch)
